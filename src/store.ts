/**
 * A flat parameter store: every parameter, its gradient and up to `stateBuffers`
 * optimizer state buffers live in one contiguous memory, and each named parameter is
 * a typed-array view into it. One kernel call then updates the whole model in place.
 *
 *     const store = new ParamStore({ W1: [784, 100], b1: 100 });  // lengths or shapes
 *     store.params.W1; store.grads.W1;          // Float32Array views into one memory
 *     opt.update(store.params, store.grads);    // one kernel call for all of them
 *
 * Layout: a 512-byte block for the kernels' scalars, then region 0 holds the
 * parameters, region 1 the gradients, regions 2.. the state buffers; inside each region
 * every tensor starts at the same element offset, aligned to 16 elements (64 bytes),
 * the gaps zero. Regions start `regionStride` elements apart: the region's length and a
 * few zero elements more, so that consecutive regions start 13 cache lines apart modulo
 * 4096 bytes (see REGION_SKEW). For float32 the memory is a
 * `WebAssembly.Memory` created at its full size up front and never grown: growing
 * detaches the old buffer, and in V8 any detached ArrayBuffer slows typed-array loops
 * in the whole process.
 */
import { optionError } from './errors.ts';
import type { ArrayOf, Dtype, FloatArray } from './types.ts';
import { AUTO_MIN_ELEMENTS, autoThreadCount, sharedPool, threadSupport, type Pool, type ThreadUse } from './threads.ts';
import { instantiateKernels, SCALAR_BLOCK_DOUBLES, type WasmKernels, type WasmMemory } from './wasm/kernels.ts';

/** Marks the params / grads records of a store, so an optimizer can find the store. */
export const STORE = Symbol('nesterov.ParamStore');

/** What a store needs to know of an optimizer to size its state regions. */
export interface StateSizer {
  /** State buffers per parameter the optimizer keeps at most (SGD 0, Nesterov 1, Adam 2, ...). */
  stateBuffersPerParam(): number;
}

export interface ParamStoreOptions<D extends Dtype = Dtype> {
  /** 'float32' (default; WebAssembly memory, SIMD kernels) or 'float64' (JS kernels). */
  dtype?: D;
  /**
   * State regions to reserve: a count (default 4, the most any one rule here keeps: Prodigy's), or
   * the optimizers that will update this store, to reserve exactly what they keep
   * together (`[new SGD()]` reserves none). Each optimizer claims its own regions on its
   * first update; one that finds too few free is refused with an UpdateError.
   */
  stateBuffers?: number | readonly StateSizer[];
  /**
   * Back the store with shared memory, as threads need (float32 only). Default: true
   * when the store will use threads (see `threads`), false otherwise.
   */
  shared?: boolean;
  /**
   * How many threads run this store's kernel calls (float32 stores, in Node and in
   * cross-origin isolated pages):
   * - `'auto'` (default): every available core (at most 8) for a store of at least
   *   `AUTO_MIN_ELEMENTS` elements per region, and then only for kernel calls that
   *   long (below it a second thread costs more than it saves); one thread for smaller
   *   stores, float64 stores, `shared: false`, and where threads cannot run (pages
   *   without cross-origin isolation; `threadSupport()` says why);
   * - a number `n >= 2`: `n` threads for every kernel call, whatever its size;
   * - `false` or `1`: one thread.
   * The workers start on the first use, without blocking it (the first steps may run on
   * one thread), and never keep the process alive. Results are bit-identical to one
   * thread; `opt.threadsUsed` says how many ran the last step.
   */
  threads?: false | number | 'auto';
}

