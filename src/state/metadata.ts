/**
 * The record without its buffers (JSON text; the safetensors metadata)
 */
import { describeValue } from '../errors.ts';
import { dtypeOf, type Dtype, type FloatArray } from '../types.ts';
import { LOOKAHEAD, type OptimizerStateDict, PARTITION, type ParamStateRecord, STATE_FORMAT, STATE_VERSION, type SavedState, WRAPPER, checkDepth, checkNode, childPath, fail, failAt, isRecord, nameRecord } from './records.ts';


interface JsonParamRecord extends Omit<ParamStateRecord, 'buffers' | 'scalars'> {
  scalars: { [name: string]: number | string };
  buffers: { [name: string]: string };
}

/** Non-finite scalars and -0 are written as strings, since JSON has no NaN, Infinity or -0. */
function scalarToJson(value: number): number | string {
  if (Object.is(value, -0)) return '-0';
  return Number.isFinite(value) ? value : String(value);
}

function scalarFromJson(value: unknown, where: string): number {
  if (typeof value === 'number') return value;
  if (value === 'NaN' || value === 'Infinity' || value === '-Infinity' || value === '-0') return Number(value);
  fail(`${where} is ${describeValue(value)}, expected a number`);
}

/** An optimizer's own scalars (a rule with a global phase), as a record of JSON values. */
function scalarsToJson(scalars: { readonly [name: string]: number }): { [name: string]: number | string } {
  const out = nameRecord<number | string>();
  for (const [key, value] of Object.entries(scalars)) out[key] = scalarToJson(value);
  return out;
}

function scalarsFromJson(raw: unknown, where: string): { [name: string]: number } {
  if (!isRecord(raw)) fail(`${where} is ${describeValue(raw)}, expected an object { name: number }`);
  const out = nameRecord<number>();
  for (const [key, value] of Object.entries(raw)) out[key] = scalarFromJson(value, `${where}.${key}`);
  return out;
}

/**
 * Writes a buffer into the record: returns what the record holds in its place (base64
 * text, or a tensor name). `tensor` is the buffer's name in the safetensors layout,
 * `owner` its place in the tree, for errors.
 */
type EncodeBuffer = (tensor: string, owner: string, array: FloatArray) => string;

function metadataOf(state: OptimizerStateDict, at: string, tensorPrefix: string, encodeBuffer: EncodeBuffer) {
  const params = nameRecord<JsonParamRecord>();
  for (const [name, record] of Object.entries(state.params)) {
    const scalars = nameRecord<number | string>();
    for (const [key, value] of Object.entries(record.scalars)) scalars[key] = scalarToJson(value);
    const buffers = nameRecord<string>();
    for (const [key, array] of Object.entries(record.buffers)) {
      buffers[key] = encodeBuffer(`${tensorPrefix}${name}/${key}`, childPath(at, `params['${name}'].buffers.${key}`), array);
    }
    params[name] = { dtype: record.dtype, length: record.length, step: record.step, scalars, buffers };
  }
  const meta: { [key: string]: unknown } = {
    format: state.format,
    version: state.version,
    optimizer: state.optimizer,
    variant: state.variant,
    stepCount: state.stepCount,
    skippedSteps: state.skippedSteps,
    params,
    ...(state.scalars === undefined ? {} : { scalars: scalarsToJson(state.scalars) }),
  };
  // Written only when present, so that a state without it is the file of 0.1.0 byte for byte.
  if (state.hyperparameters !== undefined) meta.hyperparameters = { ...state.hyperparameters };
  return meta;
}

/**
 * The record of a (checked) tree, buffers written by `encodeBuffer`. Tensor names are
 * paths: a partition member's under `<key>/`, a Lookahead's inner state under `inner/`
 * and its slow weights as `slow/<param>`; a single optimizer at the root as in 0.1.0.
 */
