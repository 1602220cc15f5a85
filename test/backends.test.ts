/**
 * The flat ParamStore and the two backends.
 *
 * - JS kernels over a store equal the per-parameter path bit for bit (same loop, same
 *   arithmetic, one call per run of parameters instead of one per parameter).
 * - WebAssembly SIMD kernels agree with the JS kernels on params AND state to 32 ulps
 *   of each array's largest magnitude after 50 steps on fixed gradients (measured
 *   worst: 20 for centered RMSProp with momentum, 2-8 for the rest). Not zero, because
 *   wasm rounds every float32 operation (as PyTorch and numpy do), while the JS loop
 *   computes each step in double and rounds once when it stores.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, Nesterov, ParamStore, RMSProp, SGD, UpdateError, type FloatArray } from 'nesterov';
import { REGISTRY } from './registry.ts';

const SHAPES = { W: [10, 13], b: 7, c: 64 } as const;
/** State regions for every rule of the table: the most any of them keeps (Adan: four). */
const BUFFERS = Math.max(...REGISTRY.map((entry) => entry.make(0.01).stateBuffersPerParam()));
const ULPS = 32;

function fill(params: { readonly [name: string]: FloatArray }, f: (i: number, name: string) => number): void {
  for (const [name, array] of Object.entries(params)) for (let i = 0; i < array.length; i++) array[i] = f(i, name);
}
const start = (i: number, name: string) => Math.sin(i + name.length);
const gradient = (t: number) => (i: number, name: string) => Math.cos(i * 0.7 + t) * (1 + Math.sin(i + name.length));

/** |a - b| in units of the float32 ulp at the largest magnitude in `a`. */
function scaledUlps(a: FloatArray, b: FloatArray): number {
  let scale = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(a[i]!));
  const ulp = 2 ** (Math.floor(Math.log2(scale || 2 ** -126)) - 23);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / ulp);
  return worst;
}

/** Whether a registry entry's rule has WebAssembly kernels (Adafactor has none: its wasm rows are skipped). */
const hasWasm = (entry: (typeof REGISTRY)[number]) => entry.make(0.01).rule.stepWasm !== undefined;
/** The store's matrix as an option, for a rule whose state depends on shapes (Adafactor), on plain arrays. */
const shapesFor = (entry: (typeof REGISTRY)[number]) => (entry.make(0.01).rule.ownState === true ? { shapes: { W: SHAPES.W } } : {});

for (const entry of REGISTRY) {
  describe(`${entry.id} on a ParamStore`, () => {
    it('JS kernels over the store equal the per-parameter path, bit for bit', () => {
      const store = new ParamStore(SHAPES, { stateBuffers: BUFFERS });
      const plain = Object.fromEntries(store.names.map((n) => [n, new Float32Array(store.lengths[n]!)]));
      const plainGrads = Object.fromEntries(store.names.map((n) => [n, new Float32Array(store.lengths[n]!)]));
      fill(store.params, start);
      fill(plain, start);
      const flat = entry.make(0.01, { backend: 'js' });
      const perParam = entry.make(0.01, { backend: 'js', ...shapesFor(entry) });
      for (let t = 0; t < 20; t++) {
        fill(store.grads, gradient(t));
        fill(plainGrads, gradient(t));
        flat.update(store.params, store.grads);
        perParam.update(plain, plainGrads);
      }
      for (const name of store.names) assert.deepEqual(store.params[name], plain[name], name);
      assert.deepEqual(flat.stateDict(), perParam.stateDict());
    });

    it(`wasm agrees with JS to ${ULPS} ulps of scale, params and state`, { skip: !hasWasm(entry) && 'no WebAssembly kernel' }, () => {
      const stores = [new ParamStore(SHAPES, { stateBuffers: BUFFERS }), new ParamStore(SHAPES, { stateBuffers: BUFFERS })];
      const optimizers = [entry.make(0.01, { backend: 'js' }), entry.make(0.01, { backend: 'wasm' })];
      for (const store of stores) fill(store.params, start);
      for (let t = 0; t < 50; t++) {
        stores.forEach((store, k) => {
          fill(store.grads, gradient(t));
          optimizers[k]!.update(store.params, store.grads);
        });
      }
      const [js, wasm] = optimizers.map((o) => o.stateDict());
      for (const name of stores[0]!.names) {
        const p = scaledUlps(stores[0]!.params[name]!, stores[1]!.params[name]!);
        assert.ok(p <= ULPS, `${name}: ${p} ulps`);
        assert.notEqual(stores[0]!.params[name]![0], start(0, name), 'the parameters moved');
        for (const [key, buffer] of Object.entries(js!.params[name]!.buffers)) {
          const s = scaledUlps(buffer, wasm!.params[name]!.buffers[key]!);
          assert.ok(s <= ULPS, `${name}.${key}: ${s} ulps`);
        }
        assert.equal(wasm!.params[name]!.step, 50);
      }
    });
  });
}

