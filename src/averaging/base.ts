/**
 * What EMA and SWA share (the formulas and the contract are at the top of ../averaging.ts):
 * the averaging loops, and the base class that keeps the averages by name, their counts,
 * swap, the checks and the state dict.
 */
import type { NonFinitePolicy, OptimizerLike } from '../contract.ts';
import { StateError, UpdateError, describeValue } from '../errors.ts';
import { byArrayType, loopFor } from '../kernel.ts';
import { WRAPPER_STATE_FORMAT, WRAPPER_STATE_VERSION, type WrapperStateDict } from '../state.ts';
import { getArray, isFloatArray, type FloatArray, type ParamSet } from '../types.ts';
import { checkInner, checkInnerParams, forEachStepped, wrapperState } from './shared.ts';

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
export abstract class Averaging<I extends OptimizerLike> implements OptimizerLike<WrapperStateDict> {
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
