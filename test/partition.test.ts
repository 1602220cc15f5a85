/**
 * partition(assign, optimizers) (optax's multi_transform) and the `storeNames`
 * argument of Optimizer.update it relies on for a ParamStore.
 *
 * Expected values: each member run alone on its own parameters (a separate set, or a
 * separate ParamStore holding only them), compared byte for byte: sending a parameter
 * through the partition must change nothing about its step.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdamW, Muon, ParamStore, StateError, UpdateError, partition, type FloatArray } from 'nesterov';

const SHAPES = { W1: [6, 4], b1: [4], W2: [4, 3], b2: [3] } as const;
const MATRICES = { W1: [6, 4], W2: [4, 3] } as const;

/** Deterministic values: param i of tensor k, and the gradient at step t. */
const initial = (k: number, i: number): number => Math.sin(1 + 7 * k + i) / 2;
const gradient = (k: number, i: number, t: number, p: number): number => p - Math.cos(k + i * t) / 3;

function fill(params: Record<string, FloatArray>, names: readonly string[]): void {
  names.forEach((name) => params[name]!.forEach((_v, i, a) => (a[i] = initial(Object.keys(SHAPES).indexOf(name), i))));
}

function grads(params: Record<string, FloatArray>, grads: Record<string, FloatArray>, names: readonly string[], t: number): void {
  for (const name of names) {
    const k = Object.keys(SHAPES).indexOf(name);
    const p = params[name]!;
    grads[name]!.forEach((_v, i, a) => (a[i] = gradient(k, i, t, p[i]!)));
  }
}

const assign = (name: string): string => (name.startsWith('W') ? 'muon' : 'adamw');

describe('partition on plain ParamSets', () => {
  it('each parameter takes exactly the step of its member run alone', () => {
    const names = Object.keys(SHAPES);
    const make = () => Object.fromEntries(names.map((n) => [n, new Float64Array(SHAPES[n as keyof typeof SHAPES].reduce((a, b) => a * b, 1))]));
    const p = make();
    const g = make();
    fill(p, names);
    const opt = partition(assign, { muon: new Muon({ shapes: MATRICES }), adamw: new AdamW({ lr: 0.01 }) });
    const alone = { W: { W1: p.W1!.slice(), W2: p.W2!.slice() }, b: { b1: p.b1!.slice(), b2: p.b2!.slice() } };
    const gAlone = { W: { W1: p.W1!.slice(), W2: p.W2!.slice() }, b: { b1: p.b1!.slice(), b2: p.b2!.slice() } };
    const muon = new Muon({ shapes: MATRICES });
    const adamw = new AdamW({ lr: 0.01 });
    for (let t = 1; t <= 5; t++) {
      grads(p, g, names, t);
      assert.equal(opt.update(p, g), true);
      grads(alone.W, gAlone.W, ['W1', 'W2'], t);
      grads(alone.b, gAlone.b, ['b1', 'b2'], t);
      muon.update(alone.W, gAlone.W);
      adamw.update(alone.b, gAlone.b);
    }
    for (const name of ['W1', 'W2'] as const) assert.deepEqual(p[name], alone.W[name]);
    for (const name of ['b1', 'b2'] as const) assert.deepEqual(p[name], alone.b[name]);
    assert.deepEqual(opt.stateDict().members.muon, muon.stateDict());
    assert.deepEqual(opt.stateDict().members.adamw, adamw.stateDict());
  });

  it('a record assignment; a parameter assigned to an unknown key is an error naming both, nothing written', () => {
    const p = { W1: new Float64Array(24).fill(1), b1: new Float64Array(4).fill(1) };
    const g = { W1: new Float64Array(24).fill(0.5), b1: new Float64Array(4).fill(0.5) };
    const opt = partition({ W1: 'muon', b1: 'sgd' }, { muon: new Muon({ shapes: { W1: [6, 4] } }), adamw: new AdamW() });
    assert.throws(() => opt.update(p, g), (error: unknown) => {
      assert.ok(error instanceof UpdateError);
      assert.equal(error.message, "partition: parameter 'b1' is assigned to \"sgd\", which is not one of the optimizers [muon, adamw]");
      assert.equal(error.param, 'b1');
      return true;
    });
    assert.deepEqual([...p.W1], new Array(24).fill(1));
    assert.equal(opt.members.muon.stepCount, 0);
  });

  it('a non-finite gradient of one member: no member steps', () => {
    const p = { W1: new Float64Array(24).fill(1), b1: new Float64Array(4).fill(1) };
    const g = { W1: new Float64Array(24).fill(0.5), b1: new Float64Array([0.5, 0.5, Infinity, 0.5]) };
    const opt = partition(assign, { muon: new Muon({ shapes: { W1: [6, 4] } }), adamw: new AdamW() });
    assert.throws(() => opt.update(p, g), { message: "AdamW.update: gradient 'b1' is not finite at index 2 (Infinity)" });
    assert.deepEqual([...p.W1], new Array(24).fill(1));
    assert.deepEqual([...p.b1], [1, 1, 1, 1]);
    assert.equal(opt.members.muon.stepCount, 0);
  });
});

