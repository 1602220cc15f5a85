/**
 * Schedule-Free SGD: Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky (2024), "The
 * Road Less Scheduled", NeurIPS; as the authors' code computes it
 * (facebookresearch/schedule_free, `schedulefree/sgd_schedulefree.py`, the non-foreach
 * path of `SGDScheduleFree.step`). Three sequences: z (plain SGD), x (a weighted average
 * of the z iterates, what you evaluate) and y = (1 - beta) z + beta x (where the gradient
 * is taken, what the parameters hold while training). With k the 0-based step:
 *
 *     lr_k   = lr * min(1, (k + 1) / warmupSteps)
 *     lrMax  = max(lrMax, lr_k)                          (state, starts at -1)
 *     w      = (k + 1)^r * lrMax^weightLrPower
 *     weightSum += w;   c = w / weightSum                (c = 0 when weightSum is 0)
 *     g     <- g + weightDecay * y                       (at y)
 *     y     <- lerp(y, z, c) + lr_k (beta (1 - c) - 1) g
 *     z     <- z - lr_k g
 *
 * which is x_{k+1} = (1 - c) x_k + c z_{k+1} without storing x: x is
 * sum_t w_t z_t / sum_t w_t. z starts as a copy of the parameter, at the first step.
 * beta is `momentum`. beta -> 0 takes the gradient at z (Polyak-Ruppert averaging of
 * SGD), beta = 1 at x (primal averaging, which Nesterov's method is an instance of).
 *
 * Train/eval: the parameters hold y while training; `eval(params)` moves them to x
 * (`p = lerp(y, z, 1 - 1 / beta)`), `train(params)` back to y (`p = lerp(x, z, 1 - beta)`).
 * `update` in eval mode throws. Unlike the reference, a new optimizer starts in train
 * mode (the reference refuses `step` until `.train()` is called; before the first step
 * x = y = z, so the two agree). The mode is saved with the state: scalar `trainMode`
 * (1 train, 0 eval) of every parameter.
 *
 * Defaults (reference): lr 1, momentum 0.9, weightDecay 0, warmupSteps 0, r 0,
 * weightLrPower 2. State: `z`, scalars `lrMax`, `weightSum`, `trainMode` (the reference
 * keeps lr_max, weight_sum and k per parameter group; here per parameter, with `step`
 * as k). `maximize` is ours (negates the gradient), as in every rule.
 *
 * Overflow: lr |g| past 3.4e38 makes z and y -Infinity in float32; the kernels report
 * every NaN or Infinity they write and update() throws an UpdateError (the step is
 * applied: see optimizer.ts).
 */
import { optionError, StateError, UpdateError } from '../errors.ts';
import { allocate, COMMON_OPTION_NAMES, resolveCommon, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator, type WeightDecayKind } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import { checkStateDict, type OptimizerStateDict } from '../state.ts';
import { storeOf } from '../store.ts';
import { dtypeOf, getArray, isFloatArray, type Dtype, type FloatArray, type ParamSet } from '../types.ts';
import { checkKnownOptions, numberOption, requireNeutral } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

/** Options both Schedule-Free rules share (the reference's names in camelCase). */
export interface ScheduleFreeCommonOptions extends CommonOptions {
  /** Linear warmup of the lr over this many steps (0: none). Default 0. */
  warmupSteps?: number;
  /** Polynomial weighting of the average: w_t grows as t^r. Default 0. */
  r?: number;
  /** The average weighs step t by lrMax^weightLrPower (0: no weighting by lr). Default 2. */
  weightLrPower?: number;
}

export interface ScheduleFreeCommonHyper extends CommonHyper {
  readonly warmupSteps: number;
  readonly r: number;
  readonly weightLrPower: number;
}

/** State every Schedule-Free rule keeps: z and the averaging's bookkeeping. */
export interface ScheduleFreeState extends RuleState {
  /** The largest (warmed-up) lr so far; -1 before the first step (the reference's start). */
  lrMax: number;
  /** The sum of the averaging weights so far. */
  weightSum: number;
  /** 1 while the parameters hold y (training), 0 while they hold x (eval). */
  trainMode: number;
  z: FloatArray;
}

