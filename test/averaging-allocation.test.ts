/**
 * EMA, SWA and GradientAccumulation allocate nothing after their first steps (the
 * averages and sums are made once): 50,000 updates leave the young generation as it
 * was, with no collection, as Lookahead's test does it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, EMA, GradientAccumulation, SGD, SWA, type OptimizerLike } from 'nesterov';
import { youngGenerationGrowth } from './helpers.ts';

describe('allocation', () => {
  const cases: [string, () => OptimizerLike][] = [
    ['EMA(SGD) with warm-up', () => new EMA(new SGD({ lr: 1e-4 }), { decay: 0.99, warmup: { gamma: 2, power: 0.75 } })],
    ['SWA(Adam), start 2, every 3', () => new SWA(new Adam({ lr: 1e-4 }), { start: 2, every: 3 })],
    ['GradientAccumulation(Adam), steps 3', () => new GradientAccumulation(new Adam({ lr: 1e-4 }), { steps: 3 })],
  ];
  for (const [label, make] of cases) {
    it(`${label}: an update after the first ones allocates nothing`, async () => {
      const { bytes, collections } = await youngGenerationGrowth(make());
      // One 16-byte boxed number per step would be 800 KB.
      assert.equal(collections, 0, `${bytes} bytes`);
      assert.ok(bytes < 16 * 1024, `${bytes} bytes in 50,000 steps`);
    });
  }
});
