/**
 * The stateful facade: `new Nesterov(options).update(params, grads)`, the book's
 * `optimizer.update(params, grads)` over named typed arrays.
 *
 * The class owns one state per parameter name, created lazily on first use, and
 * delegates every step to its rule (src/rules/). Before anything is written it checks
 * the whole call (names, types, lengths, aliasing, state sizes, learning rates,
 * finiteness), so a bad call throws and leaves params and state exactly as they were.
 * After the first step of a parameter set, a step allocates nothing.
 */
import { StateError, UpdateError, describeValue, optionError } from './errors.ts';
import type { CommonHyper, CommonOptions, RuleState, UpdateRule } from './rule.ts';
import { STATE_FORMAT, STATE_VERSION, checkStateDict, type OptimizerStateDict, type ParamStateRecord } from './state.ts';
import { storeOf, type AnyParamStore } from './store.ts';
import { wasmUnavailableReason, type WasmKernels } from './wasm/kernels.ts';
import { dtypeOf, forEachArray, getArray, isFloatArray, type Dtype, type FloatArray, type ParamSet } from './types.ts';
import { booleanOption, choiceOption } from './validate.ts';
import { byArrayType, loopFor } from './kernel.ts';

/** What `update` does when a gradient holds NaN or Infinity. */
export type NonFinitePolicy =
  /**
   * a non-finite gradient: throw an UpdateError naming the parameter and first index,
   * nothing written (default); a step whose own arithmetic overflows: throw an
   * UpdateError saying the step was applied
   */
  | 'error'
  /**
   * a non-finite gradient: skip the whole step, count it in `skippedSteps` (optax's
   * `apply_if_finite`); a step that overflows cannot be skipped (it is written in the
   * same pass): the same UpdateError as 'error'
   */
  | 'skip'
  /** do not look (fastest; NaN then flows into params and state) */
  | 'ignore';

/** Which parameters an override applies to: a name, names, a pattern, or a predicate. */
export type ParamMatcher = string | readonly string[] | RegExp | ((name: string) => boolean);

/** Per-parameter options (PyTorch's param groups): the first override that matches wins. */
export type Override<O> = Omit<O, 'variant'> & { params: ParamMatcher };

/** Which kernels run the step. */
export type Backend =
  /** the WebAssembly SIMD kernels for a float32 ParamStore, JS otherwise (default) */
  | 'auto'
  /** the fused JS loops, always */
  | 'js'
  /** the WebAssembly kernels; updates must then be of a float32 ParamStore */
  | 'wasm';

export interface OptimizerOptions<O> {
  /** Default 'auto'. */
  backend?: Backend;
  /** Default 'error'. */
  nonFinite?: NonFinitePolicy;
  /**
   * Check names, types and lengths of every call (default true). `false` is the no-check
   * mode for speed: the caller guarantees matching arrays.
   */
  checkInputs?: boolean;
  /** Per-parameter options, e.g. `[{ params: /^b/, weightDecay: 0 }]`. */
  overrides?: readonly Override<O>[];
}

interface Slot<H, S> {
  readonly name: string;
  readonly hyper: H;
  state: S | undefined;
  dtype: Dtype;
  length: number;
  /** The learning rate of the step being taken (checked before anything is written). */
  lr: number;
}

/** Stands in for the call's params and grads between calls (a new `{}` per call would allocate). */
const NO_ARRAYS: ParamSet = Object.freeze({});

const OPTIMIZER_OPTION_NAMES = ['nonFinite', 'checkInputs', 'overrides', 'backend'] as const;

/**
 * One kernel call of a store update: consecutive parameters with the same
 * hyperparameters and step, as one flat range (alignment gaps included).
 */
interface Run<H, S> {
  readonly hyper: H;
  readonly slots: Slot<H, S>[];
  readonly param: FloatArray;
  readonly grad: FloatArray;
  /** The run's state: views spanning the run in the store's state regions. */
  readonly state: S;
  /** The learning rate of the step being taken. */
  lr: number;
}

interface StorePlan<H, S> {
  readonly store: AnyParamStore;
  /** All gradients as one view (for the JS finiteness scan). */
  readonly grads: FloatArray;
  readonly runs: Run<H, S>[];
  /** The parameters this plan updates: `store.names`, or the subset `update` was given. */
  readonly names: readonly string[];
}

/**
 * Any optimizer of this library, whatever its rule: for code that takes "an optimizer"
 * (`function train(opt: AnyOptimizer)`), as `torch.optim.Optimizer` or `optax.GradientTransformation`.
 */
export type AnyOptimizer = Optimizer<CommonOptions, CommonHyper, RuleState>;

function sameRegions(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((region, i) => region === b[i]);
}

