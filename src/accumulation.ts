/**
 * `GradientAccumulation(inner, { steps })`: one step of the inner optimizer per `steps`
 * micro-batches, on the mean of their gradients (optax's `MultiSteps`; PyTorch's loop of
 * `loss.backward()` over micro-batches before one `optimizer.step()`, with the loss
 * divided by `steps`).
 *
 *     calls 1 .. steps-1 of a window:  acc <- acc + g     (params, inner state untouched)
 *     call `steps`:                    inner step with (acc + g) / steps;  acc <- 0
 *
 * `update` returns whether the inner optimizer stepped: false for a micro-batch that was
 * only accumulated (or skipped), the inner update's result at the window's last one.
 * (optax returns zero updates instead; a PyTorch loop asks "did the optimizer step?",
 * which is what a Lookahead or an EMA around this wrapper counts.) `isStepBoundary()`
 * says whether the next call steps; `pendingSteps` counts the micro-batches accumulated.
 *
 * The sum is kept in double (a Float64Array per parameter, whatever its dtype), the mean
 * rounded once to the gradient's dtype. At the last micro-batch the mean is written into
 * the caller's gradient arrays for the inner step (so that a ParamStore's kernels, and a
 * partition around this wrapper, see the arrays they expect) and the gradients are put
 * back, bit for bit, before `update` returns or throws.
 *
 * A non-finite gradient follows the inner optimizer's `nonFinite` policy at accumulation
 * time: 'error' refuses the call (UpdateError, nothing accumulated), 'skip' leaves that
 * micro-batch out (it does not count towards `steps`; `skippedMicroBatches` counts it),
 * 'ignore' accumulates it. A sum that overflows is treated as a non-finite gradient.
 *
 * A window is one set of parameters: a micro-batch after the first of a window must step
 * the same parameters (names and lengths) as the first, else an UpdateError. With
 * `steps: 1` every call goes straight to the inner optimizer (the mean of one is itself).
 *
 * `check` is pure and includes the inner optimizer's check of the call (so a call the
 * inner step would refuse, say with a parameter it has no shape for, is refused at the
 * first micro-batch, not `steps` calls later); it returns false only when the call would
 * be skipped. The accumulators live outside any ParamStore: `stateBuffersPerParam()` is
 * the inner's.
 */
import type { NonFinitePolicy, OptimizerLike } from './contract.ts';
import { checkInner, forEachStepped, wrapperState } from './averaging/shared.ts';
import { StateError, UpdateError, describeValue, optionError } from './errors.ts';
import { byArrayType, loopFor } from './kernel.ts';
import { checkSet } from './optimizer/checks.ts';
import { paramsOfSavedState, WRAPPER_STATE_FORMAT, WRAPPER_STATE_VERSION, type WrapperStateDict } from './state.ts';
import { getArray, isFloatArray, type FloatArray, type ParamSet } from './types.ts';
import { checkKnownOptions } from './validate.ts';

export interface GradientAccumulationOptions {
  /** Micro-batches per inner step: an integer >= 1 (1: every call steps). Required. */
  steps?: number;
}

const OWNER = 'GradientAccumulation';

/** Stands in for the call's grads between calls (a new `{}` per call would allocate). */
const NO_ARRAYS: ParamSet = Object.freeze({});

/** sum = g (the window's first micro-batch), or sum += g. A loop per array type (kernel.ts). */
function addLoop(g: FloatArray, s: Float64Array, n: number, first: boolean): void {
  if (first) for (let i = 0; i < n; i++) s[i] = g[i]!;
  else for (let i = 0; i < n; i++) s[i] = s[i]! + g[i]!;
}
const ADD_LOOPS = byArrayType(addLoop);

/** g = (s + g) / k rounded to g's type, s = the old g (exact in a double). */
function meanLoop(g: FloatArray, s: Float64Array, n: number, k: number): void {
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    g[i] = (s[i]! + gi) / k;
    s[i] = gi;
  }
}
const MEAN_LOOPS = byArrayType(meanLoop);

/** g = s (the caller's gradient back), s = 0. */
function restoreLoop(g: FloatArray, s: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    g[i] = s[i]!;
    s[i] = 0;
  }
}
const RESTORE_LOOPS = byArrayType(restoreLoop);

