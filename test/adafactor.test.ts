/**
 * Adafactor beyond its optax fixture (test/fixtures/rules/adafactor.json, run by
 * reference-rules.test.ts): the memory it keeps, first steps worked by hand, shapes from
 * the options and from a ParamStore, refused calls that change nothing, the state's
 * round trips (stateDict, JSON, safetensors, TF.js weights) and the decay offset.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adafactor, Adam, ParamStore, StateError, UpdateError, decodeState, encodeState, stateFromJSON, stateToJSON, type OptimizerStateDict } from 'nesterov';
import { TfOptimizer, tfOptimizer } from 'nesterov/tfjs';
import { tf, useBackend } from './tfjs-helpers.ts';

/** The numbers a saved state keeps for parameter `name`: the lengths of its buffers. */
function stateNumbers(dict: OptimizerStateDict, name: string): number {
  return Object.values(dict.params[name]!.buffers).reduce((sum, buffer) => sum + buffer.length, 0);
}

/** g[i][j] = a[i] b[j] of a rows x cols matrix, row-major. */
function rankOne(a: readonly number[], b: readonly number[]): Float64Array {
  return Float64Array.from({ length: a.length * b.length }, (_, k) => a[Math.floor(k / b.length)]! * b[k % b.length]!);
}

const rms = (x: ArrayLike<number>) => Math.sqrt(Array.from(x).reduce((s, v) => s + v * v, 0) / x.length);

describe('Adafactor keeps R + C numbers for an R x C matrix', () => {
  it('784 x 100 with minDimSizeToFactor 100: 884 numbers (vRow 100, vCol 784), not 78,400; the bias keeps its 100', () => {
    const opt = new Adafactor({ lr: 0.01, minDimSizeToFactor: 100, shapes: { W1: [784, 100] } });
    opt.update({ W1: new Float32Array(78400).fill(0.1), b1: new Float32Array(100) }, { W1: new Float32Array(78400).fill(0.01), b1: new Float32Array(100).fill(0.01) });
    const dict = opt.stateDict();
    assert.equal(stateNumbers(dict, 'W1'), 884);
    assert.deepEqual(Object.fromEntries(Object.entries(dict.params.W1!.buffers).map(([k, v]) => [k, v.length])), { vRow: 100, vCol: 784, v: 0 });
    assert.deepEqual({ ...dict.params.W1!.scalars }, { rows: 784, cols: 100 });
    assert.equal(stateNumbers(dict, 'b1'), 100);
  });

  it("at optax's default minDimSizeToFactor 128 the 784 x 100 matrix keeps the full v (100 < 128), a 130 x 140 one 270 numbers", () => {
    const opt = new Adafactor({ lr: 0.01, shapes: { W1: [784, 100], W2: [130, 140] } });
    opt.update({ W1: new Float32Array(78400).fill(0.1), W2: new Float32Array(18200).fill(0.1) }, { W1: new Float32Array(78400).fill(0.01), W2: new Float32Array(18200).fill(0.01) });
    assert.equal(stateNumbers(opt.stateDict(), 'W1'), 78400);
    assert.equal(stateNumbers(opt.stateDict(), 'W2'), 270);
  });

  it('with momentum, m adds one number per element', () => {
    const opt = new Adafactor({ lr: 0.01, momentum: 0.9, minDimSizeToFactor: 100, shapes: { W1: [784, 100] } });
    opt.update({ W1: new Float32Array(78400).fill(0.1) }, { W1: new Float32Array(78400).fill(0.01) });
    assert.equal(stateNumbers(opt.stateDict(), 'W1'), 884 + 78400);
  });

  it('stateBuffersPerParam() is 0: a ParamStore made for it reserves no state region, and its update runs there', () => {
    const opt = new Adafactor({ lr: 0.01, minDimSizeToFactor: 100 });
    assert.equal(opt.stateBuffersPerParam(), 0);
    const store = new ParamStore({ W1: [784, 100], b1: 100 }, { stateBuffers: [opt] });
    assert.equal(store.stateBuffers, 0);
    store.params.W1.fill(0.1);
    store.grads.W1.fill(0.01);
    store.grads.b1.fill(0.01);
    opt.update(store.params, store.grads);
    assert.equal(stateNumbers(opt.stateDict(), 'W1'), 884);
    assert.equal(opt.backendUsed, 'js');
  });
});

