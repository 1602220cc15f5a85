/**
 * Child process of allocation.test.ts: runs one registry entry's optimizer for many
 * steps after a warm-up and prints, as JSON, how many bytes the young generation grew
 * by and how many garbage collections ran. Zero and zero means a step allocates nothing.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { REGISTRY } from './registry.ts';

const [id] = process.argv.slice(2);
const entry = REGISTRY.find((e) => e.id === id);
if (entry === undefined) throw new Error(`no registry entry ${id}`);

let collections = 0;
const observer = new PerformanceObserver((list) => {
  collections += list.getEntries().length;
});
observer.observe({ entryTypes: ['gc'] });
const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_used_size;
const STEPS = 50_000;

const results = [];
// The same process runs an object of Float32Arrays, then a Map of Float64Arrays, with a
// schedule: the second run meets code that has seen the first (polymorphic, as in an
// application that trains two models).
for (const [kind, Type] of [['object', Float32Array], ['map', Float64Array]] as const) {
  const optimizer = entry.make((t: number) => 0.001 / (1 + 0.001 * t));
  const object = { W: new Type(64).fill(0.5), b: new Type(8).fill(-0.5) };
  const gradsObject = { W: new Type(64).fill(0.1), b: new Type(8).fill(-0.2) };
  const params = kind === 'map' ? new Map(Object.entries(object)) : object;
  const grads = kind === 'map' ? new Map(Object.entries(gradsObject)) : gradsObject;
  for (let t = 0; t < 20_000; t++) optimizer.update(params, grads); // warm-up: state, feedback, optimized code
  await new Promise((resolve) => setTimeout(resolve, 20));
  const collectionsBefore = collections;
  const before = newSpace();
  for (let t = 0; t < STEPS; t++) optimizer.update(params, grads);
  const after = newSpace();
  await new Promise((resolve) => setTimeout(resolve, 20));
  results.push({ kind, dtype: Type.name, steps: STEPS, youngBytes: after - before, collections: collections - collectionsBefore });
}
observer.disconnect();
process.stdout.write(JSON.stringify(results));
