/**
 * The contract every update rule fulfils (compare optax's `init` / `update` pair).
 *
 * A rule is plain data and functions: it validates its options into a resolved
 * hyperparameter record, creates the state of one parameter, and advances that
 * parameter by one step with a single fused loop. The `Optimizer` class owns
 * state per parameter name and never re-implements the math.
 */
import type { Dtype, FloatArray, LearningRate } from './types.ts';
import type { WasmKernels } from './wasm/kernels.ts';
import type { RuleKernels } from './kernel.ts';
import type { ParamStateRecord } from './state/records.ts';
import { booleanOption, learningRateOption, numberOption, requireNeutral } from './validate.ts';

/** Hyperparameters every rule has, resolved (defaults applied, validated). */
export interface CommonHyper {
  readonly lr: LearningRate;
  /**
   * The weight decay: coupled (L2), `g += weightDecay * p`, unless `decoupledWeightDecay`
   * (AdamW, Lion, Muon always; LAMB and Schedule-Free AdamW add it to the update).
   */
  readonly weightDecay: number;
  /**
   * `weightDecay` is decoupled: `p <- p * (1 - lr * weightDecay)` before the step, which
   * then sees no decay (torch 2.x's `decoupled_weight_decay=True`). Always true for a
   * rule whose decay is decoupled by definition, false for one that adds it to its update.
   */
  readonly decoupledWeightDecay: boolean;
  /** Ascend instead of descend: the gradient is negated first. */
  readonly maximize: boolean;
}

/** Options every rule accepts. */
export interface CommonOptions {
  /** Learning rate, or a schedule `(step) => lr` of the 0-based update count. */
  lr?: LearningRate;
  /** Weight decay: an L2 penalty added to the gradient unless `decoupledWeightDecay`. Default 0. */
  weightDecay?: number;
  /**
   * Decouple `weightDecay` from the gradient, as torch 2.x's `decoupled_weight_decay=True`:
   * `p <- p * (1 - lr * weightDecay)`, then the rule's step without decay. Adam with it is
   * AdamW, SGD / Momentum / Nesterov with it are SGDW. Default false (true, and only true,
   * for rules whose decay is decoupled by definition: AdamW, NAdamW, Lion).
   */
  decoupledWeightDecay?: boolean;
  /** Maximize the objective instead of minimizing it. Default false. */
  maximize?: boolean;
}

/** Per-step scalars handed to a rule's step. */
export interface StepScalars {
  /** The learning rate of this step (the schedule already evaluated). */
  readonly lr: number;
}

/** State of one parameter. Every rule counts its own steps (PyTorch's per-parameter `step`). */
export interface RuleState {
  step: number;
}

/**
 * How weight decay enters a rule's step:
 * - 'coupled': added to the gradient, `g += weightDecay * p` (an L2 penalty: it passes
 *   through the rule's moments and normalisation); the rule's default, which
 *   `decoupledWeightDecay: true` turns into the next;
 * - 'decoupled': `p *= 1 - lr * weightDecay` beside the step (AdamW, Lion, Muon);
 * - 'update': added to the rule's normalised update, `u += weightDecay * p`, then scaled
 *   by the step (optax's `add_decayed_weights` after the rule: LAMB, Schedule-Free AdamW).
 */
export type WeightDecayKind = 'coupled' | 'decoupled' | 'update';

/** Option name to the reason it may not change after construction (RuleDescription.fixedOptions). */
export type FixedOptions = { readonly [option: string]: string };

/**
 * What a rule says about itself: the facts every list of rules (the registry in
 * rules/index.ts, the TF.js adapter, the bench, the app, the README's table) reads from
 * the rule instead of keeping a copy.
 */
export interface RuleDescription {
  /** Class name, used in messages and saved state. */
  readonly name: string;
  /** Its WebAssembly kernels, by variant: export, arrays, named scalars (kernel.ts). Absent: JS only. */
  readonly kernels?: RuleKernels;
  /** The lower-case name the CLI, the bench and the registry use ('nesterov', 'schedulefree-adamw'). */
  readonly key: string;
  /** The paper the rule follows (authors, year, title). */
  readonly paper: string;
  readonly weightDecayKind: WeightDecayKind;
  /**
   * Options that shape the state (whether a buffer exists, what it starts at, how the
   * parameters relate to it), with the reason: they take no schedule and
   * `setHyperparameters` refuses them. `variant` is fixed for every rule.
   */
  readonly fixedOptions?: FixedOptions;
  /** The same rule in the peers, by their names for it; absent where a peer has none. */
  readonly peers: { readonly torch?: string; readonly optax?: string; readonly keras?: string; readonly tfjs?: string };
}

