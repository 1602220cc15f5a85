/**
 * Weight averaging: `EMA` (an exponential moving average of the weights) and `SWA`
 * (stochastic weight averaging, the running mean of the weights), each a wrapper around
 * any optimizer of this library. Both are torch's `torch.optim.swa_utils.AveragedModel`:
 *
 *     after each inner step that was applied (and, for SWA, is on its schedule):
 *     first average of a parameter:  avg <- p                          (a copy)
 *     EMA:                           avg <- decay_t avg + (1 - decay_t) p
 *     SWA:                           avg <- avg + (p - avg) / (n + 1)  (n: averages taken)
 *
 * EMA's `decay_t` is `decay`, or with `warmup: { gamma, power }` timm's ModelEmaV3 warm-up
 * `min(decay, 1 - (1 + t / gamma)^-power)`, t the averages taken of the parameter before
 * this one (0 at the first, which therefore copies). SWA averages the inner steps t = 1,
 * 2, ... (counted from 1, steps the inner optimizer applied) with t >= start and
 * (t - start) a multiple of every (Izmailov et al. 2018; torch's `swa_start` loop).
 *
 * The averages are kept in the parameter's dtype; the arithmetic is in double per
 * element, rounded once when stored (torch's float32 arithmetic rounds each operation,
 * so a float32 average can differ from torch's in the last bits).
 *
 * The model is not replaced: `swap(params)` exchanges params and averages in place (call
 * it again to swap back), Keras's `finalize_variable_values` without the finality, for
 * evaluation or a checkpoint of the averaged weights. While swapped, `update` and `check`
 * are refused (an UpdateError that says so, nothing written).
 *
 * A wrapper, not a rule: `new EMA(inner, options)` is an `OptimizerLike` (it nests in a
 * partition, a Lookahead or another wrapper), its `check` is the inner's plus its own, its
 * `nonFinite` and `stateBuffersPerParam()` are the inner's (the averages live outside a
 * ParamStore, as Lookahead's slow weights do). A step the inner optimizer skips or
 * refuses takes no average; nor does one whose inner update throws an overflow error
 * (that error says the step was applied: restore the state saved before it, as it says).
 *
 * Allocation: a parameter's average is made at its first average; after that an update
 * allocates nothing beyond what the inner optimizer does.
 */
import { isOptimizerLike, type NonFinitePolicy, type OptimizerLike } from './contract.ts';
import { StateError, UpdateError, describeValue, optionError } from './errors.ts';
import { byArrayType, loopFor } from './kernel.ts';
import { WRAPPER_STATE_FORMAT, WRAPPER_STATE_VERSION, paramsOfSavedState, type WrapperStateDict } from './state.ts';
import { dtypeOf, forEachArray, getArray, isFloatArray, type FloatArray, type ParamSet } from './types.ts';
import { checkKnownOptions } from './validate.ts';

export interface EMAWarmup {
  /** timm's warmup_gamma: > 0. Default 1. */
  gamma?: number;
  /** timm's warmup_power: > 0. Default 2/3. */
  power?: number;
}

export interface EMAOptions {
  /** The decay of the average: in [0, 1]. Default 0.999. */
  decay?: number;
  /** timm's warm-up of the decay: `min(decay, 1 - (1 + t / gamma)^-power)`. Default: none. */
  warmup?: EMAWarmup;
}

export interface SWAOptions {
  /** The first inner step averaged (steps counted from 1): an integer >= 1. Default 1. */
  start?: number;
  /** Inner steps between averages: an integer >= 1. Default 1. */
  every?: number;
}

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

/** avg = d avg + (1 - d) p, in double, rounded once on store. A loop per array type (kernel.ts). */
function emaLoop(avg: FloatArray, p: FloatArray, n: number, scalars: Float64Array): void {
  const d = scalars[0]!;
  const e = scalars[1]!;
  for (let i = 0; i < n; i++) avg[i] = d * avg[i]! + e * p[i]!;
}
const EMA_LOOPS = byArrayType(emaLoop);

