/**
 * Opt-in threads for large float32 stores (Node only: worker_threads).
 *
 *     const store = new ParamStore(shapes, { shared: true });
 *     const pool = await startThreads(2);
 *     pool.attach(store);                 // every kernel call is now split across threads
 *     opt.update(store.params, store.grads);
 *     await pool.close();
 *
 * The store's memory is a shared WebAssembly.Memory; each worker instantiates the same
 * kernels over it. A kernel call is split into contiguous chunks (multiples of 16
 * elements); the calling thread runs the first chunk and waits for the others. Each
 * element is computed by the same float32 operations whichever thread runs it, so the
 * result is bit-identical to one thread. A kernel's finiteness flag (1: it wrote a NaN
 * or an Infinity) is the OR of its chunks' flags: each worker ORs its own into the control
 * block, and the caller ORs in its own chunk's. Dispatch costs a few microseconds (a write to
 * a shared control block, a futex wake-up), so threads pay off only for large stores:
 * `npm run bench` measures where.
 */
import { Worker } from 'node:worker_threads';
import type { AnyParamStore as ParamStore } from '../store.ts';
import { instantiateKernels, POINTER_COUNT, type KernelExports, type WasmKernels } from '../wasm/kernels.ts';

// The control block shared with the workers (Int32 slots).
const GENERATION = 0; // bumped by the caller for every command
const COMMAND = 1; // RUN, ATTACH or EXIT
const KERNEL = 2; // index into KERNEL_NAMES
const FLAGS = 3; // the OR of the workers' kernel results (0 or 1), cleared before every RUN
const DONE = 4; // workers finished with the current command
const ARGS = 5; // the call's arguments: its pointers, then the element count, then the scalar block's address
const SLOTS = 13;

export const RUN = 1;
export const ATTACH = 2;
export const EXIT = 3;

export const KERNEL_NAMES = Object.keys(POINTER_COUNT) as (keyof KernelExports)[];

/** First element of part `part` of `parts` of an `n`-element call (16-element blocks). */
export function chunkStart(n: number, part: number, parts: number): number {
  return Math.min(n, Math.floor((Math.ceil(n / 16) * part) / parts) * 16);
}

/** The chunk [start, end) of `n` elements that part `part` of `parts` runs. */
export function chunkOf(n: number, part: number, parts: number): [number, number] {
  return [chunkStart(n, part, parts), chunkStart(n, part + 1, parts)];
}

/**
 * Runs part `part` of the command in `control` with `kernels` (allocation-free), and
 * returns the kernel's result for that chunk (0 for kernels that return nothing).
 */
export function runPart(kernels: KernelExports, control: Int32Array, part: number, parts: number): number {
  const name = KERNEL_NAMES[control[KERNEL]!]!;
  const pointers = POINTER_COUNT[name];
  const total = control[ARGS + pointers]!;
  const start = chunkStart(total, part, parts);
  const n = chunkStart(total, part + 1, parts) - start;
  if (n <= 0) return 0;
  const offset = start * 4;
  const address = control[ARGS + pointers + 1]!;
  const a = control[ARGS]! + offset;
  const b = control[ARGS + 1]! + offset;
  const c = control[ARGS + 2]! + offset;
  const d = control[ARGS + 3]! + offset;
  const e = control[ARGS + 4]! + offset;
  const f = control[ARGS + 5]! + offset;
  const call = kernels[name] as (...args: number[]) => number | undefined;
  let result: number | undefined;
  if (pointers === 1) result = call(a, n, address);
  else if (pointers === 2) result = call(a, b, n, address);
  else if (pointers === 3) result = call(a, b, c, n, address);
  else if (pointers === 4) result = call(a, b, c, d, n, address);
  else if (pointers === 5) result = call(a, b, c, d, e, n, address);
  else result = call(a, b, c, d, e, f, n, address);
  return result ?? 0;
}

/** A worker's side of a RUN: its chunk, its flag ORed into the control block. */
export function runWorkerPart(kernels: KernelExports, control: Int32Array, part: number, parts: number): void {
  const flag = runPart(kernels, control, part, parts);
  if (flag !== 0) Atomics.or(control, FLAGS, flag);
}