// The kernels' maximize and weight-decay paths (the wasm kernels negate g instead of
// multiplying by sign = -1, and Nesterov 'nag' runs a separate loop without either).
for (const entry of REGISTRY) {
  describe(`${entry.id}: maximize and weight decay on both backends`, () => {
    it('maximize on g equals minimize on -g, bit for bit, params and state (sign * g is exact)', () => {
      for (const backend of hasWasm(entry) ? (['js', 'wasm'] as const) : (['js'] as const)) {
        const stores = [new ParamStore(SHAPES, { stateBuffers: BUFFERS }), new ParamStore(SHAPES, { stateBuffers: BUFFERS })];
        const optimizers = [entry.make(0.01, { backend, maximize: true }), entry.make(0.01, { backend })];
        for (const store of stores) fill(store.params, start);
        for (let t = 0; t < 20; t++) {
          fill(stores[0]!.grads, gradient(t));
          fill(stores[1]!.grads, (i, name) => -gradient(t)(i, name));
          stores.forEach((store, k) => optimizers[k]!.update(store.params, store.grads));
        }
        for (const name of stores[0]!.names) assert.deepEqual(stores[0]!.params[name], stores[1]!.params[name], `${backend} ${name}`);
        const [a, b] = optimizers.map((o) => o.stateDict().params);
        assert.deepEqual(a, b, backend);
      }
    });

    it(`with maximize and weight decay, wasm agrees with JS to ${ULPS} ulps of scale`, { skip: !hasWasm(entry) && 'no WebAssembly kernel' }, () => {
      const stores = [new ParamStore(SHAPES, { stateBuffers: BUFFERS }), new ParamStore(SHAPES, { stateBuffers: BUFFERS })];
      const optimizers = [entry.make(0.01, { backend: 'js', maximize: true, weightDecay: 0.05 }), entry.make(0.01, { backend: 'wasm', maximize: true, weightDecay: 0.05 })];
      for (const store of stores) fill(store.params, start);
      for (let t = 0; t < 50; t++) {
        stores.forEach((store, k) => {
          fill(store.grads, gradient(t));
          optimizers[k]!.update(store.params, store.grads);
        });
      }
      const [js, wasm] = optimizers.map((o) => o.stateDict());
      for (const name of stores[0]!.names) {
        const p = scaledUlps(stores[0]!.params[name]!, stores[1]!.params[name]!);
        assert.ok(p <= ULPS, `${name}: ${p} ulps`);
        for (const [key, buffer] of Object.entries(js!.params[name]!.buffers)) {
          const s = scaledUlps(buffer, wasm!.params[name]!.buffers[key]!);
          assert.ok(s <= ULPS, `${name}.${key}: ${s} ulps`);
        }
      }
    });
  });
}