/** Runs `steps` steps on a float32 store of SHAPES through a partition (Muon for W, AdamW for b). */
function storeRun(steps: number, split?: number) {
  const store = new ParamStore(SHAPES);
  const names = store.names;
  fill(store.params, names);
  const make = () => partition(assign, { muon: new Muon(), adamw: new AdamW({ lr: 0.01 }) });
  let opt = make();
  for (let t = 1; t <= steps; t++) {
    grads(store.params, store.grads, names, t);
    opt.update(store.params, store.grads);
    if (t === split) {
      const saved = opt.stateDict();
      opt.reset(); // gives the store's state regions back, as a new process would find them
      opt = make();
      opt.loadStateDict(saved);
    }
  }
  return { store, opt };
}

describe('partition on a ParamStore (each member updates only its parameters of the store)', () => {
  it('W1 b1 W2 b2 interleaved: the same bytes as Muon and AdamW each on a store of its own parameters (wasm)', () => {
    const { store, opt } = storeRun(5);
    const matrices = new ParamStore(MATRICES);
    const biases = new ParamStore({ b1: [4], b2: [3] });
    fill(matrices.params, matrices.names);
    fill(biases.params, biases.names);
    const muon = new Muon();
    const adamw = new AdamW({ lr: 0.01 });
    for (let t = 1; t <= 5; t++) {
      grads(matrices.params, matrices.grads, matrices.names, t);
      grads(biases.params, biases.grads, biases.names, t);
      muon.update(matrices.params, matrices.grads);
      adamw.update(biases.params, biases.grads);
    }
    assert.equal(opt.members.adamw.backendUsed, 'wasm');
    assert.equal(opt.members.muon.backendUsed, 'wasm');
    for (const name of matrices.names) assert.deepEqual(store.params[name], matrices.params[name]);
    for (const name of biases.names) assert.deepEqual(store.params[name], biases.params[name]);
  });

  it('saved at step 3 and loaded into a fresh partition: bit-identical to the uninterrupted run', () => {
    const straight = storeRun(6);
    const resumed = storeRun(6, 3);
    for (const name of straight.store.names) assert.deepEqual(resumed.store.params[name], straight.store.params[name]);
    assert.deepEqual(resumed.opt.stateDict(), straight.opt.stateDict());
  });

  it('a state with other members is refused and the state kept', () => {
    const { opt } = storeRun(2);
    const before = opt.stateDict();
    assert.throws(() => opt.loadStateDict({ format: 'nesterov/partition-state', members: { muon: before.members.muon } }), (error: unknown) => {
      assert.ok(error instanceof StateError);
      assert.equal(error.message, 'partition.loadStateDict: the state has members [muon], this partition has [muon, adamw]');
      return true;
    });
    assert.deepEqual(opt.stateDict(), before);
  });
});

describe('Optimizer.update(store.params, store.grads, storeNames)', () => {
  it('updates only the named parameters, even when they are not neighbours in the store', () => {
    const store = new ParamStore(SHAPES);
    fill(store.params, store.names);
    grads(store.params, store.grads, store.names, 1);
    const W1 = store.params.W1.slice();
    const W2 = store.params.W2.slice();
    new AdamW({ lr: 0.01 }).update(store.params, store.grads, ['b1', 'b2']);
    // The matrices are untouched (the old code updated every parameter of the store, and a
    // run from b1 to b2 would span W2).
    assert.deepEqual(store.params.W1, W1);
    assert.deepEqual(store.params.W2, W2);
    // b1's first element: AdamW's first step moves every element by lr (m_hat / sqrt(v_hat) = sign(g) for g != 0).
    const b1 = initial(1, 0);
    const g = gradient(1, 0, 1, b1);
    assert.ok(Math.abs(store.params.b1[0]! - Math.fround(Math.fround(b1 * (1 - 0.01 * 0.01)) - 0.01 * Math.sign(g))) < 2e-7, `${store.params.b1[0]}`);
  });

  it('a name not in the store is an error naming it', () => {
    const store = new ParamStore(SHAPES);
    assert.throws(() => new AdamW().update(store.params, store.grads, ['b3' as 'b1']), {
      message: "AdamW.update: storeNames names 'b3', which is not a parameter of the store",
    });
    // A name that an ordinary object inherits is not a parameter either.
    assert.throws(() => new AdamW().update(store.params, store.grads, ['toString' as 'b1']), {
      message: "AdamW.update: storeNames names 'toString', which is not a parameter of the store",
    });
    // storeNames belongs to store updates: with plain arrays it is refused, not ignored.
    const params = { w: new Float32Array([1]) };
    assert.throws(() => new AdamW().update(params, { w: new Float32Array([1]) }, ['w']), /storeNames selects parameters of a ParamStore/);
    assert.deepEqual(params.w, new Float32Array([1]));
  });
});

describe("partition with nonFinite: 'skip'", () => {
  it('a non-finite gradient of one member: that member counts a skipped step, no member steps, update returns false', () => {
    const p = { W1: new Float32Array(24).fill(1), b1: new Float32Array(4).fill(1) };
    const g = { W1: new Float32Array(24).fill(0.5), b1: new Float32Array([0.5, NaN, 0.5, 0.5]) };
    const opt = partition(assign, { muon: new Muon({ shapes: { W1: [6, 4] }, nonFinite: 'skip' }), adamw: new AdamW({ nonFinite: 'skip' }) });
    assert.equal(opt.update(p, g), false);
    assert.deepEqual([...p.W1], new Array(24).fill(1));
    assert.deepEqual([...p.b1], [1, 1, 1, 1]);
    assert.equal(opt.members.adamw.skippedSteps, 1);
    assert.equal(opt.members.muon.stepCount, 0);
    assert.equal(opt.members.muon.skippedSteps, 0);
  });
});
