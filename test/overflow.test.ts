/**
 * A step whose own arithmetic overflows: finite gradients, but a
 * param or a state element becomes NaN or +-Infinity. The kernels detect it in the same
 * pass, and `update` throws an UpdateError naming the parameter and the first index and
 * saying that the step was applied.
 *
 * The overflowing inputs, by hand (float32 max is 3.4028235e38):
 * - SGD, Momentum, Nesterov with lr 10 and g = 1e38: the step lr * g = 1e39 (times 1 + mu
 *   for Nesterov) leaves the float32 range, so the param becomes -Infinity (and so does the
 *   velocity of Momentum 'classic' and Nesterov 'nag'/'book', v = -lr g; the param wins the
 *   tie at the same index).
 * - AdaGrad with g = 1.9e19: the sum h = g^2 = 3.61e38 overflows to Infinity; the param
 *   stays finite (JS: lr g / sqrt(3.61e38 as a double) = lr; wasm: lr g / Infinity = 0).
 * - Adam, AdamW, NAdam with g = 6e20: v = (1 - beta2) g^2 = 3.6e38 overflows ('book':
 *   g^2 itself does), so `expAvgSq` becomes Infinity (with amsgrad `maxExpAvgSq` too, at
 *   the same index: `expAvgSq` comes first); m = (1 - beta1) g = 6e19 stays finite.
 * - RMSProp with g = 6e20: s = (1 - alpha) g^2 = 3.6e39 overflows: `squareAvg`.
 * - RAdam with g = 6e20: as Adam's, `expAvgSq`. Adadelta with g = 6e19: s = (1 - rho) g^2
 *   = 3.6e38 overflows: `squareAvg`.
 * - ScheduleFreeSGD with lr 10 and g = 1e38: y and z move by -lr g = -1e39: the param becomes
 *   -Infinity (z too; the param wins the tie). ScheduleFreeAdamW with g = 6e20: as Adam's,
 *   `expAvgSq` (the normalised step stays finite).
 * - Prodigy with g = 1e30: v = (1 - beta2) (d0 g)^2 = 1e45 with d0 = 1e-6 overflows:
 *   `expAvgSq`. DAdaptAdamW with g = 6e20: v = (1 - beta2) g^2, as Adam's. At the first
 *   step their estimate's numerator is 0 (x = x0, and s starts at 0), so d does not move
 *   and every other element takes the step it takes without the large gradient.
 * - Adamax, Rprop and Lion: no finite gradient overflows them (Adamax's step is at most
 *   about lr, Rprop's at most stepSizeMax, Lion's exactly lr; Lion's m is a convex
 *   combination of gradients); the end of this file checks the largest one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Momentum, Nesterov, ParamStore, UpdateError, type FloatArray } from 'nesterov';
import { REGISTRY, type AnyOptimizer } from './registry.ts';

/** Per registry entry: the lr, the finite gradient that overflows, and what becomes non-finite. */
function overflowCase(id: string): { lr: number; g: number; buffer: string | null; value: number } {
  const family = id.split('/')[0]!;
  if (family === 'SGD' || family === 'Momentum' || family === 'Nesterov' || family === 'QHM') return { lr: 10, g: 1e38, buffer: null, value: -Infinity };
  if (family === 'AdaGrad') return { lr: 0.01, g: 1.9e19, buffer: 'sum', value: Infinity };
  if (family === 'RMSProp') return { lr: 0.01, g: 6e20, buffer: 'squareAvg', value: Infinity };
  if (family === 'Adadelta') return { lr: 1, g: 6e19, buffer: 'squareAvg', value: Infinity };
  if (family === 'ScheduleFreeSGD') return { lr: 10, g: 1e38, buffer: null, value: -Infinity };
  if (family === 'Prodigy') return { lr: 1, g: 1e30, buffer: 'expAvgSq', value: Infinity };
  // Adafactor's full second moment v = g^2 + eps at the first step; its u there is
  // g / sqrt(Infinity) = 0, as for a gradient of 0, so the tensor's norms are unchanged.
  if (family === 'Adafactor') return { lr: 0.001, g: 6e20, buffer: 'v', value: Infinity };
  return { lr: 0.001, g: 6e20, buffer: 'expAvgSq', value: Infinity };
}