export function treeMetadata(state: SavedState, at: string, tensorPrefix: string, encodeBuffer: EncodeBuffer): object {
  if (state.format === PARTITION) {
    const members = nameRecord<object>();
    for (const [key, member] of Object.entries(state.members)) {
      members[key] = treeMetadata(member as SavedState, childPath(at, `members['${key}']`), `${tensorPrefix}${key}/`, encodeBuffer);
    }
    return { format: state.format, members };
  }
  if (state.format === LOOKAHEAD) {
    const slow = nameRecord<{ dtype: Dtype; length: number; data: string }>();
    for (const [name, array] of Object.entries(state.slow)) {
      slow[name] = { dtype: dtypeOf(array), length: array.length, data: encodeBuffer(`${tensorPrefix}slow/${name}`, childPath(at, `slow['${name}']`), array) };
    }
    const inner = treeMetadata(state.inner as SavedState, childPath(at, 'inner'), `${tensorPrefix}inner/`, encodeBuffer);
    return { format: state.format, version: state.version, optimizer: state.optimizer, k: state.k, alpha: state.alpha, stepsSinceSync: state.stepsSinceSync, slow, inner };
  }
  if (state.format === WRAPPER) {
    const options = nameRecord<number | string>();
    for (const [key, value] of Object.entries(state.options)) options[key] = scalarToJson(value);
    const counters = nameRecord<number>();
    for (const [key, value] of Object.entries(state.counters)) counters[key] = value;
    const buffers = nameRecord<{ dtype: Dtype; length: number; data: string }>();
    for (const [name, array] of Object.entries(state.buffers)) {
      buffers[name] = { dtype: dtypeOf(array), length: array.length, data: encodeBuffer(`${tensorPrefix}buffers/${name}`, childPath(at, `buffers['${name}']`), array) };
    }
    const counts = nameRecord<number>();
    for (const [name, value] of Object.entries(state.counts)) counts[name] = value;
    const inner = treeMetadata(state.inner as SavedState, childPath(at, 'inner'), `${tensorPrefix}inner/`, encodeBuffer);
    return { format: state.format, version: state.version, wrapper: state.wrapper, options, counters, buffers, counts, inner };
  }
  return metadataOf(state, at, tensorPrefix, encodeBuffer);
}

type DecodeBuffer = (where: string, dtype: Dtype, value: unknown) => FloatArray;

/** A single optimizer's record from its JSON form, buffers decoded by `decodeBuffer`; only the known fields. */
function stateFromMetadata(meta: { [key: string]: unknown }, at: string, decodeBuffer: DecodeBuffer): unknown {
  if (meta.format !== STATE_FORMAT) failAt(at, `format is ${describeValue(meta.format)}, expected "${STATE_FORMAT}"`);
  if (meta.version !== STATE_VERSION) failAt(at, `version ${describeValue(meta.version)} is not supported (this library reads version ${STATE_VERSION})`);
  if (!isRecord(meta.params)) failAt(at, `params is ${describeValue(meta.params)}, expected an object`);
  const params = nameRecord<unknown>();
  for (const [name, raw] of Object.entries(meta.params)) {
    const where = childPath(at, `params['${name}']`);
    if (!isRecord(raw) || !isRecord(raw.buffers) || !isRecord(raw.scalars)) fail(`${where} is malformed`);
    const dtype = raw.dtype;
    if (dtype !== 'float32' && dtype !== 'float64') fail(`${where}.dtype is ${describeValue(dtype)}`);
    const scalars = nameRecord<number>();
    for (const [key, value] of Object.entries(raw.scalars)) scalars[key] = scalarFromJson(value, `${where}.scalars.${key}`);
    const buffers = nameRecord<FloatArray>();
    for (const [key, value] of Object.entries(raw.buffers)) buffers[key] = decodeBuffer(`${where}.buffers.${key}`, dtype, value);
    params[name] = { dtype, length: raw.length, step: raw.step, scalars, buffers };
  }
  const state: { [key: string]: unknown } = {
    format: meta.format,
    version: meta.version,
    optimizer: meta.optimizer,
    variant: meta.variant,
    stepCount: meta.stepCount,
    skippedSteps: meta.skippedSteps,
    params,
    ...(meta.scalars === undefined ? {} : { scalars: scalarsFromJson(meta.scalars, childPath(at, 'scalars')) }),
  };
  // Absent in files written before run-time hyperparameters existed: they load as before.
  if (meta.hyperparameters !== undefined) state.hyperparameters = meta.hyperparameters;
  return state;
}

