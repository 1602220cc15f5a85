/**
 * Rules with a global phase (a rule's `global`: Prodigy, DAdaptAdamW): one update is one
 * estimate of d over every parameter, kept in the optimizer's state dict (`scalars`).
 * Their trajectories against optax are test/fixtures/rules/{prodigy,dadapt-adamw}.json
 * (test/reference-rules.test.ts); here, the contracts around the estimate:
 * - the first step, by hand;
 * - plain arrays and a ParamStore give the same bits (the sums are per parameter, added
 *   in parameter order, whatever the store's layout);
 * - a refused or skipped step (a NaN gradient in the last parameter, after the others
 *   would have been summed) writes nothing: params, buffers, estimate, counters;
 * - a saved state resumes bit for bit through JSON and safetensors, and a saved state
 *   whose scalars are missing or out of range is refused, changing nothing;
 * - gradients that are all 0 leave d as it was (optax's 0 / 0 would make it NaN).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Adam,
  DAdaptAdamW,
  ParamStore,
  Prodigy,
  StateError,
  UpdateError,
  decodeState,
  encodeState,
  stateFromJSON,
  stateToJSON,
  type FloatArray,
  type OptimizerStateDict,
} from 'nesterov';

type Global = Prodigy | DAdaptAdamW;
const MAKERS: readonly [string, (o?: Record<string, unknown>) => Global][] = [
  ['Prodigy', (o = {}) => new Prodigy(o)],
  ['DAdaptAdamW', (o = {}) => new DAdaptAdamW(o)],
];
const SHAPES = { W: 37, b: 5, c: 1 } as const;

/** Deterministic gradients of a quadratic pulled to targets, so the estimate grows. */
function gradients(params: Record<string, FloatArray>, grads: Record<string, FloatArray>, t: number): void {
  for (const name of Object.keys(params)) {
    const p = params[name]!;
    const g = grads[name]!;
    for (let i = 0; i < p.length; i++) g[i] = p[i]! - (1 + 0.25 * Math.sin(i + name.length)) + 0.01 * Math.cos(t + i);
  }
}

interface Arrays {
  readonly params: Record<string, FloatArray>;
  readonly grads: Record<string, FloatArray>;
  readonly store?: ParamStore<keyof typeof SHAPES, 'float32' | 'float64'>;
}

function plainArrays(Type: typeof Float32Array | typeof Float64Array): Arrays {
  const params: Record<string, FloatArray> = {};
  const grads: Record<string, FloatArray> = {};
  for (const [name, n] of Object.entries(SHAPES)) {
    const p = new Type(n);
    for (let i = 0; i < n; i++) p[i] = 0.5 * Math.cos(i * 1.3 + name.length);
    params[name] = p;
    grads[name] = new Type(n);
  }
  return { params, grads };
}

function storeArrays(dtype: 'float32' | 'float64'): Arrays & { readonly store: NonNullable<Arrays['store']> } {
  const store = new ParamStore(SHAPES, { dtype });
  for (const name of store.names) store.params[name]!.set(Array.from({ length: SHAPES[name] }, (_, i) => 0.5 * Math.cos(i * 1.3 + name.length)));
  return { store, params: store.params as Record<string, FloatArray>, grads: store.grads as Record<string, FloatArray> };
}

function copyOf(params: Record<string, FloatArray>): Record<string, number[]> {
  return Object.fromEntries(Object.entries(params).map(([name, p]) => [name, Array.from(p)]));
}

