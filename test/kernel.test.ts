/**
 * src/kernel.ts: the per-array-type copies of the JS kernels. (Every rule's loops are
 * checked against PyTorch and the book on both array types by reference.test.ts; this
 * checks the plumbing itself: distinct copies, the right one picked, the no-eval
 * fallback.)
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { byArrayType, loopFor, type LoopsByArrayType } from '../src/kernel.ts';
import type { FloatArray } from '../src/types.ts';

// y += a * x, with a in the scalar block: a loop in the kernels' shape.
function axpy(y: FloatArray, x: FloatArray, n: number, s: Float64Array): void {
  const a = s[0]!;
  for (let i = 0; i < n; i++) y[i] = y[i]! + a * x[i]!;
}

function run(loops: LoopsByArrayType<typeof axpy>, Type: Float32ArrayConstructor | Float64ArrayConstructor): number[] {
  const y = Type.from([1, 2, 3]);
  const x = Type.from([1, -1, 0.25]);
  loopFor(loops, y)(y, x, y.length, Float64Array.of(0.5));
  return Array.from(y);
}

it('byArrayType compiles two copies of a loop, and loopFor picks the one for the array type', () => {
  const loops = byArrayType(axpy);
  assert.notEqual(loops.float32, loops.float64);
  assert.notEqual(loops.float32, axpy);
  assert.notEqual(loops.float64, axpy);
  assert.equal(loopFor(loops, new Float32Array(1)), loops.float32);
  assert.equal(loopFor(loops, new Float64Array(1)), loops.float64);
  // 1 + 0.5, 2 - 0.5, 3 + 0.125: exact in both types.
  assert.deepEqual(run(loops, Float32Array), [1.5, 1.5, 3.125]);
  assert.deepEqual(run(loops, Float64Array), [1.5, 1.5, 3.125]);
});

it('without eval (a Content-Security-Policy without unsafe-eval) both copies are the loop itself', () => {
  const original = globalThis.Function;
  globalThis.Function = function refused(): never {
    throw new EvalError('Refused to evaluate a string as JavaScript (CSP)');
  } as unknown as FunctionConstructor;
  let loops: LoopsByArrayType<typeof axpy>;
  try {
    loops = byArrayType(axpy);
  } finally {
    globalThis.Function = original;
  }
  assert.equal(loops.float32, axpy);
  assert.equal(loops.float64, axpy);
  assert.deepEqual(run(loops, Float32Array), [1.5, 1.5, 3.125]);
  assert.deepEqual(run(loops, Float64Array), [1.5, 1.5, 3.125]);
});

// The gradient scan of nonFinite: 'error' (assembly/kernels.ts anyNonFinite, eight
// streams over the eighths of the array, then whole vectors, then scalars): a non-finite
// value anywhere must be seen, whichever part of the loop reads it.
it('the wasm scan finds a NaN or an Infinity at every position, for lengths around its block sizes', async () => {
  const { ParamStore } = await import('nesterov');
  for (const n of [1, 3, 4, 5, 15, 16, 17, 127, 128, 129, 255, 256, 257, 1000, 4099]) {
    const store = new ParamStore({ w: n });
    const k = store.kernels!.exports;
    const g = store.grads.w!;
    const at = store.byteOffset(1, 0);
    g.fill(1.5);
    assert.equal(k.anyNonFinite(at, n), 0, `n ${n}, all finite`);
    assert.equal(k.firstNonFinite(at, n), -1, `n ${n}, all finite`);
    for (let i = 0; i < n; i++) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        g[i] = bad;
        assert.equal(k.anyNonFinite(at, n), 1, `n ${n}, ${bad} at ${i}`);
        assert.equal(k.firstNonFinite(at, n), i, `n ${n}, ${bad} at ${i}`);
      }
      g[i] = -1.5;
    }
  }
});

it('the wasm scan may flag four huge finite values that add up past float32 (then firstNonFinite finds none)', async () => {
  const { ParamStore } = await import('nesterov');
  const store = new ParamStore({ w: 256 });
  const k = store.kernels!.exports;
  store.grads.w!.fill(1e38); // a line's four vectors sum to 4e38 > 3.4e38
  const at = store.byteOffset(1, 0);
  assert.equal(k.anyNonFinite(at, 256), 1);
  assert.equal(k.firstNonFinite(at, 256), -1);
});

// nesterovNag's wasm loop runs one vector in each quarter of the arrays per iteration,
// then single vectors, then scalars: every element, whichever part of the loop takes it,
// must be the float32 formula rounded operation by operation (wasm rounds every f32x4
// operation). The model below is that formula written out with Math.fround; that it is
// NAG (equal to p + mu^2 v_old - (1 + mu) lr g up to rounding) is held by the fixtures.
it("wasm nesterovNag equals the float32 formula bit for bit at lengths around its blocks, with maximize and weight decay", async () => {
  const { Nesterov, ParamStore } = await import('nesterov');
  const f = Math.fround;
  const lr = 0.01, mu = 0.9;
  const [lr32, mu32] = [f(lr), f(mu)];
  for (const n of [1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 79, 80, 127, 128, 129, 1000, 4099]) {
    for (const maximize of [false, true]) {
      for (const weightDecay of [0, 0.1]) {
        const store = new ParamStore({ w: n });
        const p = store.params.w!, g = store.grads.w!;
        for (let i = 0; i < n; i++) p[i] = Math.sin(i + 1);
        const expectedP = Float32Array.from(p), expectedV = new Float32Array(n);
        const opt = new Nesterov({ lr, momentum: mu, maximize, weightDecay, backend: 'wasm' });
        for (let t = 0; t < 3; t++) {
          for (let i = 0; i < n; i++) g[i] = Math.cos(0.7 * i + t);
          for (let i = 0; i < n; i++) {
            let gi = maximize ? -g[i]! : g[i]!;
            if (weightDecay !== 0) gi = f(gi + f(f(weightDecay) * expectedP[i]!));
            // p += mu^2 v_old - (1 + mu) lr g as the kernel computes it: p += mu v_new - lr g.
            const lrg = f(lr32 * gi);
            expectedV[i] = f(f(mu32 * expectedV[i]!) - lrg);
            expectedP[i] = f(expectedP[i]! + f(f(mu32 * expectedV[i]!) - lrg));
          }
          opt.update(store.params, store.grads);
        }
        const label = `n ${n}, maximize ${maximize}, weightDecay ${weightDecay}`;
        assert.deepEqual(p, expectedP, label);
        assert.deepEqual(opt.stateDict().params.w!.buffers.velocity, expectedV, label);
      }
    }
  }
});

// The named scalar layout has one source, the rules' `kernels`: the offsets the wasm
// kernels load by (assembly/layout.generated.ts, committed) are written from it by the
// build, and this fails while they are stale (a rule changed, the build not run).
it('assembly/layout.generated.ts is what the rules declare', async () => {
  const { readFileSync } = await import('node:fs');
  const { ruleLayouts } = await import('../scripts/build-wasm.ts');
  const { layoutSource } = await import('../scripts/kernel-source.ts');
  const committed = readFileSync(new URL('../assembly/layout.generated.ts', import.meta.url), 'utf8');
  assert.equal(committed, layoutSource(await ruleLayouts()), 'run npm run build:wasm and commit assembly/layout.generated.ts');
});

it("every rule's declared wasm entry is a kernel of the module taking its arrays, n and s, and the threads split exactly those arrays", async () => {
  const { ruleLayouts } = await import('../scripts/build-wasm.ts');
  const { ParamStore } = await import('nesterov');
  const { POINTER_COUNT } = await import('../src/wasm/kernels.ts');
  const exports = new ParamStore({ w: 4 }).kernels!.exports as unknown as Record<string, (...args: number[]) => number>;
  const layouts = await ruleLayouts();
  assert.ok(layouts.length >= 20);
  for (const layout of layouts) {
    assert.equal(typeof exports[layout.entry], 'function', layout.entry);
    assert.equal(exports[layout.entry]!.length, layout.arrays.length + 2, `${layout.entry}(${layout.arrays.join(', ')}, n, s)`);
    assert.equal(POINTER_COUNT[layout.entry as keyof typeof POINTER_COUNT], layout.arrays.length, layout.entry);
  }
});

it('the shipped module has no benchmark-only loop', async () => {
  const { ParamStore } = await import('nesterov');
  const names = Object.keys(new ParamStore({ w: 4 }).kernels!.exports);
  for (const name of names) assert.doesNotMatch(name, /Unchecked$|^stream|^read3/, name);
});