export interface UpdateRule<O extends CommonOptions, H extends CommonHyper, S extends RuleState> extends RuleDescription {
  /** Every option name the rule accepts (common ones included). */
  readonly optionNames: readonly string[];
  /** Options a per-parameter override may not change (they shape the whole optimizer). */
  readonly globalOptions: readonly string[];
  /**
   * The step of a parameter depends on the whole parameter (LAMB's per-tensor norms): a
   * ParamStore update then steps each parameter on its own, not a run of several as one.
   */
  readonly perParameter?: boolean;
  /**
   * The state is not per element but shaped (Adafactor's factored second moment: a row
   * and a column per matrix): it lives in arrays of the rule's own, never in a
   * ParamStore's state regions (as long as the parameter), and each parameter steps on
   * its own. Such a rule has `perParameter` and the three hooks below.
   */
  readonly ownState?: boolean;
  /**
   * The shape `init` gets for parameter `name` (ownState rules): from the rule's own
   * options or the ParamStore's (`storeShape`), undefined for none. Throws an UpdateError
   * naming the parameter for a shape it cannot take. Called while a step is checked.
   */
  shapeOf?(hyper: H, name: string, length: number, storeShape: readonly number[] | undefined): readonly number[] | undefined;
  /** Why a parameter of this shape cannot take steps with this state (made for another shape), or undefined. */
  stateMismatch?(state: S, hyper: H, shape: readonly number[] | undefined): string | undefined;
  /** The shape a saved record's state was made for (its scalars say), checked: throws a StateError. */
  shapeOfRecord?(record: ParamStateRecord, hyper: H): readonly number[] | undefined;
  /** Validates options and applies defaults; throws naming the option and value. */
  resolve(options: O): H;
  /** Names of the per-element state buffers this configuration keeps, in a fixed order. */
  bufferNames(hyper: H): readonly string[];
  /** The state's buffers, in the order of `bufferNames(hyper)`. */
  buffersOf(state: S, hyper: H): readonly FloatArray[];
  /** Names of per-parameter scalar state besides `step` (e.g. NAdam's `muProduct`). */
  readonly scalarNames: readonly string[];
  /**
   * Copies the scalars named in `scalarNames` (rules that have any). A ParamStore update
   * steps one state for a run of parameters and copies its counters to each; a plain
   * property copy keeps doubles unboxed where a copy by computed key would not.
   */
  copyScalars?(from: S, to: S): void;
  /**
   * Fresh state for a parameter of this length and type. Buffers come from `alloc`, in
   * the order of `bufferNames` (a ParamStore hands out views of its state regions).
   * `shape`: the parameter's dimensions, for `ownState` rules (`shapeOf`'s answer).
   */
  init(length: number, dtype: Dtype, hyper: H, alloc?: Allocator, shape?: readonly number[]): S;
  /**
   * One step in place: increments `state.step`, then one fused pass over the elements
   * (the rule's JS kernel, in its copy for the array type: see kernel.ts).
   * The learning rate of this step arrives as `scalars.lr`, a field rather than an
   * argument: a double passed to a call that is not inlined is boxed, one allocation
   * per call.
   *
   * Returns true when every value the step wrote (params and state) is finite, false when
   * its own arithmetic produced a NaN or an Infinity (rarely false with all finite: see
   * the kernels' probe in kernel.ts). The step is applied either way.
   */
  step(param: FloatArray, grad: FloatArray, state: S, hyper: H, scalars: StepScalars): boolean;
  /**
   * The least value each named buffer or scalar of the state may hold (a second moment is
   * >= 0: its square root would be NaN). A loaded state is checked against these after its
   * structure and the finiteness of every value: a checksum says a file is intact, not
   * that its numbers make sense.
   */
  readonly stateBounds?: { readonly [name: string]: { readonly min: number } };
  /**
   * The same step by the WebAssembly SIMD kernel, for float32 arrays that are views of
   * the kernels' memory (a ParamStore). Optional: without it the rule runs in JS.
   * Returns what `step` returns.
   */
  stepWasm?(kernels: WasmKernels, param: Float32Array, grad: Float32Array, state: S, hyper: H, scalars: StepScalars): boolean;
  /**
   * A step that needs a sum over every parameter before any parameter moves (Prodigy's
   * and D-Adaptation's distance estimate: one estimate per step of the optimizer, however
   * many tensors). When present the facade runs this instead of `step` / `stepWasm`
   * (src/optimizer/global.ts); such a rule is `perParameter`, and its `stepWasm` (which
   * says that it has WebAssembly kernels, for backend 'wasm') is never called.
   */
  readonly global?: GlobalPhase<H, S>;
}

/**
 * The global phase of a step, in three parts: `accumulate` over every parameter (in
 * parameter order), `reduce` once, `apply` over every parameter. The optimizer-level
 * scalars it keeps (`scalarNames`) live in the optimizer's state dict, not per parameter.
 *
 * Each parameter's sums are its own (summed in double by the rule, in an order that
 * depends only on the parameter's length) and are added to the step's totals in
 * parameter order: the totals do not depend on how a ParamStore groups its runs, and a
 * sum is never split across threads.
 */