const ALIGN = 16; // elements
/**
 * Where region r starts, modulo 4096 bytes: r * REGION_SKEW elements (float32: 13 cache
 * lines, 832 bytes). Without it, regions of a length that is a multiple of 1024 floats
 * (1.6e7, a 1024x1024 matrix) start at the same address modulo 4096, and Intel cores
 * take a load of p[i] for a load of the v[i] just stored ("4K aliasing") and make it
 * wait: the kernels run measurably slower on that layout (`npm run bench:layout` times
 * both). An odd number of lines keeps r * 13 distinct modulo 64 lines for every r < 64,
 * and with the four-quarters kernels' streams (a quarter of 1.6e7 floats is 1024 bytes
 * modulo 4096) all twenty streams of five regions start at distinct addresses modulo
 * 4096.
 */
const REGION_SKEW = 13 * ALIGN; // elements
const PAGE = 65536;
/** Bytes before region 0: the kernels' scalar block. */
const HEADER = SCALAR_BLOCK_DOUBLES * 8;

export type Shape = number | readonly number[];

function lengthOf(owner: string, name: string, shape: unknown): { length: number; shape: number[] } {
  const dims = typeof shape === 'number' ? [shape] : Array.isArray(shape) ? (shape as unknown[]) : null;
  if (dims === null || !dims.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw optionError(owner, `shape of '${name}'`, shape, 'a length or an array of dimensions (integers >= 0)');
  }
  return { length: (dims as number[]).reduce((a, b) => a * b, 1), shape: dims as number[] };
}

/** Where each tensor of a store sits in a region: in the shapes' order, each at a multiple of `align` elements. */
export interface StoreLayout<K extends string> {
  readonly names: readonly K[];
  readonly shapes: { readonly [P in K]: readonly number[] };
  readonly offsets: { readonly [P in K]: number };
  readonly lengths: { readonly [P in K]: number };
  /** Elements of one region: the last tensor's end, rounded up to `align`. */
  readonly regionLength: number;
}

/** The layout of `shapes` (checked, errors naming `owner`); shared by the CPU and the GPU stores. */
export function storeLayout<K extends string>(owner: string, shapes: { readonly [P in K]: Shape }, align: number): StoreLayout<K> {
  const names: string[] = [];
  const shapeRecord: Record<string, readonly number[]> = {};
  const offsets: Record<string, number> = {};
  const lengths: Record<string, number> = {};
  let cursor = 0;
  for (const [name, shape] of Object.entries<Shape>(shapes)) {
    const { length, shape: dims } = lengthOf(owner, name, shape);
    names.push(name);
    shapeRecord[name] = Object.freeze(dims);
    offsets[name] = cursor;
    lengths[name] = length;
    cursor += Math.ceil(length / align) * align;
  }
  return {
    names: Object.freeze(names) as readonly K[],
    shapes: Object.freeze(shapeRecord) as { readonly [P in K]: readonly number[] },
    offsets: Object.freeze(offsets) as { readonly [P in K]: number },
    lengths: Object.freeze(lengths) as { readonly [P in K]: number },
    regionLength: cursor,
  };
}

/**
 * `K` is the parameter names and `D` the dtype, both inferred from the constructor's
 * arguments: `new ParamStore({ W1: [784, 100], b1: 100 }).params.W1` is a `Float32Array`,
 * and `.params.W2` does not compile.
 */
