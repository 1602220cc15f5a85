/**
 * Helpers for the state tests: read and rebuild files of the safetensors layout as the
 * format's spec describes them (8-byte little-endian header length, JSON header padded
 * with spaces, data), and re-seal a rebuilt file or text with a CRC-32 computed by
 * node:zlib (an implementation independent of the library's), so that a test can
 * make a file whose checksum is right and whose structure is wrong.
 */
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import type { OptimizerStateDict } from 'nesterov';

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
