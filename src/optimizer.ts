/**
 * The stateful facade: `new Nesterov(options).update(params, grads)`, the book's
 * `optimizer.update(params, grads)` over named typed arrays.
 *
 * The class owns one state per parameter name, created lazily on first use, and
 * delegates every step to its rule (src/rules/). Before anything is written it checks
 * the whole call (names, types, lengths, aliasing, state sizes, learning rates,
 * finiteness), so a bad call throws and leaves params and state exactly as they were.
 * After the first step of a parameter set, a step allocates nothing.
 *
 * The work is split by responsibility: the checks of a call (optimizer/checks.ts), the
 * finiteness scan and the overflow report (optimizer/finite.ts), the plain-set update
 * path (optimizer/plain-path.ts), the ParamStore update path (optimizer/store-path.ts)
 * and its plan (optimizer/plan.ts), and the state dict (optimizer/state-dict.ts); this
 * class holds the state they work on and the order in which they run.
 */
import type { NonFinitePolicy, OptimizerLike } from './contract.ts';
import { UpdateError, describeValue, optionError } from './errors.ts';
import { InputChecks, matcherOf } from './optimizer/checks.ts';
import { GlobalScalars } from './optimizer/global.ts';
import { Hyperparameters, type Schedulable } from './optimizer/hyperparameters.ts';
import { PlainPath } from './optimizer/plain-path.ts';
import type { Planner, Slot } from './optimizer/plan.ts';
import { slotsOfStateDict, stateDictOf, variantOf } from './optimizer/state-dict.ts';
import { StorePath } from './optimizer/store-path.ts';
import type { CommonHyper, CommonOptions, RuleState, UpdateRule } from './rule.ts';
import type { OptimizerStateDict } from './state.ts';
import { storeOf, type AnyParamStore } from './store.ts';
import { dtypeOf, type FloatArray, type ParamSet } from './types.ts';
import { booleanOption, choiceOption } from './validate.ts';

export type { NonFinitePolicy } from './contract.ts';
export type { Schedulable } from './optimizer/hyperparameters.ts';

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
  /** Per-parameter options, e.g. `[{ params: /^b/, weightDecay: 0 }]`; numeric ones may be schedules. */
  overrides?: readonly Override<Schedulable<O>>[];
}

const OPTIMIZER_OPTION_NAMES = ['nonFinite', 'checkInputs', 'overrides', 'backend'] as const;

/**
 * Any optimizer of this library, whatever its rule: for code that takes "an optimizer"
 * (`function train(opt: AnyOptimizer)`), as `torch.optim.Optimizer` or `optax.GradientTransformation`.
 * Code that also takes Muon and the wrappers takes an `OptimizerLike`.
 */
export type AnyOptimizer = Optimizer<CommonOptions, CommonHyper, RuleState>;

export class Optimizer<O extends CommonOptions, H extends CommonHyper, S extends RuleState> implements OptimizerLike<OptimizerStateDict> {
  readonly nonFinite: NonFinitePolicy;
  readonly checkInputs: boolean;
  readonly backend: Backend;

  readonly #rule: UpdateRule<O, H, S>;
  /** 'Nesterov.update', made once: building it per call would allocate in the hot path. */
  readonly #owner: string;
  readonly #overrides: { readonly matches: (name: string) => boolean; readonly hyper: H }[] = [];
  /** The records of the defaults and the overrides, their schedules, the values set at run time. */
  readonly #hyper: Hyperparameters<H>;
  readonly #slots = new Map<string, Slot<H, S>>();
  #stepCount = 0;
  #skippedSteps = 0;
  #backendUsed: 'js' | 'wasm' | undefined;
  #threadsUsed: number | undefined;
  /** Stores this optimizer holds state regions in (released by reset). */
  readonly #stores = new Set<AnyParamStore>();
  readonly #planner: Planner<H, S>;
  readonly #inputs: InputChecks;
  /** The optimizer-level scalars of a rule with a global phase (optimizer/global.ts). */
  readonly #global: GlobalScalars<H, S> | undefined;
  /** The ParamStore update path (optimizer/store-path.ts): its checks, scan and runs. */
  readonly #store: StorePath<H, S>;
  /** The plain-set update path (optimizer/plain-path.ts): its checks and steps. */
  readonly #plain: PlainPath<H, S>;

