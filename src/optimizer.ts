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
import { storeOf, type ParamStore } from './store.ts';
import type { WasmKernels } from './wasm/kernels.ts';
import { dtypeOf, forEachArray, getArray, isFloatArray, type Dtype, type FloatArray, type ParamSet } from './types.ts';
import { booleanOption, choiceOption } from './validate.ts';
import { byArrayType, loopFor } from './kernel.ts';

/** What `update` does when a gradient holds NaN or Infinity. */
export type NonFinitePolicy =
  /** throw an UpdateError naming the parameter and first index; nothing is written (default) */
  | 'error'
  /** skip the whole step, count it in `skippedSteps` (optax's `apply_if_finite`) */
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
  readonly store: ParamStore;
  /** All gradients as one view (for the JS finiteness scan). */
  readonly grads: FloatArray;
  /** Whether the WebAssembly kernels run the steps (else the JS loops). */
  readonly useWasm: boolean;
  readonly runs: Run<H, S>[];
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

/** The last name `forEachArray` visits in `set` (only looked up on the rare overflow path). */
function lastNameOf(set: ParamSet): string | undefined {
  let last: string | undefined;
  forEachArray(set, (_array, name) => {
    last = name;
  });
  return last;
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
    if (name === undefined) {
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
   * Throws before writing anything when the call is not valid.
   */
  update(params: ParamSet, grads: ParamSet): boolean {
    const store = storeOf(params);
    if (store !== undefined && storeOf(grads) === store) return this.#updateStore(store);
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
        forEachArray(params, this.#checkParam);
        forEachArray(grads, this.#checkGradName);
      }
      forEachArray(params, this.#prepareParam);
      if (this.#sawNonFinite) {
        this.#skippedSteps += 1;
        return false;
      }
      forEachArray(params, this.#applyParam);
      this.#stepCount += 1;
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
      throw new RangeError(
        `${this.#owner}: the lr schedule of parameter '${name}' returned ${describeValue(value)} at step ${this.#stepCount} (expected a finite number >= 0)`,
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
   * The first parameter of this call whose step wrote a NaN or an Infinity, thrown after
   * the last parameter's step (`#overflowLast`), so that the whole step is applied to
   * every parameter, as the error says. Cleared by #prepareParam at every call.
   */
  #overflow: { readonly name: string; readonly at: Overflow } | undefined;
  #overflowLast: string | undefined;

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
      if (at !== undefined) {
        this.#overflow = { name, at };
        this.#overflowLast = lastNameOf(this.#params);
      }
    }
    const overflow = this.#overflow;
    if (overflow !== undefined && name === this.#overflowLast) {
      this.#overflow = undefined;
      // The step was applied: count it (update() does not get to, after this throw).
      this.#stepCount += 1;
      throw overflowError(this.#owner, overflow.name, overflow.at, overflow.at.index, this.nonFinite);
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

  #updateStore(store: ParamStore): boolean {
    let plan = this.#plan;
    if (plan === undefined || plan.store !== store || !this.#planCurrent(plan)) plan = this.#plan = this.#makePlan(store);
    const runs = plan.runs;
    for (let r = 0; r < runs.length; r++) {
      const run = runs[r]!;
      this.#setLearningRate(run, run.hyper, run.slots[0]!.name);
    }
    // Looked up at every step: a thread pool may attach to the store at any time.
    const kernels = plan.useWasm ? store.kernels : null;
    if (this.nonFinite !== 'ignore') {
      // The wasm scan reads at full bandwidth and splits across threads; only when it finds
      // something does firstNonFinite look for the index.
      const gradsAt = store.byteOffset(1, 0);
      const index = kernels !== null
        ? kernels.exports.anyNonFinite(gradsAt, store.regionLength) === 0 ? -1 : kernels.exports.firstNonFinite(gradsAt, store.regionLength)
        : firstNonFinite(plan.grads);
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

  #makePlan(store: ParamStore): StorePlan<H, S> {
    const rule = this.#rule;
    const owner = this.#owner;
    let kernels: WasmKernels | null = null;
    if (this.backend !== 'js' && rule.stepWasm !== undefined && store.dtype === 'float32') kernels = store.kernels;
    if (this.backend === 'wasm' && kernels === null) {
      throw new UpdateError(
        store.dtype === 'float32'
          ? `${owner}: backend 'wasm' is not available: this runtime does not run WebAssembly SIMD`
          : `${owner}: backend 'wasm' needs a float32 ParamStore, this one is float64`,
        '',
      );
    }
    // Check everything before writing anything.
    const slots = store.names.map((name) => this.#slotFor(name, store.params[name]!));
    for (const slot of slots) {
      const needed = rule.bufferNames(slot.hyper).length;
      if (needed > store.stateBuffers) {
        throw new UpdateError(
          `${owner}: parameter '${slot.name}' needs ${needed} state buffers, the ParamStore has room for ${store.stateBuffers} (its stateBuffers option)`,
          slot.name,
        );
      }
      if (slot.state !== undefined && (slot.length !== store.lengths[slot.name] || slot.dtype !== store.dtype)) {
        throw new UpdateError(
          `${owner}: parameter '${slot.name}' has ${store.lengths[slot.name]} ${store.dtype} elements in the store, but its optimizer state was made for ${slot.length} ${slot.dtype}`,
          slot.name,
        );
      }
    }
    // Move every state into the store's state regions (views at the parameter's offset).
    for (const slot of slots) {
      const offset = store.offsets[slot.name]!;
      const regionOf = (k: number) => 2 + k;
      const old = slot.state;
      if (old !== undefined && this.#inStore(store, old, slot.hyper, offset)) continue;
      let k = 0;
      const fresh = rule.init(slot.length, store.dtype, slot.hyper, (_dtype, length, fill = 0) => {
        const view = store.view(regionOf(k++), offset, length);
        view.fill(fill);
        return view;
      });
      if (old !== undefined) {
        const from = rule.buffersOf(old, slot.hyper);
        rule.buffersOf(fresh, slot.hyper).forEach((array, i) => array.set(from[i]!));
        fresh.step = old.step;
        for (const key of rule.scalarNames) (fresh as unknown as Record<string, number>)[key] = (old as unknown as Record<string, number>)[key]!;
      }
      slot.state = fresh;
    }
    // Group consecutive parameters that can share one kernel call.
    const runs: Run<H, S>[] = [];
    let start = 0;
    for (let i = 1; i <= slots.length; i++) {
      const a = slots[start]!;
      const b = slots[i];
      if (b !== undefined && b.hyper === a.hyper && this.#sameCounters(a.state!, b.state!)) continue;
      const members = slots.slice(start, i);
      const first = store.offsets[a.name]!;
      const last = members[members.length - 1]!;
      const length = store.offsets[last.name]! + last.length - first;
      let k = 0;
      const state = rule.init(length, store.dtype, a.hyper, (_dtype, size) => store.view(2 + k++, first, size));
      state.step = a.state!.step;
      for (const key of rule.scalarNames) (state as unknown as Record<string, number>)[key] = (a.state as unknown as Record<string, number>)[key]!;
      runs.push({ hyper: a.hyper, slots: members, param: store.view(0, first, length), grad: store.view(1, first, length), state, lr: 0 });
      start = i;
    }
    return { store, grads: store.view(1, 0, store.regionLength), useWasm: kernels !== null, runs };
  }

  #inStore(store: ParamStore, state: S, hyper: H, offset: number): boolean {
    return this.#rule.buffersOf(state, hyper).every((array, k) => array.buffer === store.buffer && array.byteOffset === store.byteOffset(2 + k, offset));
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
    const params: { [name: string]: ParamStateRecord } = {};
    for (const [name, slot] of this.#slots) {
      const state = slot.state;
      if (state === undefined) continue;
      const names = this.#rule.bufferNames(slot.hyper);
      const arrays = this.#rule.buffersOf(state, slot.hyper);
      const buffers: { [key: string]: FloatArray } = {};
      names.forEach((key, i) => {
        buffers[key] = arrays[i]!.slice();
      });
      const scalars: { [key: string]: number } = {};
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
    this.#slots.clear();
    for (const [name, slot] of slots) this.#slots.set(name, slot);
    this.#stepCount = saved.stepCount;
    this.#skippedSteps = saved.skippedSteps;
  }

  #variant(): string | null {
    const variant = (this.defaults as unknown as { variant?: unknown }).variant;
    return typeof variant === 'string' ? variant : null;
  }
}
