/**
 * Saved state records: their types and their validation (a single optimizer's record,
 * and the tree of a wrapper's). The encodings (json.ts, safetensors.ts) write and read them.
 */
import { StateError, describeValue } from '../errors.ts';
import type { LOOKAHEAD_FORMAT, LookaheadStateDict } from '../lookahead.ts';
import type { PARTITION_FORMAT, PartitionStateDict } from '../partition.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { isFloatArray } from '../types.ts';

export const STATE_FORMAT = 'nesterov/optimizer-state';
/**
 * 2: the encodings carry a checksum. Version 1 (pre-release, no checksum) is refused:
 * 0.1.0 was never released with it, and reading unchecked files is what let corrupt
 * checkpoints resume silently.
 */
export const STATE_VERSION = 2;

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
  /**
   * Hyperparameters set at run time (`setHyperparameters`), numbers and booleans by option
   * name; absent when none was (and in files written before it existed). A schedule set
   * at run time is not here: a function cannot be saved.
   */
  hyperparameters?: { [option: string]: number | boolean };
  /**
   * The optimizer-level scalars of a rule with a global phase (Prodigy's and
   * D-Adaptation's distance estimate), by name; absent for every other rule.
   */
  scalars?: { [name: string]: number };
}

/**
 * A saved state of any optimizer-like object: a single optimizer's dict, or a wrapper's
 * (partition, Lookahead) holding its members' or its inner optimizer's, nested.
 */
export type SavedState = OptimizerStateDict | PartitionStateDict | LookaheadStateDict | WrapperStateDict;

export const WRAPPER_STATE_FORMAT = 'nesterov/wrapper-state';
export const WRAPPER_STATE_VERSION = 1;

/**
 * The saved state of a wrapper that keeps arrays per parameter beside an inner optimizer
 * (EMA, SWA, GradientAccumulation): one node format for all of them.
 */
export interface WrapperStateDict {
  readonly format: typeof WRAPPER_STATE_FORMAT;
  readonly version: typeof WRAPPER_STATE_VERSION;
  /** The wrapper's class name: 'EMA', 'SWA', 'GradientAccumulation'. */
  readonly wrapper: string;
  /** The options the state was made with, as finite numbers (a load checks they are the wrapper's). */
  readonly options: { readonly [key: string]: number };
  /** The wrapper's counters: integers >= 0. */
  readonly counters: { readonly [key: string]: number };
  /** The wrapper's arrays, by parameter name (a record without prototype). */
  readonly buffers: { readonly [name: string]: FloatArray };
  /** Counters per parameter, by name (EMA, SWA: the averages taken of it): integers >= 0. */
  readonly counts: { readonly [name: string]: number };
  /** The inner optimizer's stateDict(). */
  readonly inner: unknown;
}

/**
 * How deep wrappers may nest in a saved state (a Lookahead in a partition in a partition
 * is depth 2). Far beyond any real model; a bound so that a crafted file or a cyclic
 * object is refused with a StateError rather than overflowing the stack.
 */
export const MAX_STATE_DEPTH = 32;

// The wrappers' format tags (their modules own them; `typeof` keeps these in step
// without a runtime import, which would be a cycle: the wrappers import this module).
export const PARTITION: typeof PARTITION_FORMAT = 'nesterov/partition-state';
export const LOOKAHEAD: typeof LOOKAHEAD_FORMAT = 'nesterov-lookahead';
const LOOKAHEAD_VERSION = 1;
export const WRAPPER: typeof WRAPPER_STATE_FORMAT = WRAPPER_STATE_FORMAT;

export function fail(message: string): never {
  throw new StateError(`invalid optimizer state: ${message}`);
}

/** `fail` for a node of a tree: `at` is its path from the root ('' for the root itself). */
export function failAt(at: string, message: string): never {
  fail(at === '' ? message : `${at}: ${message}`);
}