  constructor(rule: UpdateRule<O, H, S>, options: Schedulable<O> & OptimizerOptions<O>) {
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
    const rests: Record<string, unknown>[] = [];
    const matchers: ((name: string) => boolean)[] = [];
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
        matchers.push(matcherOf(owner, index, params));
        rests.push(rest);
      });
    }
    this.#hyper = new Hyperparameters<H>({ owner, fixed: rule.fixedOptions ?? {}, resolve: (o) => rule.resolve(o as unknown as O) }, ruleOptions as Record<string, unknown>, rests);
    matchers.forEach((matches, i) => this.#overrides.push({ matches, hyper: this.#hyper.hyper(i + 1) }));
    this.#inputs = new InputChecks(this.#owner, this.#overrides, this.#slots);
    this.#global = rule.global === undefined ? undefined : new GlobalScalars(rule, this.defaults);
    this.#planner = {
      rule: rule as unknown as UpdateRule<never, H, S>,
      owner: this.#owner,
      holder: this,
      slots: this.#slots,
      stores: this.#stores,
      slotFor: (name, param) => this.#slotFor(name, param),
      hyperFor: (name) => this.#resolveHyper(name),
    };
    this.#plain = new PlainPath<H, S>({
      rule: this.#planner.rule,
      owner: this.#owner,
      nonFinite: this.nonFinite,
      inputs: this.checkInputs ? this.#inputs : undefined,
      slots: this.#slots,
      global: this.#global,
      slotFor: (name, param) => this.#slotFor(name, param),
      setLearningRate: (target, hyper, name) => this.#setLearningRate(target, hyper, name),
    });
    this.#store = new StorePath<H, S>({
      planner: this.#planner,
      backend: this.backend,
      nonFinite: this.nonFinite,
      overrides: this.#overrides,
      global: this.#global,
      setLearningRate: (target, hyper, name) => this.#setLearningRate(target, hyper, name),
    });
  }

  /**
   * The resolved hyperparameters for parameters no override matches. With a schedule, or
   * after `setHyperparameters`, the values of the step last taken or checked (step 0's
   * before the first); `hyperparameters(name, step)` gives any step's.
   */
  get defaults(): Readonly<H> {
    return this.#hyper.hyper(0);
  }

  /** The names of the options given as schedules (`lr` included), for the defaults. */
  get scheduledOptions(): readonly string[] {
    return this.#hyper.scheduledOptions;
  }

  /**
   * New values for the defaults' hyperparameters (numbers, booleans, or schedules of the
   * 0-based update count), e.g. `{ momentum: 0.95 }`, in force from the next step, for
   * every parameter whose override does not set the option itself (torch: assigning
   * `param_groups[0]['momentum']` between steps). Checked at the call (a schedule is
   * evaluated at the next step's count): a bad value throws a RangeError naming the
   * option and value, and nothing changes. Options that shape the state (`variant`,
   * `amsgrad`, ...) cannot change. Numbers and booleans set here are saved in the state
   * dict and restored by `loadStateDict`; a schedule set here is not (a function cannot
   * be saved): give it again after loading.
   */
  setHyperparameters(values: Partial<Schedulable<O>>): void {
    this.#hyper.set(`${this.#rule.name}.setHyperparameters`, values, this.#stepCount, OPTIMIZER_OPTION_NAMES);
  }

  /** The rule this optimizer runs: what it is (`rule.key`, `rule.paper`, ...) and its kernels. */
  get rule(): UpdateRule<O, H, S> {
    return this.#rule;
  }

  /**
   * State buffers per parameter this optimizer keeps at most, over its defaults and
   * overrides (what `new ParamStore(shapes, { stateBuffers: [optimizer] })` reserves).
   */
  stateBuffersPerParam(): number {
    // A rule of shaped state keeps it outside the store (rule.ts `ownState`).
    if (this.#rule.ownState === true) return 0;
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

  /**
   * How many threads ran the last update (its largest kernel call): more than 1 only for
   * a float32 ParamStore on the wasm kernels whose workers are up (the store's `threads`
   * option); undefined before the first.
   */
  get threadsUsed(): number | undefined {
    return this.#threadsUsed;
  }

  /** Updates applied so far; the step number a schedule sees next. */
  get stepCount(): number {
    return this.#stepCount;
  }

  /** Updates skipped because a gradient was not finite (`nonFinite: 'skip'`). */
  get skippedSteps(): number {
    return this.#skippedSteps;
  }

  /**
   * The resolved hyperparameters that apply to parameter `name` at update `step` (default:
   * the next one), schedules evaluated (`lr` as given: a number or its schedule). Throws
   * an UpdateError when a schedule gives a value the rule refuses at that step.
   */
  hyperparameters(name: string, step: number = this.#stepCount): Readonly<H> {
    return this.#hyper.at(this.#groupOf(name), step);
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
    this.#store.forgetPlan();
    for (const store of this.#stores) store.releaseState(this, name);
    if (name === undefined) {
      this.#stores.clear();
      this.#slots.clear();
      this.#stepCount = 0;
      this.#skippedSteps = 0;
      this.#global?.reset();
    } else {
      this.#slots.delete(name);
    }
  }

  /**
   * Checks the step `update(params, grads, storeNames)` would take and writes nothing:
   * throws what update would throw before writing; false when update would skip it
   * (`nonFinite: 'skip'`), true when it would apply it. Wrappers over several
   * optimizers (`partition`) check every member before any member steps.
   */
  check<K extends string>(params: ParamSet<K>, grads: ParamSet<K>, storeNames?: readonly K[]): boolean {
    this.beforeStep();
    this.#hyper.prepare(this.#stepCount);
    const store = storeOf(params);
    if (store !== undefined && storeOf(grads) === store) return this.#store.check(store, storeNames ?? store.names);
    this.#checkNotStore(storeNames);
    return this.#plain.check(params, grads);
  }

  /**
   * One step for every parameter in `params`, in place, with the gradient of the same
   * name in `grads`. Returns false when the step was skipped (`nonFinite: 'skip'`).
   * Throws before writing anything when the call is not valid, or, after applying the
   * step, when the step wrote a NaN or an Infinity (the error says which happened).
   *
   * `storeNames` (ParamStore updates only): update just these parameters of the store,
   * e.g. the part of a `partition` this optimizer is assigned. Pass the same array at
   * every step (a different array rebuilds the plan). The finiteness scan covers the
   * gradients of these parameters.
   */
  update<K extends string>(params: ParamSet<K>, grads: ParamSet<K>, storeNames?: readonly K[]): boolean {
    this.beforeStep();
    this.#hyper.prepare(this.#stepCount);
    const store = storeOf(params);
    if (store !== undefined && storeOf(grads) === store) {
      const names = storeNames ?? store.names;
      if (!this.#store.check(store, names)) {
        this.#skippedSteps += 1;
        return false;
      }
      const wasm = this.#store.apply(store, names);
      this.#stepCount += 1;
      this.#backendUsed = wasm ? 'wasm' : 'js';
      this.#threadsUsed = Math.max(1, store.takeThreadsRan());
      // The step is applied to every run; then, if one wrote a NaN or an Infinity, say where.
      this.#store.throwOverflow();
      return true;
    }
    this.#checkNotStore(storeNames);
    if (!this.#plain.apply(params, grads)) {
      this.#skippedSteps += 1;
      return false;
    }
    this.#stepCount += 1;
    this.#backendUsed = 'js';
    this.#threadsUsed = 1;
    // Every parameter took the step; then, if one wrote a NaN or an Infinity, say where.
    this.#plain.throwOverflow();
    return true;
  }

  /** A check of the optimizer's own condition before any step (Schedule-Free: not in eval mode). Throws to refuse. */
  protected beforeStep(): void {}

  #checkNotStore(storeNames: readonly string[] | undefined): void {
    if (storeNames !== undefined) {
      throw new UpdateError(`${this.#owner}: storeNames selects parameters of a ParamStore; these params and grads are not one store's (update a subset of plain arrays by passing that subset)`, '');
    }
    if (this.backend === 'wasm') {
      throw new UpdateError(`${this.#owner}: backend 'wasm' updates a float32 ParamStore: pass store.params and store.grads of the same store`, '');
    }
  }

  // ---------------------------------------------------------------------------------
  // What both update paths ask of the optimizer: the lr of a step, a parameter's slot.

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

  #resolveHyper(name: string): H {
    for (const override of this.#overrides) {
      if (override.matches(name)) return override.hyper;
    }
    return this.#hyper.hyper(0);
  }

  /** 0 for the defaults, i + 1 for override i. */
  #groupOf(name: string): number {
    const hyper = this.#slots.get(name)?.hyper ?? this.#resolveHyper(name);
    const index = this.#overrides.findIndex((override) => override.hyper === hyper);
    return index + 1;
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
  // State dict.

  /** A copy of the whole state: step counts, and per parameter its step, scalars and buffers. */
  stateDict(): OptimizerStateDict {
    const dict = stateDictOf(this.#rule as unknown as UpdateRule<never, H, S>, variantOf(this.defaults), this.#slots, this, this.#hyper.saved());
    if (this.#global !== undefined) dict.scalars = this.#global.record();
    return dict;
  }

  /**
   * Replaces the whole state with a saved one (copied). Everything is validated first: on
   * any mismatch it throws a StateError and the optimizer keeps its state.
   */
  loadStateDict(value: unknown): void {
    const { slots, counters } = slotsOfStateDict(this.#rule as unknown as UpdateRule<never, H, S>, variantOf(this.defaults), (name) => this.#resolveHyper(name), value);
    const applyHyperparameters = this.#hyper.planLoad(`${this.#rule.name}.loadStateDict`, (value as { hyperparameters?: unknown }).hyperparameters, counters.stepCount);
    const scalars = this.#global?.parse(`${this.#rule.name}.loadStateDict`, value);
    // Everything is checked; from here on nothing throws.
    applyHyperparameters();
    this.#store.forgetPlan();
    this.#inputs.forget();
    this.#slots.clear();
    for (const [name, slot] of slots) this.#slots.set(name, slot);
    this.#stepCount = counters.stepCount;
    this.#skippedSteps = counters.skippedSteps;
    if (scalars !== undefined) this.#global!.load(scalars);
  }

  /** Names of the parameters that hold state, for subclasses that act on all of them (Schedule-Free's eval/train). */
  protected paramsWithState(): string[] {
    return [...this.#slots.values()].filter((slot) => slot.state !== undefined).map((slot) => slot.name);
  }
}
