/**
 * The bench's own module (bench/assembly/, bench/kernels.ts): its loops are not shipped,
 * but the bench's floors rest on what they read and write.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { benchKernels } from '../bench/kernels.ts';

// read3Quarters (the benchmark's reads-alone floor) reads every element of its three
// arrays, whichever part of the loop (quarters, single vectors, scalars) takes it, and
// writes nothing: a NaN or an Infinity planted anywhere in any of them is reported.
it('the wasm read3Quarters floor loop reads every element of its three arrays and writes none', async () => {
  const { ParamStore } = await import('nesterov');
  for (const n of [1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 127, 128, 129, 1000]) {
    const store = new ParamStore({ w: n }, { stateBuffers: 1 });
    const k = benchKernels(store.memory as WebAssembly.Memory);
    const regions = [0, 1, 2].map((region) => new Float32Array(store.buffer, store.byteOffset(region, 0), n));
    const [a, b, c] = [0, 1, 2].map((region) => store.byteOffset(region, 0)) as [number, number, number];
    regions.forEach((values, r) => values.fill(r + 0.5));
    const before = regions.map((values) => Array.from(values));
    assert.equal(k.read3Quarters(a, b, c, n), 0, `n ${n}, all finite`);
    assert.deepEqual(regions.map((values) => Array.from(values)), before, `n ${n}: nothing written`);
    for (const values of regions) {
      for (let i = 0; i < n; i++) {
        for (const bad of [NaN, Infinity, -Infinity]) {
          values[i] = bad;
          assert.equal(k.read3Quarters(a, b, c, n), 1, `n ${n}, ${bad} at ${i}`);
        }
        values[i] = 0.5;
      }
    }
  }
});