/** avg = avg + (p - avg) / m, m = n + 1 (torch's default avg_fn), in double, rounded once on store. */
function meanLoop(avg: FloatArray, p: FloatArray, n: number, scalars: Float64Array): void {
  const m = scalars[0]!;
  for (let i = 0; i < n; i++) {
    const a = avg[i]!;
    avg[i] = a + (p[i]! - a) / m;
  }
}
const MEAN_LOOPS = byArrayType(meanLoop);

/** exchanges a and b element by element (same type and length). */
function swapLoop(a: FloatArray, b: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const t = a[i]!;
    a[i] = b[i]!;
    b[i] = t;
  }
}
const SWAP_LOOPS = byArrayType(swapLoop);

/**
 * What EMA and SWA share: the averages by name, the counts, swap, the checks and the
 * state dict. A subclass says which steps are averaged and how.
 */
abstract class Averaging<I extends OptimizerLike> implements OptimizerLike<WrapperStateDict> {
  readonly inner: I;
  readonly #owner: string;
  readonly #averages = new Map<string, FloatArray>();
  /** Averages taken of each parameter (torch's n_averaged, per parameter). */
  readonly #counts = new Map<string, number>();
  #steps = 0;
  #swapped = false;
  readonly #checkOwner: string;
  readonly #updateOwner: string;
  #callOwner = '';
  /** The scalars of the averaging loop (a double argument to a call that is not inlined is boxed). */
  protected readonly scalars = new Float64Array(2);

  protected constructor(owner: string, inner: I) {
    checkInner(owner, inner);
    this.#owner = owner;
    this.#checkOwner = `${owner}.check`;
    this.#updateOwner = `${owner}.update`;
    this.inner = inner;
  }

  /** The options, as the state dict records them. */
  protected abstract options(): { [key: string]: number };
  /** Whether the inner step `t` (counted from 1) is averaged. */
  protected abstract averages(t: number): boolean;
  /** avg <- the next average of p, `n` (>= 1) averages taken before: fills `scalars`, runs its loop. */
  protected abstract accumulate(avg: FloatArray, p: FloatArray, n: number): void;

  /** Inner steps applied through this wrapper. */
  get steps(): number {
    return this.#steps;
  }

  /** Whether the params hold the averages (after an odd number of `swap` calls). */
  get swapped(): boolean {
    return this.#swapped;
  }

  /** The inner optimizer's policy: averaging adds no gradient arithmetic. */
  get nonFinite(): NonFinitePolicy {
    return this.inner.nonFinite;
  }

  /** The inner optimizer's: the averages live outside any ParamStore. */
  stateBuffersPerParam(): number {
    return this.inner.stateBuffersPerParam();
  }

  /** Averages taken of parameter `name` (0 before its first). */
  count(name: string): number {
    return this.#counts.get(name) ?? 0;
  }