export class ParamStore<K extends string = string, D extends Dtype = 'float32'> {
  readonly dtype: D;
  /** Parameter names, in layout order. */
  readonly names: readonly K[];
  readonly shapes: { readonly [P in K]: readonly number[] };
  /** Element offset of each parameter inside every region. */
  readonly offsets: { readonly [P in K]: number };
  readonly lengths: { readonly [P in K]: number };
  /** Elements per region (all parameters with their alignment gaps). */
  readonly regionLength: number;
  /** Elements from the start of one region to the start of the next: `regionLength` and the few zero elements of the skew (see the layout above). */
  readonly regionStride: number;
  readonly stateBuffers: number;
  readonly params: { readonly [P in K]: ArrayOf<D> };
  readonly grads: { readonly [P in K]: ArrayOf<D> };
  /** The WebAssembly memory (float32 stores), created at full size, never grown. */
  readonly memory: WasmMemory | undefined;
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  readonly shared: boolean;
  /**
   * The threads this store's kernel calls use once the workers are up (1: one thread).
   * Under 'auto', the calls shorter than `AUTO_MIN_ELEMENTS` still run on one.
   */
  readonly threads: number;
  #kernels: WasmKernels | null | undefined;
  /** Kernels handed in by `useKernels` (a pool of `startThreads`): they win over the store's own. */
  #attached: WasmKernels | undefined;
  /** The pool this store's own kernels are to use, until they do; then undefined. */
  #pool: Pool | undefined;
  #minSplit = 0;
  /** The most threads a kernel call ran on since `takeThreadsRan` last read it (0: none ran). */
  #threadsRan = 0;
  /** Where the threaded kernels report how many threads ran a call. */
  readonly threadUse: ThreadUse = { ran: (threads: number) => {
    if (threads > this.#threadsRan) this.#threadsRan = threads;
  } };
  /**
   * Who holds state region `2 + k` at parameter `i`: `#holders[k][i]`. Weak, so that an
   * optimizer that is no longer referenced gives its regions back.
   */
  readonly #holders: (WeakRef<object> | undefined)[][];

  constructor(shapes: { readonly [P in K]: Shape }, options: ParamStoreOptions<D> = {}) {
    if (shapes === null || typeof shapes !== 'object') throw optionError('ParamStore', 'shapes', shapes, 'an object of lengths or shapes');
    const dtype = (options.dtype ?? 'float32') as D;
    if (dtype !== 'float32' && dtype !== 'float64') throw optionError('ParamStore', 'dtype', dtype, "'float32' or 'float64'");
    const stateBuffers = stateBuffersOption(options.stateBuffers);
    if (options.shared !== undefined && typeof options.shared !== 'boolean') throw optionError('ParamStore', 'shared', options.shared, 'true or false');
    const threadsOption = threadsOptionOf(options.threads);
    this.dtype = dtype;
    this.stateBuffers = stateBuffers;

    const layout = storeLayout('ParamStore', shapes, ALIGN);
    const cursor = layout.regionLength;
    this.names = layout.names;
    this.shapes = layout.shapes;
    this.offsets = layout.offsets;
    this.lengths = layout.lengths;
    this.regionLength = cursor;
    const elementBytes = dtype === 'float32' ? 4 : 8;
    const pageElements = 4096 / elementBytes;
    // cursor and REGION_SKEW are multiples of ALIGN, so the stride is too.
    this.regionStride = cursor + ((REGION_SKEW - (cursor % pageElements) + pageElements) % pageElements);

    const threads = resolveThreads(threadsOption, options.threads, options.shared, dtype, cursor);
    const shared = options.shared ?? threads > 1;
    this.shared = shared;
    this.threads = threads;
    this.#minSplit = threadsOption === 'auto' ? AUTO_MIN_ELEMENTS : 0;

    const bytes = HEADER + (2 + stateBuffers) * this.regionStride * elementBytes;
    if (dtype === 'float32') {
      const pages = Math.max(1, Math.ceil(bytes / PAGE));
      if (pages > 65536) throw new RangeError(`ParamStore: ${bytes} bytes exceed the 4 GiB of a WebAssembly memory`);
      this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
      this.buffer = this.memory.buffer;
    } else {
      if (shared) throw optionError('ParamStore', 'shared', shared, "false for dtype 'float64' (threads run the float32 WebAssembly kernels)");
      this.memory = undefined;
      this.buffer = new ArrayBuffer(bytes);
    }
    this.params = this.#record(0) as { readonly [P in K]: ArrayOf<D> };
    this.grads = this.#record(1) as { readonly [P in K]: ArrayOf<D> };
    this.#holders = Array.from({ length: stateBuffers }, () => new Array<WeakRef<object> | undefined>(layout.names.length).fill(undefined));
    // The workers start now, in the background: by the first steps they may be up.
    if (threads > 1) this.#pool = sharedPool(threads);
  }

  /**
   * The state regions (2, 3, ...) that `holder` keeps for parameter `name`: the ones it
   * already holds, topped up with free ones to `count`. Regions are per parameter, so
   * two optimizers over different parameters of one store (Muon for matrices, AdamW for
   * biases) each use region 2 at their own offsets, while two over the same parameter
   * get different regions. Returns undefined (claiming nothing) when too few are free.
   * Optimizers call this; a region is zero-filled by its new holder.
   */
  claimState(holder: object, name: string, count: number): number[] | undefined {
    const index = (this.names as readonly string[]).indexOf(name);
    if (index < 0) throw optionError('ParamStore.claimState', 'name', name, 'a parameter of this store');
    const held: number[] = [];
    const free: number[] = [];
    for (let k = 0; k < this.stateBuffers; k++) {
      const owner = this.#holders[k]![index];
      const alive = owner?.deref();
      if (alive === holder) held.push(k);
      else if (alive === undefined) free.push(k);
    }
    if (held.length + free.length < count) return undefined;
    for (const k of free.slice(0, Math.max(0, count - held.length))) {
      this.#holders[k]![index] = new WeakRef(holder);
      held.push(k);
    }
    held.sort((a, b) => a - b);
    return held.slice(0, count).map((k) => 2 + k);
  }

  /** Gives back the regions `holder` keeps for `name`, or for every parameter. */
  releaseState(holder: object, name?: string): void {
    for (const column of this.#holders) {
      column.forEach((owner, i) => {
        if (owner?.deref() === holder && (name === undefined || this.names[i] === name)) column[i] = undefined;
      });
    }
  }

  /** How many state regions at parameter `name` `holder` holds or could claim. */
  freeStateFor(holder: object, name: string): number {
    return this.stateBuffers - this.heldByOthers(holder, name);
  }

  /** How many state regions at parameter `name` other live optimizers hold. */
  heldByOthers(holder: object, name: string): number {
    const index = (this.names as readonly string[]).indexOf(name);
    let count = 0;
    for (const column of this.#holders) {
      const alive = column[index]?.deref();
      if (alive !== undefined && alive !== holder) count++;
    }
    return count;
  }

  #record(region: number): { readonly [name: string]: FloatArray } {
    const record: { [name: string]: FloatArray } = {};
    for (const name of this.names) {
      // defineProperty: a parameter may be named '__proto__'.
      Object.defineProperty(record, name, { value: this.view(region, this.offsets[name], this.lengths[name]), enumerable: true });
    }
    Object.defineProperty(record, STORE, { value: this });
    return Object.freeze(record);
  }