export function isRecord(value: unknown): value is { [key: string]: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

export function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** A record keyed by arbitrary names: no prototype, so '__proto__' is a key like any other. */
export function nameRecord<T>(): { [name: string]: T } {
  return Object.create(null) as { [name: string]: T };
}

const FROM_JSON_HINT = 'this looks like the text of stateToJSON parsed with JSON.parse: decode the text with stateFromJSON(text) instead';

/**
 * Checks the shape of a state dict (any source: a decoder, structuredClone, user code)
 * and returns it typed. Rule-specific checks (which buffers) are the optimizer's.
 */
export function checkStateDict(value: unknown): OptimizerStateDict {
  return checkSingle(value, '');
}

function checkSingle(value: unknown, at: string): OptimizerStateDict {
  if (typeof value === 'string') {
    failAt(at, `expected an object, got ${describeValue(value)}: to load the text of stateToJSON, pass stateFromJSON(text)`);
  }
  if (!isRecord(value)) failAt(at, `expected an object, got ${describeValue(value)}`);
  if (value.format !== STATE_FORMAT) failAt(at, `format is ${describeValue(value.format)}, expected "${STATE_FORMAT}"`);
  if (value.version !== STATE_VERSION) failAt(at, `version ${describeValue(value.version)} is not supported (this library reads version ${STATE_VERSION})`);
  if (typeof value.checksum === 'string') failAt(at, FROM_JSON_HINT);
  if (typeof value.optimizer !== 'string') failAt(at, `optimizer is ${describeValue(value.optimizer)}, expected a name`);
  if (value.variant !== null && typeof value.variant !== 'string') failAt(at, `variant is ${describeValue(value.variant)}`);
  if (!isCount(value.stepCount)) failAt(at, `stepCount is ${describeValue(value.stepCount)}, expected an integer >= 0`);
  if (!isCount(value.skippedSteps)) failAt(at, `skippedSteps is ${describeValue(value.skippedSteps)}, expected an integer >= 0`);
  if (!isRecord(value.params)) failAt(at, `params is ${describeValue(value.params)}, expected an object`);
  if (value.hyperparameters !== undefined) {
    if (!isRecord(value.hyperparameters)) failAt(at, `hyperparameters is ${describeValue(value.hyperparameters)}, expected an object { option: value }`);
    for (const [key, option] of Object.entries(value.hyperparameters)) {
      if (typeof option !== 'boolean' && !(typeof option === 'number' && Number.isFinite(option))) failAt(at, `hyperparameters.${key} is ${describeValue(option)}, expected a finite number or a boolean`);
    }
  }
  if (value.scalars !== undefined) {
    if (!isRecord(value.scalars)) failAt(at, `scalars is ${describeValue(value.scalars)}, expected an object { name: number }`);
    for (const [key, scalar] of Object.entries(value.scalars)) {
      if (typeof scalar !== 'number') failAt(at, `scalars.${key} is ${describeValue(scalar)}`);
    }
  }
  for (const [name, record] of Object.entries(value.params)) {
    const where = `params['${name}']`;
    if (!isRecord(record)) failAt(at, `${where} is ${describeValue(record)}`);
    if (record.dtype !== 'float32' && record.dtype !== 'float64') failAt(at, `${where}.dtype is ${describeValue(record.dtype)}`);
    if (!isCount(record.length)) failAt(at, `${where}.length is ${describeValue(record.length)}`);
    if (!isCount(record.step)) failAt(at, `${where}.step is ${describeValue(record.step)}`);
    if (!isRecord(record.scalars)) failAt(at, `${where}.scalars is ${describeValue(record.scalars)}`);
    if (!isRecord(record.buffers)) failAt(at, `${where}.buffers is ${describeValue(record.buffers)}`);
    const type = record.dtype === 'float32' ? Float32Array : Float64Array;
    for (const [key, buffer] of Object.entries(record.buffers)) {
      if (typeof buffer === 'string') failAt(at, `${where}.buffers.${key} is ${describeValue(buffer)}, expected a ${type.name}: ${FROM_JSON_HINT}`);
      if (!(buffer instanceof type)) failAt(at, `${where}.buffers.${key} is ${describeValue(buffer)}, expected a ${type.name}`);
      // At most the parameter's length: a shaped state (Adafactor's factored second
      // moment) keeps fewer; the optimizer that loads it checks the exact lengths.
      if (buffer.length > record.length) failAt(at, `${where}.buffers.${key} has length ${buffer.length}, expected ${record.length} or fewer`);
    }
    for (const [key, scalar] of Object.entries(record.scalars)) {
      if (typeof scalar !== 'number') failAt(at, `${where}.scalars.${key} is ${describeValue(scalar)}`);
    }
  }
  return value as unknown as OptimizerStateDict;
}

/** The path of a child node: `members['adamw']`, `inner`, joined by dots. */
export function childPath(at: string, step: string): string {
  return at === '' ? step : `${at}.${step}`;
}

export function checkDepth(at: string, depth: number): void {
  if (depth > MAX_STATE_DEPTH) failAt(at, `wrappers nest deeper than ${MAX_STATE_DEPTH} levels (MAX_STATE_DEPTH): refused (a cyclic or crafted state?)`);
}

/**
 * Checks the shape of a saved state of any optimizer-like object: a single optimizer's
 * dict (as checkStateDict), or a partition's or a Lookahead's, each node checked as
 * deep as it nests (at most MAX_STATE_DEPTH), errors naming the node's path. What a
 * node must hold to fit a given optimizer is that optimizer's loadStateDict's to check.
 */
export function checkSavedState(value: unknown): SavedState {
  return checkNode(value, '', 0);
}

export function checkNode(value: unknown, at: string, depth: number): SavedState {
  checkDepth(at, depth);
  if (!isRecord(value)) return checkSingle(value, at);
  if (value.format === PARTITION) {
    if (typeof value.checksum === 'string') failAt(at, FROM_JSON_HINT);
    const members = value.members;
    if (!isRecord(members)) failAt(at, `members is ${describeValue(members)}, expected an object { key: state }`);
    const keys = Object.keys(members);
    if (keys.length === 0) failAt(at, 'members is empty (a partition has at least one member)');
    for (const key of keys) checkNode(members[key], childPath(at, `members['${key}']`), depth + 1);
    return value as unknown as PartitionStateDict;
  }
  if (value.format === LOOKAHEAD) {
    if (typeof value.checksum === 'string') failAt(at, FROM_JSON_HINT);
    if (value.version !== LOOKAHEAD_VERSION) failAt(at, `version ${describeValue(value.version)} of a Lookahead state is not supported (this library reads version ${LOOKAHEAD_VERSION})`);
    if (value.optimizer !== 'Lookahead') failAt(at, `optimizer is ${describeValue(value.optimizer)}, expected "Lookahead"`);
    const k = value.k;
    if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1) failAt(at, `k is ${describeValue(k)}, expected an integer >= 1`);
    const alpha = value.alpha;
    if (typeof alpha !== 'number' || !(alpha > 0 && alpha <= 1)) failAt(at, `alpha is ${describeValue(alpha)}, expected a number in (0, 1]`);
    const count = value.stepsSinceSync;
    if (!isCount(count) || count >= k) failAt(at, `stepsSinceSync is ${describeValue(count)}, expected an integer in [0, ${k - 1}]`);
    const slow = value.slow;
    if (!isRecord(slow)) failAt(at, `slow is ${describeValue(slow)}, expected an object { name: Float32Array | Float64Array }`);
    for (const [name, array] of Object.entries(slow)) {
      if (typeof array === 'string') failAt(at, `slow['${name}'] is ${describeValue(array)}, expected a Float32Array or Float64Array: ${FROM_JSON_HINT}`);
      if (!isFloatArray(array)) failAt(at, `slow['${name}'] is ${describeValue(array)}, expected a Float32Array or Float64Array`);
    }
    checkNode(value.inner, childPath(at, 'inner'), depth + 1);
    return value as unknown as LookaheadStateDict;
  }
  if (value.format === WRAPPER) {
    if (typeof value.checksum === 'string') failAt(at, FROM_JSON_HINT);
    if (value.version !== WRAPPER_STATE_VERSION) failAt(at, `version ${describeValue(value.version)} of a wrapper state is not supported (this library reads version ${WRAPPER_STATE_VERSION})`);
    if (typeof value.wrapper !== 'string' || value.wrapper === '') failAt(at, `wrapper is ${describeValue(value.wrapper)}, expected the wrapper's name`);
    const options = value.options;
    if (!isRecord(options)) failAt(at, `options is ${describeValue(options)}, expected an object { name: number }`);
    for (const [key, option] of Object.entries(options)) {
      if (typeof option !== 'number' || !Number.isFinite(option)) failAt(at, `options.${key} is ${describeValue(option)}, expected a finite number`);
    }
    const counters = value.counters;
    if (!isRecord(counters)) failAt(at, `counters is ${describeValue(counters)}, expected an object { name: integer }`);
    for (const [key, count] of Object.entries(counters)) {
      if (!isCount(count)) failAt(at, `counters.${key} is ${describeValue(count)}, expected an integer >= 0`);
    }
    const buffers = value.buffers;
    if (!isRecord(buffers)) failAt(at, `buffers is ${describeValue(buffers)}, expected an object { name: Float32Array | Float64Array }`);
    for (const [name, array] of Object.entries(buffers)) {
      if (typeof array === 'string') failAt(at, `buffers['${name}'] is ${describeValue(array)}, expected a Float32Array or Float64Array: ${FROM_JSON_HINT}`);
      if (!isFloatArray(array)) failAt(at, `buffers['${name}'] is ${describeValue(array)}, expected a Float32Array or Float64Array`);
    }
    const counts = value.counts;
    if (!isRecord(counts)) failAt(at, `counts is ${describeValue(counts)}, expected an object { name: integer }`);
    for (const [name, count] of Object.entries(counts)) {
      if (!isCount(count)) failAt(at, `counts['${name}'] is ${describeValue(count)}, expected an integer >= 0`);
    }
    checkNode(value.inner, childPath(at, 'inner'), depth + 1);
    return value as unknown as WrapperStateDict;
  }
  return checkSingle(value, at);
}

