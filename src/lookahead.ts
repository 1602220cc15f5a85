/**
 * Lookahead: a wrapper around any optimizer of this library that keeps a second, slow
 * copy of the weights and pulls it towards the fast ones every k steps. Zhang, Lucas,
 * Hinton & Ba (2019), "Lookahead optimizer: k steps forward, 1 step back", NeurIPS,
 * Algorithm 1 (and the authors' michaelrzhang/lookahead):
 *
 *     s <- p                        (slow weights, at the first update)
 *     every update: the inner optimizer's step on p (the fast weights)
 *     every k-th:   s <- s + alpha (p - s);  p <- s
 *
 * The inner optimizer's state (momentum, Adam's moments) is kept across the sync as it
 * is, the paper's default. Like NAG, Lookahead takes its step from a point ahead of the
 * one it keeps: the fast weights explore k steps, the slow ones move a fraction alpha of
 * the way; alpha = 1 is the inner optimizer alone.
 *
 * A wrapper, not a rule (composition, as optax's wrappers): `new Lookahead(inner, { k, alpha })`
 * has `update`, `stateDict` and `loadStateDict`, and the inner optimizer stays
 * reachable as `.inner` (its lr, its stateOf).
 *
 * Counting: an update counts when the inner optimizer applied it (returns true). A step
 * skipped by `nonFinite: 'skip'` does not count; neither does one whose inner update
 * threw (a bad call changes nothing here either; an overflow error says the inner step
 * was applied: restore the saved state, as it says).
 *
 * Allocation: the slow copy of a parameter is made at its first update; after that an
 * update allocates nothing beyond what the inner optimizer does.
 *
 * Defaults (the paper's): k 5, alpha 0.5.
 */
import { isOptimizerLike, type NonFinitePolicy, type OptimizerLike } from './contract.ts';
import { StateError, UpdateError, describeValue, optionError } from './errors.ts';
import { byArrayType, loopFor } from './kernel.ts';
import { paramsOfSavedState } from './state.ts';
import { dtypeOf, forEachArray, getArray, isFloatArray, type FloatArray, type ParamSet } from './types.ts';
import { checkKnownOptions } from './validate.ts';

/**
 * What Lookahead wraps: an optimizer of this library, a partition, or another wrapper.
 * @deprecated since 0.2.0: use `OptimizerLike`, the one interface every optimizer and wrapper is.
 */
export type WrappableOptimizer = OptimizerLike;

export interface LookaheadOptions {
  /** Inner steps between syncs: an integer >= 1. Default 5. */
  k?: number;
  /** How far the slow weights move towards the fast ones at a sync: in (0, 1]. Default 0.5. */
  alpha?: number;
}

/** The saved state of a Lookahead: its own, with the inner optimizer's nested. */
export interface LookaheadStateDict {
  readonly format: typeof LOOKAHEAD_FORMAT;
  readonly version: 1;
  readonly optimizer: 'Lookahead';
  readonly k: number;
  readonly alpha: number;
  /** Inner steps counted since the last sync, in [0, k). */
  readonly stepsSinceSync: number;
  /** The slow weights, per parameter name (a record without prototype). */
  readonly slow: { readonly [name: string]: FloatArray };
  /** The inner optimizer's stateDict(). */
  readonly inner: unknown;
}

export const LOOKAHEAD_FORMAT = 'nesterov-lookahead';

const OWNER = 'Lookahead';
const OPTION_NAMES = ['k', 'alpha'] as const;

/** s += alpha (p - s); p = s (the value as stored in s: float32 rounding once). A loop per array type (kernel.ts). */
function syncLoop(p: FloatArray, s: FloatArray, n: number, scalars: Float64Array): void {
  const alpha = scalars[0]!;
  for (let i = 0; i < n; i++) {
    const si = s[i]!;
    s[i] = si + alpha * (p[i]! - si);
    p[i] = s[i]!;
  }
}
const SYNC_LOOPS = byArrayType(syncLoop);

/** Calls `visit(param, name)` for the parameters a call steps: `storeNames` of a store, else every one of `params`. */
function forEachStepped(params: ParamSet, storeNames: readonly string[] | undefined, visit: (param: unknown, name: string) => void): void {
  if (storeNames === undefined) {
    forEachArray(params, visit);
    return;
  }
  for (let i = 0; i < storeNames.length; i++) visit(getArray(params, storeNames[i]!), storeNames[i]!);
}

export class Lookahead<I extends OptimizerLike = OptimizerLike> implements OptimizerLike<LookaheadStateDict> {
  readonly inner: I;
  readonly k: number;
  readonly alpha: number;

