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
 * the gaps zero. For float32 the memory is a
 * `WebAssembly.Memory` created at its full size up front and never grown: growing
 * detaches the old buffer, and in V8 any detached ArrayBuffer slows typed-array loops
 * in the whole process.
 */
import { optionError } from './errors.ts';
import type { Dtype, FloatArray } from './types.ts';
import { instantiateKernels, SCALAR_BLOCK_DOUBLES, type WasmKernels, type WasmMemory } from './wasm/kernels.ts';

/** Marks the params / grads records of a store, so an optimizer can find the store. */
export const STORE = Symbol('nesterov.ParamStore');

export interface ParamStoreOptions {
  /** 'float32' (default; WebAssembly memory, SIMD kernels) or 'float64' (JS kernels). */
  dtype?: Dtype;
  /** Optimizer state buffers to make room for (default 3: enough for every rule here). */
  stateBuffers?: number;
  /** Back the store with shared memory, as threads need (float32 only). Default false. */
  shared?: boolean;
}

const ALIGN = 16; // elements
const PAGE = 65536;
/** Bytes before region 0: the kernels' scalar block. */
const HEADER = SCALAR_BLOCK_DOUBLES * 8;

export type Shape = number | readonly number[];

function lengthOf(name: string, shape: unknown): { length: number; shape: number[] } {
  const dims = typeof shape === 'number' ? [shape] : Array.isArray(shape) ? (shape as unknown[]) : null;
  if (dims === null || !dims.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw optionError('ParamStore', `shape of '${name}'`, shape, 'a length or an array of dimensions (integers >= 0)');
  }
  return { length: (dims as number[]).reduce((a, b) => a * b, 1), shape: dims as number[] };
}

export class ParamStore {
  readonly dtype: Dtype;
  /** Parameter names, in layout order. */
  readonly names: readonly string[];
  readonly shapes: Readonly<Record<string, readonly number[]>>;
  /** Element offset of each parameter inside every region. */
  readonly offsets: Readonly<Record<string, number>>;
  readonly lengths: Readonly<Record<string, number>>;
  /** Elements per region (all parameters with their alignment gaps). */
  readonly regionLength: number;
  readonly stateBuffers: number;
  readonly params: { readonly [name: string]: FloatArray };
  readonly grads: { readonly [name: string]: FloatArray };
  /** The WebAssembly memory (float32 stores), created at full size, never grown. */
  readonly memory: WasmMemory | undefined;
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  readonly shared: boolean;
  #kernels: WasmKernels | null | undefined;

  constructor(shapes: { readonly [name: string]: Shape }, options: ParamStoreOptions = {}) {
    if (shapes === null || typeof shapes !== 'object') throw optionError('ParamStore', 'shapes', shapes, 'an object of lengths or shapes');
    const dtype = options.dtype ?? 'float32';
    if (dtype !== 'float32' && dtype !== 'float64') throw optionError('ParamStore', 'dtype', dtype, "'float32' or 'float64'");
    const stateBuffers = options.stateBuffers ?? 3;
    if (!Number.isSafeInteger(stateBuffers) || stateBuffers < 0) throw optionError('ParamStore', 'stateBuffers', stateBuffers, 'an integer >= 0');
    const shared = options.shared ?? false;
    if (typeof shared !== 'boolean') throw optionError('ParamStore', 'shared', shared, 'true or false');
    this.dtype = dtype;
    this.stateBuffers = stateBuffers;
    this.shared = shared;

    const names: string[] = [];
    const shapeRecord: Record<string, readonly number[]> = {};
    const offsets: Record<string, number> = {};
    const lengths: Record<string, number> = {};
    let cursor = 0;
    for (const [name, shape] of Object.entries(shapes)) {
      const { length, shape: dims } = lengthOf(name, shape);
      names.push(name);
      shapeRecord[name] = Object.freeze(dims);
      offsets[name] = cursor;
      lengths[name] = length;
      cursor += Math.ceil(length / ALIGN) * ALIGN;
    }
    this.names = Object.freeze(names);
    this.shapes = Object.freeze(shapeRecord);
    this.offsets = Object.freeze(offsets);
    this.lengths = Object.freeze(lengths);
    this.regionLength = cursor;

    const elementBytes = dtype === 'float32' ? 4 : 8;
    const bytes = HEADER + (2 + stateBuffers) * cursor * elementBytes;
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
    this.params = this.#record(0);
    this.grads = this.#record(1);
  }

  #record(region: number): { readonly [name: string]: FloatArray } {
    const record: { [name: string]: FloatArray } = {};
    for (const name of this.names) record[name] = this.view(region, this.offsets[name]!, this.lengths[name]!);
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
    this.#kernels = kernels;
  }

  /** The WebAssembly kernels over this store's memory (float32 stores; null without SIMD support). */
  get kernels(): WasmKernels | null {
    if (this.#kernels === undefined) {
      if (this.memory === undefined) {
        this.#kernels = null;
      } else {
        try {
          this.#kernels = instantiateKernels(this.memory, this.shared, 0);
        } catch {
          this.#kernels = null;
        }
      }
    }
    return this.#kernels;
  }

  /** Byte offset of element `offset` of `region`. */
  byteOffset(region: number, offset: number): number {
    return HEADER + (region * this.regionLength + offset) * (this.dtype === 'float32' ? 4 : 8);
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

/** The store a params or grads record belongs to, if any. */
export function storeOf(set: unknown): ParamStore | undefined {
  if (set === null || typeof set !== 'object') return undefined;
  return (set as { [STORE]?: ParamStore })[STORE];
}
