/**
 * Threads you start yourself (Node): a pool of a chosen size, attached to chosen stores.
 * Since stores large enough to gain thread by default (`ParamStore`'s `threads`
 * option), this is for control: a size of your own, every call split whatever its size,
 * and `close()` when you are done.
 *
 *     const store = new ParamStore(shapes, { shared: true });
 *     const pool = await startThreads(2);
 *     pool.attach(store);                 // every kernel call is now split across threads
 *     opt.update(store.params, store.grads);
 *     await pool.close();
 *
 * Results are bit-identical to one thread (src/threads.ts says why).
 */
import type { AnyParamStore as ParamStore } from '../store.ts';
import { Pool } from '../threads.ts';

export { chunkOf, chunkStart } from '../threads.ts';

export interface ThreadPool {
  /** Threads working on a call, the calling one included. */
  readonly size: number;
  /** Splits every kernel call of this store (float32, `shared: true`) across the threads. */
  attach(store: ParamStore): void;
  /** Returns the store to its own kernels (its `threads` option's). */
  detach(store: ParamStore): void;
  close(): Promise<void>;
}

/** Starts `threads - 1` workers (the calling thread is the first of `threads`). */
export async function startThreads(threads = 2): Promise<ThreadPool> {
  if (!Number.isSafeInteger(threads) || threads < 2) throw new RangeError(`startThreads: invalid threads: ${threads} (expected an integer >= 2)`);
  const pool = new Pool(threads);
  try {
    await pool.whenReady();
  } catch (error) {
    await pool.close();
    throw error;
  }
  const attached = new Set<ParamStore>();
  const threadPool: ThreadPool = {
    size: threads,
    attach(store) {
      if (!store.shared || store.memory === undefined) {
        throw new RangeError('ThreadPool.attach: the store must be float32 with { shared: true }');
      }
      store.useKernels(pool.kernelsFor(store, store.memory, 0, store.threadUse));
      attached.add(store);
    },
    detach(store) {
      if (attached.delete(store)) store.useKernels(undefined);
    },
    async close() {
      for (const store of attached) threadPool.detach(store);
      await pool.close();
    },
  };
  return threadPool;
}
