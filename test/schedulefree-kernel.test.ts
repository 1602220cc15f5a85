/**
 * Schedule-Free AdamW's WebAssembly kernel where v / (1 - beta2^t) passes float32's
 * range although v itself does not: the normalised gradient must still be
 * g / (sqrt(v / bc2) + eps), as the JS kernel (double) and the reference compute it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ParamStore, ScheduleFreeAdamW } from 'nesterov';

// Lengths that reach the kernel's scalar tail (1), its single-vector loop (7: one
// vector and a tail of 3) and its four-quarter loop (67: 64 in quarters, then 3).
for (const length of [1, 7, 67]) {
  test(`ScheduleFreeAdamW wasm, ${length} elements: a first step with g = 3e19 moves y by -lr (v / bc2 = 9e38 overflows float32, g / sqrt(v / bc2) = 1)`, () => {
    const store = new ParamStore({ w: length });
    (store.grads.w as Float32Array).fill(3e19);
    const opt = new ScheduleFreeAdamW({ backend: 'wasm' });
    opt.update(store.params, store.grads);
    // By hand, step 1 (lr 0.0025, beta1 0.9, beta2 0.999, warmup 0): v = 0.001 g^2 = 9e35
    // (finite in float32), bc2 = 0.001, so sqrt(v / bc2) = |g| and gn = g / (|g| + 1e-8)
    // = 1 to float32. c = 1 (the first weight is the whole weight sum), so
    // y = z0 + lr (beta1 (1 - c) - 1) gn = 0 - 0.0025 and z = 0 - 0.0025 gn.
    const expected = Math.fround(-0.0025);
    const ulp = 2 ** -32; // float32 spacing at 0.0025 is 2^-32 x 1 (0.0025 is in [2^-9, 2^-8))
    const { z } = opt.stateDict().params.w!.buffers;
    for (let i = 0; i < length; i++) {
      assert.ok(Math.abs(store.params.w[i]! - expected) <= 4 * ulp, `y[${i}] = ${store.params.w[i]}, expected ${expected}`);
      assert.ok(Math.abs(z![i]! - expected) <= 4 * ulp, `z[${i}] = ${z![i]}, expected ${expected}`);
    }
  });
}