export interface ScheduleFreeSGDOptions extends ScheduleFreeCommonOptions {
  /** beta, the interpolation y = (1 - beta) z + beta x, in (0, 1). Default 0.9. */
  momentum?: number;
}

export interface ScheduleFreeSGDHyper extends ScheduleFreeCommonHyper {
  readonly momentum: number;
}

export type ScheduleFreeSGDState = ScheduleFreeState;

export const SCHEDULE_FREE_OPTION_NAMES = [...COMMON_OPTION_NAMES, 'warmupSteps', 'r', 'weightLrPower'] as const;
const NAMES = [...SCHEDULE_FREE_OPTION_NAMES, 'momentum'] as const;
export const SCHEDULE_FREE_SCALARS = ['lrMax', 'weightSum', 'trainMode'] as const;

/** Resolves the options both rules share (the lr default differs). */
export function resolveScheduleFree(owner: string, options: ScheduleFreeCommonOptions, defaultLr: number, decay: WeightDecayKind = 'coupled'): ScheduleFreeCommonHyper {
  const warmupSteps = options.warmupSteps ?? 0;
  if (!(typeof warmupSteps === 'number' && Number.isSafeInteger(warmupSteps) && warmupSteps >= 0)) {
    throw optionError(owner, 'warmupSteps', warmupSteps, 'an integer >= 0');
  }
  return {
    ...resolveCommon(owner, options, defaultLr, decay),
    warmupSteps,
    r: numberOption(owner, 'r', options.r, 0, { min: 0 }),
    weightLrPower: numberOption(owner, 'weightLrPower', options.weightLrPower, 2, { min: 0 }),
  };
}

export function copyScheduleFreeScalars(from: ScheduleFreeState, to: ScheduleFreeState): void {
  to.lrMax = from.lrMax;
  to.weightSum = from.weightSum;
  to.trainMode = from.trainMode;
}

/**
 * The scalars both Schedule-Free kernels start with: c, the steps of y and z, wd, sign,
 * first (1 at the first step: z is then the parameter). Schedule-Free AdamW's layout
 * extends this one, so writeScheduleFreeScalars serves both.
 */
export const SCHEDULE_FREE_STEP_SCALARS = ['c', 'yStep', 'zStep', 'wd', 'sign', 'first'] as const;

/** The wasm kernels: `scheduleFreeSgd(p, g, z, n, s)` (z read from the second step on) and `scheduleFreeLerp(p, z, n, s)` (eval/train). */
export const SCHEDULE_FREE_SGD_KERNELS = {
  step: kernelLayout({ entry: 'scheduleFreeSgd', arrays: ['p', 'g', 'z'], reads: ['p', 'g', 'z'], writes: ['p', 'z'], scalars: SCHEDULE_FREE_STEP_SCALARS }),
  lerp: kernelLayout({ entry: 'scheduleFreeLerp', arrays: ['p', 'z'], reads: ['p', 'z'], writes: ['p'], scalars: ['w'] }),
};
const SF = SCHEDULE_FREE_SGD_KERNELS.step.at;

/**
 * Counts the step, advances lrMax and weightSum, and writes the scalars both kernels
 * start with (SCHEDULE_FREE_STEP_SCALARS) but yStep: c, zStep (-lr_k), wd, sign, first.
 * The reference's expressions, in its order.
 *
 * The caller writes yStep, the step of y, lr_k (beta (1 - c) - 1), as
 * `zStep * (1 - beta * (1 - c))`: -lr_k (1 - beta (1 - c)), the same product bit for
 * bit (both factors negated, which is exact). beta is not an argument here: a double
 * passed to a call that is not inlined is boxed, an allocation per step.
 */
