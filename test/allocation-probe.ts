/**
 * Child process of allocation.test.ts: runs one registry entry's optimizer for many
 * steps after a warm-up and prints, as JSON, how many bytes the young generation grew
 * by and how many garbage collections ran. Zero and zero means a step allocates nothing.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { ParamStore } from 'nesterov';
import { REGISTRY } from './registry.ts';

const [id] = process.argv.slice(2);
const entry = REGISTRY.find((e) => e.id === id);
if (entry === undefined) throw new Error(`no registry entry ${id}`);

let collections = 0;
const observer = new PerformanceObserver((list) => {
  collections += list.getEntries().length;
});
observer.observe({ entryTypes: ['gc'] });
/**
 * The measured loop, in a function of its own: warmed up by the same calls it is then
 * measured with. (Inlined in the module body, the loop shared its optimized code with
 * the bookkeeping around it, which could deoptimize it at the start of a window and
 * leave it running unoptimized, allocating, for the whole window.)
 */
function steps(optimizer: { update(p: unknown, g: unknown): boolean }, params: unknown, grads: unknown, count: number): void {
  for (let t = 0; t < count; t++) optimizer.update(params, grads);
}

const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_used_size;
const STEPS = 50_000;

const results = [];
// The same process runs an object of Float32Arrays, a Map of Float64Arrays, then a
// ParamStore with the JS and then the WebAssembly kernels, all with a schedule: each run
// meets code that has seen the ones before (polymorphic, as in an application that
// trains several models).
// A rule without WebAssembly kernels (Adafactor) skips 'store-wasm'. W is an 8 x 8 matrix
// in the store (a rule whose state depends on shapes, Adafactor, factors it there).
const hasWasm = entry.make(0.001).rule.stepWasm !== undefined;
for (const kind of hasWasm ? (['object', 'map', 'store-js', 'store-wasm'] as const) : (['object', 'map', 'store-js'] as const)) {
  const Type = kind === 'map' ? Float64Array : Float32Array;
  const backend = kind === 'store-wasm' ? 'wasm' : 'js';
  const optimizer = entry.make((t: number) => 0.001 / (1 + 0.001 * t), { backend });
  const store = new ParamStore({ W: [8, 8], b: 8 }, { stateBuffers: [optimizer] });
  store.params.W!.fill(0.5);
  store.params.b!.fill(-0.5);
  store.grads.W!.fill(0.1);
  store.grads.b!.fill(-0.2);
  const object = { W: new Type(64).fill(0.5), b: new Type(8).fill(-0.5) };
  const gradsObject = { W: new Type(64).fill(0.1), b: new Type(8).fill(-0.2) };
  const params = kind === 'map' ? new Map(Object.entries(object)) : kind === 'object' ? object : store.params;
  const grads = kind === 'map' ? new Map(Object.entries(gradsObject)) : kind === 'object' ? gradsObject : store.grads;
  steps(optimizer, params, grads, 50_000); // warm-up: state, feedback, optimized code
  // Let concurrent (background) compilation finish: on a busy machine it lags, and code
  // still running unoptimized boxes its doubles.
  await new Promise((resolve) => setTimeout(resolve, 200));
  steps(optimizer, params, grads, 10_000);
  // A collection can also start for reasons of its own (a timer task, memory pressure
  // from another process); then the window says nothing, and it is measured again, up
  // to three times. Real per-step allocation shows in every window.
  let youngBytes = 0;
  let windowCollections = 0;
  for (let attempt = 0; attempt < 3; attempt++) {
    const collectionsBefore = collections;
    const before = newSpace();
    steps(optimizer, params, grads, STEPS);
    const after = newSpace();
    await new Promise((resolve) => setTimeout(resolve, 20));
    youngBytes = after - before;
    windowCollections = collections - collectionsBefore;
    if (windowCollections === 0) break;
  }
  results.push({ kind, dtype: Type.name, steps: STEPS, youngBytes, collections: windowCollections });
}
observer.disconnect();
process.stdout.write(JSON.stringify(results));