function matcherOf(owner: string, index: number, matcher: unknown): (name: string) => boolean {
  if (typeof matcher === 'string') return (name) => name === matcher;
  if (typeof matcher === 'function') return (name) => (matcher as (name: string) => boolean)(name) === true;
  if (matcher instanceof RegExp) return (name) => { matcher.lastIndex = 0; return matcher.test(name); };
  if (Array.isArray(matcher) && matcher.every((m) => typeof m === 'string')) {
    const names = new Set<string>(matcher as string[]);
    return (name) => names.has(name);
  }
  throw optionError(owner, `overrides[${index}].params`, matcher, 'a name, an array of names, a RegExp or a function');
}

function overlaps(a: FloatArray, b: FloatArray): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/**
 * The first pair of entries whose arrays share memory (empty arrays share none), or
 * undefined: per buffer, sorted by offset, each against the furthest-reaching before it.
 */
function firstOverlap<E extends { array: FloatArray }>(entries: readonly E[]): [E, E] | undefined {
  const byBuffer = new Map<ArrayBufferLike, E[]>();
  for (const entry of entries) {
    if (entry.array.byteLength === 0) continue;
    const list = byBuffer.get(entry.array.buffer);
    if (list === undefined) byBuffer.set(entry.array.buffer, [entry]);
    else list.push(entry);
  }
  for (const list of byBuffer.values()) {
    list.sort((a, b) => a.array.byteOffset - b.array.byteOffset);
    let reach = list[0]!;
    for (let i = 1; i < list.length; i++) {
      const entry = list[i]!;
      if (entry.array.byteOffset < reach.array.byteOffset + reach.array.byteLength) return [reach, entry];
      if (entry.array.byteOffset + entry.array.byteLength > reach.array.byteOffset + reach.array.byteLength) reach = entry;
    }
  }
  return undefined;
}

/** The index of the first NaN or infinity, or -1 (a loop per array type: see kernel.ts). */
function firstNonFiniteLoop(array: FloatArray): number {
  const n = array.length;
  // x * 0 is 0 for every finite x and NaN otherwise: one branch-free pass (twice as
  // fast as testing each element), and a second pass only to find the index. Four
  // accumulators, so that no add waits for the previous one (one chain of adds runs at
  // the add's latency, four at its throughput).
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const end = n - (n & 3);
  let i = 0;
  for (; i < end; i += 4) {
    a += array[i]! * 0;
    b += array[i + 1]! * 0;
    c += array[i + 2]! * 0;
    d += array[i + 3]! * 0;
  }
  for (; i < n; i++) a += array[i]! * 0;
  if (a + b + c + d === 0) return -1;
  for (let j = 0; j < n; j++) {
    const x = array[j]!;
    if (x - x !== 0) return j; // NaN for NaN and +-Infinity, 0 otherwise
  }
  return -1;
}
const FIRST_NON_FINITE_LOOPS = byArrayType(firstNonFiniteLoop);
const firstNonFinite = (array: FloatArray): number => loopFor(FIRST_NON_FINITE_LOOPS, array)(array);

/**
 * Where a step's own arithmetic left a non-finite value (found by the second pass that
 * runs only when a kernel reports one): the first element index at which the param or
 * one of its state buffers is NaN or +-Infinity; the param wins a tie, then the buffers
 * in `bufferNames` order. Undefined when none is (a false alarm of the kernel's probe).
 */
interface Overflow {
  readonly index: number;
  /** null for the param itself, else the state buffer's name. */
  readonly buffer: string | null;
  readonly value: number;
  readonly gradient: number;
}

function locateOverflow(param: FloatArray, grad: FloatArray, buffers: readonly FloatArray[], names: readonly string[]): Overflow | undefined {
  let index = firstNonFinite(param);
  let buffer: string | null = null;
  let value = index < 0 ? 0 : param[index]!;
  buffers.forEach((array, k) => {
    const at = firstNonFinite(array);
    if (at >= 0 && (index < 0 || at < index)) {
      index = at;
      buffer = names[k]!;
      value = array[at]!;
    }
  });
  return index < 0 ? undefined : { index, buffer, value, gradient: grad[index]! };
}

/** The error of a step that was applied but wrote a NaN or an Infinity (nonFinite 'error' and 'skip'). */
function overflowError(owner: string, name: string, overflow: Overflow, index: number, policy: NonFinitePolicy): UpdateError {
  const what = overflow.buffer === null ? `parameter '${name}'` : `the optimizer state '${overflow.buffer}' of parameter '${name}'`;
  const skip = policy === 'skip' ? " (nonFinite: 'skip' skips a step whose gradients are not finite; these were, and the step cannot be undone)" : '';
  return new UpdateError(
    `${owner}: the step overflowed: ${what} became ${overflow.value} at index ${index}, from a finite gradient (${overflow.gradient}). ` +
      `This step WAS applied, to every parameter: the params and optimizer state now hold this value${skip}. ` +
      'Use a smaller lr or clip the gradients, and restore the params and state saved before this step',
    name,
    index,
  );
}