const SHAPES = { a: 5, w: 37 } as const;
const BAD = 13;

function expectedMessage(owner: string, id: string, policy: 'error' | 'skip'): string {
  const { g, buffer, value } = overflowCase(id);
  const what = buffer === null ? "parameter 'w'" : `the optimizer state '${buffer}' of parameter 'w'`;
  const skip = policy === 'skip' ? " (nonFinite: 'skip' skips a step whose gradients are not finite; these were, and the step cannot be undone)" : '';
  return (
    `${owner}.update: the step overflowed: ${what} became ${value} at index ${BAD}, from a finite gradient (${Math.fround(g)}). ` +
    `This step WAS applied, to every parameter: the params and optimizer state now hold this value${skip}. ` +
    'Use a smaller lr or clip the gradients, and restore the params and state saved before this step'
  );
}

/** Params and grads of SHAPES with ordinary values, and `bad` at w[BAD]. */
function fillInputs(params: { readonly [name: string]: FloatArray }, grads: { readonly [name: string]: FloatArray }, bad: number): void {
  for (const [name, array] of Object.entries(params)) for (let i = 0; i < array.length; i++) array[i] = Math.sin(i + name.length);
  for (const [name, array] of Object.entries(grads)) for (let i = 0; i < array.length; i++) array[i] = 0.1 * Math.cos(i * 0.7 + name.length);
  grads.w![BAD] = bad;
}

type Kind = 'plain' | 'store-js' | 'store-wasm';

/** The inputs of one case; a store reserves what `optimizer` keeps (Adan: four buffers, past the default three). */
function inputs(kind: Kind, bad: number, optimizer: AnyOptimizer) {
  if (kind === 'plain') {
    const params = { a: new Float32Array(SHAPES.a), w: new Float32Array(SHAPES.w) };
    const grads = { a: new Float32Array(SHAPES.a), w: new Float32Array(SHAPES.w) };
    fillInputs(params, grads, bad);
    return { params, grads };
  }
  const store = new ParamStore(SHAPES, { stateBuffers: [optimizer] });
  fillInputs(store.params, store.grads, bad);
  return { params: store.params, grads: store.grads };
}

const backendOf = (kind: Kind) => (kind === 'store-wasm' ? 'wasm' : 'js');
/** The kinds a registry entry runs: 'store-wasm' where its rule has a WebAssembly kernel. */
const kindsOf = <K extends Kind>(entry: (typeof REGISTRY)[number], kinds: readonly K[]): K[] =>
  kinds.filter((kind) => kind !== 'store-wasm' || entry.make(0.1).rule.stepWasm !== undefined);

/** Rules no finite gradient overflows (checked at the end of this file). */
const NO_OVERFLOW = new Set(['Adamax', 'Rprop', 'Lion']);

