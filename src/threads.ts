/**
 * Threads for float32 ParamStores: a pool of workers that each instantiate the kernels
 * over a store's shared `WebAssembly.Memory` and run a chunk of every kernel call.
 *
 * This module has no static import of a Node module, so the core still loads in a
 * browser: in Node it reaches `worker_threads` and `os` through
 * `process.getBuiltinModule` (Node 20.16+), a synchronous call that bundlers do not
 * follow. In a browser it starts module workers (src/browser-thread-worker.ts) where the
 * page is cross-origin isolated, the only pages that may share memory with a worker.
 * Elsewhere `threadSupport()` says why and stores run on one thread.
 *
 * A kernel call is split into contiguous chunks (multiples of 16 elements); the calling
 * thread runs the first chunk and waits for the others. Each element is computed by the
 * same float32 operations whichever thread runs it, so the result is bit-identical to
 * one thread. A kernel's finiteness flag (1: it wrote a NaN or an Infinity) is the OR of
 * its chunks' flags: each worker ORs its own into the control block, and the caller ORs
 * in its own chunk's.
 *
 * Workers are started without waiting for them: they say they are ready in the shared
 * control block, which the caller reads at each step, so in Node a training loop that
 * never yields to the event loop still gets them (its first steps run on one thread,
 * with the same results); a page's workers start only once it returns to its event
 * loop. Node's workers are `unref()`ed: they never keep a process alive.
 *
 * A page's main thread may not block in `Atomics.wait`: there the caller runs its own
 * chunk and then polls the done counter (the workers' chunks take as long as its own).
 * A browser worker cannot read its messages while it blocks either, so it waits for
 * commands with `Atomics.waitAsync`, which leaves its event loop free to receive a
 * store's memory.
 */
import type { KernelExports, WasmKernels, WasmMemory } from './wasm/kernels.ts';
import { KERNEL_POINTERS } from './wasm/kernels.generated.ts';
import { instantiateKernels, POINTER_COUNT } from './wasm/kernels.ts';

// The control block shared with the workers (Int32 slots).
const GENERATION = 0; // bumped by the caller for every command
const COMMAND = 1; // RUN, ATTACH or EXIT
const KERNEL = 2; // index into KERNEL_NAMES
const FLAGS = 3; // the OR of the workers' kernel results (0 or 1), cleared before every RUN
const DONE = 4; // workers finished with the current command
const STORE = 5; // the id of the store (memory) a RUN is about
const READY = 6; // workers that have started and wait for commands
const ARGS = 7; // the call's arguments: its pointers, then the element count, then the scalar block's address
const POSTED = 15; // messages posted to each worker so far: an ATTACH waits until a browser worker has read them all
const SLOTS = 16;

export const RUN = 1;
/** Read the port's messages (attach or release a memory) and answer. */
export const ATTACH = 2;
export const EXIT = 3;
export const CONTROL = { GENERATION, COMMAND, DONE, STORE, READY, POSTED } as const;

export const KERNEL_NAMES = Object.keys(POINTER_COUNT) as (keyof KernelExports)[];

/** Whether a kernel is elementwise, so that a call splits into chunks: a rule's, or the scan. */
function splits(name: string): boolean {
  return name === 'anyNonFinite' || Object.hasOwn(KERNEL_POINTERS, name);
}

/**
 * The most workers 'auto' starts, the calling thread included: an optimizer step streams
 * memory, and a few cores saturate a memory channel; more threads only add wake-ups.
 */
export const AUTO_THREADS_CAP = 8;

/**
 * Elements from which 'auto' splits a kernel call across threads, and the region length
 * from which a store defaults to threads: below it, waking the workers costs more than
 * the second core saves (`npm run bench:threads` measures the crossover).
 */
export const AUTO_MIN_ELEMENTS = 1 << 20;

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

/**
 * Waits until the caller issues a command after generation `seen`, and returns the new
 * generation. A wake-up alone proves nothing: the caller's notify for the command just
 * done can arrive late (the caller was descheduled between bumping the generation and
 * notifying), after the worker already ran that command and went back to waiting; so
 * the generation is checked again after every wake-up.
 */
export function nextGeneration(control: Int32Array, seen: number): number {
  // Spin briefly (a step comes right after the last on a busy trainer), then sleep.
  for (let spin = 0; spin < 20000 && Atomics.load(control, GENERATION) === seen; spin++);
  while (Atomics.load(control, GENERATION) === seen) Atomics.wait(control, GENERATION, seen);
  return Atomics.load(control, GENERATION);
}