/** The index of the first element where g, or s + g, is not finite; -1 when none. */
function firstNonFiniteSumLoop(g: FloatArray, s: Float64Array | undefined, n: number): number {
  if (s === undefined) {
    for (let i = 0; i < n; i++) if (g[i]! - g[i]! !== 0) return i;
    return -1;
  }
  for (let i = 0; i < n; i++) {
    const total = s[i]! + g[i]!;
    if (total - total !== 0) return i; // NaN for NaN and +-Infinity, 0 otherwise
  }
  return -1;
}
const FINITE_LOOPS = byArrayType(firstNonFiniteSumLoop);
const OPTION_NAMES = ['steps'] as const;
const CHECK_OWNER = `${OWNER}.check`;
const UPDATE_OWNER = `${OWNER}.update`;

/** What a call does: leave the micro-batch out, add it to the sums, or step the inner optimizer. */
type Action = 'skip' | 'accumulate' | 'step';

export class GradientAccumulation<I extends OptimizerLike = OptimizerLike> implements OptimizerLike<WrapperStateDict> {
  readonly inner: I;
  readonly steps: number;

  /** The sums of the window's gradients, by parameter name (kept between windows: no allocation per window). */
  readonly #sums = new Map<string, Float64Array>();
  /**
   * The parameters of the current window (while `#pending > 0`); between windows, the last
   * window's, kept so that a window of the same parameters reuses the set (clearing a Set
   * allocates a new table).
   */
  readonly #window = new Set<string>();
  /** Set by the check of a window's first micro-batch: its parameters are not the last window's. */
  #newWindow = false;
  #inWindow = 0;
  #pending = 0;
  #skipped = 0;
  // The call in progress, read by the pre-bound visitors (no closure per call).
  #grads: ParamSet = NO_ARRAYS;
  #owner = '';
  #seen = 0;
  #finite = true;

  constructor(inner: I, options: GradientAccumulationOptions = {}) {
    checkInner(OWNER, inner);
    checkKnownOptions(OWNER, options, OPTION_NAMES);
    const steps = options.steps;
    if (typeof steps !== 'number' || !Number.isSafeInteger(steps) || steps < 1) throw optionError(OWNER, 'steps', steps, 'an integer >= 1');
    this.inner = inner;
    this.steps = steps;
  }

  /** Micro-batches accumulated since the last inner step, in [0, steps). */
  get pendingSteps(): number {
    return this.#pending;
  }

  /** Micro-batches left out for a non-finite gradient (`nonFinite: 'skip'`). */
  get skippedMicroBatches(): number {
    return this.#skipped;
  }

  /** Whether the next accepted micro-batch completes the window (the call steps the inner optimizer). */
  isStepBoundary(): boolean {
    return this.#pending === this.steps - 1;
  }

  /** The inner optimizer's policy, applied here to each micro-batch as it is accumulated. */
  get nonFinite(): NonFinitePolicy {
    return this.inner.nonFinite;
  }

  /** The inner optimizer's: the sums live outside any ParamStore. */
  stateBuffersPerParam(): number {
    return this.inner.stateBuffersPerParam();
  }

  /**
   * Checks the call update would make, writing nothing: the inner optimizer's check, the
   * window's parameters, the finiteness of the gradients and of the sums. False when the
   * micro-batch would be skipped (`nonFinite: 'skip'`), true when it would be accumulated
   * or stepped.
   */
  check(params: ParamSet, grads: ParamSet, storeNames?: readonly string[]): boolean {
    if (this.steps === 1) return this.inner.check(params, grads, storeNames);
    return this.#checkCall('check', params, grads, storeNames) !== 'skip';
  }