for (const entry of REGISTRY) {
  if (NO_OVERFLOW.has(entry.id)) continue;
  const { lr, g, buffer, value } = overflowCase(entry.id);
  describe(`${entry.id}: a step that overflows from a finite gradient (${g})`, () => {
    for (const kind of kindsOf(entry, ['plain', 'store-js', 'store-wasm'] as const)) {
      it(`${kind}: throws naming 'w' and index ${BAD}, and the step was applied to every element`, () => {
        const opt: AnyOptimizer = entry.make(lr, { backend: backendOf(kind) });
        const { params, grads } = inputs(kind, g, opt);
        // The reference: the same step where w[BAD]'s gradient is 0. The kernels are
        // elementwise, so every other element must come out the same, bit for bit.
        const reference: AnyOptimizer = entry.make(lr, { backend: backendOf(kind) });
        const ref = inputs(kind, 0, reference);
        reference.update(ref.params, ref.grads);

        let caught: unknown;
        try {
          opt.update(params, grads);
        } catch (error) {
          caught = error;
        }
        assert.ok(caught instanceof UpdateError, `expected an UpdateError, got ${String(caught)}`);
        assert.equal(caught.param, 'w');
        assert.equal(caught.index, BAD);
        assert.equal(caught.message, expectedMessage(opt.constructor.name, entry.id, 'error'));

        // Applied: the step count, and the non-finite value where the message says.
        assert.equal(opt.stepCount, 1);
        const state = opt.stateDict();
        const holder = buffer === null ? params.w! : state.params.w!.buffers[buffer]!;
        assert.equal(holder[BAD], value);
        // Every other element took the same step as the reference's.
        for (const name of ['a', 'w'] as const) {
          for (let i = 0; i < params[name]!.length; i++) {
            if (name === 'w' && i === BAD) continue;
            assert.equal(params[name]![i], ref.params[name]![i], `${name}[${i}]`);
          }
          assert.equal(state.params[name]!.step, 1);
          const refBuffers = reference.stateDict().params[name]!.buffers;
          for (const [key, array] of Object.entries(state.params[name]!.buffers)) {
            for (let i = 0; i < array.length; i++) {
              if (name === 'w' && i === BAD) continue;
              assert.equal(array[i], refBuffers[key]![i], `${name}.${key}[${i}]`);
            }
          }
        }
      });
    }

    it("nonFinite: 'skip' cannot skip a step already applied: the same error, which says so", () => {
      const opt: AnyOptimizer = entry.make(lr, { nonFinite: 'skip' });
      const { params, grads } = inputs('plain', g, opt);
      assert.throws(
        () => opt.update(params, grads),
        (error: unknown) =>
          error instanceof UpdateError && error.param === 'w' && error.index === BAD && error.message === expectedMessage(opt.constructor.name, entry.id, 'skip'),
      );
      assert.equal(opt.skippedSteps, 0);
      assert.equal(opt.stepCount, 1);
    });

    it("nonFinite: 'ignore' does not look: the step returns true and the value stays", () => {
      for (const kind of kindsOf(entry, ['plain', 'store-wasm'] as const)) {
        const opt: AnyOptimizer = entry.make(lr, { nonFinite: 'ignore', backend: backendOf(kind) });
        const { params, grads } = inputs(kind, g, opt);
        assert.equal(opt.update(params, grads), true);
        const holder = buffer === null ? params.w! : opt.stateDict().params.w!.buffers[buffer]!;
        assert.equal(holder[BAD], value, kind);
      }
    });
  });
}