type WaitAsync = (array: Int32Array, index: number, value: number) => { async: false; value: string } | { async: true; value: Promise<string> };

/**
 * `nextGeneration` for a browser worker: it waits with `Atomics.waitAsync`, so that its
 * event loop stays free to receive the messages that attach a store's memory.
 */
export async function nextGenerationAsync(control: Int32Array, seen: number): Promise<number> {
  const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;
  for (let spin = 0; spin < 20000 && Atomics.load(control, GENERATION) === seen; spin++);
  while (Atomics.load(control, GENERATION) === seen) {
    const wait = waitAsync(control, GENERATION, seen);
    if (wait.async) await wait.value;
  }
  return Atomics.load(control, GENERATION);
}

/** A worker's side of a RUN: its chunk, its flag ORed into the control block. */
export function runWorkerPart(kernels: KernelExports, control: Int32Array, part: number, parts: number): void {
  const flag = runPart(kernels, control, part, parts);
  if (flag !== 0) Atomics.or(control, FLAGS, flag);
}

/** A message to a worker: a store's memory to instantiate the kernels over, or to forget. */
export type WorkerMessage = { attach: number; memory: WasmMemory } | { release: number };

/** The first message to a browser worker (a Node worker gets the same as its workerData). */
export interface WorkerStart {
  control: Int32Array;
  part: number;
  parts: number;
}

/** A started worker, Node's or a browser's. */
interface PoolWorker {
  postMessage(message: WorkerMessage): void;
  terminate(): unknown;
}

/** How this runtime starts workers, how many cores it has, and whether the caller may block. */
interface Platform {
  cores: number;
  /** Whether the calling thread may `Atomics.wait` (a page's main thread may not). */
  blocks: boolean;
  spawn(start: WorkerStart, failed: (message: string) => void): PoolWorker;
}

/** What the pool needs of node:worker_threads' Worker (typed here: no Node types in the core). */
interface NodeWorker extends PoolWorker {
  unref(): void;
  on(event: 'error', listener: (error: Error) => void): void;
}
type NodeWorkerConstructor = new (entry: URL, options: { workerData: WorkerStart }) => NodeWorker;

/** Node's worker_threads and the core count, or why there are none. */
function nodePlatform(proc: { versions: { node: string }; getBuiltinModule?: (id: string) => unknown }): Platform | string {
  if (typeof proc.getBuiltinModule !== 'function') return `threads need Node 20.16 or later (process.getBuiltinModule); this is Node ${proc.versions.node}`;
  if (typeof SharedArrayBuffer === 'undefined') return 'threads need SharedArrayBuffer, which this runtime does not have';
  const threads = proc.getBuiltinModule('node:worker_threads') as { Worker?: NodeWorkerConstructor } | undefined;
  const os = proc.getBuiltinModule('node:os') as { availableParallelism?: () => number; cpus?: () => unknown[] } | undefined;
  const NodeWorker = threads?.Worker;
  if (NodeWorker === undefined) return 'this runtime has no worker_threads';
  const cores = os?.availableParallelism?.() ?? os?.cpus?.().length ?? 1;
  return {
    cores: Math.max(1, cores),
    blocks: true,
    spawn(start, failed) {
      const worker = new NodeWorker(nodeWorkerEntry(), { workerData: start });
      worker.unref();
      worker.on('error', (error) => failed(error.message));
      return worker;
    },
  };
}

/** What the pool needs of a browser: typed here, so that the core compiles without DOM types. */
interface BrowserGlobals {
  crossOriginIsolated?: boolean;
  document?: unknown;
  navigator?: { hardwareConcurrency?: number };
  Worker?: unknown;
}

/** Module workers in a cross-origin isolated page, or why there are none. */
function browserPlatform(scope: BrowserGlobals): Platform | string {
  if (scope.crossOriginIsolated === undefined || scope.Worker === undefined) {
    return 'threads need Node 20.16 or later (worker_threads) or a cross-origin isolated web page; this runtime is neither';
  }
  if (scope.crossOriginIsolated !== true || typeof SharedArrayBuffer === 'undefined') {
    return 'threads in a browser need a cross-origin isolated page (served with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp), the only pages that may share memory with a worker; this page is not (crossOriginIsolated is false)';
  }
  if (typeof (Atomics as { waitAsync?: unknown }).waitAsync !== 'function') {
    return 'threads in a browser need Atomics.waitAsync, which this browser does not have';
  }
  return {
    cores: Math.max(1, scope.navigator?.hardwareConcurrency ?? 1),
    // A page's main thread may not block; a worker (training off the main thread) may.
    blocks: scope.document === undefined,
    spawn(start, failed) {
      // One expression, as written, so that bundlers (Vite, webpack, Parcel) find the
      // worker's module and emit it beside the bundle.
      const worker = new Worker(new URL('./browser-thread-worker.js', import.meta.url), { type: 'module' });
      worker.addEventListener('error', (event) => failed(event.message || 'the worker module failed to load (./browser-thread-worker.js beside the bundle)'));
      worker.addEventListener('messageerror', () => failed('the worker could not receive a message'));
      worker.postMessage(start);
      return worker;
    },
  };
}

