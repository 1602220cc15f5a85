/**
 * QHAdam's presets and its first steps, by hand (the trajectories are in
 * test/fixtures/rules/qhadam.json, from the paper's Algorithm 2 in numpy).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, NAdam, QHAdam, UpdateError } from 'nesterov';
import { assertClose } from './helpers.ts';

type Steppable = { update(p: { w: Float64Array }, g: { w: Float64Array }): boolean };

/** Gradient of sum (x^2 - 1)^2 / 4 + 0.1 x: non-convex, so the moments matter. */
function gradient(x: Float64Array, g: Float64Array): void {
  for (let i = 0; i < x.length; i++) g[i] = x[i]! * (x[i]! * x[i]! - 1) + 0.1;
}

function start(): Float64Array {
  return Float64Array.from({ length: 16 }, (_, i) => Math.sin(i + 1) * 2);
}

function run(opt: Steppable, steps: number): Float64Array {
  const p = { w: start() };
  const g = { w: new Float64Array(16) };
  for (let t = 0; t < steps; t++) {
    gradient(p.w, g.w);
    opt.update(p, g);
  }
  return p.w;
}

/**
 * NAdam with a constant momentum, in the form the QHAdam paper gives it (after Dozat
 * 2016): Adam's moments, and the step along beta1 m_hat + (1 - beta1) g. Written out
 * here, independently of the rule's kernels.
 */
function dozatNAdam(lr: number, beta1: number, beta2: number, eps: number, steps: number): Float64Array {
  const x = start();
  const g = new Float64Array(16);
  const m = new Float64Array(16);
  const v = new Float64Array(16);
  for (let t = 1; t <= steps; t++) {
    gradient(x, g);
    for (let i = 0; i < 16; i++) {
      m[i] = beta1 * m[i]! + (1 - beta1) * g[i]!;
      v[i] = beta2 * v[i]! + (1 - beta2) * g[i]! * g[i]!;
      const mHat = m[i]! / (1 - beta1 ** t);
      const vHat = v[i]! / (1 - beta2 ** t);
      x[i] = x[i]! - (lr * (beta1 * mHat + (1 - beta1) * g[i]!)) / (Math.sqrt(vHat) + eps);
    }
  }
  return x;
}

describe('QHAdam', () => {
  it('the first two steps by hand', () => {
    // lr 0.1, beta1 0.9, beta2 0.999, nu1 0.7, nu2 0.5, eps 0; p = 1, g = 2 then 1.
    // Step 1: m_hat = 2, v_hat = 4; num = 0.3 * 2 + 0.7 * 2 = 2; den = sqrt(0.5 * 4 + 0.5 * 4) = 2: p = 0.9.
    // Step 2: m = 0.9 * 0.2 + 0.1 = 0.28, m_hat = 0.28 / 0.19; v = 0.999 * 0.004 + 0.001 = 0.004996,
    // v_hat = 0.004996 / 0.001999; num = 0.3 * 1 + 0.7 m_hat; den = sqrt(0.5 * 1 + 0.5 v_hat).
    const opt = new QHAdam({ lr: 0.1, nu1: 0.7, nu2: 0.5, eps: 0 });
    const p = { w: new Float64Array([1]) };
    opt.update(p, { w: new Float64Array([2]) });
    assert.equal(p.w[0], 0.9);
    opt.update(p, { w: new Float64Array([1]) });
    const expected = 0.9 - (0.1 * (0.3 + (0.7 * 0.28) / 0.19)) / Math.sqrt(0.5 + (0.5 * 0.004996) / 0.001999);
    assert.ok(Math.abs(p.w[0]! - expected) < 1e-15, `${p.w[0]} vs ${expected}`);
    const state = opt.stateOf('w')!;
    assert.ok(Math.abs(state.expAvg[0]! - 0.28) < 1e-15, `${state.expAvg[0]}`);
    assert.ok(Math.abs(state.expAvgSq[0]! - 0.004996) < 1e-17, `${state.expAvgSq[0]}`);
  });

  it('QHAdam.fromNAdam is NAdam with a constant momentum (the QHAdam paper\'s form), step for step', () => {
    const fromNAdam = run(QHAdam.fromNAdam({ lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 }), 300);
    assertClose(fromNAdam, Array.from(dozatNAdam(0.01, 0.9, 0.999, 1e-8, 300)), 1e-12, 'p after 300 steps');
    // Not PyTorch's NAdam: its momentum schedule moves the first steps elsewhere.
    const torchForm = run(new NAdam({ lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 }), 3);
    const three = run(QHAdam.fromNAdam({ lr: 0.01 }), 3);
    assert.ok(Math.max(...three.map((x, i) => Math.abs(x - torchForm[i]!))) > 1e-4);
  });

  it('QHAdam.fromNAdam by hand: the second step is lr (0.9 m_hat + 0.1 g) / sqrt(v_hat)', () => {
    // p = 1, g = 2 then 1, lr 0.1, eps 0: step 1 moves by 0.1 (m_hat = g, v_hat = g^2);
    // step 2: m_hat = 0.28 / 0.19, v_hat = 0.004996 / 0.001999.
    const opt = QHAdam.fromNAdam({ lr: 0.1, eps: 0 });
    const p = { w: new Float64Array([1]) };
    opt.update(p, { w: new Float64Array([2]) });
    opt.update(p, { w: new Float64Array([1]) });
    const expected = 0.9 - (0.1 * ((0.9 * 0.28) / 0.19 + 0.1)) / Math.sqrt(0.004996 / 0.001999);
    assert.ok(Math.abs(p.w[0]! - expected) < 1e-15, `${p.w[0]} vs ${expected}`);
    assert.equal(opt.defaults.nu1, 0.9);
    assert.equal(opt.defaults.nu2, 1);
  });

  it('nu1 = nu2 = 1 is Adam (PyTorch form), with weight decay, for 200 steps', () => {
    const adam = run(new Adam({ lr: 0.01, weightDecay: 0.01 }), 200);
    const qh = run(new QHAdam({ lr: 0.01, nu1: 1, nu2: 1, weightDecay: 0.01 }), 200);
    assertClose(qh, Array.from(adam), 1e-12, 'p after 200 steps');
  });

  it('options are checked, naming the option and the value; a bad step leaves params as they were', () => {
    assert.throws(() => new QHAdam({ nu1: 1.5 }), /^RangeError: QHAdam: invalid nu1: 1.5 \(expected a number in \[0, 1\]\)$/);
    assert.throws(() => new QHAdam({ nu2: -0.1 }), /QHAdam: invalid nu2: -0.1/);
    assert.throws(() => new QHAdam({ beta2: 1 }), /QHAdam: invalid beta2: 1/);
    assert.throws(() => QHAdam.fromNAdam({ beta1: 1 }), /QHAdam.fromNAdam: invalid beta1: 1/);
    const opt = new QHAdam({ lr: () => NaN });
    const p = { w: new Float64Array([1]) };
    assert.throws(() => opt.update(p, { w: new Float64Array([1]) }), UpdateError);
    assert.equal(p.w[0], 1);
  });
});
