/**
 * examples/tfjs.ts: a TF.js model on the digits trained by tfOptimizer(new Nesterov()).
 * Short here (1,000 training digits, one epoch of 32-digit batches); the bound is far
 * above chance (10%: the test set is balanced, 100 of each class) and below the 76.6%
 * this deterministic run measured, leaving room for float32 differences between machines.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { trainDigits } from '../examples/tfjs.ts';

it('examples/tfjs.ts: one epoch on 1,000 digits reaches more than 60% test accuracy', async () => {
  const accuracy = await trainDigits({ train: 1000, test: 1000, epochs: 1, backend: 'cpu' });
  assert.ok(accuracy > 0.6, `accuracy ${accuracy}`);
});