/** A tree from its JSON form (not yet checked: checkNode does that on the result). */
function treeFromMetadata(meta: unknown, at: string, depth: number, decodeBuffer: DecodeBuffer): unknown {
  checkDepth(at, depth);
  if (!isRecord(meta)) failAt(at, `expected an object, got ${describeValue(meta)}`);
  if (meta.format === PARTITION) {
    if (!isRecord(meta.members)) failAt(at, `members is ${describeValue(meta.members)}, expected an object { key: state }`);
    const members = nameRecord<unknown>();
    for (const [key, member] of Object.entries(meta.members)) {
      members[key] = treeFromMetadata(member, childPath(at, `members['${key}']`), depth + 1, decodeBuffer);
    }
    return { format: meta.format, members };
  }
  if (meta.format === LOOKAHEAD) {
    if (!isRecord(meta.slow)) failAt(at, `slow is ${describeValue(meta.slow)}, expected an object`);
    const slow = nameRecord<FloatArray>();
    for (const [name, raw] of Object.entries(meta.slow)) {
      const where = childPath(at, `slow['${name}']`);
      if (!isRecord(raw)) fail(`${where} is malformed`);
      const dtype = raw.dtype;
      if (dtype !== 'float32' && dtype !== 'float64') fail(`${where}.dtype is ${describeValue(dtype)}`);
      const array = decodeBuffer(`${where}.data`, dtype, raw.data);
      if (array.length !== raw.length) fail(`${where} holds ${array.length} values, its length says ${describeValue(raw.length)}`);
      slow[name] = array;
    }
    const inner = treeFromMetadata(meta.inner, childPath(at, 'inner'), depth + 1, decodeBuffer);
    return { format: meta.format, version: meta.version, optimizer: meta.optimizer, k: meta.k, alpha: meta.alpha, stepsSinceSync: meta.stepsSinceSync, slow, inner };
  }
  if (meta.format === WRAPPER) {
    if (!isRecord(meta.options)) failAt(at, `options is ${describeValue(meta.options)}, expected an object`);
    if (!isRecord(meta.counters)) failAt(at, `counters is ${describeValue(meta.counters)}, expected an object`);
    if (!isRecord(meta.buffers)) failAt(at, `buffers is ${describeValue(meta.buffers)}, expected an object`);
    if (!isRecord(meta.counts)) failAt(at, `counts is ${describeValue(meta.counts)}, expected an object`);
    const options = nameRecord<number>();
    for (const [key, value] of Object.entries(meta.options)) options[key] = scalarFromJson(value, childPath(at, `options.${key}`));
    const counters = nameRecord<unknown>();
    for (const [key, value] of Object.entries(meta.counters)) counters[key] = value;
    const buffers = nameRecord<FloatArray>();
    for (const [name, raw] of Object.entries(meta.buffers)) {
      const where = childPath(at, `buffers['${name}']`);
      if (!isRecord(raw)) fail(`${where} is malformed`);
      const dtype = raw.dtype;
      if (dtype !== 'float32' && dtype !== 'float64') fail(`${where}.dtype is ${describeValue(dtype)}`);
      const array = decodeBuffer(`${where}.data`, dtype, raw.data);
      if (array.length !== raw.length) fail(`${where} holds ${array.length} values, its length says ${describeValue(raw.length)}`);
      buffers[name] = array;
    }
    const counts = nameRecord<unknown>();
    for (const [name, value] of Object.entries(meta.counts)) counts[name] = value;
    const inner = treeFromMetadata(meta.inner, childPath(at, 'inner'), depth + 1, decodeBuffer);
    return { format: meta.format, version: meta.version, wrapper: meta.wrapper, options, counters, buffers, counts, inner };
  }
  return stateFromMetadata(meta, at, decodeBuffer);
}

/** The checked tree from the record of a file. */
export function stateFromRecord(meta: unknown, decodeBuffer: DecodeBuffer): SavedState {
  return checkNode(treeFromMetadata(meta, '', 0, decodeBuffer), '', 0);
}

/** A pre-release file: say so rather than "no checksum". */
export function refuseVersion1(meta: unknown): void {
  if (isRecord(meta) && meta.format === STATE_FORMAT && meta.version === 1) {
    fail(`version 1 (a pre-release format without a checksum) is not supported: this library reads version ${STATE_VERSION}`);
  }
}