describe('Adafactor: first steps by hand', () => {
  it('a vector: beta2 = 0 at step 1, so v = g^2 + eps and u = sign(g); rms(u) = 1 (no clipping); p <- p - lr rms(p) sign(g)', () => {
    const opt = new Adafactor({ lr: 0.1 });
    const p = { w: new Float64Array([3, -4]) };
    opt.update(p, { w: new Float64Array([0.5, 2]) });
    // rms(p) = sqrt((9 + 16) / 2) = 3.5355...; both signs +.
    const step = 0.1 * Math.sqrt(12.5);
    assert.ok(Math.abs(p.w[0]! - (3 - step)) < 1e-12 && Math.abs(p.w[1]! - (-4 - step)) < 1e-12, String(p.w));
    assert.deepEqual([...opt.stateOf('w')!.v], [0.25 + 1e-30, 4 + 1e-30]);
  });

  it('the parameter scale has a floor of 1e-3 (optax: min_scale): a tensor near 0 moves by lr 1e-3 per element', () => {
    const opt = new Adafactor({ lr: 0.1 });
    const p = { w: new Float64Array([1e-5, -2e-5]) };
    opt.update(p, { w: new Float64Array([1, 1]) });
    assert.ok(Math.abs(p.w[0]! - (1e-5 - 1e-4)) < 1e-18 && Math.abs(p.w[1]! - (-2e-5 - 1e-4)) < 1e-18, String(p.w));
  });

  it("the default lr is 1, optax's learning_rate None (no scaling): a step moves a vector by its own rms", () => {
    const opt = new Adafactor();
    assert.equal(opt.defaults.lr, 1);
    const p = { w: new Float64Array([3, -4]) };
    opt.update(p, { w: new Float64Array([-1, -1]) });
    assert.ok(Math.abs(p.w[0]! - (3 + Math.sqrt(12.5))) < 1e-12 && Math.abs(p.w[1]! - (-4 + Math.sqrt(12.5))) < 1e-12, String(p.w));
  });

  it('a 3 x 2 matrix in a ParamStore (its shape from the store), factored, a gradient of rank one: vRow, vCol as derived, u = sign(g)', () => {
    // g[i][j] = a[i] b[j]: G = a_i^2 b_j^2 (+ eps). The shorter dimension is the columns:
    // vRow[j] = mean_i G = b_j^2 mean(a^2), vCol[i] = mean_j G = a_i^2 mean(b^2), and
    // u = g sqrt(mean(vRow) / vRow[j]) / sqrt(vCol[i]) = a_i b_j / (|a_i| |b_j|) = sign(g).
    const a = [1, -2, 3];
    const b = [2, -0.5];
    const store = new ParamStore({ W: [3, 2] }, { dtype: 'float64' });
    store.params.W.set([1, 2, 3, 4, 5, 6]);
    store.grads.W.set(rankOne(a, b));
    const before = Float64Array.from(store.params.W);
    const opt = new Adafactor({ lr: 0.05, minDimSizeToFactor: 2 });
    opt.update(store.params, store.grads);
    const state = opt.stateOf('W')!;
    const meanA2 = (1 + 4 + 9) / 3;
    const meanB2 = (4 + 0.25) / 2;
    assert.deepEqual([state.rows, state.cols, state.v.length], [3, 2, 0]);
    b.forEach((bj, j) => assert.ok(Math.abs(state.vRow[j]! - bj * bj * meanA2) < 1e-12, `vRow[${j}]`));
    a.forEach((ai, i) => assert.ok(Math.abs(state.vCol[i]! - ai * ai * meanB2) < 1e-12, `vCol[${i}]`));
    const step = 0.05 * rms(before);
    const g = rankOne(a, b);
    for (let k = 0; k < 6; k++) assert.ok(Math.abs(store.params.W[k]! - (before[k]! - step * Math.sign(g[k]!))) < 1e-12, `W[${k}]`);
  });

  it('options.shapes wins over the store: [2, 3] there and [3, 2] in the store make vRow of 2 (the rows), vCol of 3', () => {
    const store = new ParamStore({ W: [3, 2] }, { dtype: 'float64' });
    store.grads.W.fill(1);
    const opt = new Adafactor({ lr: 0.05, minDimSizeToFactor: 2, shapes: { W: [2, 3] } });
    opt.update(store.params, store.grads);
    assert.deepEqual([opt.stateOf('W')!.rows, opt.stateOf('W')!.vRow.length, opt.stateOf('W')!.vCol.length], [2, 2, 3]);
  });

  it('decayOffset k: the steps up to k + 1 all restart the average (beta2 = 0, where optax writes NaN), as decayRate 0 does at every step', () => {
    const run = (options: { decayOffset?: number; decayRate?: number }, steps: number) => {
      const opt = new Adafactor({ lr: 0.01, minDimSizeToFactor: 2, shapes: { W: [3, 4] }, ...options });
      const p = { W: Float64Array.from({ length: 12 }, (_, i) => Math.sin(i + 1)), b: new Float64Array([1, -2]) };
      for (let t = 0; t < steps; t++) {
        opt.update(p, { W: Float64Array.from(p.W, (x, i) => x * x * x - Math.cos(i + t)), b: Float64Array.from(p.b, (x) => x - 0.5) });
      }
      return [...p.W, ...p.b];
    };
    assert.deepEqual(run({ decayOffset: 3 }, 4), run({ decayRate: 0 }, 4));
    assert.notDeepEqual(run({ decayOffset: 3 }, 5), run({ decayRate: 0 }, 5));
  });
});