/** This runtime's way to start workers, or why there is none. */
function platformOf(): Platform | string {
  const proc = (globalThis as { process?: { versions?: { node?: string }; getBuiltinModule?: (id: string) => unknown } }).process;
  const node = proc?.versions?.node;
  if (proc !== undefined && node !== undefined) return nodePlatform({ versions: { node }, getBuiltinModule: proc.getBuiltinModule });
  return browserPlatform(globalThis as BrowserGlobals);
}

let platform: Platform | string | undefined;

/** Whether threads can run here: undefined when they can, else why not. */
export function threadSupport(): string | undefined {
  platform ??= platformOf();
  return typeof platform === 'string' ? platform : undefined;
}

/** Threads 'auto' uses: every available core, at most AUTO_THREADS_CAP (1 where threads cannot run). */
export function autoThreadCount(): number {
  platform ??= platformOf();
  return typeof platform === 'string' ? 1 : Math.min(platform.cores, AUTO_THREADS_CAP);
}

/**
 * Node's worker module. Built (dist/*.js) it is plain JS; run from source (.ts, under
 * tsx) the worker must register tsx itself, since a loader hook does not follow a
 * worker thread. The path is put together at run time, so that a bundler does not try
 * to bundle a Node-only file into a page.
 */
function nodeWorkerEntry(): URL {
  const file = ['.', 'node', 'thread-worker'].join('/');
  if (!import.meta.url.endsWith('.ts')) return new URL(`${file}.js`, import.meta.url);
  const worker = new URL(`${file}.ts`, import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(worker)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

/** One call's way into the pool, for a store's kernels: which store, how far to split. */
export interface ThreadUse {
  /** Called with the threads that ran each kernel call (1 when it ran here alone). */
  ran(threads: number): void;
}

/**
 * A pool of `size - 1` workers (the calling thread is the first of `size` threads).
 * Used from the thread that made it, synchronously: a kernel call dispatches and waits.
 */
export class Pool {
  readonly size: number;
  readonly #control: Int32Array;
  readonly #workers: PoolWorker[] = [];
  readonly #blocks: boolean;
  /** Messages posted to each worker so far (CONTROL.POSTED publishes it with an ATTACH). */
  #posted = 0;
  #failed: string | undefined;
  #closed = false;
  #nextId = 1;
  readonly #released = new FinalizationRegistry<number>((id) => this.#post({ release: id }));

  constructor(size: number) {
    platform ??= platformOf();
    if (typeof platform === 'string') throw new RangeError(platform);
    this.size = size;
    this.#blocks = platform.blocks;
    this.#control = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
    const failed = (message: string) => {
      this.#failed ??= message;
    };
    for (let part = 1; part < size; part++) this.#workers.push(platform.spawn({ control: this.#control, part, parts: size }, failed));
  }

  /** Every worker has started and waits for commands. */
  get ready(): boolean {
    return !this.#closed && this.#failed === undefined && Atomics.load(this.#control, READY) === this.#workers.length;
  }

  /** Why the pool cannot run (a worker failed), if it cannot. */
  get failure(): string | undefined {
    return this.#failed;
  }

  /** Resolves when every worker is ready; rejects when one fails. */
  async whenReady(timeoutMs = 30_000): Promise<void> {
    const start = Date.now();
    while (!this.ready) {
      if (this.#failed !== undefined) throw new Error(`ThreadPool: a worker failed to start: ${this.#failed}`);
      if (this.#closed) throw new Error('ThreadPool: closed');
      if (Date.now() - start > timeoutMs) throw new Error(`ThreadPool: workers did not start within ${timeoutMs / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  #post(message: WorkerMessage): void {
    if (this.#closed) return;
    this.#posted++;
    for (const worker of this.#workers) worker.postMessage(message);
  }

  /**
   * Issues the command in the control block to every worker and waits until all are
   * done. Returns the calling thread's part's result (0 without one).
   */
  #broadcast(command: number, ownPart?: () => number): number {
    const control = this.#control;
    const workers = this.#workers.length;
    Atomics.store(control, DONE, 0);
    Atomics.store(control, FLAGS, 0);
    Atomics.store(control, COMMAND, command);
    Atomics.store(control, POSTED, this.#posted);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
    const own = ownPart === undefined ? 0 : ownPart();
    if (this.#blocks) {
      for (let done = Atomics.load(control, DONE), waited = 0; done < workers; done = Atomics.load(control, DONE)) {
        if (Atomics.wait(control, DONE, done, 1000) === 'timed-out' && ++waited >= 30) {
          throw new Error(`ThreadPool: ${workers - done} worker(s) did not answer within 30 s`);
        }
      }
    } else {
      // Polls: the workers started their chunks when this thread started its own.
      const deadline = Date.now() + 30_000;
      for (let spin = 1; Atomics.load(control, DONE) < workers; spin++) {
        if ((spin & 0xffff) === 0 && Date.now() > deadline) {
          throw new Error(`ThreadPool: ${workers - Atomics.load(control, DONE)} worker(s) did not answer within 30 s`);
        }
      }
    }
    return own;
  }

  /**
   * Kernels over `memory` (shared) whose calls of at least `minSplit` elements are split
   * across the pool; `owner` is the object whose collection releases the workers' copies.
   * The pool must be ready.
   */
  kernelsFor(owner: object, memory: WasmMemory, minSplit: number, use: ThreadUse): WasmKernels {
    const id = this.#nextId++;
    const local = instantiateKernels(memory, true, 0);
    this.#post({ attach: id, memory });
    this.#broadcast(ATTACH);
    this.#released.register(owner, id);
    const control = this.#control;
    const size = this.size;
    const own = local.exports;
    const runOwnPart = () => runPart(own, control, 0, size);
    const threaded = (index: number): ((...args: number[]) => number) => {
      const name = KERNEL_NAMES[index]!;
      const pointers = POINTER_COUNT[name];
      const direct = own[name] as (...args: (number | undefined)[]) => number | undefined;
      // Fixed arity, no rest parameters or arrays: a dispatch allocates nothing. Missing
      // arguments store as 0. The result is the OR of every chunk's (the kernels' flags).
      return (a0?: number, a1?: number, a2?: number, a3?: number, a4?: number, a5?: number, a6?: number, a7?: number) => {
        const n = pointers === 1 ? a1! : pointers === 2 ? a2! : pointers === 3 ? a3! : pointers === 4 ? a4! : pointers === 5 ? a5! : a6!;
        if (n < minSplit || this.#closed) {
          use.ran(1);
          return direct(a0, a1, a2, a3, a4, a5, a6, a7) ?? 0;
        }
        control[KERNEL] = index;
        control[STORE] = id;
        control[ARGS] = a0!;
        control[ARGS + 1] = a1!;
        control[ARGS + 2] = a2!;
        control[ARGS + 3] = a3!;
        control[ARGS + 4] = a4!;
        control[ARGS + 5] = a5!;
        control[ARGS + 6] = a6!;
        control[ARGS + 7] = a7!;
        const result = this.#broadcast(RUN, runOwnPart);
        use.ran(size);
        return result | Atomics.load(control, FLAGS);
      };
    };
    // Only the rules' kernels and the gradient scan are split: they are elementwise.
    // firstNonFinite returns an index, which does not combine across chunks (it runs only
    // after the split anyNonFinite found something); the matrix kernels (Muon's, the
    // app's matmul) are not elementwise. Those run here.
    const exports = Object.fromEntries(KERNEL_NAMES.map((name, index) => [name, splits(name) ? threaded(index) : own[name]])) as unknown as KernelExports;
    return { exports, scalars: local.scalars, address: local.address };
  }

  /** Stops the workers; kernels made by this pool run on the calling thread from then on. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.ready) this.#broadcast(EXIT);
    this.#closed = true;
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}

const autoPools = new Map<number, Pool>();

/**
 * The process's shared pool of `size` threads, started on first request (not waited
 * for). Undefined where threads cannot run, or when the pool failed to start.
 */
export function sharedPool(size: number): Pool | undefined {
  if (threadSupport() !== undefined || size < 2) return undefined;
  let pool = autoPools.get(size);
  if (pool === undefined) {
    try {
      pool = new Pool(size);
    } catch {
      // A runtime that looks like Node but cannot start these workers: one thread.
      return undefined;
    }
    autoPools.set(size, pool);
  }
  return pool.failure === undefined ? pool : undefined;
}
