/**
 * EMA, SWA and GradientAccumulation allocate nothing after their first steps (the
 * averages and sums are made once): 50,000 updates leave the young generation as it
 * was, with no collection, as Lookahead's test does it.
 */
import assert from 'node:assert/strict';
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { describe, it } from 'node:test';
import { Adam, EMA, GradientAccumulation, SGD, SWA, type OptimizerLike } from 'nesterov';

async function youngBytes(opt: OptimizerLike): Promise<{ bytes: number; collections: number }> {
  let collections = 0;
  const observer = new PerformanceObserver((list) => {
    collections += list.getEntries().length;
  });
  observer.observe({ entryTypes: ['gc'] });
  const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_used_size;
  const params = { W: new Float32Array(64).fill(0.5), b: new Float32Array(8).fill(-0.5) };
  const grads = { W: new Float32Array(64).fill(0.1), b: new Float32Array(8).fill(-0.2) };
  const steps = (count: number) => {
    for (let t = 0; t < count; t++) opt.update(params, grads);
  };
  steps(50_000);
  await new Promise((resolve) => setTimeout(resolve, 200));
  steps(10_000);
  let young = 0;
  let windowCollections = 0;
  for (let attempt = 0; attempt < 3; attempt++) {
    const before = collections;
    const used = newSpace();
    steps(50_000);
    young = newSpace() - used;
    await new Promise((resolve) => setTimeout(resolve, 20));
    windowCollections = collections - before;
    if (windowCollections === 0 && young < 16 * 1024) break;
  }
  observer.disconnect();
  return { bytes: young, collections: windowCollections };
}

describe('allocation', () => {
  const cases: [string, () => OptimizerLike][] = [
    ['EMA(SGD) with warm-up', () => new EMA(new SGD({ lr: 1e-4 }), { decay: 0.99, warmup: { gamma: 2, power: 0.75 } })],
    ['SWA(Adam), start 2, every 3', () => new SWA(new Adam({ lr: 1e-4 }), { start: 2, every: 3 })],
    ['GradientAccumulation(Adam), steps 3', () => new GradientAccumulation(new Adam({ lr: 1e-4 }), { steps: 3 })],
  ];
  for (const [label, make] of cases) {
    it(`${label}: an update after the first ones allocates nothing`, async () => {
      const { bytes, collections } = await youngBytes(make());
      // One 16-byte boxed number per step would be 800 KB.
      assert.equal(collections, 0, `${bytes} bytes`);
      assert.ok(bytes < 16 * 1024, `${bytes} bytes in 50,000 steps`);
    });
  }
});
