/**
 * A parameter store on the GPU: every parameter in one `GPUBuffer`, every gradient in
 * another, each state buffer of an optimizer in one more, all with the same layout
 * (each tensor at the same element offset, aligned to 64 elements: 256 bytes, WebGPU's
 * least guaranteed storage-offset alignment, so a tensor can be bound on its own).
 *
 *     const store = new GPUParamStore(device, { W1: [784, 100], b1: 100 });
 *     store.write('W1', initial);          // queue.writeBuffer into store.params
 *     // your shaders write gradients into store.grads at store.byteOffset('W1'), or:
 *     store.writeGrad('W1', grad);
 *     opt.update();                        // one dispatch per run of parameters
 *     const w = await store.read('W1');    // read back
 *
 * Nothing here reads back synchronously: a read is a `mapAsync` of a staging buffer.
 */
import { optionError } from '../errors.ts';
import { storeLayout, type Shape } from '../store.ts';

const ALIGN = 64; // elements: 256 bytes

const REGION_USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */

export class GPUParamStore<K extends string = string> {
  readonly device: GPUDevice;
  /** Parameter names, in layout order. */
  readonly names: readonly K[];
  readonly shapes: { readonly [P in K]: readonly number[] };
  /** Element offset of each parameter in every buffer of the store. */
  readonly offsets: { readonly [P in K]: number };
  readonly lengths: { readonly [P in K]: number };
  /** Elements per buffer: every parameter with its alignment gap. */
  readonly regionLength: number;
  /** Every parameter (STORAGE | COPY_SRC | COPY_DST). */
  readonly params: GPUBuffer;
  /** Every gradient, at the parameters' offsets (STORAGE | COPY_SRC | COPY_DST). */
  readonly grads: GPUBuffer;
  readonly #regions: GPUBuffer[] = [];
  readonly #checks = new Set<() => Promise<void>>();

  constructor(device: GPUDevice, shapes: { readonly [P in K]: Shape }) {
    if (device === null || typeof device !== 'object' || typeof (device as Partial<GPUDevice>).createBuffer !== 'function') {
      throw optionError('GPUParamStore', 'device', device, 'a GPUDevice');
    }
    if (shapes === null || typeof shapes !== 'object') throw optionError('GPUParamStore', 'shapes', shapes, 'an object of lengths or shapes');
    this.device = device;
    const layout = storeLayout('GPUParamStore', shapes, ALIGN);
    const cursor = layout.regionLength;
    this.names = layout.names;
    this.shapes = layout.shapes;
    this.offsets = layout.offsets;
    this.lengths = layout.lengths;
    this.regionLength = Math.max(cursor, ALIGN);
    // The refusal flag packs an element index with two bits (kernel.ts SCAN_SHADER).
    if (this.regionLength >= 2 ** 30) throw new RangeError(`GPUParamStore: ${this.regionLength} elements in one buffer; at most 2^30 - 1`);
    // Every kernel binds a whole buffer of the store: it must fit one storage binding.
    const limit = device.limits?.maxStorageBufferBindingSize;
    if (typeof limit === 'number' && this.regionLength * 4 > limit) {
      throw new RangeError(
        `GPUParamStore: ${this.regionLength * 4} bytes per buffer exceed this device's maxStorageBufferBindingSize (${limit}): request the device with a higher limit (adapter.limits says the most) or split the parameters over several stores`,
      );
    }
    this.params = this.createRegion('nesterov params');
    this.grads = this.createRegion('nesterov grads');
  }

  /** A new zero-filled buffer of this store's layout (an optimizer's state buffer); destroyed with the store. */
  createRegion(label: string): GPUBuffer {
    const buffer = this.device.createBuffer({ label, size: this.regionLength * 4, usage: REGION_USAGE });
    this.#regions.push(buffer);
    return buffer;
  }

  /** Byte offset of parameter `name` in every buffer of the store. */
  byteOffset(name: K): number {
    return this.#offsetOf(name) * 4;
  }