describe('Adafactor: refused calls change nothing', () => {
  const setup = () => {
    const params = { W: Float64Array.from({ length: 6 }, (_, i) => i + 1), b: new Float64Array([1, 2]) };
    const grads = { W: new Float64Array(6).fill(0.5), b: new Float64Array([0.1, 0.2]) };
    return { params, grads, before: { W: params.W.slice(), b: params.b.slice() } };
  };

  it('a shape whose size is not the parameter length names the parameter; nothing is written', () => {
    const { params, grads, before } = setup();
    const opt = new Adafactor({ shapes: { W: [4, 2] } });
    assert.throws(() => opt.update(params, grads), (e: unknown) => e instanceof UpdateError && e.param === 'W' && /parameter 'W' has 6 elements, not the 8 of its shape \[4, 2\]/.test(e.message));
    assert.deepEqual(params, before);
    assert.equal(opt.stepCount, 0);
    assert.equal(opt.stateOf('b'), undefined);
  });

  it('a tensor of rank 3 whose two largest dimensions would be factored is refused, naming it (matrices only)', () => {
    const opt = new Adafactor({ minDimSizeToFactor: 2, shapes: { W: [1, 2, 3] } });
    const { params, grads } = setup();
    assert.throws(() => opt.update(params, grads), /Adafactor\.update: parameter 'W' has shape \[1, 2, 3\]: Adafactor factors matrices only/);
    // Its second largest dimension below minDimSizeToFactor: the full v, as optax.
    const full = new Adafactor({ shapes: { W: [1, 2, 3] } });
    full.update(params, grads);
    assert.equal(full.stateOf('W')!.v.length, 6);
  });

  it('a parameter whose shape changed since its state was made: an error saying so and how to start afresh; reset() does', () => {
    const { params, grads, before } = setup();
    const opt = new Adafactor({ minDimSizeToFactor: 2, shapes: { W: [2, 3] } });
    opt.update(params, grads);
    const saved = opt.stateDict();
    const moved = { W: params.W.slice(), b: params.b.slice() };
    const other = new Adafactor({ minDimSizeToFactor: 2, shapes: { W: [3, 2] } });
    other.loadStateDict(saved);
    assert.throws(
      () => other.update(params, grads),
      /Adafactor\.update: parameter 'W': its optimizer state keeps a factored 2 x 3 matrix, its shape \[3, 2\] asks for a factored 3 x 2 matrix \(call reset\('W'\) to start it afresh\)/,
    );
    assert.deepEqual(params, moved);
    assert.deepEqual(other.stateDict(), saved);
    other.reset('W');
    other.update(params, grads);
    assert.equal(other.stateOf('W')!.rows, 3);
    assert.notDeepEqual(params.W, before.W);
  });

  it('options: each bad value names the option and the value', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ weightDecay: 0.1 }, /Adafactor: unknown option 'weightDecay' \(Adafactor's weight decay is optax's weightDecayRate \(not scaled by the lr\); known options: /],
      [{ clippingThreshold: 0.5 }, /Adafactor: invalid clippingThreshold: 0\.5/],
      [{ momentum: 1 }, /Adafactor: invalid momentum: 1/],
      [{ decayOffset: 1.5 }, /Adafactor: invalid decayOffset: 1\.5/],
      [{ minDimSizeToFactor: -1 }, /Adafactor: invalid minDimSizeToFactor: -1/],
      [{ weightDecayRate: -0.1 }, /Adafactor: invalid weightDecayRate: -0\.1/],
      [{ shapes: { W: [2, 'x'] } }, /Adafactor: invalid shapes\['W'\]/],
      [{ factored: 1 }, /Adafactor: invalid factored: 1/],
    ];
    for (const [options, message] of cases) assert.throws(() => new Adafactor(options as never), message, JSON.stringify(options));
  });
});