  readonly #slow = new Map<string, FloatArray>();
  #stepsSinceSync = 0;
  /** alpha, for the sync loop (a double argument to a call that is not inlined is boxed). */
  readonly #scalars = new Float64Array(1);
  // Parameters seen for the first time in the call in progress: [name, slow copy], kept
  // only once the inner step was applied.
  readonly #pending: [string, FloatArray][] = [];

  constructor(inner: I, options: LookaheadOptions = {}) {
    // update, stateDict and loadStateDict are what a Lookahead of its own needs; the rest
    // of OptimizerLike (check, reset, ...) only what a wrapper around the Lookahead asks.
    const candidate = inner as Partial<Record<keyof OptimizerLike, unknown>> | null;
    if (candidate === null || typeof candidate !== 'object' || typeof candidate.update !== 'function' || typeof candidate.stateDict !== 'function' || typeof candidate.loadStateDict !== 'function') {
      throw new TypeError(`${OWNER}: inner must be an optimizer (with update, stateDict and loadStateDict), got ${describeValue(inner)}`);
    }
    checkKnownOptions(OWNER, options, OPTION_NAMES);
    const k = options.k ?? 5;
    if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1) throw optionError(OWNER, 'k', k, 'an integer >= 1');
    const alpha = options.alpha ?? 0.5;
    if (typeof alpha !== 'number' || !(alpha > 0 && alpha <= 1)) throw optionError(OWNER, 'alpha', alpha, 'a number in (0, 1]');
    this.inner = inner;
    this.k = k;
    this.alpha = alpha;
    this.#scalars[0] = alpha;
  }

  /** Inner steps counted since the last sync, in [0, k). */
  get stepsSinceSync(): number {
    return this.#stepsSinceSync;
  }

  /** The slow weights of parameter `name` (undefined before its first update). Do not write to them. */
  slowWeights(name: string): Readonly<FloatArray> | undefined {
    return this.#slow.get(name);
  }

  /** The inner optimizer's policy: Lookahead adds no gradient arithmetic of its own. */
  get nonFinite(): NonFinitePolicy {
    return this.inner.nonFinite ?? 'error';
  }

  /** The inner optimizer's: the slow weights live outside any ParamStore. */
  stateBuffersPerParam(): number {
    return typeof this.inner.stateBuffersPerParam === 'function' ? this.inner.stateBuffersPerParam() : 0;
  }

  /** Checks the step update would take, writing nothing (the slow weights, then the inner optimizer's check). */
  check(params: ParamSet, grads: ParamSet, storeNames?: readonly string[]): boolean {
    try {
      if (params !== null && typeof params === 'object') forEachStepped(params, storeNames, this.#checkParam);
    } finally {
      this.#pending.length = 0;
    }
    if (!isOptimizerLike(this.inner)) {
      throw new TypeError(`${OWNER}.check: the inner optimizer has no check(): a Lookahead inside a wrapper needs an inner OptimizerLike`);
    }
    return this.inner.check(params, grads, storeNames);
  }

  /**
   * The inner optimizer's step, then, every k-th counted step, the sync. Returns what the
   * inner update returns (false: skipped, not counted). Throws, changing nothing here,
   * when a parameter no longer matches its slow weights, or when the inner update throws.
   * `storeNames`: as the inner optimizer's (a part of a ParamStore); only those
   * parameters get slow weights and sync.
   */
  update(params: ParamSet, grads: ParamSet, storeNames?: readonly string[]): boolean {
    this.#pending.length = 0;
    // Not a set of arrays: the inner optimizer's check says so in its words.
    if (params === null || typeof params !== 'object') return this.inner.update(params, grads, storeNames);
    forEachStepped(params, storeNames, this.#checkParam);
    let applied: boolean;
    try {
      applied = this.inner.update(params, grads, storeNames);
    } catch (error) {
      this.#pending.length = 0;
      throw error;
    }
    if (!applied) {
      this.#pending.length = 0;
      return false;
    }
    for (const [name, copy] of this.#pending) this.#slow.set(name, copy);
    this.#pending.length = 0;
    this.#stepsSinceSync += 1;
    if (this.#stepsSinceSync === this.k) {
      this.#stepsSinceSync = 0;
      forEachStepped(params, storeNames, this.#sync);
    }
    return true;
  }

  readonly #checkParam = (param: unknown, name: string): void => {
    if (!isFloatArray(param)) return; // the inner update names it
    const slow = this.#slow.get(name);
    if (slow === undefined) {
      this.#pending.push([name, param.slice()]);
      return;
    }
    if (slow.length !== param.length || slow.constructor !== param.constructor) {
      throw new UpdateError(
        `${OWNER}.update: parameter '${name}' is a ${param.constructor.name} of length ${param.length}, but its slow weights are a ${slow.constructor.name} of length ${slow.length} (call reset('${name}'))`,
        name,
      );
    }
  };

  readonly #sync = (param: unknown, name: string): void => {
    const p = param as FloatArray;
    const s = this.#slow.get(name)!;
    loopFor(SYNC_LOOPS, p)(p, s, p.length, this.#scalars);
  };

  /**
   * Forgets one parameter, or everything: its slow weights and the inner optimizer's
   * state of it (all of them and the count without a name). Both together, so that the
   * state dict stays one the Lookahead loads back (slow weights and inner state name the
   * same parameters).
   */
  reset(name?: string): void {
    if (typeof this.inner.reset === 'function') this.inner.reset(name);
    if (name === undefined) {
      this.#slow.clear();
      this.#stepsSinceSync = 0;
    } else {
      this.#slow.delete(name);
    }
  }

  /** A copy of the whole state: the slow weights, the count, and the inner optimizer's state dict. */
  stateDict(): LookaheadStateDict {
    const slow = Object.create(null) as { [name: string]: FloatArray };
    for (const [name, array] of this.#slow) slow[name] = array.slice();
    return {
      format: LOOKAHEAD_FORMAT,
      version: 1,
      optimizer: 'Lookahead',
      k: this.k,
      alpha: this.alpha,
      stepsSinceSync: this.#stepsSinceSync,
      slow,
      inner: this.inner.stateDict(),
    };
  }

  /**
   * Replaces the whole state (this wrapper's and the inner optimizer's) with a saved one,
   * copied. Everything is validated first, the inner state by the inner optimizer: on
   * any mismatch it throws a StateError and both keep their state.
   */
  loadStateDict(value: unknown): void {
    const owner = `${OWNER}.loadStateDict`;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new StateError(`${owner}: the state must be an object, got ${describeValue(value)}`);
    }
    const saved = value as Record<string, unknown>;
    if (saved.format !== LOOKAHEAD_FORMAT || saved.optimizer !== 'Lookahead') {
      throw new StateError(`${owner}: not a Lookahead state (format ${describeValue(saved.format)}, optimizer ${describeValue(saved.optimizer)})`);
    }
    if (saved.version !== 1) throw new StateError(`${owner}: unsupported version ${describeValue(saved.version)} (this library reads 1)`);
    if (saved.k !== this.k) throw new StateError(`${owner}: the state was saved with k ${describeValue(saved.k)}, this Lookahead uses ${this.k}`);
    if (saved.alpha !== this.alpha) throw new StateError(`${owner}: the state was saved with alpha ${describeValue(saved.alpha)}, this Lookahead uses ${this.alpha}`);
    const count = saved.stepsSinceSync;
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0 || count >= this.k) {
      throw new StateError(`${owner}: invalid stepsSinceSync: ${describeValue(count)} (expected an integer in [0, ${this.k - 1}])`);
    }
    const slow = saved.slow;
    if (slow === null || typeof slow !== 'object' || Array.isArray(slow)) {
      throw new StateError(`${owner}: invalid slow: ${describeValue(slow)} (expected an object of named Float32Array/Float64Array)`);
    }
    const copies = new Map<string, FloatArray>();
    for (const [name, array] of Object.entries(slow)) {
      if (!isFloatArray(array)) throw new StateError(`${owner}: the slow weights of '${name}' are ${describeValue(array)}, expected a Float32Array or Float64Array`);
      const bad = array.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw new StateError(`${owner}: the slow weights of '${name}' are not finite at index ${bad} (${array[bad]})`);
      copies.set(name, array.slice());
    }
    // The inner state's parameters (when it is a state of this library's shapes: a rule's,
    // Muon's, a partition's, a Lookahead's, nested) must be those that have slow weights.
    const records = paramsOfSavedState(saved.inner);
    if (records !== undefined) {
      const names = [...records.keys()].sort();
      const slowNames = [...copies.keys()].sort();
      if (names.length !== slowNames.length || names.some((name, i) => name !== slowNames[i])) {
        throw new StateError(`${owner}: slow weights for [${slowNames.join(', ')}] but the inner state has parameters [${names.join(', ')}]`);
      }
      for (const [name, array] of copies) {
        const record = records.get(name);
        if (record?.length !== array.length || record.dtype !== dtypeOf(array)) {
          throw new StateError(
            `${owner}: the slow weights of '${name}' are ${array.length} ${dtypeOf(array)}, the inner state's are ${describeValue(record?.length)} ${describeValue(record?.dtype)}`,
          );
        }
      }
    }
    this.inner.loadStateDict(saved.inner); // validates; throws with both unchanged
    this.#slow.clear();
    for (const [name, array] of copies) this.#slow.set(name, array);
    this.#stepsSinceSync = count;
  }
}
