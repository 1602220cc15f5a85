/**
 * Muon: momentum, then the update matrix orthogonalised by a Newton-Schulz iteration.
 * Jordan, Jin, Boza, You, Cesista, Newhouse & Bernstein (2024), "Muon: An optimizer for
 * hidden layers in neural networks" (kellerjordan.github.io/posts/muon); as the authors'
 * code computes it (github.com/KellerJordan/Muon, muon.py at commit
 * 857d1adc159e098212f828d927460782d3da59e9, `muon_update` and
 * `zeropower_via_newtonschulz5`). For a parameter of shape rows x cols:
 *
 *     m <- beta m + (1 - beta) g
 *     u  = (1 - beta) g + beta m       (nesterov, the default)   or   u = m
 *     X  = u / (||u||_F + 1e-7)        (X = u^T first when rows > cols)
 *     nsSteps times:  A = X X^T,  B = b A + c A A,  X <- a X + B X
 *                     (a, b, c) = (3.4445, -4.7750, 2.0315)
 *     p <- p (1 - lr wd) - lr sqrt(max(1, rows / cols)) X   (X transposed back)
 *
 * The quintic does not converge to the orthogonal polar factor U V^T: it maps every
 * singular value of a well-spread matrix into roughly [0.68, 1.14] (by design: the
 * coefficients maximise the slope at zero, so five steps suffice). Weight decay is
 * decoupled (AdamW's). `maximize` is ours (it negates the gradient).
 *
 * Differences from the reference: the reference runs the iteration in bfloat16 (8 bits
 * of mantissa, relative rounding 4e-3); here it runs in float32 (wasm, and JS on float32
 * params) or float64 (JS on float64 params), so the result is the exact quintic map to
 * 1e-6 rather than to 1e-2: the singular values land in the same band, a little more
 * tightly. The reference overwrites p.grad with u (`grad.lerp_`); here the gradients are
 * left as they were. `torch.optim.Muon` (2.9) keeps the classic buffer `B = mu B + g`
 * and uses `g + mu B`, a constant multiple of u that the normalisation removes (up to
 * the 1e-7).
 *
 * 2-D only: each parameter's shape comes from `options.shapes` or from its ParamStore's
 * shapes; a parameter with neither, or of another rank, is an error naming it (send
 * biases, gains and the output layer to another optimizer with `partition`, as Muon's
 * authors recommend). State (torch's key): `momentumBuffer`, kept in arrays of the
 * optimizer's own, also for a ParamStore (`stateBuffersPerParam()` is 0).
 *
 * lr, momentum, nsSteps and weightDecay take schedules `(step) => value` and change with
 * `setHyperparameters`, as every optimizer's (docs/hyperparameters.md); `shapes` does not.
 *
 * Kernels: the matrix products run in WebAssembly SIMD (assembly/muon.ts: `gram`,
 * `nsPoly`, `nsApply`, register-blocked) on a memory of Muon's own, one per matrix shape,
 * made at the first step of that shape and never grown; else in JS loops (double
 * arithmetic, rounded to the parameter's type on every store). Either way a step
 * allocates nothing after the first.
 *
 * This file is the optimizer class (calls, state per parameter, hyperparameters); the
 * rest is in muon/: options.ts (options, their checks, the registry's description),
 * checks.ts (one parameter's checks), step.ts (one parameter's step), newton-schulz.ts
 * (the iteration in JS), wasm.ts (the wasm memory, and which kernels a shape runs on),
 * state-dict.ts (the saved form).
 */
