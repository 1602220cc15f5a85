/**
 * Saved optimizer state: a versioned record, its validation, and two encodings.
 *
 * `optimizer.stateDict()` returns an `OptimizerStateDict` holding copies of the
 * buffers as typed arrays (structured-clone safe). `stateToJSON` / `stateFromJSON`
 * make it a JSON string with the buffers as base64 of their little-endian bytes, so
 * NaN, Infinity and every bit of a double survive. `encodeState` / `decodeState` use
 * the safetensors layout (8-byte little-endian header length, JSON header, raw
 * tensor bytes), so other tools can read the buffers; the rest of the record sits
 * in the header's `__metadata__`.
 */
import { StateError, describeValue } from './errors.ts';
import type { Dtype, FloatArray } from './types.ts';
import { dtypeOf } from './types.ts';

export const STATE_FORMAT = 'nesterov/optimizer-state';
export const STATE_VERSION = 1;

export interface ParamStateRecord {
  dtype: Dtype;
  length: number;
  /** Updates applied to this parameter. */
  step: number;
  /** Scalar state besides `step`, by name (NAdam: `muProduct`). */
  scalars: { [name: string]: number };
  /** Per-element state, by name. */
  buffers: { [name: string]: FloatArray };
}

export interface OptimizerStateDict {
  format: typeof STATE_FORMAT;
  version: number;
  /** The optimizer class name, e.g. 'Nesterov'. */
  optimizer: string;
  /** The variant, or null for a rule without variants. */
  variant: string | null;
  /** Updates applied (the step a schedule sees next). */
  stepCount: number;
  /** Updates skipped for non-finite gradients (`nonFinite: 'skip'`). */
  skippedSteps: number;
  params: { [name: string]: ParamStateRecord };
}

function fail(message: string): never {
  throw new StateError(`invalid optimizer state: ${message}`);
}

