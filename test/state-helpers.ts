/**
 * Helpers for the state tests: read and rebuild files of the safetensors layout as the
 * format's spec describes them (8-byte little-endian header length, JSON header padded
 * with spaces, data), and re-seal a rebuilt file or text with a CRC-32 computed by
 * node:zlib (an implementation independent of the library's), so that a test can
 * make a file whose checksum is right and whose structure is wrong. Below: the wrapper
 * configurations to save and resume, and the state fuzz's scaffolding (its mutations,
 * and what a refused or an accepted load must leave).
 */
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import {
  Adam,
  AdamW,
  EMA,
  GradientAccumulation,
  Lookahead,
  Muon,
  Nesterov,
  SWA,
  StateError,
  checkSavedState,
  partition,
  stateToJSON,
  type FloatArray,
  type OptimizerLike,
  type OptimizerStateDict,
  type SavedState,
} from 'nesterov';

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

/**
 * The averaging and accumulating wrappers (alone, nested, in a partition, under a
 * Lookahead). Not every update of these steps (a GradientAccumulation micro-batch returns
 * false): drive them with `steps`, not `run`.
 */
export const AVERAGING_CONFIGS: Record<string, () => OptimizerLike> = {
  'an EMA of Adam (warm-up)': () => new EMA(new Adam({ lr: 0.02 }), { decay: 0.95, warmup: { gamma: 2, power: 0.75 } }),
  'an SWA of AdamW (start 2, every 2)': () => new SWA(new AdamW({ lr: 0.01 }), { start: 2, every: 2 }),
  'a GradientAccumulation of Adam (steps 3)': () => new GradientAccumulation(new Adam({ lr: 0.01 }), { steps: 3 }),
  'an EMA around a GradientAccumulation, in a partition with Muon': () =>
    partition((name) => (isMatrix(name) ? 'muon' : 'ema'), { muon: new Muon({ shapes: MATRICES }), ema: new EMA(new GradientAccumulation(new AdamW({ lr: 0.01 }), { steps: 2 })) }),
  'a Lookahead around an SWA': () => new Lookahead(new SWA(new Adam({ lr: 0.01 })), { k: 3 }),
};

/** Updates `from` .. `to` with gradsAt, whether or not each steps the inner optimizer. */
export function steps(opt: OptimizerLike, params: Params, from: number, to: number): void {
  for (let t = from; t <= to; t++) opt.update(params, gradsAt(params, t));
}

// ---------------------------------------------------------------------------------
// The state fuzz's scaffolding (state-fuzz.test.ts).

/** A record without prototype of `entries` (a name may be '__proto__'). */
export function nullPrototype<T>(entries: [string, T][]): { [key: string]: T } {
  const record = Object.create(null) as { [key: string]: T };
  for (const [key, value] of entries) record[key] = value;
  return record;
}

/** One corruption of a byte string. */
export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'swap'; at: number; with: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; byte: number }
  | { kind: 'delete'; at: number }
  | { kind: 'flips'; at: number[]; bit: number };

const fraction = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

/** A mutation of a string of `length` bytes: positions drawn as fractions of it. */
export const mutationArb: fc.Arbitrary<(length: number) => Mutation> = fc.oneof(
  fc.tuple(fraction, fc.integer({ min: 0, max: 7 })).map(([f, bit]) => (n: number): Mutation => ({ kind: 'flip', at: Math.floor(f * n), bit })),
  fc.tuple(fraction, fraction).map(([f, g]) => (n: number): Mutation => ({ kind: 'swap', at: Math.floor(f * n), with: Math.floor(g * n) })),
  fraction.map((f) => (n: number): Mutation => ({ kind: 'truncate', at: Math.floor(f * n) })),
  fc.tuple(fraction, fc.integer({ min: 0, max: 255 })).map(([f, byte]) => (n: number): Mutation => ({ kind: 'insert', at: Math.floor(f * (n + 1)), byte })),
  fraction.map((f) => (n: number): Mutation => ({ kind: 'delete', at: Math.floor(f * n) })),
  fc.tuple(fc.array(fraction, { minLength: 2, maxLength: 5 }), fc.integer({ min: 0, max: 7 })).map(([fs, bit]) => (n: number): Mutation => ({ kind: 'flips', at: fs.map((f) => Math.floor(f * n)), bit })),
);

export function mutate(bytes: Uint8Array, mutation: Mutation): Uint8Array {
  const out = bytes.slice();
  switch (mutation.kind) {
    case 'flip':
      out[mutation.at]! ^= 1 << mutation.bit;
      return out;
    case 'flips':
      for (const at of mutation.at) out[at]! ^= 1 << mutation.bit;
      return out;
    case 'swap':
      out[mutation.at] = bytes[mutation.with]!;
      out[mutation.with] = bytes[mutation.at]!;
      return out;
    case 'truncate':
      return bytes.slice(0, mutation.at);
    case 'insert':
      return new Uint8Array([...bytes.subarray(0, mutation.at), mutation.byte, ...bytes.subarray(mutation.at)]);
    case 'delete':
      return new Uint8Array([...bytes.subarray(0, mutation.at), ...bytes.subarray(mutation.at + 1)]);
  }
}