describe('overflow detection: where the error points', () => {
  it('the first parameter in iteration order, and its own index within a ParamStore run of several parameters', () => {
    // SGD lr 10: b[2] and w[30] both overflow; 'b' comes first. In the store both are one
    // run (one kernel call), so the index must be mapped back from the run to 'b'.
    for (const backend of ['js', 'wasm'] as const) {
      const store = new ParamStore({ a: 7, b: 9, w: 40 });
      store.grads.b![2] = 1e38;
      store.grads.w![30] = -1e38;
      const opt = REGISTRY.find((e) => e.id === 'SGD')!.make(10, { backend });
      assert.throws(() => opt.update(store.params, store.grads), (error: unknown) => error instanceof UpdateError && error.param === 'b' && error.index === 2, backend);
      assert.equal(store.params.b![2], -Infinity);
      assert.equal(store.params.w![30], Infinity);
    }
  });

  it('in a Map, the parameters after the overflowing one take the step too, before the error', () => {
    const params = new Map([
      ['first', new Float64Array([1, 2])],
      ['second', new Float64Array([3, 4])],
    ]);
    const grads = new Map([
      ['first', new Float64Array([1e308, 0])],
      ['second', new Float64Array([1, 1])],
    ]);
    const opt = REGISTRY.find((e) => e.id === 'SGD')!.make(10);
    // 1 - 10 * 1e308 overflows float64: -Infinity.
    assert.throws(() => opt.update(params, grads), (error: unknown) => error instanceof UpdateError && error.param === 'first' && error.index === 0);
    assert.deepEqual([...params.get('first')!], [-Infinity, 2]);
    assert.deepEqual([...params.get('second')!], [3 - 10, 4 - 10]);
    assert.equal(opt.stepCount, 1);
  });

  it('a sum of two huge finite values raises the kernel flag falsely; the second pass finds nothing, and nothing is thrown', () => {
    // Momentum 'pytorch', lr 0, first step: b = g = 3e38 and p stays 3e38, both finite;
    // the wasm probe sums p + b = 6e38, which overflows float32.
    for (const backend of ['js', 'wasm'] as const) {
      const store = new ParamStore({ w: 8 });
      store.params.w!.fill(3e38);
      store.grads.w!.fill(3e38);
      const opt = new Momentum({ lr: 0, momentum: 0.9, variant: 'pytorch', backend });
      assert.equal(opt.update(store.params, store.grads), true, backend);
      assert.deepEqual([...store.params.w!], new Array(8).fill(Math.fround(3e38)));
      assert.deepEqual([...opt.stateOf('w')!.momentumBuffer!], new Array(8).fill(Math.fround(3e38)));
    }
  });

  it('the scalar tail of a wasm kernel (length not a multiple of 4) is checked too', () => {
    const store = new ParamStore({ w: 11 });
    store.grads.w![10] = 1e38;
    const opt = REGISTRY.find((e) => e.id === 'SGD')!.make(10, { backend: 'wasm' });
    assert.throws(() => opt.update(store.params, store.grads), (error: unknown) => error instanceof UpdateError && error.param === 'w' && error.index === 10);
  });
});

describe('RMSProp centered under a steady gradient', () => {
  it('stays finite: the variance s - c^2 that rounds below 0 is clamped at 0 (it was NaN, now caught by the overflow check)', () => {
    // Constant g: s = g^2 (1 - alpha^t), c = g (1 - alpha^t), so s - c^2 = g^2 alpha^t (1 - alpha^t),
    // below float32's resolution of s (about 6e-8 * g^2) once 0.99^t < 6e-8, t > 1660.
    for (const backend of ['js', 'wasm'] as const) {
      const store = new ParamStore({ w: 8 });
      store.grads.w!.fill(0.1);
      const opt = REGISTRY.find((e) => e.id === 'RMSProp/centered+momentum')!.make(1e-6, { backend });
      for (let t = 0; t < 3000; t++) assert.equal(opt.update(store.params, store.grads), true);
      assert.ok(store.params.w!.every((x) => Number.isFinite(x)), `${backend}: ${store.params.w!.join(', ')}`);
    }
  });
});