export class Optimizer<O extends CommonOptions, H extends CommonHyper, S extends RuleState> {
  /** The resolved hyperparameters for parameters no override matches. */
  readonly defaults: Readonly<H>;
  readonly nonFinite: NonFinitePolicy;
  readonly checkInputs: boolean;
  readonly backend: Backend;

  readonly #rule: UpdateRule<O, H, S>;
  /** 'Nesterov.update', made once: building it per call would allocate in the hot path. */
  readonly #owner: string;
  readonly #overrides: { readonly matches: (name: string) => boolean; readonly hyper: H }[] = [];
  readonly #slots = new Map<string, Slot<H, S>>();
  #stepCount = 0;
  #skippedSteps = 0;
  // The call in progress, read by the pre-bound visitors below (no closure per call).
  #params: ParamSet = NO_ARRAYS;
  #grads: ParamSet = NO_ARRAYS;
  #sawNonFinite = false;
  #plan: StorePlan<H, S> | undefined;
  #backendUsed: 'js' | 'wasm' | undefined;
  /** Stores this optimizer holds state regions in (released by reset). */
  readonly #stores = new Set<AnyParamStore>();
  // The arrays of the last call whose set was checked as a whole (no overlaps, every
  // override used): [param, grad] per parameter, in order. A call with the same arrays
  // skips that check, so it costs nothing per step.
  readonly #checkedArrays: unknown[] = [];
  readonly #checkedNames: string[] = [];
  #checkedCount = 0;
  #seen = 0;
  #setChanged = false;