/**
 * The parameters a saved state holds state for, by name, with the length and dtype its
 * record gives (a partition's: its members' together; a Lookahead's: its inner
 * optimizer's); undefined when the value is not a state of this library's shapes. For
 * the wrappers' loadStateDict, to check a state against their own parameters before
 * anything is loaded; the value need not be validated yet.
 */
export function paramsOfSavedState(value: unknown, depth = 0): Map<string, { length: unknown; dtype: unknown }> | undefined {
  if (!isRecord(value) || depth > MAX_STATE_DEPTH) return undefined;
  if (value.format === PARTITION) {
    if (!isRecord(value.members)) return undefined;
    const all = new Map<string, { length: unknown; dtype: unknown }>();
    for (const member of Object.values(value.members)) {
      const params = paramsOfSavedState(member, depth + 1);
      if (params === undefined) return undefined;
      for (const [name, record] of params) all.set(name, record);
    }
    return all;
  }
  if (value.format === LOOKAHEAD || value.format === WRAPPER) return paramsOfSavedState(value.inner, depth + 1);
  if (!isRecord(value.params)) return undefined;
  const params = new Map<string, { length: unknown; dtype: unknown }>();
  for (const [name, record] of Object.entries(value.params)) {
    params.set(name, isRecord(record) ? { length: record.length, dtype: record.dtype } : { length: undefined, dtype: undefined });
  }
  return params;
}