describe('Adamax, Rprop and Lion: the largest finite gradient takes an ordinary step', () => {
  // float32's largest value, G = (2 - 2^-23) 2^127. By hand, for the element w[13] that
  // gets it, at the first step (lr 0.01):
  // - Adamax: m = (1 - beta1) G, u = max(0, G + eps) = G, p -= lr / (1 - beta1) m / u = lr.
  // - Rprop: prev = 0, so the step size stays lr; p -= sign(G) lr = lr; prev = G.
  // - Lion: c = (1 - beta1) G > 0, p -= lr sign(c) = lr; m = (1 - beta2) G = 0.01 G.
  const G = 3.4028234663852886e38;
  const lr = 0.01;
  for (const entry of REGISTRY.filter((e) => NO_OVERFLOW.has(e.id))) {
    for (const kind of ['plain', 'store-js', 'store-wasm'] as const) {
      it(`${entry.id} ${kind}: no error, every value finite, w[${BAD}] moved by lr`, () => {
        const opt: AnyOptimizer = entry.make(lr, { backend: backendOf(kind) });
        const { params, grads } = inputs(kind, G, opt);
        const before = params.w![BAD]!;
        assert.equal(opt.update(params, grads), true);
        const state = opt.stateDict();
        for (const name of ['a', 'w'] as const) {
          assert.ok(params[name]!.every(Number.isFinite), `params ${name}`);
          for (const [key, array] of Object.entries(state.params[name]!.buffers)) assert.ok(array.every(Number.isFinite), `${name}.${key}`);
        }
        const moved = params.w![BAD]! - before;
        if (entry.id === 'Lion') {
          // One subtraction of lr, rounded to float32 (JS: in double then rounded; wasm: lr in float32).
          assert.ok(Math.abs(moved + lr) < 1e-6, `moved ${moved}`);
          assert.ok(Math.abs(state.params.w!.buffers.expAvg![BAD]! / G - 0.01) < 1e-6, `expAvg ${state.params.w!.buffers.expAvg![BAD]}`);
        } else if (entry.id === 'Rprop') {
          // One float32 subtraction of the float32 step size: exact.
          assert.equal(params.w![BAD], Math.fround(before - Math.fround(lr)));
          assert.equal(state.params.w!.buffers.prev![BAD], G);
        } else {
          // (1 - beta1) and the bias correction 1 - beta1 cancel up to rounding: a few ulps.
          assert.ok(Math.abs(moved + lr) < 1e-6, `moved ${moved}`);
          assert.equal(state.params.w!.buffers.expInf![BAD], G);
        }
      });
    }
  }
});

// A refused first step on a ParamStore used to make the plan first: the state of every
// parameter (zeros, step 0) and its claim on the store's regions appeared before the scan
// found the NaN. Now the scan comes first: the optimizer, the store's regions and a state
// living in another store are exactly as they were.
describe('a non-finite gradient on a ParamStore changes nothing, not even on the first step', () => {
  for (const entry of REGISTRY) {
    for (const nonFinite of ['error', 'skip'] as const) {
      it(`${entry.id}, nonFinite '${nonFinite}'`, () => {
        const store = new ParamStore({ a: 5, b: 3 }, { stateBuffers: 3 });
        store.params.a!.fill(0.5);
        store.grads.a!.fill(0.25);
        store.grads.b![2] = NaN;
        const opt = entry.make(0.01, { nonFinite });
        const empty = opt.stateDict();
        if (nonFinite === 'error') assert.throws(() => opt.update(store.params, store.grads), /gradient 'b' is not finite at index 2 \(NaN\)/);
        else assert.equal(opt.update(store.params, store.grads), false);
        assert.deepEqual({ ...opt.stateDict(), skippedSteps: 0 }, empty);
        const someoneElse = {};
        assert.deepEqual([store.heldByOthers(someoneElse, 'a'), store.heldByOthers(someoneElse, 'b')], [0, 0], 'no region claimed');
        assert.deepEqual(Array.from(store.params.a!), [0.5, 0.5, 0.5, 0.5, 0.5]);
      });
    }
  }

  it("a state living in another store stays there (Nesterov), and continues there as if the refused call had not happened", () => {
    const make = () => new Nesterov({ lr: 0.1, momentum: 0.9 });
    const stores = [new ParamStore({ w: 4 }), new ParamStore({ w: 4 })];
    const away = new ParamStore({ w: 4 });
    const tried = make(), control = make();
    for (const s of stores) s.grads.w!.set([1, 2, 3, 4]);
    tried.update(stores[0]!.params, stores[0]!.grads);
    control.update(stores[1]!.params, stores[1]!.grads);
    away.grads.w![0] = Infinity;
    assert.throws(() => tried.update(away.params, away.grads), /gradient 'w' is not finite at index 0 \(Infinity\)/);
    assert.equal(stores[0]!.heldByOthers({}, 'w'), 1, 'the velocity region is still held in the first store');
    tried.update(stores[0]!.params, stores[0]!.grads);
    control.update(stores[1]!.params, stores[1]!.grads);
    assert.deepEqual(stores[0]!.params.w, stores[1]!.params.w);
    assert.deepEqual(tried.stateDict(), control.stateDict());
  });
});