  constructor(rule: UpdateRule<O, H, S>, options: O & OptimizerOptions<O>) {
    this.#rule = rule;
    this.#owner = `${rule.name}.update`;
    const owner = rule.name;
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new TypeError(`${owner}: options must be an object, got ${describeValue(options)}`);
    }
    const { nonFinite, checkInputs, overrides, backend, ...ruleOptions } = options;
    this.backend = choiceOption<Backend>(owner, 'backend', backend, ['auto', 'js', 'wasm']);
    if (this.backend === 'wasm' && rule.stepWasm === undefined) {
      throw optionError(owner, 'backend', backend, `'auto' or 'js' (${owner} has no WebAssembly kernel)`);
    }
    this.nonFinite = choiceOption<NonFinitePolicy>(owner, 'nonFinite', nonFinite, ['error', 'skip', 'ignore']);
    this.checkInputs = booleanOption(owner, 'checkInputs', checkInputs, true);
    this.defaults = Object.freeze(rule.resolve(ruleOptions as unknown as O));
    if (overrides !== undefined) {
      if (!Array.isArray(overrides)) throw optionError(owner, 'overrides', overrides, 'an array of { params, ...options }');
      overrides.forEach((override: unknown, index: number) => {
        if (override === null || typeof override !== 'object') {
          throw optionError(owner, `overrides[${index}]`, override, 'an object { params, ...options }');
        }
        const { params, ...rest } = override as { params?: unknown };
        for (const key of Object.keys(rest)) {
          if (rule.globalOptions.includes(key) || (OPTIMIZER_OPTION_NAMES as readonly string[]).includes(key)) {
            throw new RangeError(`${owner}: overrides[${index}] may not set '${key}': it applies to the whole optimizer`);
          }
        }
        const hyper = rule.resolve({ ...ruleOptions, ...rest } as unknown as O);
        this.#overrides.push({ matches: matcherOf(owner, index, params), hyper: Object.freeze(hyper) });
      });
    }
  }

  /**
   * State buffers per parameter this optimizer keeps at most, over its defaults and
   * overrides (what `new ParamStore(shapes, { stateBuffers: [optimizer] })` reserves).
   */
  stateBuffersPerParam(): number {
    let most = this.#rule.bufferNames(this.defaults).length;
    for (const override of this.#overrides) most = Math.max(most, this.#rule.bufferNames(override.hyper).length);
    return most;
  }

  /**
   * Which kernels ran the last update: 'wasm' (the WebAssembly SIMD kernels over a
   * float32 ParamStore) or 'js'; undefined before the first. With backend 'auto' a
   * store update falls back to 'js' where WebAssembly cannot run: `wasmUnavailableReason()`
   * says why.
   */
  get backendUsed(): 'js' | 'wasm' | undefined {
    return this.#backendUsed;
  }

  /** Updates applied so far; the step number a schedule sees next. */
  get stepCount(): number {
    return this.#stepCount;
  }

  /** Updates skipped because a gradient was not finite (`nonFinite: 'skip'`). */
  get skippedSteps(): number {
    return this.#skippedSteps;
  }

  /** The resolved hyperparameters that apply to parameter `name`. */
  hyperparameters(name: string): Readonly<H> {
    return this.#slots.get(name)?.hyper ?? this.#resolveHyper(name);
  }

  /** The learning rate the next update will use for parameter `name` (default: the defaults). */
  learningRate(name?: string): number {
    const lr = name === undefined ? this.defaults.lr : this.hyperparameters(name).lr;
    return typeof lr === 'number' ? lr : lr(this.#stepCount);
  }

  /** The live state of parameter `name` (undefined before its first update). Do not write to it. */
  stateOf(name: string): Readonly<S> | undefined {
    return this.#slots.get(name)?.state;
  }

  /** Forgets the state of one parameter, or of all (and the step counts) when no name is given. */
  reset(name?: string): void {
    this.#plan = undefined;
    for (const store of this.#stores) store.releaseState(this, name);
    if (name === undefined) {
      this.#stores.clear();
      this.#slots.clear();
      this.#stepCount = 0;
      this.#skippedSteps = 0;
    } else {
      this.#slots.delete(name);
    }
  }

  /**
   * One step for every parameter in `params`, in place, with the gradient of the same
   * name in `grads`. Returns false when the step was skipped (`nonFinite: 'skip'`).
   * Throws before writing anything when the call is not valid, or, after applying the
   * step, when the step wrote a NaN or an Infinity (the error says which happened).
   *
   * `storeNames` (ParamStore updates only): update just these parameters of the store,
   * e.g. the part of a `partition` this optimizer is assigned. Pass the same array at
   * every step (a different array rebuilds the plan). The finiteness scan still covers
   * every gradient of the store, so the members of a partition refuse or skip together.
   */
  update<K extends string>(params: ParamSet<K>, grads: ParamSet<K>, storeNames?: readonly K[]): boolean {
    const store = storeOf(params);
    if (store !== undefined && storeOf(grads) === store) return this.#updateStore(store, storeNames ?? store.names);
    if (storeNames !== undefined) {
      throw new UpdateError(`${this.#owner}: storeNames selects parameters of a ParamStore; these params and grads are not one store's (update a subset of plain arrays by passing that subset)`, '');
    }
    if (this.backend === 'wasm') {
      throw new UpdateError(
        `${this.#owner}: backend 'wasm' updates a float32 ParamStore: pass store.params and store.grads of the same store`,
        '',
      );
    }
    if (this.checkInputs) {
      this.#checkSet('params', params);
      this.#checkSet('grads', grads);
    }
    this.#params = params;
    this.#grads = grads;
    this.#sawNonFinite = false;
    try {
      if (this.checkInputs) {
        this.#seen = 0;
        this.#setChanged = false;
        forEachArray(params, this.#checkParam);
        forEachArray(grads, this.#checkGradName);
        if (this.#setChanged || this.#seen !== this.#checkedCount) this.#checkNewSet(params, grads);
      }
      forEachArray(params, this.#prepareParam);
      if (this.#sawNonFinite) {
        this.#skippedSteps += 1;
        return false;
      }
      forEachArray(params, this.#applyParam);
      this.#stepCount += 1;
      this.#backendUsed = 'js';
      // Every parameter took the step; then, if one wrote a NaN or an Infinity, say where.
      const overflow = this.#overflow;
      if (overflow !== undefined) {
        this.#overflow = undefined;
        throw overflowError(this.#owner, overflow.name, overflow.at, overflow.at.index, this.nonFinite);
      }
      return true;
    } finally {
      this.#params = NO_ARRAYS;
      this.#grads = NO_ARRAYS;
    }
  }

  #checkSet(which: string, set: unknown): void {
    if (set === null || typeof set !== 'object' || Array.isArray(set) || ArrayBuffer.isView(set)) {
      throw new TypeError(`${this.#owner}: ${which} must be an object or a Map of named Float32Array/Float64Array, got ${describeValue(set)}`);
    }
  }

  readonly #checkParam = (param: unknown, name: string): void => {
    const owner = this.#owner;
    if (typeof name !== 'string') {
      throw new UpdateError(`${owner}: parameter names must be strings, got the Map key ${describeValue(name)} (a number key would not match its saved state)`, String(name));
    }
    if (!isFloatArray(param)) {
      throw new UpdateError(`${owner}: parameter '${name}' must be a Float32Array or Float64Array, got ${describeValue(param)}`, name);
    }
    const grad = getArray(this.#grads, name);
    if (grad === undefined) throw new UpdateError(`${owner}: no gradient for parameter '${name}'`, name);
    if (!isFloatArray(grad)) {
      throw new UpdateError(`${owner}: gradient '${name}' must be a Float32Array or Float64Array, got ${describeValue(grad)}`, name);
    }
    if (grad.constructor !== param.constructor) {
      throw new UpdateError(`${owner}: gradient '${name}' is a ${grad.constructor.name} but the parameter is a ${param.constructor.name}`, name);
    }
    if (grad.length !== param.length) {
      throw new UpdateError(`${owner}: gradient '${name}' has length ${grad.length} but the parameter has length ${param.length}`, name);
    }
    if (overlaps(grad, param)) throw new UpdateError(`${owner}: gradient '${name}' shares memory with its parameter`, name);
    const i = this.#seen++;
    if (this.#checkedArrays[2 * i] !== param || this.#checkedArrays[2 * i + 1] !== grad || this.#checkedNames[i] !== name) this.#setChanged = true;
    const slot = this.#slots.get(name);
    if (slot?.state !== undefined) {
      if (slot.length !== param.length) {
        throw new UpdateError(
          `${owner}: parameter '${name}' has length ${param.length} but its optimizer state was made for length ${slot.length} (call reset('${name}') to start it afresh)`,
          name,
        );
      }
      if (slot.dtype !== dtypeOf(param)) {
        throw new UpdateError(`${owner}: parameter '${name}' is ${dtypeOf(param)} but its optimizer state is ${slot.dtype}`, name);
      }
    }
  };

  /**
   * The checks of a whole set of arrays, run when the set differs from the last one
   * checked (not per step): no two arrays among all params and grads share memory, and
   * every override matches some parameter.
   */
  #checkNewSet(params: ParamSet, grads: ParamSet): void {
    const entries: { array: FloatArray; what: string; name: string }[] = [];
    const names: string[] = [];
    forEachArray(params, (param, name) => {
      names.push(name);
      entries.push({ array: param as FloatArray, what: `parameter '${name}'`, name });
      entries.push({ array: getArray(grads, name) as FloatArray, what: `gradient '${name}'`, name });
    });
    const clash = firstOverlap(entries);
    if (clash !== undefined) {
      throw new UpdateError(
        `${this.#owner}: ${clash[1].what} shares memory with ${clash[0].what} (every parameter and gradient needs memory of its own)`,
        clash[1].name,
      );
    }
    this.#checkOverridesUsed(names);
    this.#checkedArrays.length = 0;
    forEachArray(params, (param, name) => this.#checkedArrays.push(param, getArray(grads, name)));
    this.#checkedNames.length = 0;
    this.#checkedNames.push(...names);
    this.#checkedCount = names.length;
  }

  /** An override that matches none of the parameters is a typo or a stale pattern: refuse it. */
  #checkOverridesUsed(names: readonly string[]): void {
    this.#overrides.forEach((override, index) => {
      if (!names.some((name) => override.matches(name))) {
        const shown = names.length > 8 ? `${names.slice(0, 8).join(', ')}, ...` : names.join(', ');
        throw new UpdateError(`${this.#owner}: overrides[${index}] matches no parameter of this update (parameters: ${shown})`, '');
      }
    });
  }

  readonly #checkGradName = (_grad: unknown, name: string): void => {
    if (getArray(this.#params, name) === undefined) {
      throw new UpdateError(`${this.#owner}: gradient '${name}' has no parameter of that name`, name);
    }
  };

  /**
   * Sets `target.lr` to the lr of this step under `hyper`, checked (a schedule may return
   * anything). Written into the target, not returned: a returned double is boxed.
   */
  #setLearningRate(target: { lr: number }, hyper: H, name: string): void {
    const lr = hyper.lr;
    if (typeof lr === 'number') {
      target.lr = lr;
      return;
    }
    const value = lr(this.#stepCount);
    if (typeof value !== 'number' || !(value >= 0) || value === Infinity) {
      throw new UpdateError(
        `${this.#owner}: the lr schedule of parameter '${name}' returned ${describeValue(value)} at step ${this.#stepCount} (expected a finite number >= 0)`,
        name,
      );
    }
    target.lr = value;
  }

  readonly #prepareParam = (param: unknown, name: string): void => {
    this.#overflow = undefined;
    const slot = this.#slotFor(name, param as FloatArray);
    this.#setLearningRate(slot, slot.hyper, name);
    if (this.nonFinite === 'ignore' || this.#sawNonFinite) return;
    const grad = getArray(this.#grads, name) as FloatArray;
    const index = firstNonFinite(grad);
    if (index < 0) return;
    if (this.nonFinite === 'skip') {
      this.#sawNonFinite = true;
      return;
    }
    throw new UpdateError(`${this.#owner}: gradient '${name}' is not finite at index ${index} (${grad[index]})`, name, index);
  };

  /**
   * The first parameter of this call whose step wrote a NaN or an Infinity, thrown by
   * update() after every parameter took its step, as the error says. Cleared by
   * #prepareParam at every call.
   */
  #overflow: { readonly name: string; readonly at: Overflow } | undefined;

  readonly #applyParam = (param: unknown, name: string): void => {
    const p = param as FloatArray;
    const slot = this.#slots.get(name)!;
    if (slot.state === undefined) {
      slot.dtype = dtypeOf(p);
      slot.length = p.length;
      slot.state = this.#rule.init(p.length, slot.dtype, slot.hyper);
    }
    const grad = getArray(this.#grads, name) as FloatArray;
    const finite = this.#rule.step(p, grad, slot.state, slot.hyper, slot);
    if (!finite && this.nonFinite !== 'ignore' && this.#overflow === undefined) {
      const rule = this.#rule;
      const at = locateOverflow(p, grad, rule.buffersOf(slot.state, slot.hyper), rule.bufferNames(slot.hyper));
      if (at !== undefined) this.#overflow = { name, at };
    }
  };

  #resolveHyper(name: string): H {
    for (const override of this.#overrides) {
      if (override.matches(name)) return override.hyper;
    }
    return this.defaults;
  }

  /** The slot of a parameter; a new one holds no state until the step is applied. */
  #slotFor(name: string, param: FloatArray): Slot<H, S> {
    let slot = this.#slots.get(name);
    if (slot === undefined) {
      slot = { name, hyper: this.#resolveHyper(name), state: undefined, dtype: dtypeOf(param), length: param.length, lr: 0 };
      this.#slots.set(name, slot);
    }
    return slot;
  }

  // ---------------------------------------------------------------------------------
  // ParamStore updates: one kernel call per run of parameters sharing hyperparameters.

  #updateStore(store: AnyParamStore, names: readonly string[]): boolean {
    let plan = this.#plan;
    // Looked up at every step: a thread pool may attach to the store at any time.
    const kernels = this.backend !== 'js' && this.#rule.stepWasm !== undefined && store.dtype === 'float32' ? store.kernels : null;
    // The gradients are scanned before the plan is made: making it creates the state of a
    // parameter seen for the first time and claims its regions, and a refused step must
    // leave the optimizer exactly as it was.
    if (this.nonFinite !== 'ignore') {
      // The wasm scan reads eight streams at once (and splits across threads when a pool
      // is attached); only when it finds something does firstNonFinite look for the index.
      const gradsAt = store.byteOffset(1, 0);
      const index = kernels !== null
        ? kernels.exports.anyNonFinite(gradsAt, store.regionLength) === 0 ? -1 : kernels.exports.firstNonFinite(gradsAt, store.regionLength)
        : firstNonFinite(plan !== undefined && plan.store === store ? plan.grads : store.view(1, 0, store.regionLength));
      if (index >= 0) {
        if (this.nonFinite === 'skip') {
          this.#skippedSteps += 1;
          return false;
        }
        const name = store.nameAt(index)!;
        const local = index - store.offsets[name]!;
        throw new UpdateError(`${this.#owner}: gradient '${name}' is not finite at index ${local} (${store.grads[name]![local]})`, name, local);
      }
    }
    if (plan === undefined || plan.store !== store || plan.names !== names || !this.#planCurrent(plan)) plan = this.#plan = this.#makePlan(store, names);
    const runs = plan.runs;
    for (let r = 0; r < runs.length; r++) {
      const run = runs[r]!;
      this.#setLearningRate(run, run.hyper, run.slots[0]!.name);
    }
    const rule = this.#rule;
    let overflow: { readonly name: string; readonly at: Overflow; readonly index: number } | undefined;
    for (let r = 0; r < runs.length; r++) {
      const run = runs[r]!;
      const state = run.state;
      const finite = kernels !== null
        ? rule.stepWasm!(kernels, run.param as Float32Array, run.grad as Float32Array, state, run.hyper, run)
        : rule.step(run.param, run.grad, state, run.hyper, run);
      if (!finite && this.nonFinite !== 'ignore' && overflow === undefined) {
        // Where, as the parameter's name and its own index (a run spans several parameters).
        const at = locateOverflow(run.param, run.grad, rule.buffersOf(state, run.hyper), rule.bufferNames(run.hyper));
        const first = store.offsets[run.slots[0]!.name]!;
        const name = at === undefined ? undefined : store.nameAt(first + at.index);
        if (at !== undefined && name !== undefined) overflow = { name, at, index: first + at.index - store.offsets[name]! };
      }
      // Every parameter of the run took the step: copy the run's counters to each.
      const slots = run.slots;
      for (let i = 0; i < slots.length; i++) {
        const own = slots[i]!.state!;
        own.step = state.step;
        rule.copyScalars?.(state, own);
      }
    }
    this.#stepCount += 1;
    this.#backendUsed = kernels !== null ? 'wasm' : 'js';
    // The step is applied to every run; then, if one wrote a NaN or an Infinity, say where.
    if (overflow !== undefined) throw overflowError(this.#owner, overflow.name, overflow.at, overflow.index, this.nonFinite);
    return true;
  }

  /** A plan stays valid while every parameter's state is where and as the plan left it. */
  #planCurrent(plan: StorePlan<H, S>): boolean {
    for (const run of plan.runs) {
      for (const slot of run.slots) {
        if (this.#slots.get(slot.name) !== slot || slot.state === undefined || slot.state.step !== run.state.step) return false;
      }
    }
    return true;
  }

  #makePlan(store: AnyParamStore, names: readonly string[]): StorePlan<H, S> {
    const rule = this.#rule;
    const owner = this.#owner;
    let kernels: WasmKernels | null = null;
    if (this.backend !== 'js' && rule.stepWasm !== undefined && store.dtype === 'float32') kernels = store.kernels;
    if (this.backend === 'wasm' && kernels === null) {
      throw new UpdateError(
        store.dtype === 'float32'
          ? `${owner}: backend 'wasm' is not available: ${wasmUnavailableReason() ?? 'the kernels failed to instantiate over this store'}`
          : `${owner}: backend 'wasm' needs a float32 ParamStore, this one is float64`,
        '',
      );
    }
    // Check everything before writing anything.
    for (const name of names) {
      if (!Object.hasOwn(store.params, name)) throw new UpdateError(`${owner}: storeNames names '${name}', which is not a parameter of the store`, name);
    }
    this.#checkOverridesUsed(names);
    const slots = names.map((name) => this.#slotFor(name, store.params[name]!));
    for (const slot of slots) {
      if (slot.state !== undefined && (slot.length !== store.lengths[slot.name] || slot.dtype !== store.dtype)) {
        throw new UpdateError(
          `${owner}: parameter '${slot.name}' has ${store.lengths[slot.name]} ${store.dtype} elements in the store, but its optimizer state was made for ${slot.length} ${slot.dtype}`,
          slot.name,
        );
      }
    }
    // Claim this optimizer's own state regions in the store (another optimizer updating
    // the same parameters keeps its own): all checked first, so a refusal claims nothing.
    for (const slot of slots) {
      const needed = rule.bufferNames(slot.hyper).length;
      if (store.freeStateFor(this, slot.name) < needed) {
        const others = store.heldByOthers(this, slot.name);
        throw new UpdateError(
          `${owner}: parameter '${slot.name}' needs ${needed} state buffer${needed === 1 ? '' : 's'}, but the ParamStore reserves ${store.stateBuffers}` +
            (others > 0 ? ` and another optimizer holds ${others} of them` : '') +
            ' (make the store with stateBuffers: [every optimizer that updates it], or call reset() on an optimizer that is done with it)',
          slot.name,
        );
      }
    }
    const regions = slots.map((slot) => store.claimState(this, slot.name, rule.bufferNames(slot.hyper).length)!);
    this.#stores.add(store);
    // Move every state into its regions (views at the parameter's offset).
    slots.forEach((slot, i) => {
      const offset = store.offsets[slot.name]!;
      const own = regions[i]!;
      const old = slot.state;
      if (old !== undefined && this.#inStore(store, old, slot.hyper, offset, own)) return;
      let k = 0;
      const fresh = rule.init(slot.length, store.dtype, slot.hyper, (_dtype, length, fill = 0) => {
        const view = store.view(own[k++]!, offset, length);
        view.fill(fill);
        return view;
      });
      if (old !== undefined) {
        const from = rule.buffersOf(old, slot.hyper);
        rule.buffersOf(fresh, slot.hyper).forEach((array, b) => array.set(from[b]!));
        // The state moved here from another store: give its regions there back.
        for (const other of this.#stores) if (other !== store && from[0]?.buffer === other.buffer) other.releaseState(this, slot.name);
        fresh.step = old.step;
        for (const key of rule.scalarNames) (fresh as unknown as Record<string, number>)[key] = (old as unknown as Record<string, number>)[key]!;
      }
      slot.state = fresh;
    });
    // Group consecutive parameters that can share one kernel call (neighbours in the
    // store's layout too: a run spans everything between its first and last parameter).
    const runs: Run<H, S>[] = [];
    const adjacent = (i: number): boolean => store.names.indexOf(names[i]!) === store.names.indexOf(names[i - 1]!) + 1;
    let start = 0;
    for (let i = 1; i <= slots.length; i++) {
      const a = slots[start]!;
      const b = slots[i];
      if (b !== undefined && rule.perParameter !== true && b.hyper === a.hyper && adjacent(i) && sameRegions(regions[start]!, regions[i]!) && this.#sameCounters(a.state!, b.state!)) continue;
      const members = slots.slice(start, i);
      const own = regions[start]!;
      const first = store.offsets[a.name]!;
      const last = members[members.length - 1]!;
      const length = store.offsets[last.name]! + last.length - first;
      let k = 0;
      const state = rule.init(length, store.dtype, a.hyper, (_dtype, size) => store.view(own[k++]!, first, size));
      state.step = a.state!.step;
      for (const key of rule.scalarNames) (state as unknown as Record<string, number>)[key] = (a.state as unknown as Record<string, number>)[key]!;
      runs.push({ hyper: a.hyper, slots: members, param: store.view(0, first, length), grad: store.view(1, first, length), state, lr: 0 });
      start = i;
    }
    return { store, grads: store.view(1, 0, store.regionLength), runs, names };
  }

  #inStore(store: AnyParamStore, state: S, hyper: H, offset: number, regions: readonly number[]): boolean {
    return this.#rule.buffersOf(state, hyper).every((array, k) => array.buffer === store.buffer && array.byteOffset === store.byteOffset(regions[k]!, offset));
  }

  #sameCounters(a: S, b: S): boolean {
    if (a.step !== b.step) return false;
    for (const key of this.#rule.scalarNames) {
      if (!Object.is((a as unknown as Record<string, number>)[key], (b as unknown as Record<string, number>)[key])) return false;
    }
    return true;
  }

  /** A copy of the whole state: step counts, and per parameter its step, scalars and buffers. */
  stateDict(): OptimizerStateDict {
    // Records keyed by names have no prototype (as the decoders in state.ts make them):
    // a parameter may be named '__proto__', and a decoded dict deep-equals this one.
    const params = Object.create(null) as { [name: string]: ParamStateRecord };
    for (const [name, slot] of this.#slots) {
      const state = slot.state;
      if (state === undefined) continue;
      const names = this.#rule.bufferNames(slot.hyper);
      const arrays = this.#rule.buffersOf(state, slot.hyper);
      const buffers = Object.create(null) as { [key: string]: FloatArray };
      names.forEach((key, i) => {
        buffers[key] = arrays[i]!.slice();
      });
      const scalars = Object.create(null) as { [key: string]: number };
      for (const key of this.#rule.scalarNames) scalars[key] = (state as unknown as Record<string, number>)[key]!;
      params[name] = { dtype: slot.dtype, length: slot.length, step: state.step, scalars, buffers };
    }
    return {
      format: STATE_FORMAT,
      version: STATE_VERSION,
      optimizer: this.#rule.name,
      variant: this.#variant(),
      stepCount: this.#stepCount,
      skippedSteps: this.#skippedSteps,
      params,
    };
  }

  /**
   * Replaces the whole state with a saved one (copied). Everything is validated first: on
   * any mismatch it throws a StateError and the optimizer keeps its state.
   */
  loadStateDict(value: unknown): void {
    const saved = checkStateDict(value);
    const owner = `${this.#rule.name}.loadStateDict`;
    if (saved.optimizer !== this.#rule.name) {
      throw new StateError(`${owner}: the state was saved by ${saved.optimizer}, not ${this.#rule.name}`);
    }
    if (saved.variant !== this.#variant()) {
      throw new StateError(`${owner}: the state was saved with variant ${describeValue(saved.variant)}, this optimizer uses ${describeValue(this.#variant())}`);
    }
    const slots = new Map<string, Slot<H, S>>();
    for (const [name, record] of Object.entries(saved.params)) {
      const hyper = this.#resolveHyper(name);
      const expected = this.#rule.bufferNames(hyper);
      const got = Object.keys(record.buffers);
      if (got.length !== expected.length || expected.some((key) => !(key in record.buffers))) {
        throw new StateError(`${owner}: parameter '${name}' has buffers [${got.join(', ')}], this configuration keeps [${expected.join(', ')}]`);
      }
      const gotScalars = Object.keys(record.scalars);
      const scalarNames = this.#rule.scalarNames;
      if (gotScalars.length !== scalarNames.length || scalarNames.some((key) => !(key in record.scalars))) {
        throw new StateError(`${owner}: parameter '${name}' has scalars [${gotScalars.join(', ')}], expected [${scalarNames.join(', ')}]`);
      }
      const state = this.#rule.init(record.length, record.dtype, hyper);
      const arrays = this.#rule.buffersOf(state, hyper);
      expected.forEach((key, i) => arrays[i]!.set(record.buffers[key]!));
      state.step = record.step;
      for (const key of scalarNames) (state as unknown as Record<string, number>)[key] = record.scalars[key]!;
      slots.set(name, { name, hyper, state, dtype: record.dtype, length: record.length, lr: 0 });
    }
    this.#plan = undefined;
    this.#checkedCount = 0;
    this.#slots.clear();
    for (const [name, slot] of slots) this.#slots.set(name, slot);
    this.#stepCount = saved.stepCount;
    this.#skippedSteps = saved.skippedSteps;
  }

  #variant(): string | null {
    const variant = (this.defaults as unknown as { variant?: unknown }).variant;
    return typeof variant === 'string' ? variant : null;
  }

  /** Names of the parameters that hold state, for subclasses that act on all of them (Schedule-Free's eval/train). */
  protected paramsWithState(): string[] {
    return [...this.#slots.values()].filter((slot) => slot.state !== undefined).map((slot) => slot.name);
  }
}
