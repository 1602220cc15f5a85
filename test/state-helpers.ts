/**
 * Helpers for the state tests: read and rebuild files of the safetensors layout as the
 * format's spec describes them (8-byte little-endian header length, JSON header padded
 * with spaces, data), and re-seal a rebuilt file or text with a CRC-32 computed by
 * node:zlib (an implementation independent of the library's), so that a test can
 * make a file whose checksum is right and whose structure is wrong.
 */
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { Adam, AdamW, Lookahead, Muon, Nesterov, partition, type FloatArray, type OptimizerLike, type OptimizerStateDict } from 'nesterov';

export interface SafetensorsParts {
  header: Record<string, unknown>;
  /** The header's bytes as written (JSON and padding). */
  headerText: string;
  data: Uint8Array;
}

export function splitSafetensors(file: Uint8Array): SafetensorsParts {
  const length = Number(Buffer.from(file.buffer, file.byteOffset, 8).readBigUInt64LE(0));
  const headerText = Buffer.from(file.buffer, file.byteOffset + 8, length).toString('utf8');
  return { header: JSON.parse(headerText) as Record<string, unknown>, headerText, data: file.slice(8 + length) };
}

const CHECKSUM_KEY = '"checksum":"crc32:';

/** CRC-32 (zlib) of `bytes` without the 8 bytes at `at`. */
export function crcWithout(bytes: Uint8Array, at: number): string {
  return crc32(bytes.subarray(at + 8), crc32(bytes.subarray(0, at))).toString(16).padStart(8, '0');
}

/** Re-computes the checksum of a file or UTF-8 text, if it has one (the first `"checksum":"crc32:`). */
export function reseal(bytes: Uint8Array): Uint8Array {
  const at = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(CHECKSUM_KEY);
  if (at < 0) return bytes;
  const digitsAt = at + CHECKSUM_KEY.length;
  const out = bytes.slice();
  out.set(Buffer.from(crcWithout(out, digitsAt), 'latin1'), digitsAt);
  return out;
}

export function resealText(text: string): string {
  return Buffer.from(reseal(Buffer.from(text, 'utf8'))).toString('utf8');
}

/**
 * A safetensors file from its parts: the header as `JSON.stringify(header)` followed by
 * `padding` spaces (default: to align the data to 8), the declared length off by
 * `lengthDelta`, then the data; sealed with a fresh checksum.
 */
export function joinSafetensors(header: Record<string, unknown>, data: Uint8Array, options: { padding?: number; lengthDelta?: number; paddingChar?: string } = {}): Uint8Array {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padding = options.padding ?? (8 - ((8 + json.byteLength) % 8)) % 8;
  const headerBytes = Buffer.concat([json, Buffer.from((options.paddingChar ?? ' ').repeat(padding), 'latin1')]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.byteLength + (options.lengthDelta ?? 0)));
  return reseal(new Uint8Array(Buffer.concat([length, headerBytes, data])));
}

/** The nesterov record inside the header's __metadata__. */
export function metadataRecord(header: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse((header.__metadata__ as { nesterov: string }).nesterov) as Record<string, unknown>;
}

export function withMetadataRecord(header: Record<string, unknown>, record: unknown): Record<string, unknown> {
  const metadata = header.__metadata__ as Record<string, string>;
  return { ...header, __metadata__: { ...metadata, nesterov: JSON.stringify(record) } };
}

/**
 * Two state dicts are equal: same fields, same names, same scalars (Object.is) and the
 * same bytes in every buffer. structuredClone makes every record a plain object, so the
 * comparison does not depend on whether a record has a prototype.
 */
export function assertSameState(actual: OptimizerStateDict, expected: OptimizerStateDict, message?: string): void {
  assert.deepStrictEqual(structuredClone(actual), structuredClone(expected), message);
}

// ---------------------------------------------------------------------------------
// Wrappers (partition, Lookahead, nested) to save and resume: a small model of two
// matrices for Muon and two vectors, its gradients a function of the params and the step.

export const SHAPES = { W1: [6, 4], b1: [4], W2: [4, 3], b2: [3] } as const;
export const MATRICES = { W1: [6, 4], W2: [4, 3] } as const;
export const NAMES = Object.keys(SHAPES) as (keyof typeof SHAPES)[];
export const isMatrix = (name: string): boolean => name.startsWith('W');

export type Params = Record<string, FloatArray>;

export function makeParams(): Params {
  const params: Params = {};
  NAMES.forEach((name, k) => {
    const size = SHAPES[name].reduce((a, b) => a * b, 1);
    params[name] = Float64Array.from({ length: size }, (_v, i) => Math.sin(1 + 7 * k + i) / 2);
  });
  return params;
}

/** The gradient of a quadratic plus a step-dependent pull: depends on the params, so the state matters. */
export function gradsAt(params: Params, t: number): Params {
  const grads: Params = {};
  NAMES.forEach((name, k) => {
    const p = params[name]!;
    grads[name] = Float64Array.from(p, (x, i) => x - Math.cos(k + i * t) / 3);
  });
  return grads;
}

/** The configurations a user saves: each makes a fresh, identically configured optimizer. */
export const CONFIGS: Record<string, () => OptimizerLike> = {
  'a partition of Muon and AdamW': () => partition((name) => (isMatrix(name) ? 'muon' : 'adamw'), { muon: new Muon({ shapes: MATRICES }), adamw: new AdamW({ lr: 0.01 }) }),
  'a Lookahead of Nesterov': () => new Lookahead(new Nesterov({ lr: 0.05, momentum: 0.9 }), { k: 3, alpha: 0.5 }),
  'a Lookahead inside a partition': () =>
    partition((name) => (isMatrix(name) ? 'muon' : 'slow'), { muon: new Muon({ shapes: MATRICES }), slow: new Lookahead(new Adam({ lr: 0.02 }), { k: 4, alpha: 0.6 }) }),
  'a partition inside a Lookahead': () =>
    new Lookahead(partition((name) => (isMatrix(name) ? 'muon' : 'adamw'), { muon: new Muon({ shapes: MATRICES }), adamw: new AdamW({ lr: 0.01 }) }), { k: 3, alpha: 0.5 }),
  'a partition inside a partition': () =>
    partition((name) => (name === 'b2' ? 'last' : 'rest'), {
      rest: partition((name) => (isMatrix(name) ? 'muon' : 'nag'), { muon: new Muon({ shapes: MATRICES }), nag: new Nesterov({ lr: 0.05 }) }),
      last: new Adam({ lr: 0.01 }),
    }),
};

export function run(opt: OptimizerLike, params: Params, from: number, to: number): void {
  for (let t = from; t <= to; t++) assert.equal(opt.update(params, gradsAt(params, t)), true);
}

/** Two saved states are the same: structure, names, scalars (Object.is) and every value of every buffer. */
export function assertSameSaved(actual: unknown, expected: unknown, message?: string): void {
  assert.deepStrictEqual(structuredClone(actual), structuredClone(expected), message);
}

/** Steps before a save: not a multiple of any k of CONFIGS, so a Lookahead is saved between two syncs. */
export const N = 5;