import { UpdateError, describeValue, optionError } from '../errors.ts';
import { checkStateDict, type OptimizerStateDict } from '../state.ts';
import { storeOf } from '../store.ts';
import { dtypeOf, forEachArray, getArray, type FloatArray, type ParamSet } from '../types.ts';
import { booleanOption, checkKnownOptions, choiceOption } from '../validate.ts';
import { wasmUnavailableReason } from '../wasm/kernels.ts';
import type { Backend, NonFinitePolicy } from '../optimizer.ts';
import { Hyperparameters, type Schedulable } from '../optimizer/hyperparameters.ts';
import type { OptimizerLike } from '../contract.ts';
import type { RuleDescription } from '../rule.ts';
import { checkNoAliasing, checkSet } from '../optimizer/checks.ts';
import { aliasEntriesOf, checkStateFits, checkedParam, firstNonFinite, shapeOf } from './muon/checks.ts';
import type { Workspace } from './muon/newton-schulz.ts';
import { HYPER_NAMES, OPTION_NAMES, muonDescription, resolveMuon, resolveShapes, type MuonHyper, type MuonOptions, type MuonState } from './muon/options.ts';
import { muonSlotsOfSaved, muonStateDict, type Slot } from './muon/state-dict.ts';
import { muonStep } from './muon/step.ts';
import { workspaceFor } from './muon/wasm.ts';

export { NEWTON_SCHULZ_COEFFICIENTS } from './muon/newton-schulz.ts';
export { muonDescription, type MuonHyper, type MuonOptions, type MuonState } from './muon/options.ts';

/** Stands in for the call's params and grads between calls (a new `{}` per call would allocate). */
const NO_ARRAYS: ParamSet = Object.freeze({});

/**
 * Muon over named 2-D typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new Muon({ lr: 0.02, shapes: { W1: [784, 100] } });
 * opt.update(params, grads); // in place
 * ```
 */
export class Muon implements OptimizerLike<OptimizerStateDict> {
  /** The hyperparameters, their schedules and the values set at run time (see optimizer/hyperparameters.ts). */
  readonly #hyper: Hyperparameters<MuonHyper>;
  readonly backend: Backend;
  readonly nonFinite: NonFinitePolicy;
  readonly checkInputs: boolean;
  readonly #shapes = new Map<string, readonly [number, number]>();
  readonly #slots = new Map<string, Slot>();
  /** Workspaces shared by parameters of one shape and kind ('wasm', 'float32', 'float64'). */
  readonly #workspaces = new Map<string, Workspace>();
  #stepCount = 0;
  #skippedSteps = 0;
  #backendUsed: 'js' | 'wasm' | undefined;
  // The call in progress, read by the pre-bound visitors (no closure per call).
  #params: ParamSet = NO_ARRAYS;
  #grads: ParamSet = NO_ARRAYS;
  #shapeSource: { readonly [name: string]: readonly number[] } | undefined;
  /** This step's lr, in [0]: a double passed as an argument to muonStep would be boxed. */
  readonly #lr = new Float64Array(1);
  #sawNonFinite = false;
  #overflow: string | undefined;
  #usedWasm = false;
  /** The store names of the call in progress (a ParamStore update of part of a store), else undefined. */
  #names: readonly string[] | undefined;
  /** The arrays of the last set checked for aliasing: [param, grad] per parameter. */
  readonly #checkedArrays: unknown[] = [];

  constructor(options: Schedulable<MuonOptions> = {}) {
    const owner = 'Muon';
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new TypeError(`${owner}: options must be an object, got ${describeValue(options)}`);
    }
    checkKnownOptions(owner, options, OPTION_NAMES);
    this.backend = choiceOption<Backend>(owner, 'backend', options.backend, ['auto', 'js', 'wasm']);
    this.nonFinite = choiceOption<NonFinitePolicy>(owner, 'nonFinite', options.nonFinite, ['error', 'skip', 'ignore']);
    this.checkInputs = booleanOption(owner, 'checkInputs', options.checkInputs, true);
    const hyperOptions: { [key: string]: unknown } = {};
    for (const key of HYPER_NAMES) if ((options as { readonly [key: string]: unknown })[key] !== undefined) hyperOptions[key] = (options as { readonly [key: string]: unknown })[key];
    this.#hyper = new Hyperparameters<MuonHyper>({ owner, fixed: muonDescription.fixedOptions ?? {}, resolve: resolveMuon }, hyperOptions, []);
    resolveShapes(owner, options.shapes, this.#shapes);
    if (this.backend === 'wasm' && wasmUnavailableReason() !== undefined) {
      throw optionError(owner, 'backend', 'wasm', `'auto' or 'js' (${wasmUnavailableReason()!})`);
    }
  }

