/**
 * What the wrappers around an inner optimizer share (EMA and SWA here, and
 * GradientAccumulation): the parameters a call steps, the check that the inner object is
 * an optimizer, and the checks of a saved wrapper state.
 */
import { isOptimizerLike } from '../contract.ts';
import { StateError, describeValue } from '../errors.ts';
import { WRAPPER_STATE_FORMAT, WRAPPER_STATE_VERSION, paramsOfSavedState, type WrapperStateDict } from '../state.ts';
import { dtypeOf, forEachArray, getArray, isFloatArray, type FloatArray, type ParamSet } from '../types.ts';

/** Calls `visit(param, name)` for the parameters a call steps: `storeNames` of a store, else every one of `params`. */
export function forEachStepped(params: ParamSet, storeNames: readonly string[] | undefined, visit: (param: unknown, name: string) => void): void {
  if (storeNames === undefined) {
    forEachArray(params, visit);
    return;
  }
  for (let i = 0; i < storeNames.length; i++) visit(getArray(params, storeNames[i]!), storeNames[i]!);
}

/** Throws a TypeError unless `inner` has every method of an OptimizerLike. */
export function checkInner(owner: string, inner: unknown): void {
  if (!isOptimizerLike(inner)) {
    throw new TypeError(`${owner}: inner must be an optimizer (check, update, stateDict, loadStateDict, reset, stateBuffersPerParam), got ${describeValue(inner)}`);
  }
}

/**
 * A saved wrapper state checked against a wrapper: format, version, name, the options
 * exactly as `options`, the counters named `counterNames` (integers >= 0), arrays by name.
 * Throws a StateError naming what differs.
 */
export function wrapperState(owner: string, wrapper: string, value: unknown, options: { readonly [key: string]: number }, counterNames: readonly string[]): WrapperStateDict {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new StateError(`${owner}: the state must be an object, got ${describeValue(value)}`);
  const saved = value as Record<string, unknown>;
  if (saved.format !== WRAPPER_STATE_FORMAT || saved.wrapper !== wrapper) {
    throw new StateError(`${owner}: expected a state of wrapper '${wrapper}' (format '${WRAPPER_STATE_FORMAT}'), got format ${describeValue(saved.format)}, wrapper ${describeValue(saved.wrapper)}`);
  }
  if (saved.version !== WRAPPER_STATE_VERSION) throw new StateError(`${owner}: unsupported version ${describeValue(saved.version)} (this library reads ${WRAPPER_STATE_VERSION})`);
  const savedOptions = saved.options;
  if (savedOptions === null || typeof savedOptions !== 'object' || Array.isArray(savedOptions)) throw new StateError(`${owner}: invalid options: ${describeValue(savedOptions)}`);
  const keys = Object.keys(options);
  const savedKeys = Object.keys(savedOptions);
  for (const key of new Set([...keys, ...savedKeys])) {
    const mine = Object.hasOwn(options, key) ? options[key] : undefined;
    const theirs: unknown = Object.hasOwn(savedOptions, key) ? (savedOptions as Record<string, unknown>)[key] : undefined;
    if (!Object.is(mine, theirs)) throw new StateError(`${owner}: the state was saved with ${key} ${describeValue(theirs)}, this ${wrapper} uses ${describeValue(mine)}`);
  }
  const counters = saved.counters;
  if (counters === null || typeof counters !== 'object' || Array.isArray(counters)) throw new StateError(`${owner}: invalid counters: ${describeValue(counters)}`);
  const counterKeys = Object.keys(counters);
  if (counterKeys.length !== counterNames.length || counterNames.some((key) => !Object.hasOwn(counters, key))) {
    throw new StateError(`${owner}: the state has counters [${counterKeys.join(', ')}], expected [${counterNames.join(', ')}]`);
  }
  for (const key of counterNames) {
    const count: unknown = (counters as Record<string, unknown>)[key];
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) throw new StateError(`${owner}: invalid counters.${key}: ${describeValue(count)} (expected an integer >= 0)`);
  }
  for (const field of ['buffers', 'counts'] as const) {
    const record = saved[field];
    if (record === null || typeof record !== 'object' || Array.isArray(record)) throw new StateError(`${owner}: invalid ${field}: ${describeValue(record)}`);
  }
  for (const [name, array] of Object.entries(saved.buffers as object)) {
    if (!isFloatArray(array)) throw new StateError(`${owner}: buffers['${name}'] is ${describeValue(array)}, expected a Float32Array or Float64Array`);
  }
  for (const [name, count] of Object.entries(saved.counts as object)) {
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) throw new StateError(`${owner}: invalid counts['${name}']: ${describeValue(count)} (expected an integer >= 0)`);
  }
  return value as WrapperStateDict;
}

/**
 * The wrapper's arrays must be of parameters the inner state holds, with their length
 * and dtype (when the inner state is of this library's shapes): an array of a parameter
 * the inner optimizer does not know would never be stepped again.
 */
export function checkInnerParams(owner: string, what: string, arrays: ReadonlyMap<string, FloatArray>, inner: unknown): void {
  const records = paramsOfSavedState(inner);
  if (records === undefined) return;
  for (const [name, array] of arrays) {
    const record = records.get(name);
    if (record === undefined) throw new StateError(`${owner}: the ${what} of '${name}' is saved, but the inner state has no parameter '${name}' (it has [${[...records.keys()].join(', ')}])`);
    if (record.length !== array.length || record.dtype !== dtypeOf(array)) {
      throw new StateError(`${owner}: the ${what} of '${name}' is ${array.length} ${dtypeOf(array)}, the inner state's is ${describeValue(record.length)} ${describeValue(record.dtype)}`);
    }
  }
}