export function writeScheduleFreeScalars(s: Float64Array, state: ScheduleFreeState, h: ScheduleFreeCommonHyper, scalars: StepScalars): void {
  const k = state.step;
  const sched = k < h.warmupSteps ? (k + 1) / h.warmupSteps : 1;
  const lr = scalars.lr * sched;
  const lrMax = Math.max(lr, state.lrMax);
  state.lrMax = lrMax;
  const weight = (k + 1) ** h.r * lrMax ** h.weightLrPower;
  const weightSum = state.weightSum + weight;
  state.weightSum = weightSum;
  // Python's weight / weight_sum raises ZeroDivisionError when the sum is 0 (lr 0):
  // the reference then takes ckp1 = 0.
  const ckp1 = weightSum === 0 ? 0 : weight / weightSum;
  state.step = k + 1;
  s[SF.c] = ckp1;
  s[SF.zStep] = -lr;
  s[SF.wd] = h.weightDecay;
  s[SF.sign] = h.maximize ? -1 : 1;
  s[SF.first] = k === 0 ? 1 : 0;
}

/** The JS kernel, twin of `scheduleFreeSgd` in assembly/kernels.ts. */
function scheduleFreeSgd(p: FloatArray, g: FloatArray, z: FloatArray, n: number, s: Float64Array): boolean {
  const c = s[0]!;
  const yStep = s[1]!;
  const zStep = s[2]!;
  const wd = s[3]!;
  const sign = s[4]!;
  const first = s[5] === 1;
  const decay = wd !== 0;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    const yi = p[i]!;
    const zi = first ? yi : z[i]!;
    let gi = sign * g[i]!;
    if (decay) gi += wd * yi;
    p[i] = yi + c * (zi - yi) + yStep * gi;
    z[i] = zi + zStep * gi;
    probe += (p[i]! + z[i]!) * 0;
  }
  return probe === 0;
}
const SGD_LOOPS = byArrayType(scheduleFreeSgd);

/** p <- p + w (z - p) (torch's lerp_ with a scalar weight): eval and train. Twin of `scheduleFreeLerp`. */
function scheduleFreeLerp(p: FloatArray, z: FloatArray, n: number, s: Float64Array): boolean {
  const w = s[0]!;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    const pi = p[i]!;
    p[i] = pi + w * (z[i]! - pi);
    probe += p[i]! * 0;
  }
  return probe === 0;
}
const LERP_LOOPS = byArrayType(scheduleFreeLerp);

