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
   */
  init(length: number, dtype: Dtype, hyper: H, alloc?: Allocator): S;
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
