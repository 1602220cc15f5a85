/**
 * Adan's first steps by hand in optax's form, its decoupled weight decay and its first
 * step's difference (the trajectories are in test/fixtures/rules/adan.json, from optax).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adan, ParamStore, UpdateError } from 'nesterov';

describe('Adan', () => {
  it('the first two steps by hand, with optax\'s weight 1 - beta2 = 0.08 on the difference', () => {
    // Defaults (beta 0.98, 0.92, 0.99), lr 0.1, eps 0 and epsRoot 0; p = 1, g = 2 then 1.
    // Step 1: no difference; m_hat = 2, n_hat = 4, u = 1: p = 0.9.
    // Step 2: delta = -1; m = 0.98 * 0.04 + 0.02 = 0.0592, m_hat = 0.0592 / (1 - 0.98^2);
    // v = 0.08 * -1, v_hat = -0.08 / (1 - 0.92^2); the look-ahead 1 + 0.08 * -1 = 0.92,
    // n = 0.99 * 0.04 + 0.01 * 0.92^2, n_hat = n / (1 - 0.99^2);
    // p = 0.9 - 0.1 (m_hat + 0.08 v_hat) / sqrt(n_hat).
    const opt = new Adan({ lr: 0.1, eps: 0, epsRoot: 0 });
    const p = { w: new Float64Array([1]) };
    opt.update(p, { w: new Float64Array([2]) });
    assert.ok(Math.abs(p.w[0]! - 0.9) < 1e-15, `${p.w[0]}`);
    opt.update(p, { w: new Float64Array([1]) });
    const mHat = 0.0592 / (1 - 0.9604);
    const vHat = -0.08 / (1 - 0.8464);
    const nHat = (0.0396 + 0.01 * 0.8464) / (1 - 0.9801);
    const expected = 0.9 - (0.1 * (mHat + 0.08 * vHat)) / Math.sqrt(nHat);
    assert.ok(Math.abs(p.w[0]! - expected) < 1e-14, `${p.w[0]} vs ${expected}`);
    const s = opt.stateOf('w')!;
    assert.ok(Math.abs(s.expAvg[0]! - 0.0592) < 1e-16, `${s.expAvg[0]}`);
    assert.ok(Math.abs(s.expAvgDiff[0]! + 0.08) < 1e-16, `${s.expAvgDiff[0]}`);
    assert.ok(Math.abs(s.expAvgSq[0]! - 0.048064) < 1e-16, `${s.expAvgSq[0]}`);
    assert.equal(s.prevGrad[0], 1);
  });

  it('weight decay is decoupled: with zero gradients p shrinks by exactly 1 - lr wd a step, and the moments stay 0', () => {
    for (const store of [undefined, new ParamStore({ w: 9 }, { stateBuffers: 4 })]) {
      const opt = new Adan({ lr: 0.1, weightDecay: 0.5 });
      const p = store === undefined ? { w: new Float32Array(9).fill(2) } : { w: store.params.w! };
      p.w.fill(2);
      const g = store === undefined ? { w: new Float32Array(9) } : { w: store.grads.w! };
      let expected = 2;
      for (let t = 0; t < 3; t++) {
        opt.update(store?.params ?? p, store?.grads ?? g);
        expected = Math.fround(expected * Math.fround(0.95));
        for (const x of p.w) assert.equal(x, expected, store === undefined ? 'js' : 'wasm');
      }
      const s = opt.stateOf('w')!;
      assert.ok(s.expAvg.every((x) => x === 0) && s.expAvgSq.every((x) => x === 0));
    }
  });

  it('the first step has no difference, even from an infinite gradient (optax\'s where, not a multiply)', () => {
    for (const store of [undefined, new ParamStore({ w: 9 }, { stateBuffers: 4 })]) {
      const opt = new Adan({ lr: 0.1, nonFinite: 'ignore' });
      const p = store === undefined ? { w: new Float32Array(9) } : { w: store.params.w! };
      const g = store === undefined ? { w: new Float32Array(9) } : { w: store.grads.w! };
      g.w.fill(1);
      g.w[4] = Infinity;
      try {
        opt.update(store?.params ?? p, store?.grads ?? g);
      } catch (error) {
        assert.ok(error instanceof UpdateError); // the infinite gradient's own moments overflow
      }
      const s = opt.stateOf('w')!;
      assert.equal(s.expAvgDiff[4], 0, store === undefined ? 'js' : 'wasm');
      assert.equal(s.expAvgDiff[0], 0);
    }
  });

  it('options are checked, naming the option and the value; a bad step leaves params as they were', () => {
    assert.throws(() => new Adan({ beta3: 1 }), /^RangeError: Adan: invalid beta3: 1 \(expected a number in \[0, 1\)\)$/);
    assert.throws(() => new Adan({ epsRoot: -1 }), /Adan: invalid epsRoot: -1/);
    assert.throws(() => new Adan({ beta2: -0.5 }), /Adan: invalid beta2: -0.5/);
    const opt = new Adan({ lr: () => NaN });
    const p = { w: new Float64Array([1]) };
    assert.throws(() => opt.update(p, { w: new Float64Array([1]) }), UpdateError);
    assert.equal(p.w[0], 1);
  });
});