/** A JSON text with `mutation` applied to its UTF-8 bytes. */
export function mutateText(text: string, makeMutation: (length: number) => Mutation): string {
  const bytes = new TextEncoder().encode(text);
  return new TextDecoder().decode(mutate(bytes, makeMutation(bytes.length)));
}

/** A change of a safetensors file's layout (one tensor's offsets or shape, the declared length, the padding, the tail), re-sealed. */
export interface LayoutChange {
  tensor: number;
  offsets: [number, number] | null;
  shape: number[] | null;
  lengthDelta: number;
  padding: number | null;
  paddingChar: string;
  tail: number;
}

export const layoutChangeArb: fc.Arbitrary<LayoutChange> = fc.record({
  tensor: fc.nat(),
  offsets: fc.option(fc.tuple(fc.integer({ min: 0, max: 80 }), fc.integer({ min: 0, max: 80 }))),
  shape: fc.option(fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 2 })),
  lengthDelta: fc.integer({ min: -3, max: 3 }),
  padding: fc.option(fc.integer({ min: 0, max: 9 })),
  paddingChar: fc.constantFrom(' ', ' ', ' ', '\n', '\t', '\0'),
  tail: fc.integer({ min: -4, max: 9 }),
});

/** `file` with its layout changed and re-sealed with a right checksum; the file as it is when it has no tensor. */
export function changeLayout(file: Uint8Array, change: LayoutChange): Uint8Array {
  const { header, data } = splitSafetensors(file);
  const names = Object.keys(header).filter((key) => key !== '__metadata__');
  if (names.length === 0) return file;
  const name = names[change.tensor % names.length]!;
  const tensor = { ...(header[name] as Record<string, unknown>) };
  if (change.offsets !== null) tensor.data_offsets = change.offsets;
  if (change.shape !== null) tensor.shape = change.shape;
  const changed = { ...header, [name]: tensor };
  const tail = change.tail >= 0 ? new Uint8Array([...data, ...new Uint8Array(change.tail).fill(0x41)]) : data.subarray(0, Math.max(0, data.length + change.tail));
  const options: { padding?: number; lengthDelta: number; paddingChar: string } = { lengthDelta: change.lengthDelta, paddingChar: change.paddingChar };
  if (change.padding !== null) options.padding = change.padding;
  return joinSafetensors(changed, tail, options);
}

/** Puts `value` at the place `path` (indices into the keys at each level) leads to; undefined for the checksum. */
export function putAt(record: unknown, path: readonly number[], value: unknown): unknown {
  let node = record as Record<string, unknown>;
  for (let depth = 0; depth < path.length; depth++) {
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const key = keys[path[depth]! % keys.length]!;
    const next = node[key];
    if (depth === path.length - 1 || typeof next !== 'object' || next === null) {
      if (key === 'checksum') return undefined; // the checksum's position is tested elsewhere
      Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
      break;
    }
    node = next as Record<string, unknown>;
  }
  return record;
}

/** Runs `decode`: a StateError is a refusal; a result must pass `same`; anything else fails the property. */
export function refusedOrSame<T>(decode: () => T, same: (decoded: T) => boolean): boolean {
  let decoded: T;
  try {
    decoded = decode();
  } catch (error) {
    if (error instanceof StateError) return true;
    throw new Error(`not a StateError: ${(error as Error).name}: ${(error as Error).message}`);
  }
  return same(decoded);
}

export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

/** Two saved states are the same: through JSON text, which is exact. */
export const sameSaved = (a: SavedState, b: SavedState): boolean => stateToJSON(a) === stateToJSON(b);

/**
 * Loads `decode()` into a copy of `make()` trained on a state of its own (steps 1 .. 4,
 * other than the file's): refused with a StateError and the optimizer (all its members
 * and inner optimizers) unchanged, or loaded exactly as decoded (and as `expected`, when given).
 */
export function loadsOrKeeps(make: () => OptimizerLike, decode: () => SavedState, expected?: SavedState): boolean {
  const opt = make();
  steps(opt, makeParams(), 1, 4);
  const before = checkSavedState(opt.stateDict());
  let decoded: SavedState;
  try {
    decoded = decode();
    opt.loadStateDict(decoded);
  } catch (error) {
    if (!(error instanceof StateError)) throw new Error(`not a StateError: ${(error as Error).name}: ${(error as Error).message}`);
    if (!sameSaved(checkSavedState(opt.stateDict()), before)) throw new Error(`refused, but the state changed (${error.message})`);
    return true;
  }
  const after = checkSavedState(opt.stateDict());
  if (!sameSaved(after, decoded)) throw new Error('accepted, but the loaded state is not the one the file holds');
  return expected === undefined || sameSaved(after, expected);
}