  /** Writes a parameter's values (queued: `queue.writeBuffer`). */
  write(name: K, values: Float32Array): void {
    this.#checkValues('write', name, values);
    this.device.queue.writeBuffer(this.params, this.byteOffset(name), values.buffer, values.byteOffset, values.byteLength);
  }

  /** Writes a gradient's values (queued: `queue.writeBuffer`). */
  writeGrad(name: K, values: Float32Array): void {
    this.#checkValues('writeGrad', name, values);
    this.device.queue.writeBuffer(this.grads, this.byteOffset(name), values.buffer, values.byteOffset, values.byteLength);
  }

  /**
   * Called before every read back (a GPUOptimizer with `nonFinite: 'error'` adds its
   * `sync`): a step the device refused is raised there, before the values are read.
   */
  addCheck(check: () => Promise<void>): void {
    this.#checks.add(check);
  }

  removeCheck(check: () => Promise<void>): void {
    this.#checks.delete(check);
  }

  async #settle(): Promise<void> {
    for (const check of [...this.#checks]) await check();
  }

  /**
   * A parameter's values, read back after every step submitted before the call. Throws
   * first the UpdateError of a step the device refused (`nonFinite: 'error'`).
   */
  async read(name: K): Promise<Float32Array> {
    const offset = this.#offsetOf(name);
    await this.#settle();
    const [values] = await readRanges(this.device, this.params, [[offset, this.lengths[name]]]);
    return values!;
  }

  /** A gradient's values, read back. */
  async readGrad(name: K): Promise<Float32Array> {
    const offset = this.#offsetOf(name);
    await this.#settle();
    const [values] = await readRanges(this.device, this.grads, [[offset, this.lengths[name]]]);
    return values!;
  }

  /** Frees every buffer of the store (params, grads, state). */
  destroy(): void {
    for (const buffer of this.#regions) buffer.destroy();
    this.#regions.length = 0;
  }

  /** The name of the parameter holding element `index` of a buffer, if any. */
  nameAt(index: number): K | undefined {
    for (const name of this.names) {
      const offset = this.offsets[name];
      if (index >= offset && index < offset + this.lengths[name]) return name;
    }
    return undefined;
  }

  #offsetOf(name: K): number {
    if (!(this.names as readonly string[]).includes(name)) throw optionError('GPUParamStore', 'name', name, `a parameter of this store (${this.names.join(', ')})`);
    return this.offsets[name];
  }

  #checkValues(owner: string, name: K, values: unknown): void {
    const length = this.lengths[name];
    this.#offsetOf(name);
    if (!(values instanceof Float32Array) || values.length !== length) {
      throw optionError(`GPUParamStore.${owner}`, `values of '${name}'`, values, `a Float32Array of length ${length}`);
    }
  }
}

/**
 * Copies `[offset, length]` element ranges of `source` into one staging buffer and
 * reads them back (one copy command each, one map).
 */
export async function readRanges(device: GPUDevice, source: GPUBuffer, ranges: readonly (readonly [number, number])[]): Promise<Float32Array[]> {
  let total = 0;
  for (const [, length] of ranges) total += Math.ceil(length / 64) * 64;
  const staging = device.createBuffer({ size: Math.max(4, total * 4), usage: 0x01 /* MAP_READ */ | 0x08 /* COPY_DST */ });
  try {
    const encoder = device.createCommandEncoder();
    let at = 0;
    const starts: number[] = [];
    for (const [offset, length] of ranges) {
      starts.push(at);
      // copyBufferToBuffer wants sizes in multiples of 4 bytes: floats are.
      if (length > 0) encoder.copyBufferToBuffer(source, offset * 4, staging, at * 4, length * 4);
      at += Math.ceil(length / 64) * 64;
    }
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(0x0001 /* GPUMapMode.READ */);
    const mapped = new Float32Array(staging.getMappedRange());
    const out = ranges.map(([, length], k) => mapped.slice(starts[k]!, starts[k]! + length));
    staging.unmap();
    return out;
  } finally {
    staging.destroy();
  }
}