  /**
   * The hyperparameters. With a schedule, or after `setHyperparameters`, the values of the
   * step last taken or checked (step 0's before the first); `hyperparameters(step)` gives
   * any step's.
   */
  get defaults(): Readonly<MuonHyper> {
    return this.#hyper.hyper(0);
  }

  /** The hyperparameters at update `step` (default: the next), schedules evaluated (`lr` as given). */
  hyperparameters(step: number = this.#stepCount): Readonly<MuonHyper> {
    return this.#hyper.at(0, step);
  }

  /** The names of the options given as schedules (`lr` included). */
  get scheduledOptions(): readonly string[] {
    return this.#hyper.scheduledOptions;
  }

  /**
   * New values for hyperparameters (numbers, booleans, schedules), in force from the next
   * step; checked at the call, as Optimizer's `setHyperparameters` (see there).
   */
  setHyperparameters(values: Partial<Schedulable<Omit<MuonOptions, 'shapes' | 'backend' | 'nonFinite' | 'checkInputs'>>>): void {
    this.#hyper.set('Muon.setHyperparameters', values, this.#stepCount, ['shapes', 'backend', 'nonFinite', 'checkInputs']);
  }

  /** Muon keeps its momentum outside any ParamStore: it needs none of a store's state regions. */
  stateBuffersPerParam(): number {
    return 0;
  }

  get stepCount(): number {
    return this.#stepCount;
  }

  get skippedSteps(): number {
    return this.#skippedSteps;
  }

  /** Which kernels ran the last update's matrix products: 'wasm' or 'js'. */
  get backendUsed(): 'js' | 'wasm' | undefined {
    return this.#backendUsed;
  }