describe('the first step, by hand', () => {
  // x0 = x, so <g, x0 - x> = 0 and d stays d0; bias correction at t = 1 is
  // sqrt(1 - beta2) / (1 - beta1), so m / sqrt(v) reduces to g / |g|.
  const x = [1, -2, 0.25];
  const g = [0.5, -4, 3];
  const d0 = 1e-6;
  const eps = 1e-8;
  const wd = 0.1;
  const bc = Math.sqrt(1 - 0.999) / (1 - 0.9);
  it('Prodigy: x - wd dlr x - d0 g / (|g| + eps / sqrt(1 - beta2)), dlr = d0 bc; d = d0, r = 0', () => {
    const params = { w: Float64Array.from(x) };
    const opt = new Prodigy({ weightDecay: wd });
    opt.update(params, { w: Float64Array.from(g) });
    const dlr = d0 * bc;
    x.forEach((xi, i) => {
      const expected = xi - wd * dlr * xi - (d0 * g[i]!) / (Math.abs(g[i]!) + eps / Math.sqrt(1 - 0.999));
      assert.ok(Math.abs(params.w[i]! - expected) <= 1e-15 * Math.abs(xi), `w[${i}] ${params.w[i]} vs ${expected}`);
    });
    assert.deepEqual({ ...opt.stateDict().scalars }, { estimLr: d0, numeratorWeighted: 0 });
    assert.deepEqual(Array.from(opt.stateDict().params.w!.buffers.params0!), x);
  });
  it('DAdaptAdamW: x - wd dlr x - dlr (1 - beta1) g / (sqrt(1 - beta2) |g| + eps); d = d0, r = 0', () => {
    const params = { w: Float64Array.from(x) };
    const opt = new DAdaptAdamW({ weightDecay: wd });
    opt.update(params, { w: Float64Array.from(g) });
    const dlr = d0 * bc;
    x.forEach((xi, i) => {
      const expected = xi - wd * dlr * xi - (dlr * (1 - 0.9) * g[i]!) / (Math.sqrt(1 - 0.999) * Math.abs(g[i]!) + eps);
      assert.ok(Math.abs(params.w[i]! - expected) <= 1e-15 * Math.abs(xi), `w[${i}] ${params.w[i]} vs ${expected}`);
    });
    assert.deepEqual({ ...opt.stateDict().scalars }, { estimLr: d0, numeratorWeighted: 0 });
  });
});