  /** A view of `length` elements at element `offset` of `region` (0 params, 1 grads, 2.. state). */
  view(region: number, offset: number, length: number): FloatArray {
    const byteOffset = this.byteOffset(region, offset);
    return this.dtype === 'float32'
      ? new Float32Array(this.buffer, byteOffset, length)
      : new Float64Array(this.buffer, byteOffset, length);
  }

  /**
   * Runs this store's kernels through `kernels` instead (a thread pool does this), or
   * back on this thread with `undefined`.
   */
  useKernels(kernels: WasmKernels | undefined): void {
    this.#attached = kernels;
  }

  /**
   * The most threads one kernel call of this store ran on since the last call of this
   * method (1 when every call ran on this thread alone; 0 when none ran). Optimizers
   * read it after a step.
   */
  takeThreadsRan(): number {
    const ran = this.#threadsRan;
    this.#threadsRan = 0;
    return ran;
  }

  /** The WebAssembly kernels over this store's memory (float32 stores; null without SIMD support). */
  get kernels(): WasmKernels | null {
    if (this.#attached !== undefined) return this.#attached;
    const pool = this.#pool;
    if (pool !== undefined && this.#kernels !== null && pool.ready) {
      // The workers are up: from this call on, this store's calls are split.
      this.#pool = undefined;
      this.#kernels = pool.kernelsFor(this, this.memory!, this.#minSplit, this.threadUse);
    }
    if (this.#kernels === undefined) {
      if (this.memory === undefined) {
        this.#kernels = null;
      } else {
        try {
          const kernels = instantiateKernels(this.memory, this.shared, 0);
          // One thread: each call reports so (for `opt.threadsUsed`), before the pool is up too.
          this.#kernels = this.threads > 1 ? countedOnOneThread(kernels, this.threadUse) : kernels;
        } catch {
          this.#kernels = null;
        }
      }
    }
    return this.#kernels;
  }

  /** Byte offset of element `offset` of `region`. */
  byteOffset(region: number, offset: number): number {
    return HEADER + (region * this.regionStride + offset) * (this.dtype === 'float32' ? 4 : 8);
  }

  /** The name of the parameter holding element `index` of a region, if any. */
  nameAt(index: number): string | undefined {
    for (const name of this.names) {
      const offset = this.offsets[name]!;
      if (index >= offset && index < offset + this.lengths[name]!) return name;
    }
    return undefined;
  }
}

type ThreadsOption = number | 'auto';

function threadsOptionOf(value: unknown): ThreadsOption {
  if (value === undefined || value === 'auto') return 'auto';
  if (value === false) return 1;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw optionError('ParamStore', 'threads', value, "false, 'auto' or an integer >= 1");
  }
  return value;
}