describe('ParamStore', () => {
  it('lays every tensor out 64-byte aligned in one WebAssembly memory, views for params and grads', () => {
    const store = new ParamStore({ W1: [784, 100], b1: 100, W2: [100, 10] });
    assert.ok(store.memory instanceof WebAssembly.Memory);
    assert.deepEqual(store.shapes.W1, [784, 100]);
    assert.equal(store.params.W1!.length, 78400);
    assert.equal(store.params.b1!.buffer, store.memory.buffer);
    for (const name of store.names) {
      assert.equal(store.params[name]!.byteOffset % 64, 0);
      assert.equal(store.grads[name]!.byteOffset - store.params[name]!.byteOffset, store.regionStride * 4);
    }
    // 78400 + 112 + 1008 = 79520 elements = 77 * 1024 + 672; the next region starts at the
    // first count of elements after it that is 208 modulo 1024 (the skew, next test):
    // 78 * 1024 + 208 = 80080.
    assert.equal(store.regionLength, 79520);
    assert.equal(store.regionStride, 80080);

    assert.equal(store.offsets.b1, 78400);
    assert.equal(store.offsets.W2, 78400 + 112);
    assert.ok(Object.isFrozen(store.params));
  });

  // 4K aliasing (src/store.ts REGION_SKEW): regions whose length is a multiple of 1024
  // floats used to start at the same address modulo 4096, so a kernel's load of p[i] was
  // taken for a load of the v[i] it had just stored and waited. Every region now starts
  // 208 elements (float32: 832 bytes, 13 lines) after the previous one, modulo 4096
  // bytes, whatever the lengths; the
  // skew costs less than 4096 bytes per region, and nothing but the gap moves.
  it('starts region r at 512 + 208 r elements modulo 4096 bytes (832 r bytes in float32, 1664 r in float64: no 4K aliasing between p, g and state), for any length', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const bytes = dtype === 'float32' ? 4 : 8;
      for (const lengths of [[1024], [1024 * 1024], [4096, 1024], [1], [100, 17], [78400, 100, 1000, 10], [1023], [208], [1024 - 208]]) {
        const shapes = Object.fromEntries(lengths.map((length, i) => [`t${i}`, length]));
        const store = new ParamStore(shapes, { dtype, stateBuffers: 3 });
        const label = `${dtype} ${lengths}`;
        for (let region = 0; region < 5; region++) {
          assert.equal(store.byteOffset(region, 0) % 4096, (512 + 832 * region * (bytes / 4)) % 4096, `${label}, region ${region}`);
        }
        assert.ok(store.regionStride >= store.regionLength && (store.regionStride - store.regionLength) * bytes < 4096, `${label}: stride ${store.regionStride}`);
        assert.equal(store.buffer.byteLength >= 512 + 5 * store.regionStride * bytes, true, label);
        // The views still cover each region's own tensors: writing every param and grad
        // leaves the other regions' values alone.
        for (const name of store.names) {
          store.params[name]!.fill(1);
          store.grads[name]!.fill(2);
        }
        for (const name of store.names) {
          assert.ok(store.params[name]!.every((v) => v === 1) && store.grads[name]!.every((v) => v === 2), `${label} ${name}`);
        }
      }
    }
  });

  it('per-parameter overrides split the store into runs and still equal the per-parameter path', () => {
    const store = new ParamStore({ W: 20, b: 3, V: 9 });
    const plain = { W: new Float32Array(20), b: new Float32Array(3), V: new Float32Array(9) };
    const plainGrads = { W: new Float32Array(20), b: new Float32Array(3), V: new Float32Array(9) };
    fill(store.params, start);
    fill(plain, start);
    const options = { lr: 0.01, weightDecay: 0.1, backend: 'js' as const, overrides: [{ params: 'b', weightDecay: 0, lr: 0.02 }] };
    const flat = new Adam(options);
    const perParam = new Adam(options);
    for (let t = 0; t < 10; t++) {
      fill(store.grads, gradient(t));
      fill(plainGrads, gradient(t));
      flat.update(store.params, store.grads);
      perParam.update(plain, plainGrads);
    }
    for (const name of store.names) assert.deepEqual(store.params[name], plain[name as keyof typeof plain]);
  });

  it('a state saved from a store resumes in a fresh store bit for bit', () => {
    const run = (steps: number, from?: ReturnType<Nesterov['stateDict']>, into?: ParamStore) => {
      const store = into ?? new ParamStore(SHAPES);
      if (into === undefined) fill(store.params, start);
      const opt = new Nesterov({ lr: 0.01, backend: 'wasm' });
      if (from) opt.loadStateDict(from);
      const begin = opt.stepCount;
      for (let t = begin; t < begin + steps; t++) {
        fill(store.grads, gradient(t));
        opt.update(store.params, store.grads);
      }
      return { store, opt };
    };
    const straight = run(40);
    const half = run(20);
    const resumed = new ParamStore(SHAPES);
    for (const name of resumed.names) (resumed.params[name] as Float32Array).set(half.store.params[name]!);
    const second = run(20, half.opt.stateDict(), resumed);
    for (const name of resumed.names) assert.deepEqual(second.store.params[name], straight.store.params[name]);
    assert.deepEqual(second.opt.stateDict(), straight.opt.stateDict());
  });

  it('a non-finite gradient in a store names the parameter and its own index; nothing changes', () => {
    for (const backend of ['js', 'wasm'] as const) {
      const store = new ParamStore(SHAPES);
      fill(store.params, start);
      const opt = new RMSProp({ backend });
      fill(store.grads, gradient(0));
      opt.update(store.params, store.grads);
      const params = structuredClone(Object.fromEntries(store.names.map((n) => [n, store.params[n]!.slice()])));
      const state = opt.stateDict();
      (store.grads.c as Float32Array)[5] = NaN;
      assert.throws(() => opt.update(store.params, store.grads), (e: Error) => e instanceof UpdateError && /gradient 'c' is not finite at index 5 \(NaN\)/.test(e.message));
      for (const name of store.names) assert.deepEqual(store.params[name], params[name]);
      assert.deepEqual(opt.stateDict(), state);
    }
  });

  it('errors: wasm without a store, wasm on float64, too few state buffers, bad shapes', () => {
    assert.throws(() => new SGD({ backend: 'wasm' }).update({ w: new Float32Array(1) }, { w: new Float32Array(1) }), /backend 'wasm' updates a float32 ParamStore/);
    const f64 = new ParamStore({ w: 4 }, { dtype: 'float64' });
    assert.throws(() => new SGD({ backend: 'wasm' }).update(f64.params, f64.grads), /needs a float32 ParamStore, this one is float64/);
    const small = new ParamStore({ w: 4 }, { stateBuffers: 2 });
    assert.throws(() => new Adam({ amsgrad: true }).update(small.params, small.grads), /Adam\.update: parameter 'w' needs 3 state buffers, but the ParamStore reserves 2 \(make the store with stateBuffers: \[every optimizer that updates it\]/);
    assert.throws(() => new ParamStore({ w: -1 }), /ParamStore: invalid shape of 'w': -1/);
    assert.throws(() => new ParamStore({ w: [2, 1.5] }), /invalid shape of 'w'/);
    assert.throws(() => new SGD({ backend: 'gpu' as 'js' }), /SGD: invalid backend: "gpu"/);
  });

  it("a float64 store runs the JS kernels and matches plain Float64Arrays bit for bit", () => {
    const store = new ParamStore({ a: 5, b: 3 }, { dtype: 'float64' });
    const plain = { a: new Float64Array(5), b: new Float64Array(3) };
    fill(store.params, start);
    fill(plain, start);
    const x = new Adam();
    const y = new Adam();
    for (let t = 0; t < 5; t++) {
      fill(store.grads, gradient(t));
      x.update(store.params, store.grads);
      y.update(plain, { a: Float64Array.from(store.grads.a!), b: Float64Array.from(store.grads.b!) });
    }
    assert.deepEqual(store.params.a, plain.a);
    assert.deepEqual(store.params.b, plain.b);
  });
});