for (const [name, make] of MAKERS) {
  describe(`${name}: one estimate per update`, () => {
    for (const dtype of ['float64', 'float32'] as const) {
      it(`${dtype}: plain arrays and a ParamStore (JS kernels) give the same bits, the estimate included`, () => {
        const plain = plainArrays(dtype === 'float32' ? Float32Array : Float64Array);
        const stored = storeArrays(dtype);
        const a = make({ weightDecay: 0.01, overrides: [{ params: 'b', weightDecay: 0 }] });
        const b = make({ weightDecay: 0.01, overrides: [{ params: 'b', weightDecay: 0 }], backend: 'js' });
        for (let t = 0; t < 40; t++) {
          gradients(plain.params, plain.grads, t);
          gradients(stored.params, stored.grads, t);
          a.update(plain.params, plain.grads);
          b.update(stored.store.params, stored.store.grads);
        }
        assert.deepEqual(copyOf(stored.params), copyOf(plain.params));
        assert.deepEqual(b.stateDict(), a.stateDict());
        assert.ok(a.stateDict().scalars!.estimLr! > 1e-3, `the estimate grew: ${a.stateDict().scalars!.estimLr}`);
      });
    }

    it('a saved state resumes bit for bit (JSON and safetensors), the estimate with it', () => {
      const whole = plainArrays(Float64Array);
      const straight = make();
      for (let t = 0; t < 30; t++) {
        gradients(whole.params, whole.grads, t);
        straight.update(whole.params, whole.grads);
      }
      for (const roundTrip of [(s: OptimizerStateDict) => stateFromJSON(stateToJSON(s)), (s: OptimizerStateDict) => decodeState(encodeState(s)) as OptimizerStateDict]) {
        const half = plainArrays(Float64Array);
        const first = make();
        for (let t = 0; t < 15; t++) {
          gradients(half.params, half.grads, t);
          first.update(half.params, half.grads);
        }
        const resumed = make();
        resumed.loadStateDict(roundTrip(first.stateDict()));
        assert.deepEqual(resumed.stateDict(), first.stateDict());
        for (let t = 15; t < 30; t++) {
          gradients(half.params, half.grads, t);
          resumed.update(half.params, half.grads);
        }
        assert.deepEqual(copyOf(half.params), copyOf(whole.params));
        assert.deepEqual(resumed.stateDict(), straight.stateDict());
      }
    });

    for (const kind of ['plain', 'store-js', 'store-wasm'] as const) {
      it(`${kind}: a NaN gradient in the last parameter is refused (or skipped) before anything is written, the estimate included`, () => {
        for (const policy of ['error', 'skip'] as const) {
          const arrays: Arrays = kind === 'plain' ? plainArrays(Float32Array) : storeArrays('float32');
          const params = arrays.store?.params ?? arrays.params;
          const grads = arrays.store?.grads ?? arrays.grads;
          const opt = make({ nonFinite: policy, backend: kind === 'store-wasm' ? 'wasm' : 'js' });
          for (let t = 0; t < 10; t++) {
            gradients(arrays.params, arrays.grads, t);
            opt.update(params, grads);
          }
          gradients(arrays.params, arrays.grads, 10);
          arrays.grads.c![0] = NaN;
          const before = { params: copyOf(arrays.params), state: opt.stateDict() };
          const refused = (e: unknown) => e instanceof UpdateError && /gradient 'c' is not finite at index 0/.test(e.message);
          if (policy === 'error') {
            assert.throws(() => opt.check(params, grads), refused);
            assert.throws(() => opt.update(params, grads), refused);
          } else {
            assert.equal(opt.check(params, grads), false);
            assert.equal(opt.update(params, grads), false);
          }
          assert.deepEqual(copyOf(arrays.params), before.params);
          const after = opt.stateDict();
          assert.deepEqual(after.scalars, before.state.scalars);
          assert.deepEqual(after.params, before.state.params);
          assert.equal(after.stepCount, before.state.stepCount);
          assert.equal(after.skippedSteps, before.state.skippedSteps + (policy === 'skip' ? 1 : 0));
        }
      });
    }

    it('a saved state whose scalars are missing, misnamed or out of range is refused, and the optimizer keeps its own', () => {
      const arrays = plainArrays(Float64Array);
      const opt = make();
      for (let t = 0; t < 5; t++) {
        gradients(arrays.params, arrays.grads, t);
        opt.update(arrays.params, arrays.grads);
      }
      const good = opt.stateDict();
      const mine = opt.stateDict();
      const { scalars: _dropped, ...withoutScalars } = good;
      const cases: [unknown, RegExp][] = [
        [withoutScalars, /has no optimizer scalars/],
        [{ ...good, scalars: { estimLr: 1 } }, /optimizer scalars are \[estimLr\], expected \[estimLr, numeratorWeighted\]/],
        [{ ...good, scalars: { ...good.scalars, estimLr: -1 } }, /optimizer scalar 'estimLr' is -1, expected a finite number >= 0/],
        [{ ...good, scalars: { ...good.scalars, numeratorWeighted: Infinity } }, /optimizer scalar 'numeratorWeighted' is Infinity/],
      ];
      for (const [state, message] of cases) {
        assert.throws(() => opt.loadStateDict(state), (e: unknown) => e instanceof StateError && message.test(e.message), String(message));
        assert.deepEqual(opt.stateDict(), mine);
      }
    });

    it('gradients that are all 0 leave d at estimLr0 (optax: 0 / 0, NaN) and the params finite', () => {
      const params = { w: new Float64Array([1, -1]) };
      const opt = make({ weightDecay: 0.5 });
      for (let t = 0; t < 3; t++) opt.update(params, { w: new Float64Array(2) });
      assert.equal(opt.stateDict().scalars!.estimLr, 1e-6);
      assert.ok(params.w.every(Number.isFinite));
    });

    it('overrides may set lr, weightDecay and maximize, not what shapes the one estimate', () => {
      assert.doesNotThrow(() => make({ overrides: [{ params: 'b', lr: 0.5, weightDecay: 0, maximize: false }] }));
      for (const key of ['beta1', 'beta2', 'eps', 'estimLr0']) {
        assert.throws(() => make({ overrides: [{ params: 'b', [key]: 0.5 }] }), new RegExp(`may not set '${key}': it applies to the whole optimizer`));
      }
    });
  });
}

it('a rule without a global phase keeps no optimizer scalars in its state dict', () => {
  const opt = new Adam();
  opt.update({ w: new Float64Array(2) }, { w: new Float64Array([1, 2]) });
  assert.equal('scalars' in opt.stateDict(), false);
});

it('new Prodigy() and new DAdaptAdamW() take no options: lr 1, d0 1e-6', () => {
  for (const opt of [new Prodigy(), new DAdaptAdamW()]) {
    assert.equal(opt.learningRate(), 1);
    assert.deepEqual({ ...opt.stateDict().scalars }, { estimLr: 1e-6, numeratorWeighted: 0 });
  }
});