/** The threads a store of `elements` per region uses, checked against its other options. */
function resolveThreads(option: ThreadsOption, given: unknown, shared: boolean | undefined, dtype: Dtype, elements: number): number {
  if (option === 'auto') {
    if (dtype !== 'float32' || shared === false || elements < AUTO_MIN_ELEMENTS) return 1;
    return autoThreadCount();
  }
  if (option === 1) return 1;
  if (dtype !== 'float32') throw optionError('ParamStore', 'threads', given, "false, 'auto' or 1 for dtype 'float64' (threads run the float32 WebAssembly kernels)");
  if (shared === false) throw optionError('ParamStore', 'threads', given, "false, 'auto' or 1 with shared: false (threads need shared memory)");
  const why = threadSupport();
  if (why !== undefined) throw optionError('ParamStore', 'threads', given, `false, 'auto' or 1 here: ${why}`);
  return option;
}

/** Kernels that report one thread for every call (a threaded store before its pool is up). */
function countedOnOneThread(kernels: WasmKernels, use: ThreadUse): WasmKernels {
  const exports: Record<string, unknown> = {};
  for (const [name, kernel] of Object.entries(kernels.exports as unknown as Record<string, (...args: number[]) => number>)) {
    exports[name] = (a0?: number, a1?: number, a2?: number, a3?: number, a4?: number, a5?: number, a6?: number, a7?: number) => {
      use.ran(1);
      return (kernel as (...args: (number | undefined)[]) => number)(a0, a1, a2, a3, a4, a5, a6, a7);
    };
  }
  return { exports: exports as unknown as WasmKernels['exports'], scalars: kernels.scalars, address: kernels.address };
}

function stateBuffersOption(value: unknown): number {
  if (value === undefined) return 4;
  if (Array.isArray(value)) {
    let total = 0;
    value.forEach((optimizer: unknown, i) => {
      const sizer = optimizer as Partial<StateSizer> | null;
      if (typeof sizer?.stateBuffersPerParam !== 'function') {
        throw optionError('ParamStore', `stateBuffers[${i}]`, optimizer, 'an optimizer of this library');
      }
      total += sizer.stateBuffersPerParam();
    });
    return total;
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw optionError('ParamStore', 'stateBuffers', value, 'an integer >= 0, or the optimizers that will update the store');
  }
  return value;
}

/** A store of any names and dtype. */
export type AnyParamStore = ParamStore<string, Dtype>;

/** The store a params or grads record belongs to, if any. */
export function storeOf(set: unknown): AnyParamStore | undefined {
  if (set === null || typeof set !== 'object') return undefined;
  return (set as { [STORE]?: AnyParamStore })[STORE];
}