function isRecord(value: unknown): value is { [key: string]: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Checks the shape of a state dict (any source: a decoder, structuredClone, user code)
 * and returns it typed. Rule-specific checks (which buffers) are the optimizer's.
 */
export function checkStateDict(value: unknown): OptimizerStateDict {
  if (!isRecord(value)) fail(`expected an object, got ${describeValue(value)}`);
  if (value.format !== STATE_FORMAT) fail(`format is ${describeValue(value.format)}, expected "${STATE_FORMAT}"`);
  if (value.version !== STATE_VERSION) fail(`version ${describeValue(value.version)} is not supported (this library reads version ${STATE_VERSION})`);
  if (typeof value.optimizer !== 'string') fail(`optimizer is ${describeValue(value.optimizer)}, expected a name`);
  if (value.variant !== null && typeof value.variant !== 'string') fail(`variant is ${describeValue(value.variant)}`);
  if (!isCount(value.stepCount)) fail(`stepCount is ${describeValue(value.stepCount)}, expected an integer >= 0`);
  if (!isCount(value.skippedSteps)) fail(`skippedSteps is ${describeValue(value.skippedSteps)}, expected an integer >= 0`);
  if (!isRecord(value.params)) fail(`params is ${describeValue(value.params)}, expected an object`);
  for (const [name, record] of Object.entries(value.params)) {
    const where = `params['${name}']`;
    if (!isRecord(record)) fail(`${where} is ${describeValue(record)}`);
    if (record.dtype !== 'float32' && record.dtype !== 'float64') fail(`${where}.dtype is ${describeValue(record.dtype)}`);
    if (!isCount(record.length)) fail(`${where}.length is ${describeValue(record.length)}`);
    if (!isCount(record.step)) fail(`${where}.step is ${describeValue(record.step)}`);
    if (!isRecord(record.scalars)) fail(`${where}.scalars is ${describeValue(record.scalars)}`);
    for (const [key, scalar] of Object.entries(record.scalars)) {
      if (typeof scalar !== 'number') fail(`${where}.scalars.${key} is ${describeValue(scalar)}`);
    }
    if (!isRecord(record.buffers)) fail(`${where}.buffers is ${describeValue(record.buffers)}`);
    const type = record.dtype === 'float32' ? Float32Array : Float64Array;
    for (const [key, buffer] of Object.entries(record.buffers)) {
      if (!(buffer instanceof type)) fail(`${where}.buffers.${key} is ${describeValue(buffer)}, expected a ${type.name}`);
      if (buffer.length !== record.length) fail(`${where}.buffers.${key} has length ${buffer.length}, expected ${record.length}`);
    }
  }
  return value as unknown as OptimizerStateDict;
}

// ---------------------------------------------------------------------------------
// Bytes of typed arrays (little-endian on every platform this library supports).

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function bytesOf(array: FloatArray): Uint8Array {
  if (!LITTLE_ENDIAN) throw new StateError('saving state needs a little-endian platform');
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

function arrayFromBytes(dtype: Dtype, bytes: Uint8Array, where: string): FloatArray {
  if (!LITTLE_ENDIAN) throw new StateError('loading state needs a little-endian platform');
  const size = dtype === 'float32' ? 4 : 8;
  if (bytes.byteLength % size !== 0) fail(`${where} holds ${bytes.byteLength} bytes, not a whole number of ${dtype} values`);
  const copy = bytes.slice(); // aligned, and owned by the result
  return dtype === 'float32'
    ? new Float32Array(copy.buffer, 0, copy.byteLength / 4)
    : new Float64Array(copy.buffer, 0, copy.byteLength / 8);
}

function toBase64(bytes: Uint8Array): string {
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

function fromBase64(text: string, where: string): Uint8Array {
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    fail(`${where} is not base64`);
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// ---------------------------------------------------------------------------------
// JSON

interface JsonParamRecord extends Omit<ParamStateRecord, 'buffers' | 'scalars'> {
  scalars: { [name: string]: number | string };
  buffers: { [name: string]: string };
}

/** Non-finite scalars are written as strings, since JSON has no NaN or Infinity. */
function scalarToJson(value: number): number | string {
  return Number.isFinite(value) ? value : String(value);
}

function scalarFromJson(value: unknown, where: string): number {
  if (typeof value === 'number') return value;
  if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return Number(value);
  fail(`${where} is ${describeValue(value)}, expected a number`);
}

function metadataOf(state: OptimizerStateDict, encodeBuffer: (name: string, key: string, array: FloatArray) => string) {
  const params: { [name: string]: JsonParamRecord } = {};
  for (const [name, record] of Object.entries(state.params)) {
    const scalars: { [key: string]: number | string } = {};
    for (const [key, value] of Object.entries(record.scalars)) scalars[key] = scalarToJson(value);
    const buffers: { [key: string]: string } = {};
    for (const [key, array] of Object.entries(record.buffers)) buffers[key] = encodeBuffer(name, key, array);
    params[name] = { dtype: record.dtype, length: record.length, step: record.step, scalars, buffers };
  }
  return {
    format: state.format,
    version: state.version,
    optimizer: state.optimizer,
    variant: state.variant,
    stepCount: state.stepCount,
    skippedSteps: state.skippedSteps,
    params,
  };
}

function stateFromMetadata(meta: unknown, decodeBuffer: (where: string, dtype: Dtype, value: unknown) => FloatArray): OptimizerStateDict {
  if (!isRecord(meta) || !isRecord(meta.params)) fail('the header has no params record');
  const params: { [name: string]: unknown } = {};
  for (const [name, raw] of Object.entries(meta.params)) {
    const where = `params['${name}']`;
    if (!isRecord(raw) || !isRecord(raw.buffers) || !isRecord(raw.scalars)) fail(`${where} is malformed`);
    const dtype = raw.dtype;
    if (dtype !== 'float32' && dtype !== 'float64') fail(`${where}.dtype is ${describeValue(dtype)}`);
    const scalars: { [key: string]: number } = {};
    for (const [key, value] of Object.entries(raw.scalars)) scalars[key] = scalarFromJson(value, `${where}.scalars.${key}`);
    const buffers: { [key: string]: FloatArray } = {};
    for (const [key, value] of Object.entries(raw.buffers)) buffers[key] = decodeBuffer(`${where}.buffers.${key}`, dtype, value);
    params[name] = { ...raw, scalars, buffers };
  }
  return checkStateDict({ ...meta, params });
}

/** A JSON string of the state; buffers as base64 of their bytes (exact). */
export function stateToJSON(state: OptimizerStateDict): string {
  checkStateDict(state);
  return JSON.stringify(metadataOf(state, (_name, _key, array) => toBase64(bytesOf(array))));
}

/** Parses and validates what `stateToJSON` wrote. */
export function stateFromJSON(text: string): OptimizerStateDict {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    fail(`not JSON (${(error as Error).message})`);
  }
  return stateFromMetadata(parsed, (where, dtype, value) => {
    if (typeof value !== 'string') fail(`${where} is ${describeValue(value)}, expected base64 text`);
    return arrayFromBytes(dtype, fromBase64(value, where), where);
  });
}

// ---------------------------------------------------------------------------------
// safetensors layout

const SAFETENSORS_DTYPE: Record<Dtype, string> = { float32: 'F32', float64: 'F64' };

/**
 * The state in the safetensors layout: tensors named `<param>/<buffer>`, the record
 * (with tensor names in place of buffers) as JSON text in `__metadata__.nesterov`.
 */
export function encodeState(state: OptimizerStateDict): Uint8Array {
  checkStateDict(state);
  const header: { [key: string]: unknown } = {};
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const meta = metadataOf(state, (name, key, array) => {
    const tensor = `${name}/${key}`;
    const bytes = bytesOf(array);
    header[tensor] = { dtype: SAFETENSORS_DTYPE[dtypeOf(array)], shape: [array.length], data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
    return tensor;
  });
  header.__metadata__ = { format: STATE_FORMAT, nesterov: JSON.stringify(meta) };
  let headerText = JSON.stringify(header);
  headerText += ' '.repeat((8 - ((8 + headerText.length) % 8)) % 8); // align the data to 8 bytes
  const headerBytes = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let position = 8 + headerBytes.byteLength;
  for (const chunk of chunks) {
    out.set(chunk, position);
    position += chunk.byteLength;
  }
  return out;
}

/** Reads and validates what `encodeState` wrote. */
export function decodeState(bytes: Uint8Array): OptimizerStateDict {
  if (!(bytes instanceof Uint8Array)) fail(`expected a Uint8Array, got ${describeValue(bytes)}`);
  if (bytes.byteLength < 8) fail(`${bytes.byteLength} bytes is too short for a safetensors header`);
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(bytes.byteLength - 8)) fail(`header length ${headerLength} runs past the end of the ${bytes.byteLength} bytes`);
  const dataStart = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (error) {
    fail(`the safetensors header is not JSON (${(error as Error).message})`);
  }
  if (!isRecord(header) || !isRecord(header.__metadata__) || typeof header.__metadata__.nesterov !== 'string') {
    fail('the safetensors header has no nesterov metadata: not an optimizer state file');
  }
  let meta: unknown;
  try {
    meta = JSON.parse(header.__metadata__.nesterov);
  } catch (error) {
    fail(`the nesterov metadata is not JSON (${(error as Error).message})`);
  }
  const dataLength = bytes.byteLength - dataStart;
  return stateFromMetadata(meta, (where, dtype, tensorName) => {
    if (typeof tensorName !== 'string') fail(`${where} does not name a tensor`);
    const info = header[tensorName];
    if (!isRecord(info) || !Array.isArray(info.data_offsets) || info.data_offsets.length !== 2) fail(`${where}: tensor '${tensorName}' is missing from the header`);
    if (info.dtype !== SAFETENSORS_DTYPE[dtype]) fail(`${where}: tensor '${tensorName}' has dtype ${describeValue(info.dtype)}, expected ${SAFETENSORS_DTYPE[dtype]}`);
    const [begin, end] = info.data_offsets as unknown[];
    if (!isCount(begin) || !isCount(end) || begin > end || end > dataLength) {
      fail(`${where}: tensor '${tensorName}' has data offsets ${describeValue(begin)}..${describeValue(end)} outside the ${dataLength} data bytes`);
    }
    return arrayFromBytes(dtype, bytes.subarray(dataStart + begin, dataStart + end), where);
  });
}
