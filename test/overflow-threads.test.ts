/**
 * Overflow detection on the threaded path: a kernel call is split into
 * chunks across two threads, so the flag of the chunk that overflowed must reach the
 * caller whichever thread ran it; and the gradient scan, split too, must still find a
 * non-finite gradient in either chunk.
 *
 * With 2 threads and a run of 4096 elements, the calling thread runs elements [0, 2048)
 * and the worker [2048, 4096) (chunkStart: 16-element blocks split in half).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ParamStore, SGD, UpdateError } from 'nesterov';
import { startThreads, type ThreadPool } from 'nesterov/node';

describe('overflow detection with threads', () => {
  let pool: ThreadPool;
  before(async () => {
    pool = await startThreads(2);
  });
  after(async () => {
    await pool.close();
  });

  for (const [where, index] of [
    ["the calling thread's chunk", 100],
    ["the worker's chunk", 3000],
  ] as const) {
    it(`an overflow in ${where} (w[${index}]) throws with the parameter and index`, () => {
      const store = new ParamStore({ a: 96, w: 4000 }, { shared: true });
      store.grads.w!.fill(0.5);
      store.grads.w![index] = 1e38;
      pool.attach(store);
      try {
        const opt = new SGD({ lr: 10, backend: 'wasm' });
        assert.throws(
          () => opt.update(store.params, store.grads),
          (error: unknown) => error instanceof UpdateError && error.param === 'w' && error.index === index && /This step WAS applied/.test(error.message),
        );
        assert.equal(store.params.w![index], -Infinity);
        assert.equal(store.params.w![index + 1], -5); // 0 - 10 * 0.5: applied elsewhere too
        // Without an overflow, the same threaded step reports nothing.
        store.grads.w![index] = 0.5;
        store.params.w!.fill(0);
        assert.equal(opt.update(store.params, store.grads), true);
      } finally {
        pool.detach(store);
      }
    });

    it(`a NaN gradient in ${where} is found by the split scan; nothing is written`, () => {
      const store = new ParamStore({ a: 96, w: 4000 }, { shared: true });
      store.grads.w!.fill(0.5);
      store.grads.w![index] = NaN;
      pool.attach(store);
      try {
        const opt = new SGD({ lr: 10, backend: 'wasm' });
        assert.throws(
          () => opt.update(store.params, store.grads),
          (error: unknown) => error instanceof UpdateError && error.message === `SGD.update: gradient 'w' is not finite at index ${index} (NaN)`,
        );
        assert.ok(store.params.w!.every((x) => x === 0));
      } finally {
        pool.detach(store);
      }
    });
  }
});