  /**
   * Copies of the averages, by parameter name (a record without prototype); a parameter
   * not averaged yet is absent. While swapped the averages are in the params: an error.
   */
  averaged(): { [name: string]: FloatArray } {
    if (this.#swapped) throw new UpdateError(`${this.#owner}.averaged: the params hold the averages (swap(params) was called); read them there, or swap back first`, '');
    const out = Object.create(null) as { [name: string]: FloatArray };
    for (const [name, array] of this.#averages) out[name] = array.slice();
    return out;
  }

  /**
   * Exchanges, in place, every averaged parameter with its average: the params then hold
   * the averages (to evaluate, or to save the averaged model) and this wrapper the
   * training weights. Call it again to swap back, bit for bit. `params` (or `storeNames`
   * of a ParamStore) must hold every averaged parameter, with its dtype and length; a
   * parameter without an average (another optimizer's, in a partition) is left as it is.
   * Checked before anything moves.
   */
  swap(params: ParamSet, storeNames?: readonly string[]): void {
    const owner = `${this.#owner}.swap`;
    if (params === null || typeof params !== 'object') throw new TypeError(`${owner}: params must be an object or a Map of named Float32Array/Float64Array, got ${describeValue(params)}`);
    if (this.#averages.size === 0) throw new UpdateError(`${owner}: nothing is averaged yet (${this.#steps} inner steps taken)`, '');
    const chosen = storeNames === undefined ? undefined : new Set(storeNames);
    const targets: [FloatArray, FloatArray][] = [];
    for (const [name, average] of this.#averages) {
      const param = chosen === undefined || chosen.has(name) ? getArray(params, name) : undefined;
      if (param === undefined) throw new UpdateError(`${owner}: parameter '${name}' has an average but is not among the params`, name);
      if (!isFloatArray(param) || param.constructor !== average.constructor || param.length !== average.length) {
        throw new UpdateError(`${owner}: parameter '${name}' is ${describeValue(param)}${isFloatArray(param) ? ` of length ${param.length}` : ''}, its average is a ${average.constructor.name} of length ${average.length}`, name);
      }
      targets.push([param, average]);
    }
    for (const [param, average] of targets) loopFor(SWAP_LOOPS, param)(param, average, param.length);
    this.#swapped = !this.#swapped;
  }

  /** Checks the step update would take, writing nothing: not swapped, the averages fit, then the inner optimizer's check. */
  check(params: ParamSet, grads: ParamSet, storeNames?: readonly string[]): boolean {
    this.#checkCall('check', params, storeNames);
    return this.inner.check(params, grads, storeNames);
  }

  /**
   * The inner optimizer's step, then, when it was applied and is on the schedule, an
   * average of every stepped parameter. Returns what the inner update returns. Throws,
   * changing nothing here, while swapped, when a parameter no longer matches its
   * average, or when the inner update throws.
   */
  update(params: ParamSet, grads: ParamSet, storeNames?: readonly string[]): boolean {
    this.#checkCall('update', params, storeNames);
    if (!this.inner.update(params, grads, storeNames)) return false;
    this.#steps += 1;
    if (this.averages(this.#steps)) forEachStepped(params, storeNames, this.#average);
    return true;
  }

  #checkCall(method: 'check' | 'update', params: ParamSet, storeNames: readonly string[] | undefined): void {
    const owner = method === 'check' ? this.#checkOwner : this.#updateOwner;
    if (this.#swapped) {
      throw new UpdateError(`${owner}: the params hold the averages (swap(params) was called): call swap(params) again to put the training weights back before stepping`, '');
    }
    // Not a set of arrays: the inner optimizer's check says so in its words.
    if (params === null || typeof params !== 'object') return;
    this.#callOwner = owner;
    forEachStepped(params, storeNames, this.#checkParam);
  }

  // Pre-bound (no closure per call); the call's owner in #callOwner.
  readonly #checkParam = (param: unknown, name: string): void => {
    const average = this.#averages.get(name);
    if (average === undefined || !isFloatArray(param)) return; // the inner optimizer names a bad array
    if (param.constructor !== average.constructor || param.length !== average.length) {
      throw new UpdateError(
        `${this.#callOwner}: parameter '${name}' is a ${param.constructor.name} of length ${param.length}, but its average is a ${average.constructor.name} of length ${average.length} (call reset('${name}'))`,
        name,
      );
    }
  };

  readonly #average = (param: unknown, name: string): void => {
    const p = param as FloatArray;
    const average = this.#averages.get(name);
    const n = this.#counts.get(name) ?? 0;
    if (average === undefined || n === 0) this.#averages.set(name, p.slice());
    else this.accumulate(average, p, n);
    this.#counts.set(name, n + 1);
  };

  /** The EMA loop, for a subclass. */
  protected emaStep(avg: FloatArray, p: FloatArray, decay: number): void {
    this.scalars[0] = decay;
    this.scalars[1] = 1 - decay;
    loopFor(EMA_LOOPS, avg)(avg, p, avg.length, this.scalars);
  }

  /** The running-mean loop, for a subclass. */
  protected meanStep(avg: FloatArray, p: FloatArray, n: number): void {
    this.scalars[0] = n + 1;
    loopFor(MEAN_LOOPS, avg)(avg, p, avg.length, this.scalars);
  }

  /**
   * Forgets one parameter (its average, its count and the inner optimizer's state of it),
   * or everything (and the step count). Refused while swapped: the training weights are
   * then in this wrapper.
   */
  reset(name?: string): void {
    if (this.#swapped) throw new UpdateError(`${this.#owner}.reset: the params hold the averages and this wrapper the training weights (swap(params) was called): swap back first`, name ?? '');
    this.inner.reset(name);
    if (name === undefined) {
      this.#averages.clear();
      this.#counts.clear();
      this.#steps = 0;
    } else {
      this.#averages.delete(name);
      this.#counts.delete(name);
    }
  }

  /** A copy of the whole state: the averages, their counts, the step count, whether swapped, and the inner state dict. */
  stateDict(): WrapperStateDict {
    const buffers = Object.create(null) as { [name: string]: FloatArray };
    const counts = Object.create(null) as { [name: string]: number };
    for (const [name, array] of this.#averages) {
      buffers[name] = array.slice();
      counts[name] = this.#counts.get(name)!;
    }
    return {
      format: WRAPPER_STATE_FORMAT,
      version: WRAPPER_STATE_VERSION,
      wrapper: this.#owner,
      options: this.options(),
      counters: { steps: this.#steps, swapped: this.#swapped ? 1 : 0 },
      buffers,
      counts,
      inner: this.inner.stateDict(),
    };
  }

  /**
   * Replaces the whole state (this wrapper's and the inner optimizer's) with a saved one,
   * copied. Everything is validated first, the inner state by the inner optimizer: on
   * any mismatch it throws a StateError and both keep their state.
   */
  loadStateDict(value: unknown): void {
    const owner = `${this.#owner}.loadStateDict`;
    const saved = wrapperState(owner, this.#owner, value, this.options(), ['steps', 'swapped']);
    const steps = saved.counters.steps!;
    const swapped = saved.counters.swapped!;
    if (swapped > 1) throw new StateError(`${owner}: counters.swapped is ${swapped}, expected 0 or 1`);
    const names = Object.keys(saved.buffers);
    const countNames = Object.keys(saved.counts);
    if (countNames.length !== names.length || countNames.some((name) => !Object.hasOwn(saved.buffers, name))) {
      throw new StateError(`${owner}: averages of [${names.join(', ')}] but counts of [${countNames.join(', ')}]`);
    }
    const averages = new Map<string, FloatArray>();
    const counts = new Map<string, number>();
    for (const name of names) {
      const array = saved.buffers[name]!;
      const bad = array.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw new StateError(`${owner}: the average of '${name}' is not finite at index ${bad} (${array[bad]})`);
      const count = saved.counts[name]!;
      if (count < 1 || count > steps) throw new StateError(`${owner}: counts['${name}'] is ${count}, expected an integer in [1, ${steps}] (averages taken of it, at most the steps)`);
      averages.set(name, array.slice());
      counts.set(name, count);
    }
    if (swapped === 1 && names.length === 0) throw new StateError(`${owner}: counters.swapped is 1 but nothing is averaged`);
    checkInnerParams(owner, 'average', averages, saved.inner);
    this.inner.loadStateDict(saved.inner); // validates; throws with both unchanged
    this.#averages.clear();
    this.#counts.clear();
    for (const [name, array] of averages) this.#averages.set(name, array);
    for (const [name, count] of counts) this.#counts.set(name, count);
    this.#steps = steps;
    this.#swapped = swapped === 1;
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

const EMA_OPTION_NAMES = ['decay', 'warmup'] as const;
const WARMUP_OPTION_NAMES = ['gamma', 'power'] as const;

/**
 * An exponential moving average of the weights (torch's AveragedModel with an EMA
 * avg_fn; timm's ModelEmaV3 with `warmup`). `new EMA(inner, { decay: 0.999 })`.
 */
export class EMA<I extends OptimizerLike = OptimizerLike> extends Averaging<I> {
  readonly decay: number;
  /** timm's warm-up of the decay, or undefined. */
  readonly warmup: { readonly gamma: number; readonly power: number } | undefined;

  constructor(inner: I, options: EMAOptions = {}) {
    super('EMA', inner);
    checkKnownOptions('EMA', options, EMA_OPTION_NAMES);
    const decay = options.decay ?? 0.999;
    if (typeof decay !== 'number' || !(decay >= 0 && decay <= 1)) throw optionError('EMA', 'decay', decay, 'a number in [0, 1]');
    this.decay = decay;
    const warmup = options.warmup;
    if (warmup === undefined) {
      this.warmup = undefined;
    } else {
      if (warmup === null || typeof warmup !== 'object' || Array.isArray(warmup)) throw optionError('EMA', 'warmup', warmup, 'an object { gamma, power }');
      checkKnownOptions('EMA warmup', warmup, WARMUP_OPTION_NAMES);
      const gamma = warmup.gamma ?? 1;
      if (typeof gamma !== 'number' || !(gamma > 0 && gamma < Infinity)) throw optionError('EMA', 'warmup.gamma', gamma, 'a finite number > 0');
      const power = warmup.power ?? 2 / 3;
      if (typeof power !== 'number' || !(power > 0 && power < Infinity)) throw optionError('EMA', 'warmup.power', power, 'a finite number > 0');
      this.warmup = { gamma, power };
    }
  }

  /** The decay of the average taken after `t` others of the parameter (t >= 0). */
  decayAt(t: number): number {
    if (this.warmup === undefined) return t === 0 ? 0 : this.decay;
    return Math.min(this.decay, 1 - (1 + t / this.warmup.gamma) ** -this.warmup.power);
  }

  protected options(): { [key: string]: number } {
    return this.warmup === undefined ? { decay: this.decay } : { decay: this.decay, warmupGamma: this.warmup.gamma, warmupPower: this.warmup.power };
  }

  protected averages(): boolean {
    return true;
  }

  protected accumulate(avg: FloatArray, p: FloatArray, n: number): void {
    this.emaStep(avg, p, this.decayAt(n));
  }
}

const SWA_OPTION_NAMES = ['start', 'every'] as const;

/**
 * Stochastic weight averaging: the running mean of the weights over the inner steps t
 * (from 1) with t >= start and (t - start) a multiple of every (torch's AveragedModel
 * with its default avg_fn). `new SWA(inner, { start: 100, every: 10 })`.
 */
export class SWA<I extends OptimizerLike = OptimizerLike> extends Averaging<I> {
  readonly start: number;
  readonly every: number;

  constructor(inner: I, options: SWAOptions = {}) {
    super('SWA', inner);
    checkKnownOptions('SWA', options, SWA_OPTION_NAMES);
    const start = options.start ?? 1;
    if (typeof start !== 'number' || !Number.isSafeInteger(start) || start < 1) throw optionError('SWA', 'start', start, 'an integer >= 1');
    const every = options.every ?? 1;
    if (typeof every !== 'number' || !Number.isSafeInteger(every) || every < 1) throw optionError('SWA', 'every', every, 'an integer >= 1');
    this.start = start;
    this.every = every;
  }

  protected options(): { [key: string]: number } {
    return { start: this.start, every: this.every };
  }

  protected averages(t: number): boolean {
    return t >= this.start && (t - this.start) % this.every === 0;
  }

  protected accumulate(avg: FloatArray, p: FloatArray, n: number): void {
    this.meanStep(avg, p, n);
  }
}
