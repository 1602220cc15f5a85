/**
 * The main job's network on the WebAssembly SIMD matrix kernels: its loss, gradients and
 * scores equal those of the float64 network (the one test/nn.test.ts checks against
 * central differences) to float32 rounding, for layer sizes and batches that are not
 * multiples of the kernels' 4 lanes, with zeros in the inputs (the terms the kernel skips)
 * and after a larger batch has used the same memory.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { wasmSimdSupported } from 'nesterov';
import { Network } from '../app/nn/network.ts';
import { Rng } from '../app/nn/rng.ts';
import { loadPackageDigits } from '../app/data.ts';

const skip = wasmSimdSupported() ? false : 'this runtime has no WebAssembly SIMD';

/** A float32 wasm network and a float64 JS one with the same weights (the float32 values). */
function twins(inputSize: number, hiddenSizes: number[], outputSize: number, seed: number): { fast: Network; exact: Network } {
  const fast = new Network({ inputSize, hiddenSizes, outputSize, backend: 'wasm' });
  const exact = new Network({ inputSize, hiddenSizes, outputSize, dtype: 'float64' });
  const rng = new Rng(seed);
  fast.initialize(rng);
  for (const layer of fast.layers) for (let i = 0; i < layer.b.length; i++) layer.b[i] = 0.1 * rng.normal();
  for (const name of fast.store.names) exact.store.params[name]!.set(fast.store.params[name]!);
  return { fast, exact };
}

/** The largest difference relative to the largest magnitude of `exact` (float32 rounding: about 1e-7 per operation). */
function relative(got: ArrayLike<number>, exact: ArrayLike<number>): number {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < exact.length; i++) {
    scale = Math.max(scale, Math.abs(exact[i]!));
    worst = Math.max(worst, Math.abs(got[i]! - exact[i]!));
  }
  return worst / Math.max(scale, 1e-30);
}

describe('Network on the wasm kernels', { skip }, () => {
  it('runs there by default for float32', () => {
    assert.equal(new Network({ inputSize: 6, hiddenSizes: [5], outputSize: 3 }).backend, 'wasm');
    assert.equal(new Network({ inputSize: 6, hiddenSizes: [5], outputSize: 3, dtype: 'float64' }).backend, 'js');
    assert.throws(() => new Network({ inputSize: 6, hiddenSizes: [5], outputSize: 3, dtype: 'float64', backend: 'wasm' }), /backend 'wasm' cannot run: the wasm kernels are float32/);
  });

  it('odd sizes (6-5-7-3, batches of 7 and 1): loss and every gradient as the float64 network, to float32 rounding', () => {
    const { fast, exact } = twins(6, [5, 7], 3, 1);
    const rng = new Rng(2);
    for (const batch of [7, 1, 7]) {
      // A third of the inputs exactly zero: the kernel skips those terms.
      const x64 = Float64Array.from({ length: batch * 6 }, () => (rng.next() < 1 / 3 ? 0 : rng.normal()));
      const x32 = Float32Array.from(x64);
      const labels = Uint8Array.from({ length: batch }, () => rng.below(3));
      const loss = fast.gradient(x32, labels, 0, batch);
      const lossExact = exact.gradient(Float64Array.from(x32), labels, 0, batch);
      assert.ok(Math.abs(loss - lossExact) <= 1e-6 * lossExact, `loss ${loss} vs ${lossExact}`);
      for (const name of fast.store.names) {
        const error = relative(fast.store.grads[name]!, exact.store.grads[name]!);
        assert.ok(error < 1e-5, `${name} (batch ${batch}): relative difference ${error}`);
      }
    }
  });

  it('784-100-10 on real digits, after an evaluation of 500 rows used the memory: gradients and accuracy as float64', () => {
    const digits = loadPackageDigits();
    const { fast, exact } = twins(784, [100], 10, 3);
    const batch = 33; // not a multiple of 4: the rows 33-35 of the padded batch were the evaluation's
    const evalFast = fast.evaluate(digits.images, digits.labels, 0, 1000);
    const evalExact = exact.evaluate(Float64Array.from(digits.images.subarray(0, 1000 * 784)), digits.labels, 0, 1000);
    assert.equal(evalFast.accuracy, evalExact.accuracy);
    assert.ok(Math.abs(evalFast.loss - evalExact.loss) <= 1e-6 * evalExact.loss, `eval loss ${evalFast.loss} vs ${evalExact.loss}`);
    const x = digits.images.subarray(2000 * 784, (2000 + batch) * 784);
    const loss = fast.gradient(x, digits.labels, 2000, batch);
    const lossExact = exact.gradient(Float64Array.from(x), digits.labels, 2000, batch);
    assert.ok(Math.abs(loss - lossExact) <= 1e-6 * lossExact, `loss ${loss} vs ${lossExact}`);
    for (const name of fast.store.names) {
      const error = relative(fast.store.grads[name]!, exact.store.grads[name]!);
      assert.ok(error < 1e-5, `${name}: relative difference ${error}`);
    }
  });
});