  /** The learning rate the next update will use. */
  learningRate(): number {
    const lr = this.defaults.lr;
    return typeof lr === 'number' ? lr : lr(this.#stepCount);
  }

  /** The live state of parameter `name` (undefined before its first update). Do not write to it. */
  stateOf(name: string): Readonly<MuonState> | undefined {
    return this.#slots.get(name)?.state;
  }

  /** Forgets the state of one parameter, or of all (and the step counts) when no name is given. */
  reset(name?: string): void {
    if (name === undefined) {
      this.#slots.clear();
      this.#stepCount = 0;
      this.#skippedSteps = 0;
    } else {
      this.#slots.delete(name);
    }
  }

  /** What Muon is (`rule.key` is 'muon'): the registry's description; Muon has no elementwise rule. */
  get rule(): RuleDescription {
    return muonDescription;
  }

  /**
   * Checks the step `update(params, grads, storeNames)` would take, writing nothing:
   * throws what update would throw before writing; false when it would skip the step.
   */
  check<K extends string>(params: ParamSet<K>, grads: ParamSet<K>, storeNames?: readonly K[]): boolean {
    try {
      return this.#checkCall(params, grads, storeNames);
    } finally {
      this.#params = NO_ARRAYS;
      this.#grads = NO_ARRAYS;
      this.#shapeSource = undefined;
    }
  }

  /**
   * One step for every parameter in `params`, in place. Returns false when the step was
   * skipped (`nonFinite: 'skip'`). Throws before writing anything when the call is not
   * valid; after applying the step when it wrote a NaN or an Infinity.
   *
   * `storeNames` (ParamStore updates only, as Optimizer's): update just these parameters
   * of the store (the part of a `partition` Muon is assigned).
   */
  update<K extends string>(params: ParamSet<K>, grads: ParamSet<K>, storeNames?: readonly K[]): boolean {
    const owner = 'Muon.update';
    try {
      if (!this.#checkCall(params, grads, storeNames)) {
        this.#skippedSteps += 1;
        return false;
      }
      const names = this.#names;
      if (names !== undefined) {
        for (let i = 0; i < names.length; i++) this.#apply(getArray(params, names[i]!), names[i]!);
      } else {
        forEachArray(params, this.#apply);
      }
      this.#stepCount += 1;
      this.#backendUsed = this.#usedWasm ? 'wasm' : 'js';
      if (this.#overflow !== undefined) {
        const name = this.#overflow;
        throw new UpdateError(
          `${owner}: the step overflowed: parameter '${name}' or its momentumBuffer holds a NaN or an Infinity, from finite gradients. ` +
            'This step WAS applied, to every parameter. Use a smaller lr, and restore the params and state saved before this step',
          name,
        );
      }
      return true;
    } finally {
      this.#params = NO_ARRAYS;
      this.#grads = NO_ARRAYS;
      this.#shapeSource = undefined;
      this.#names = undefined;
    }
  }

  /** Every check of a step (sets the call's fields); false when the step is to be skipped. */
  #checkCall(params: ParamSet, grads: ParamSet, storeNames: readonly string[] | undefined): boolean {
    const owner = 'Muon.update';
    checkSet(owner, 'params', params);
    checkSet(owner, 'grads', grads);
    const store = storeOf(params);
    this.#shapeSource = store?.shapes as { readonly [name: string]: readonly number[] } | undefined;
    this.#params = params;
    this.#grads = grads;
    this.#sawNonFinite = false;
    this.#overflow = undefined;
    this.#usedWasm = false;
    this.#hyper.prepare(this.#stepCount);
    this.#setLearningRate();
    const names = store !== undefined && storeOf(grads) === store ? storeNames : undefined;
    if (storeNames !== undefined && names === undefined) {
      throw new UpdateError(`${owner}: storeNames selects parameters of a ParamStore; these params and grads are not one store's (update a subset of plain arrays by passing that subset)`, '');
    }
    this.#names = names;
    this.#aliasSame = true;
    this.#aliasCount = 0;
    if (names !== undefined) {
      for (let i = 0; i < names.length; i++) {
        const name = names[i]!;
        if (typeof name !== 'string' || !Object.hasOwn(store!.params, name)) throw new UpdateError(`${owner}: storeNames names '${String(name)}', which is not a parameter of the store`, String(name));
        this.#prepare(getArray(params, name), name);
      }
    } else {
      forEachArray(params, this.#prepare);
      if (this.checkInputs) {
        forEachArray(grads, this.#checkGradName);
        this.#checkAliasing(params, grads);
      }
    }
    return !this.#sawNonFinite;
  }

  /**
   * No two arrays among all params and grads share memory (a step would read what it
   * wrote): checked when the set of arrays changes, not at every step.
   */
  #checkAliasing(params: ParamSet, grads: ParamSet): void {
    if (this.#aliasSame && this.#aliasCount * 2 === this.#checkedArrays.length) return;
    // In a function of its own: a closure capturing this method's arguments would make V8
    // allocate a context at every call, even on the early return above.
    const entries = aliasEntriesOf(params, grads);
    checkNoAliasing('Muon.update', entries);
    this.#checkedArrays.length = 0;
    for (const entry of entries) this.#checkedArrays.push(entry.array);
  }

  // Whether the call's arrays are those checked last time, found by #prepare as it goes
  // (a pass of its own over the set would cost a second walk of the object per step).
  #aliasSame = true;
  #aliasCount = 0;

  /** This step's lr into #lr[0], checked (written, not returned: a returned double is boxed). */
  #setLearningRate(): void {
    const lr = this.defaults.lr;
    if (typeof lr === 'number') {
      this.#lr[0] = lr;
      return;
    }
    const value: unknown = lr(this.#stepCount);
    if (typeof value !== 'number' || !(value >= 0) || value === Infinity) {
      throw new UpdateError(`Muon.update: the lr schedule returned ${describeValue(value)} at step ${this.#stepCount} (expected a finite number >= 0)`, '');
    }
    this.#lr[0] = value;
  }

  readonly #checkGradName = (_grad: unknown, name: string): void => {
    if (getArray(this.#params, name) === undefined) throw new UpdateError(`Muon.update: gradient '${name}' has no parameter of that name`, name);
  };

  /** Checks one parameter (shape, gradient, state) and its gradient's finiteness; writes nothing. */
  readonly #prepare = (param: unknown, name: string): void => {
    const owner = 'Muon.update';
    const i = this.#aliasCount++;
    if (this.#checkedArrays[2 * i] !== param || this.#checkedArrays[2 * i + 1] !== getArray(this.#grads, name)) this.#aliasSame = false;
    let slot = this.#slots.get(name);
    if (this.checkInputs || slot === undefined) {
      const p = checkedParam(owner, name, param, getArray(this.#grads, name));
      const shape = shapeOf(owner, name, p.length, this.#shapes.get(name), this.#shapeSource);
      const rows = shape[0]!;
      const cols = shape[1]!;
      if (slot !== undefined && (slot.rows !== rows || slot.cols !== cols)) {
        slot = undefined; // a new shape: checked below against the state
      }
      checkStateFits(owner, name, p, this.#slots.get(name)?.state);
      if (this.backend === 'wasm' && dtypeOf(p) !== 'float32') {
        throw new UpdateError(`${owner}: backend 'wasm' runs float32 parameters, '${name}' is float64`, name);
      }
      if (slot === undefined) {
        const old = this.#slots.get(name);
        this.#slots.set(name, { rows, cols, state: old?.state, dtype: dtypeOf(p), workspace: undefined });
      }
    }
    if (this.nonFinite === 'ignore' || this.#sawNonFinite) return;
    const grad = getArray(this.#grads, name) as FloatArray;
    const bad = firstNonFinite(grad);
    if (bad >= 0) {
      if (this.nonFinite === 'skip') {
        this.#sawNonFinite = true;
        return;
      }
      throw new UpdateError(`${owner}: gradient '${name}' is not finite at index ${bad} (${grad[bad]})`, name, bad);
    }
  };

  readonly #apply = (param: unknown, name: string): void => {
    const p = param as FloatArray;
    const g = getArray(this.#grads, name) as FloatArray;
    const slot = this.#slots.get(name)!;
    if (slot.state === undefined) {
      slot.state = { step: 0, momentumBuffer: dtypeOf(p) === 'float32' ? new Float32Array(p.length) : new Float64Array(p.length) };
    }
    slot.workspace ??= workspaceFor(this.#workspaces, slot.rows, slot.cols, slot.dtype, this.backend);
    const w = slot.workspace;
    if (w.kernels !== null) this.#usedWasm = true;
    const state = slot.state;
    state.step += 1;
    const overflowed = muonStep(p, g, state.momentumBuffer, slot.rows, slot.cols, w, this.defaults, this.#lr);
    if (overflowed && this.nonFinite !== 'ignore' && this.#overflow === undefined) this.#overflow = name;
  };

  /** A copy of the whole state, in the format every optimizer here saves (`momentumBuffer` per parameter). */
  stateDict(): OptimizerStateDict {
    return muonStateDict(this.#slots, this.#stepCount, this.#skippedSteps, this.#hyper.saved());
  }

  /** Replaces the whole state with a saved one (copied); validated first, so a bad one changes nothing. */
  loadStateDict(value: unknown): void {
    const saved = checkStateDict(value);
    const owner = 'Muon.loadStateDict';
    const slots = muonSlotsOfSaved(owner, saved);
    this.#hyper.planLoad(owner, saved.hyperparameters, saved.stepCount)();
    this.#slots.clear();
    for (const [name, slot] of slots) this.#slots.set(name, slot);
    this.#stepCount = saved.stepCount;
    this.#skippedSteps = saved.skippedSteps;
  }
}