  /**
   * Adds the micro-batch to the sums, or, at the window's last one, steps the inner
   * optimizer once with the mean. Returns whether the inner optimizer stepped. Throws,
   * changing nothing (params, grads, sums, inner state), when the call is refused.
   */
  update(params: ParamSet, grads: ParamSet, storeNames?: readonly string[]): boolean {
    if (this.steps === 1) return this.inner.update(params, grads, storeNames); // the mean of one is itself
    const action = this.#checkCall('update', params, grads, storeNames);
    if (action === 'skip') {
      this.#skipped += 1;
      return false;
    }
    this.#grads = grads;
    try {
      if (action === 'accumulate') {
        if (this.#pending === 0 && this.#newWindow) this.#window.clear();
        forEachStepped(params, storeNames, this.#accumulate);
        this.#pending += 1;
        return false;
      }
      // The mean into the caller's gradients, each gradient kept in its sum's place (exact:
      // a double holds any float32 or float64), put back whatever the inner update does.
      // The inner check passed above, so what the inner update can still throw is an
      // overflow, which it reports as applied: the window is then spent.
      forEachStepped(params, storeNames, this.#writeMean);
      try {
        return this.inner.update(params, grads, storeNames);
      } finally {
        forEachStepped(params, storeNames, this.#restore);
        this.#pending = 0;
      }
    } finally {
      this.#grads = NO_ARRAYS;
    }
  }

  readonly #accumulate = (_param: unknown, name: string): void => {
    const g = getArray(this.#grads, name) as FloatArray;
    let sum = this.#sums.get(name);
    const first = this.#pending === 0;
    if (first) {
      if (sum?.length !== g.length) {
        sum = new Float64Array(g.length);
        this.#sums.set(name, sum);
      }
      if (this.#newWindow) this.#window.add(name);
    }
    loopFor(ADD_LOOPS, g)(g, sum!, g.length, first);
  };

  readonly #writeMean = (_param: unknown, name: string): void => {
    const g = getArray(this.#grads, name) as FloatArray;
    loopFor(MEAN_LOOPS, g)(g, this.#sums.get(name)!, g.length, this.steps);
  };

  readonly #restore = (_param: unknown, name: string): void => {
    const g = getArray(this.#grads, name) as FloatArray;
    loopFor(RESTORE_LOOPS, g)(g, this.#sums.get(name)!, g.length);
  };

  /** Every check of a call; writes nothing. */
  #checkCall(method: 'check' | 'update', params: ParamSet, grads: ParamSet, storeNames: readonly string[] | undefined): Action {
    const owner = method === 'check' ? CHECK_OWNER : UPDATE_OWNER;
    // The inner optimizer's check names a bad call in its words (types, names, aliasing,
    // schedules, modes); a micro-batch it would skip is skipped here.
    if (!this.inner.check(params, grads, storeNames)) return 'skip';
    checkSet(owner, 'params', params);
    checkSet(owner, 'grads', grads);
    this.#owner = owner;
    this.#grads = grads;
    this.#seen = 0;
    this.#inWindow = 0;
    this.#finite = true;
    try {
      forEachStepped(params, storeNames, this.#checkParam);
      this.#newWindow = this.#pending === 0 && (this.#inWindow !== this.#seen || this.#seen !== this.#window.size);
      if (this.#pending > 0 && this.#seen !== this.#window.size) {
        const missing = [...this.#window].filter((name) => getArray(params, name) === undefined || (storeNames !== undefined && !storeNames.includes(name)));
        throw new UpdateError(`${owner}: parameter${missing.length === 1 ? '' : 's'} [${missing.join(', ')}] of this window's first micro-batch missing (${this.#pending} of ${this.steps} accumulated); call reset() to drop the window`, missing[0] ?? '');
      }
      if (!this.#finite) return 'skip';
    } finally {
      this.#grads = NO_ARRAYS;
    }
    return this.#pending === this.steps - 1 ? 'step' : 'accumulate';
  }

  // Pre-bound (no closure per call): the call in #owner, #grads; counts into #seen, #finite.
  readonly #checkParam = (param: unknown, name: string): void => {
    const owner = this.#owner;
    const g = getArray(this.#grads, name);
    if (!isFloatArray(param) || !isFloatArray(g) || g.length !== param.length) {
      throw new UpdateError(`${owner}: gradient '${name}' must be a ${isFloatArray(param) ? `${param.constructor.name} of length ${param.length}` : 'Float32Array or Float64Array'}, got ${describeValue(g)}`, name);
    }
    let sum: Float64Array | undefined;
    if (this.#pending > 0) {
      sum = this.#sums.get(name);
      if (!this.#window.has(name) || sum === undefined) {
        throw new UpdateError(`${owner}: parameter '${name}' was not in this window's first micro-batch (${this.#pending} of ${this.steps} accumulated, of [${[...this.#window].join(', ')}]); call reset() to drop the window`, name);
      }
      if (sum.length !== g.length) {
        throw new UpdateError(`${owner}: gradient '${name}' has length ${g.length}, this window's sum of it ${sum.length}; call reset() to drop the window`, name);
      }
    }
    this.#seen += 1;
    if (this.#window.has(name)) this.#inWindow += 1;
    if (!this.#finite || this.nonFinite === 'ignore') return;
    const i = loopFor(FINITE_LOOPS, g)(g, sum, g.length);
    if (i < 0) return;
    if (this.nonFinite === 'skip') {
      this.#finite = false;
      return;
    }
    const gi = g[i]!;
    if (gi - gi !== 0) throw new UpdateError(`${owner}: gradient '${name}' is not finite at index ${i} (${gi})`, name, i);
    throw new UpdateError(`${owner}: the sum of gradient '${name}' over this window overflows at index ${i} (${sum![i]} + ${gi})`, name, i);
  };

  /** Forgets one parameter (its sum, the inner state of it) or everything (the window and the counts too). */
  reset(name?: string): void {
    this.inner.reset(name);
    if (name === undefined) {
      this.#sums.clear();
      this.#window.clear();
      this.#pending = 0;
      this.#skipped = 0;
    } else {
      this.#sums.delete(name);
      this.#window.delete(name);
      if (this.#window.size === 0) this.#pending = 0;
    }
  }

  /** A copy of the whole state: the window's sums (Float64Array), the counts, and the inner state dict. */
  stateDict(): WrapperStateDict {
    const buffers = Object.create(null) as { [name: string]: FloatArray };
    if (this.#pending > 0) for (const name of this.#window) buffers[name] = this.#sums.get(name)!.slice();
    return {
      format: WRAPPER_STATE_FORMAT,
      version: WRAPPER_STATE_VERSION,
      wrapper: OWNER,
      options: { steps: this.steps },
      counters: { pending: this.#pending, skipped: this.#skipped },
      buffers,
      counts: Object.create(null) as { [name: string]: number },
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
    const saved = wrapperState(owner, OWNER, value, { steps: this.steps }, ['pending', 'skipped']);
    const pending = saved.counters.pending!;
    if (pending >= this.steps) throw new StateError(`${owner}: counters.pending is ${pending}, expected an integer in [0, ${this.steps - 1}]`);
    const names = Object.keys(saved.buffers);
    if (pending === 0 && names.length > 0) throw new StateError(`${owner}: sums of [${names.join(', ')}] saved with no micro-batch pending`);
    if (Object.keys(saved.counts).length > 0) throw new StateError(`${owner}: counts holds [${Object.keys(saved.counts).join(', ')}], expected none`);
    const records = paramsOfSavedState(saved.inner);
    const sums = new Map<string, Float64Array>();
    for (const name of names) {
      const array = saved.buffers[name]!;
      if (!(array instanceof Float64Array)) throw new StateError(`${owner}: the sum of '${name}' is ${describeValue(array)}, expected a Float64Array`);
      const bad = array.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0 && this.nonFinite !== 'ignore') throw new StateError(`${owner}: the sum of '${name}' is not finite at index ${bad} (${array[bad]})`);
      const record = records?.get(name);
      if (record !== undefined && record.length !== array.length) {
        throw new StateError(`${owner}: the sum of '${name}' has length ${array.length}, the inner state's parameter ${describeValue(record.length)}`);
      }
      sums.set(name, array.slice());
    }
    this.inner.loadStateDict(saved.inner); // validates; throws with both unchanged
    this.#sums.clear();
    this.#window.clear();
    for (const [name, array] of sums) {
      this.#sums.set(name, array);
      this.#window.add(name);
    }
    this.#pending = pending;
    this.#skipped = saved.counters.skipped!;
  }
}