export const scheduleFreeSgdRule: UpdateRule<ScheduleFreeSGDOptions, ScheduleFreeSGDHyper, ScheduleFreeSGDState> = {
  name: 'ScheduleFreeSGD',
  kernels: SCHEDULE_FREE_SGD_KERNELS,
  optionNames: NAMES,
  globalOptions: [],
  key: 'schedulefree-sgd',
  paper: 'Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky (2024), "The road less scheduled"',
  weightDecayKind: 'coupled',
  fixedOptions: {
    momentum:
      'the parameters hold y = (1 - beta) z + beta x, and eval() and train() convert with beta: a beta that changed between steps would leave them at a point neither undoes',
  },
  peers: { optax: 'optax.contrib.schedule_free_sgd' },
  resolve(options) {
    checkKnownOptions('ScheduleFreeSGD', options, NAMES);
    // Its parameters hold y, between z and the average x: shrinking y alone decays none
    // of the iterates the method averages, so there is no decoupled form to offer.
    requireNeutral('ScheduleFreeSGD', 'decoupledWeightDecay', options.decoupledWeightDecay, false, '(its weight decay is taken at y, in the gradient)');
    const common = resolveScheduleFree('ScheduleFreeSGD', options, 1);
    // The reference refuses momentum <= 0 or >= 1 (eval divides by it).
    const momentum = options.momentum ?? 0.9;
    if (!(typeof momentum === 'number' && momentum > 0 && momentum < 1)) throw optionError('ScheduleFreeSGD', 'momentum', momentum, 'a number in (0, 1)');
    return { ...common, momentum };
  },
  bufferNames: () => ['z'],
  buffersOf: (s) => [s.z],
  scalarNames: SCHEDULE_FREE_SCALARS,
  stateBounds: { lrMax: { min: -1 }, weightSum: { min: 0 } },
  copyScalars: copyScheduleFreeScalars,
  // The reference's starts (lr_max -1, weight_sum 0), as literal fields: an object made
  // by a spread has a shape whose double fields V8 may box at every write (measured: 16
  // bytes per step on the wasm path).
  init: (length: number, dtype: Dtype, _h: ScheduleFreeSGDHyper, alloc: Allocator = allocate) => ({
    step: 0,
    lrMax: -1,
    weightSum: 0,
    trainMode: 1,
    z: alloc(dtype, length),
  }),
  step(p: FloatArray, g: FloatArray, state: ScheduleFreeSGDState, h: ScheduleFreeSGDHyper, scalars: StepScalars): boolean {
    writeScheduleFreeScalars(jsScalars, state, h, scalars);
    jsScalars[1] = jsScalars[2]! * (1 - h.momentum * (1 - jsScalars[0]!));
    return loopFor(SGD_LOOPS, p)(p, g, state.z, p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: ScheduleFreeSGDState, h: ScheduleFreeSGDHyper, scalars: StepScalars): boolean {
    const s = k.scalars;
    writeScheduleFreeScalars(s, state, h, scalars);
    s[SF.yStep] = s[SF.zStep]! * (1 - h.momentum * (1 - s[SF.c]!));
    return k.exports.scheduleFreeSgd(p.byteOffset, g.byteOffset, state.z.byteOffset, p.length, k.address) === 0;
  },
};

/**
 * What Schedule-Free optimizers add to `Optimizer`: the train/eval switch. The mode is
 * the optimizer's; each parameter's state carries it as `trainMode` so that it is saved
 * and loaded with the state.
 */
export class ScheduleFreeOptimizer<O extends ScheduleFreeCommonOptions, H extends ScheduleFreeCommonHyper, S extends ScheduleFreeState> extends Optimizer<O, H, S> {
  readonly #name: string;
  readonly #beta: (hyper: H) => number;
  #training = true;

  constructor(rule: UpdateRule<O, H, S>, beta: (hyper: H) => number, options: Schedulable<O> & OptimizerOptions<O>) {
    super(rule, options);
    this.#name = rule.name;
    this.#beta = beta;
  }

  /** 'train' while the parameters hold y (updates allowed), 'eval' while they hold x. */
  get mode(): 'train' | 'eval' {
    return this.#training ? 'train' : 'eval';
  }

  /**
   * Moves the parameters to x, the average to evaluate (`p = lerp(y, z, 1 - 1 / beta)`),
   * and refuses updates until `train(params)`. `params`: the set `update` takes (plain or
   * a ParamStore's `params`), holding every parameter that has state. In eval mode
   * already: nothing happens.
   */
  eval<K extends string>(params: ParamSet<K>): void {
    if (!this.#training) return;
    this.#move(params, 'eval', (beta) => 1 - 1 / beta);
  }

  /** Moves the parameters back to y (`p = lerp(x, z, 1 - beta)`) and allows updates again. In train mode already: nothing happens. */
  train<K extends string>(params: ParamSet<K>): void {
    if (this.#training) return;
    this.#move(params, 'train', (beta) => 1 - beta);
  }

  /** Refuses a step (update and check alike) in eval mode, before anything is looked at. */
  protected override beforeStep(): void {
    if (!this.#training) {
      throw new UpdateError(
        `${this.#name}.update: the optimizer is in eval mode (the parameters hold the average x, not y): call train(params) before update`,
        '',
      );
    }
  }

  override reset(name?: string): void {
    super.reset(name);
    if (name === undefined) this.#training = true;
  }

  override loadStateDict(value: unknown): void {
    // The mode is checked before anything is replaced: a bad state leaves this one as it was.
    const saved: OptimizerStateDict = checkStateDict(value);
    const owner = `${this.#name}.loadStateDict`;
    let training: boolean | undefined;
    for (const [name, record] of Object.entries(saved.params)) {
      const mode = record.scalars.trainMode;
      if (mode !== 0 && mode !== 1) {
        throw new StateError(`${owner}: parameter '${name}' has trainMode ${String(mode)}, expected 1 (train) or 0 (eval)`);
      }
      if (training !== undefined && training !== (mode === 1)) {
        throw new StateError(`${owner}: parameter '${name}' was saved in ${mode === 1 ? 'train' : 'eval'} mode, the others in ${training ? 'train' : 'eval'} mode`);
      }
      training = mode === 1;
    }
    super.loadStateDict(value);
    this.#training = training ?? true;
  }

  /** Checks everything, then p <- p + w (z - p) for every parameter with state, then sets the mode. */
  #move<K extends string>(params: ParamSet<K>, mode: 'eval' | 'train', weightOf: (beta: number) => number): void {
    const owner = `${this.#name}.${mode}`;
    if (params === null || typeof params !== 'object' || Array.isArray(params) || ArrayBuffer.isView(params)) {
      throw new TypeError(`${owner}: params must be an object or a Map of named Float32Array/Float64Array (the set update takes)`);
    }
    // Check everything first: every parameter with state is there, with its length and type.
    const moves: { name: string; p: FloatArray; state: S }[] = [];
    for (const name of this.paramsWithState()) {
      const state = this.stateOf(name) as S;
      const p = getArray(params, name);
      if (p === undefined) {
        throw new UpdateError(`${owner}: parameter '${name}' has optimizer state but is not in params (${mode} moves every parameter the optimizer updates)`, name);
      }
      if (!isFloatArray(p) || p.length !== state.z.length || dtypeOf(p) !== dtypeOf(state.z)) {
        throw new UpdateError(`${owner}: parameter '${name}' must be the ${dtypeOf(state.z)} array of length ${state.z.length} the optimizer updates`, name);
      }
      if (state.step > 0) moves.push({ name, p, state });
    }
    const store = storeOf(params);
    // The wasm lerp where update runs the wasm kernels (backend 'auto' or 'wasm' on a float32 store).
    const kernels = this.backend === 'js' ? null : (store?.kernels ?? null);
    let bad: string | undefined;
    for (const { name, p, state } of moves) {
      const weight = weightOf(this.#beta(this.hyperparameters(name) as H));
      let finite: boolean;
      if (kernels !== null && p instanceof Float32Array && state.z.buffer === p.buffer && p.buffer === store!.buffer) {
        kernels.scalars[0] = weight;
        finite = kernels.exports.scheduleFreeLerp(p.byteOffset, state.z.byteOffset, p.length, kernels.address) === 0;
      } else {
        jsScalars[0] = weight;
        finite = loopFor(LERP_LOOPS, p)(p, state.z, p.length, jsScalars);
      }
      if (!finite && bad === undefined) bad = name;
    }
    // Moved: the mode changes even when a value overflowed (the parameters hold it now).
    this.#training = mode === 'train';
    for (const name of this.paramsWithState()) (this.stateOf(name) as S).trainMode = mode === 'train' ? 1 : 0;
    if (bad !== undefined) {
      throw new UpdateError(`${owner}: parameter '${bad}' became non-finite (beta ${this.#beta(this.hyperparameters(bad) as H)}): the parameters were moved and the mode is now '${mode}'`, bad);
    }
  }
}

/**
 * Schedule-Free SGD over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new ScheduleFreeSGD({ lr: 1, warmupSteps: 100 });
 * opt.update(params, grads); // params hold y
 * opt.eval(params);          // params hold x: evaluate or save
 * opt.train(params);         // back to y
 * ```
 */
export class ScheduleFreeSGD extends ScheduleFreeOptimizer<ScheduleFreeSGDOptions, ScheduleFreeSGDHyper, ScheduleFreeSGDState> {
  constructor(options: Schedulable<ScheduleFreeSGDOptions> & OptimizerOptions<ScheduleFreeSGDOptions> = {}) {
    super(scheduleFreeSgdRule, (h) => h.momentum, options);
  }
}