export interface ThreadPool {
  /** Threads working on a call, the calling one included. */
  readonly size: number;
  /** Splits every kernel call of this store (float32, `shared: true`) across the threads. */
  attach(store: ParamStore): void;
  /** Returns the store to single-threaded kernels. */
  detach(store: ParamStore): void;
  close(): Promise<void>;
}

/**
 * The worker's module. Built (dist/*.js) it is plain JS; run from source (.ts, under
 * tsx) the worker must register tsx itself, since a loader hook does not follow a
 * worker thread.
 */
function workerEntry(): URL {
  if (!import.meta.url.endsWith('.ts')) return new URL('./thread-worker.js', import.meta.url);
  const worker = new URL('./thread-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(worker)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

/** Starts `threads - 1` workers (the calling thread is the first of `threads`). */
export async function startThreads(threads = 2): Promise<ThreadPool> {
  if (!Number.isSafeInteger(threads) || threads < 2) throw new RangeError(`startThreads: invalid threads: ${threads} (expected an integer >= 2)`);
  const control = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
  const workers: Worker[] = [];
  for (let part = 1; part < threads; part++) {
    const worker = new Worker(workerEntry(), { workerData: { control, part, parts: threads } });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    workers.push(worker);
  }
  let attached: ParamStore | undefined;
  let local: WasmKernels | undefined;

  /**
   * Issues the command in `control` to every worker and waits until all are done.
   * Returns the calling thread's part's result (0 without one).
   */
  function broadcast(command: number, ownPart?: () => number): number {
    Atomics.store(control, DONE, 0);
    Atomics.store(control, FLAGS, 0);
    Atomics.store(control, COMMAND, command);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
    const own = ownPart === undefined ? 0 : ownPart();
    for (let done = Atomics.load(control, DONE), waited = 0; done < workers.length; done = Atomics.load(control, DONE)) {
      if (Atomics.wait(control, DONE, done, 1000) === 'timed-out' && ++waited >= 30) {
        throw new Error(`ThreadPool: ${workers.length - done} worker(s) did not answer within 30 s`);
      }
    }
    return own;
  }

  const runOwnPart = () => runPart(local!.exports, control, 0, threads);

  function threaded(index: number): (...args: number[]) => number {
    // Fixed arity, no rest parameters or arrays: a dispatch allocates nothing. Missing
    // arguments store as 0. The result is the OR of every chunk's (the kernels' flags).
    return (a0?: number, a1?: number, a2?: number, a3?: number, a4?: number, a5?: number, a6?: number, a7?: number) => {
      control[KERNEL] = index;
      control[ARGS] = a0!;
      control[ARGS + 1] = a1!;
      control[ARGS + 2] = a2!;
      control[ARGS + 3] = a3!;
      control[ARGS + 4] = a4!;
      control[ARGS + 5] = a5!;
      control[ARGS + 6] = a6!;
      control[ARGS + 7] = a7!;
      const own = broadcast(RUN, runOwnPart);
      return own | Atomics.load(control, FLAGS);
    };
  }

  const pool: ThreadPool = {
    size: threads,
    attach(store) {
      if (!store.shared || store.memory === undefined) {
        throw new RangeError('ThreadPool.attach: the store must be float32 with { shared: true }');
      }
      local = instantiateKernels(store.memory, true, 0);
      for (const worker of workers) worker.postMessage(store.memory);
      broadcast(ATTACH);
      const exports = Object.fromEntries(
        KERNEL_NAMES.map((name, index) => [name, name === 'firstNonFinite' ? local!.exports.firstNonFinite : threaded(index)]),
      ) as unknown as KernelExports;
      store.useKernels({ exports, scalars: local.scalars, address: local.address });
      attached = store;
    },
    detach(store) {
      if (attached === store) {
        store.useKernels(undefined);
        attached = undefined;
      }
    },
    async close() {
      if (attached) pool.detach(attached);
      broadcast(EXIT);
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
  return pool;
}