describe('Adafactor: the state round trips', () => {
  const SHAPES = { W: [5, 4] as const };
  const make = () => new Adafactor({ lr: 0.02, momentum: 0.8, weightDecayRate: 0.01, minDimSizeToFactor: 4, shapes: SHAPES });
  const grads = (p: { W: Float32Array; b: Float32Array }, t: number) => ({
    W: Float32Array.from(p.W, (x, i) => x - Math.cos(i * 0.3 + t)),
    b: Float32Array.from(p.b, (x, i) => x + Math.sin(i + t)),
  });
  const start = () => ({ W: Float32Array.from({ length: 20 }, (_, i) => Math.sin(i)), b: Float32Array.from({ length: 3 }, (_, i) => i - 1) });

  for (const [label, through] of [
    ['stateDict', (d: OptimizerStateDict) => d],
    ['stateToJSON / stateFromJSON', (d: OptimizerStateDict) => stateFromJSON(stateToJSON(d))],
    ['encodeState / decodeState (safetensors)', (d: OptimizerStateDict) => decodeState(encodeState(d))],
  ] as const) {
    it(`${label}: a resumed run continues bit for bit like an uninterrupted one`, () => {
      const whole = make();
      const a = start();
      for (let t = 0; t < 10; t++) whole.update(a, grads(a, t));
      const first = make();
      const b = start();
      for (let t = 0; t < 4; t++) first.update(b, grads(b, t));
      const second = make();
      second.loadStateDict(through(first.stateDict()));
      for (let t = 4; t < 10; t++) second.update(b, grads(b, t));
      assert.deepEqual(b, a);
      assert.deepEqual(second.stateDict(), whole.stateDict());
    });
  }

  it('a loaded state is checked: rows and cols that are not the parameter, or a vRow of another length, are a StateError and change nothing', () => {
    const opt = make();
    const p = start();
    opt.update(p, grads(p, 0));
    const good = opt.stateDict();
    const record = good.params.W!;
    const fresh = make();
    assert.throws(() => fresh.loadStateDict({ ...good, params: { ...good.params, W: { ...record, scalars: { rows: 3, cols: 4 } } } }), (e: unknown) => e instanceof StateError && /rows 3 and cols 4 are not a matrix of the parameter's 20 elements/.test(e.message));
    assert.throws(
      () => fresh.loadStateDict({ ...good, params: { ...good.params, W: { ...record, buffers: { ...record.buffers, vRow: new Float32Array(5) } } } }),
      (e: unknown) => e instanceof StateError && /parameter 'W': state buffer 'vRow' has length 5, this configuration keeps 4/.test(e.message),
    );
    assert.throws(
      () => fresh.loadStateDict({ ...good, params: { ...good.params, W: { ...record, buffers: { ...record.buffers, vCol: new Float32Array(5).fill(-1) } } } }),
      (e: unknown) => e instanceof StateError && /state buffer 'vCol' holds -1 at index 0, below its least value 0/.test(e.message),
    );
    assert.equal(fresh.stepCount, 0);
    assert.equal(fresh.stateOf('W'), undefined);
  });

  it("another rule's buffer shorter than its parameter is refused by its loadStateDict (the format allows shorter buffers for shaped states)", () => {
    const adam = new Adam({ lr: 0.1 });
    adam.update({ w: new Float64Array([1, 2]) }, { w: new Float64Array([0.1, 0.2]) });
    const dict = adam.stateDict();
    const bad = { ...dict, params: { w: { ...dict.params.w!, buffers: { ...dict.params.w!.buffers, expAvg: new Float64Array(1) } } } };
    const fresh = new Adam({ lr: 0.1 });
    assert.throws(() => fresh.loadStateDict(bad), (e: unknown) => e instanceof StateError && /parameter 'w': state buffer 'expAvg' has length 1, this configuration keeps 2/.test(e.message));
    assert.equal(fresh.stateOf('w'), undefined);
  });

  it('TF.js: the kernel path takes the variables\' shapes; getWeights holds vRow and vCol flat, and setWeights resumes bit for bit; the ops path is refused with the reason', async () => {
    await useBackend('cpu');
    const make2 = () => tfOptimizer(new Adafactor({ lr: 0.02, minDimSizeToFactor: 4 }));
    const run = (opt: ReturnType<typeof make2>, v: tf.Variable, from: number, to: number) => {
      for (let t = from; t < to; t++) {
        const g = tf.tidy(() => tf.sub(v, tf.cos(tf.add(tf.linspace(0, 1, 20).reshape([4, 5]), t))));
        opt.applyGradients({ [v.name]: g });
        g.dispose();
      }
    };
    const init = () => tf.tensor(Float32Array.from({ length: 20 }, (_, i) => Math.sin(i)), [4, 5]);
    const whole = tf.variable(init(), true, 'adafactor_whole');
    const a = make2();
    run(a, whole, 0, 8);
    const split = tf.variable(init(), true, 'adafactor_split');
    const first = make2();
    run(first, split, 0, 3);
    const saved = await first.getWeights();
    const shapes = Object.fromEntries(saved.filter((w) => w.name.startsWith('adafactor_split/')).map((w) => [w.name, w.tensor.shape]));
    assert.deepEqual(shapes, { 'adafactor_split/vRow': [4], 'adafactor_split/vCol': [5], 'adafactor_split/v': [0] });
    const second = make2();
    await second.setWeights(saved);
    first.dispose();
    run(second, split, 3, 8);
    assert.deepEqual(split.dataSync(), whole.dataSync());
    assert.throws(() => tfOptimizer(new Adafactor(), { path: 'ops' }), /Adafactor runs on the kernel path only: Adafactor's factored state is a row and a column vector per matrix/);
    a.dispose();
    second.dispose();
    tf.dispose([whole, split]);
  });
});

describe('Adafactor in a TF.js config', () => {
  it('getConfig keeps clippingThreshold null and momentum, and fromConfig makes the same optimizer', async () => {
    await useBackend('cpu');
    const opt = tfOptimizer(new Adafactor({ lr: 0.02, clippingThreshold: null, momentum: 0.5, minDimSizeToFactor: 4 }));
    const config = opt.getConfig();
    const again = TfOptimizer.fromConfig(TfOptimizer, config) as unknown as { optimizer: Adafactor };
    const { shapes: _a, ...got } = again.optimizer.defaults;
    const { shapes: _b, ...expected } = opt.optimizer.defaults;
    assert.deepEqual(got, expected);
    assert.equal(got.clippingThreshold, null);
    opt.dispose();
  });
});