export interface GlobalPhase<H extends CommonHyper, S extends RuleState> {
  /** The optimizer-level scalars, in a fixed order (saved under these names). */
  readonly scalarNames: readonly string[];
  /** The least value each may hold (checked when a state is loaded). */
  readonly scalarBounds: { readonly [name: string]: { readonly min: number } };
  /** Writes their values before the first step (from the optimizer's defaults) into `into`. */
  initial(hyper: H, into: Float64Array): void;
  /** How many totals pass 1 adds to (each starts at 0 at every step). */
  readonly sumCount: number;
  /**
   * Pass 1 over one parameter: counts its step, updates the state pass 2 reads, and adds
   * this parameter's sums to `sums`. `scalars` are the optimizer-level scalars before
   * this step. `kernels`: the WebAssembly kernels when the arrays are float32 views of
   * their memory (a ParamStore; elementwise work only: the sums stay on the calling
   * thread, in double), else null. Returns false when it wrote a NaN or an Infinity.
   */
  accumulate(param: FloatArray, grad: FloatArray, state: S, hyper: H, step: StepScalars, scalars: Float64Array, sums: Float64Array, kernels: WasmKernels | null): boolean;
  /** Once per step, after pass 1 over every parameter: the new scalars from the old ones and the totals. */
  reduce(hyper: H, scalars: Float64Array, sums: Float64Array): void;
  /**
   * Pass 2 over one parameter: moves it. `before` holds the scalars pass 1 saw, `after`
   * the reduced ones. Returns false when it wrote a NaN or an Infinity.
   */
  apply(param: FloatArray, grad: FloatArray, state: S, hyper: H, step: StepScalars, before: Float64Array, after: Float64Array, kernels: WasmKernels | null): boolean;
}

/** Makes a state buffer: a zero-filled (or `fill`-filled) array of the given type. */
export type Allocator = (dtype: Dtype, length: number, fill?: number) => FloatArray;

export const COMMON_OPTION_NAMES = ['lr', 'weightDecay', 'decoupledWeightDecay', 'maximize'] as const;

/**
 * Resolves the options every rule shares. `decay` is the rule's own kind of weight decay
 * (its `weightDecayKind`): a 'coupled' rule may decouple it; a 'decoupled' one (Lion)
 * accepts `decoupledWeightDecay: true` and refuses false; an 'update' one (LAMB,
 * Schedule-Free AdamW, whose decay is part of the normalised update) the reverse.
 */
export function resolveCommon(owner: string, options: CommonOptions, defaultLr: number, decay: WeightDecayKind = 'coupled'): CommonHyper {
  const lr = learningRateOption(owner, options.lr, defaultLr);
  const weightDecay = numberOption(owner, 'weightDecay', options.weightDecay, 0, { min: 0 });
  let decoupledWeightDecay: boolean;
  if (decay === 'coupled') {
    decoupledWeightDecay = booleanOption(owner, 'decoupledWeightDecay', options.decoupledWeightDecay, false);
  } else if (decay === 'decoupled') {
    requireNeutral(owner, 'decoupledWeightDecay', options.decoupledWeightDecay, true, `(${owner}'s weight decay is decoupled by definition)`);
    decoupledWeightDecay = true;
  } else {
    requireNeutral(owner, 'decoupledWeightDecay', options.decoupledWeightDecay, false, `(${owner} adds its weight decay to the normalised update)`);
    decoupledWeightDecay = false;
  }
  return { lr, weightDecay, decoupledWeightDecay, maximize: booleanOption(owner, 'maximize', options.maximize, false) };
}

/**
 * Writes a kernel's two weight-decay scalars for the step of `scalars.lr`: `s[wdAt]`
 * the coupled decay (`g += wd * p`; 0 when decoupled) and `s[shrinkAt]` the decoupled
 * factor `1 - lr * weightDecay` (1 when coupled). The kernels fold the factor into their
 * load of p (`p * shrink`, then the step), the one pass over memory they make anyway; a
 * factor of exactly 1 skips the multiply, so the default path computes what it did before.
 * The lr comes in its record, not as an argument: a double passed to a call V8 does not
 * inline is boxed, an allocation per step.
 */
export function writeWeightDecay(s: Float64Array, wdAt: number, shrinkAt: number, h: CommonHyper, scalars: StepScalars): void {
  if (h.decoupledWeightDecay) {
    s[wdAt] = 0;
    s[shrinkAt] = 1 - scalars.lr * h.weightDecay;
  } else {
    s[wdAt] = h.weightDecay;
    s[shrinkAt] = 1;
  }
}

/** The default allocator: a new zero-filled (or `fill`-filled) array of the parameter's type. */
export const allocate: Allocator = (dtype, length, fill = 0) => {
  const array = dtype === 'float32' ? new Float32Array(length) : new Float64Array(length);
  if (fill !== 0) array.fill(fill);
  return array;
};
