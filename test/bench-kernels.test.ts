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


// The bench's bytes per element come from the arrays its rows' kernels read and write;
// the rules declare those arrays with their kernels (src/rules/*.ts `kernels`), so a
// bench row that disagrees with its rule's kernel fails here.
it("every bench rule's traffic is one of its registered rule's kernels' declared reads and writes", async () => {
  const { BENCH_RULES, bytesPerElement } = await import('../bench/rules.ts');
  const { RULES } = await import('../src/rules/index.ts');
  const { bytesPerElementOf } = await import('../bench/kernels.ts');
  const sorted = (names: readonly string[]) => [...names].sort().join(',');
  for (const bench of BENCH_RULES) {
    const registered = RULES.find((entry) => entry.key === bench.id);
    assert.ok(registered?.rule?.kernels, `${bench.id}: no registered rule with wasm kernels`);
    const layouts = Object.values(registered.rule.kernels);
    if (!bench.onePass) {
      // A rule of several passes (LAMB): at least every array one of its passes moves, once.
      const once = (names: readonly string[]) => sorted([...new Set(names)]);
      assert.deepEqual([sorted(bench.reads), sorted(bench.writes)], [once(layouts.flatMap((l) => l.reads)), once(layouts.flatMap((l) => l.writes))], bench.id);
      continue;
    }
    const match = layouts.find((layout) => sorted(layout.reads) === sorted(bench.reads) && sorted(layout.writes) === sorted(bench.writes));
    assert.ok(match, `${bench.id}: reads ${bench.reads} / writes ${bench.writes} are none of ${layouts.map((l) => `${l.entry} (${l.reads} / ${l.writes})`).join('; ')}`);
    assert.equal(bytesPerElement(bench), bytesPerElementOf(match), bench.id);
  }
});

// stream6to5 (Adan's streaming bound) moves every element of its six arrays, whichever
// part of the loop takes it: a = b + c, c = d, d = e, e = f, f = the old a.
it('the wasm stream6to5 bound loops read six arrays and write five, every element', async () => {
  const { ParamStore } = await import('nesterov');
  for (const n of [1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 127, 128, 129, 1000]) {
    for (const loop of ['stream6to5', 'stream6to5Quarters'] as const) {
      const store = new ParamStore({ w: n }, { stateBuffers: 4 });
      const k = benchKernels(store.memory as WebAssembly.Memory);
      const offsets = [0, 1, 2, 3, 4, 5].map((region) => store.byteOffset(region, 0)) as [number, number, number, number, number, number];
      const regions = offsets.map((offset) => new Float32Array(store.buffer, offset, n));
      regions.forEach((values, r) => values.forEach((_, i) => (values[i] = r * 1000 + i)));
      k[loop](...offsets, n);
      for (let i = 0; i < n; i++) {
        const got = regions.map((values) => values[i]);
        assert.deepEqual(got, [1000 + i + 2000 + i, 1000 + i, 3000 + i, 4000 + i, 5000 + i, i], `${loop} n ${n} i ${i}`);
      }
    }
  }
});
