/** clipGradNorm (PyTorch's clip_grad_norm_ semantics), zeroGrads, zerosLike; per-parameter overrides. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, AdamW, clipGradNorm, Nesterov, SGD, UpdateError, zeroGrads, zerosLike } from 'nesterov';
import { assertClose } from './helpers.ts';

describe('clipGradNorm', () => {
  it('returns the total 2-norm of all gradients together and scales them by maxNorm / (norm + 1e-6)', () => {
    // ||(3, 4)|| = 5, ||(12)|| = 12: total sqrt(25 + 144) = 13; scale 6.5 / (13 + 1e-6)
    const grads = { a: new Float64Array([3, 4]), b: new Float64Array([12]) };
    assert.equal(clipGradNorm(grads, 6.5), 13);
    const scale = 6.5 / (13 + 1e-6);
    assertClose([...grads.a, ...grads.b], [3 * scale, 4 * scale, 12 * scale], 1e-15, 'clipped');
  });
  it('leaves gradients alone when the norm is below maxNorm', () => {
    const grads = new Map([['a', new Float32Array([0.3, 0.4])]]);
    assertClose([clipGradNorm(grads, 1)], [0.5], 1e-7, 'norm');
    assert.deepEqual(grads.get('a'), new Float32Array([0.3, 0.4]));
  });
  it('the infinity norm is the largest magnitude', () => {
    const grads = { a: new Float64Array([1, -7]), b: new Float64Array([3]) };
    assert.equal(clipGradNorm(grads, 100, { normType: Infinity }), 7);
  });
  it('a non-finite gradient: an error naming it (grads untouched), or the norm with nonFinite: return', () => {
    const grads = { a: new Float64Array([1]), b: new Float64Array([2, NaN]) };
    assert.throws(() => clipGradNorm(grads, 1), (e: Error) => e instanceof UpdateError && /gradient 'b' is not finite at index 1/.test(e.message));
    assert.deepEqual(grads.a, new Float64Array([1]));
    assert.ok(Number.isNaN(clipGradNorm(grads, 1, { nonFinite: 'return' })));
    assert.deepEqual(grads.a, new Float64Array([1]));
  });
  it('bad arguments are named', () => {
    assert.throws(() => clipGradNorm({}, -1), /clipGradNorm: invalid maxNorm: -1/);
    assert.throws(() => clipGradNorm({}, 1, { normType: 1 as 2 }), /invalid normType: 1/);
  });
});

describe('zeroGrads / zerosLike', () => {
  it('zerosLike keeps names, types, lengths and the kind of set', () => {
    const like = zerosLike({ w: new Float32Array([1, 2]), b: new Float64Array([3]) }) as Record<string, Float32Array | Float64Array>;
    assert.deepEqual(like, { w: new Float32Array(2), b: new Float64Array(1) });
    assert.ok(zerosLike(new Map([['w', new Float32Array(1)]])) instanceof Map);
  });
  it('zeroGrads fills with zeros in place', () => {
    const grads = { w: new Float32Array([1, 2]) };
    zeroGrads(grads);
    assert.deepEqual(grads.w, new Float32Array(2));
  });
});

describe('per-parameter overrides (param groups)', () => {
  it('AdamW with no weight decay on biases equals two optimizers, one per group, bit for bit', () => {
    const grouped = new AdamW({ lr: 0.01, weightDecay: 0.1, overrides: [{ params: /^b/, weightDecay: 0 }] });
    const weights = new AdamW({ lr: 0.01, weightDecay: 0.1 });
    const biases = new AdamW({ lr: 0.01, weightDecay: 0 });
    const a = { W: new Float64Array([1, -2]), b1: new Float64Array([0.5]) };
    const w = { W: new Float64Array([1, -2]) };
    const b = { b1: new Float64Array([0.5]) };
    for (let t = 0; t < 20; t++) {
      const g = { W: new Float64Array([0.1 * t, -0.3]), b1: new Float64Array([0.2]) };
      grouped.update(a, g);
      weights.update(w, { W: g.W });
      biases.update(b, { b1: g.b1 });
    }
    assert.deepEqual(a.W, w.W);
    assert.deepEqual(a.b1, b.b1);
    // Issue 10 item 16: AdamW's weightDecay reads as the user set it, marked decoupled.
    assert.deepEqual([grouped.hyperparameters('b1').weightDecay, grouped.hyperparameters('b1').decoupled], [0, true]);
    assert.deepEqual([grouped.hyperparameters('W').weightDecay, grouped.hyperparameters('W').decoupled], [0.1, true]);
    assert.deepEqual([new Adam({ weightDecay: 0.1 }).defaults.weightDecay, new Adam({ weightDecay: 0.1 }).defaults.decoupled], [0.1, false]);
  });
  it('the first matching override wins; names, arrays and predicates match', () => {
    const opt = new SGD({
      lr: 0.1,
      overrides: [{ params: ['x'], lr: 0.2 }, { params: (name) => name.startsWith('x') || name === 'y', lr: 0.3 }, { params: 'z', lr: (t) => 0.4 / (t + 1) }],
    });
    assert.deepEqual(['x', 'x2', 'y', 'z', 'other'].map((n) => opt.learningRate(n)), [0.2, 0.3, 0.3, 0.4, 0.1]);
  });
  it("an override's own schedule is used for its parameters", () => {
    const opt = new Nesterov({ lr: 0.1, momentum: 0, overrides: [{ params: 'slow', lr: (t) => 0.01 * (t + 1) }] });
    const p = { fast: new Float64Array([1]), slow: new Float64Array([1]) };
    opt.update(p, { fast: new Float64Array([1]), slow: new Float64Array([1]) });
    opt.update(p, { fast: new Float64Array([1]), slow: new Float64Array([1]) });
    // momentum 0: fast 1 - 0.1 - 0.1 = 0.8; slow 1 - 0.01 - 0.02 = 0.97
    assertClose([p.fast[0]!, p.slow[0]!], [0.8, 0.97], 1e-15, 'p');
  });
});
