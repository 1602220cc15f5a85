/**
 * Schedule-Free AdamW: Defazio et al. (2024), "The Road Less Scheduled"; as the authors'
 * code computes it (facebookresearch/schedule_free, `schedulefree/adamw_schedulefree.py`,
 * the non-foreach path of `AdamWScheduleFree.step`). Schedule-Free SGD's averaging (see
 * schedulefree-sgd.ts: lr_k, lrMax, w, weightSum, c) on Adam's normalised gradient, with
 * beta1 as the interpolation beta:
 *
 *     v     <- beta2 v + (1 - beta2) g^2
 *     gn     = g / (sqrt(v / (1 - beta2^(k+1))) + eps)
 *     gn    <- gn + weightDecay * y                      (decoupled, at y)
 *     y     <- lerp(y, z, c) + lr_k (beta1 (1 - c) - 1) gn
 *     z     <- z - lr_k gn
 *
 * No first moment: the interpolation with z plays momentum's part (the reference's
 * later `inner_momentum` option, default 0, is not offered). Train/eval as
 * ScheduleFreeSGD's, with beta1 as beta: `eval(params)` moves the parameters to x,
 * `train(params)` back to y, `update` in eval mode throws.
 *
 * Defaults (reference): lr 0.0025, beta1 0.9, beta2 0.999, eps 1e-8, weightDecay 0,
 * warmupSteps 0, r 0, weightLrPower 2. State: `z`, `expAvgSq` (the reference's
 * exp_avg_sq), scalars `lrMax`, `weightSum`, `trainMode`.
 *
 * Overflow: as Adam's, v = (1 - beta2) g^2 passes float32's 3.4e38 from |g| = 5.8e20 on
 * (beta2 0.999); the kernels report it and update() throws an UpdateError naming the
 * state `expAvgSq` (the step is applied: see optimizer.ts).
 */
import { powIntInto } from '../math.ts';
import { optionError } from '../errors.ts';
import { allocate, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import type { OptimizerOptions, Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { checkKnownOptions, numberOption } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';
import {
  copyScheduleFreeScalars,
  resolveScheduleFree,
  SCHEDULE_FREE_OPTION_NAMES,
  SCHEDULE_FREE_SCALARS,
  SCHEDULE_FREE_SGD_KERNELS,
  SCHEDULE_FREE_STEP_SCALARS,
  ScheduleFreeOptimizer,
  writeScheduleFreeScalars,
  type ScheduleFreeCommonHyper,
  type ScheduleFreeCommonOptions,
  type ScheduleFreeState,
} from './schedulefree-sgd.ts';

export interface ScheduleFreeAdamWOptions extends ScheduleFreeCommonOptions {
  /** The interpolation beta, in (0, 1]. Default 0.9. */
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export interface ScheduleFreeAdamWHyper extends ScheduleFreeCommonHyper {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
}

export interface ScheduleFreeAdamWState extends ScheduleFreeState {
  expAvgSq: FloatArray;
}

const NAMES = [...SCHEDULE_FREE_OPTION_NAMES, 'beta1', 'beta2', 'eps'] as const;

/** The wasm kernel: `scheduleFreeAdamw(p, g, z, v, n, s)` (z read from the second step on); eval/train run Schedule-Free SGD's lerp. */
export const SCHEDULE_FREE_ADAMW_KERNELS = {
  step: kernelLayout({
    entry: 'scheduleFreeAdamw',
    arrays: ['p', 'g', 'z', 'v'],
    reads: ['p', 'g', 'z', 'v'],
    writes: ['p', 'z', 'v'],
    scalars: [...SCHEDULE_FREE_STEP_SCALARS, 'beta2', 'bc2', 'eps'],
  }),
  lerp: SCHEDULE_FREE_SGD_KERNELS.lerp,
};
const SF = SCHEDULE_FREE_ADAMW_KERNELS.step.at;

/** The shared scalars (see writeScheduleFreeScalars), then beta2, 1 - beta2^(k+1), eps. */
function writeScalars(s: Float64Array, state: ScheduleFreeAdamWState, h: ScheduleFreeAdamWHyper, scalars: StepScalars): void {
  writeScheduleFreeScalars(s, state, h, scalars);
  s[SF.yStep] = s[SF.zStep]! * (1 - h.beta1 * (1 - s[SF.c]!));
  s[SF.beta2] = h.beta2;
  s[SF.bc2] = h.beta2;
  powIntInto(s, SF.bc2, state.step); // beta2^(k+1), in place (see powIntInto for why in an array)
  s[SF.bc2] = 1 - s[SF.bc2]!;
  s[SF.eps] = h.eps;
}

/** The JS kernel, twin of `scheduleFreeAdamw` in assembly/kernels.ts. */
function scheduleFreeAdamw(p: FloatArray, g: FloatArray, z: FloatArray, v: FloatArray, n: number, s: Float64Array): boolean {
  const c = s[0]!;
  const yStep = s[1]!;
  const zStep = s[2]!;
  const wd = s[3]!;
  const sign = s[4]!;
  const first = s[5] === 1;
  const beta2 = s[6]!;
  const biasCorrection2 = s[7]!;
  const eps = s[8]!;
  const decay = wd !== 0;
  const oneMinusBeta2 = 1 - beta2;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    const yi = p[i]!;
    const zi = first ? yi : z[i]!;
    const gi = sign * g[i]!;
    const vi = v[i]! * beta2 + oneMinusBeta2 * gi * gi;
    v[i] = vi;
    let gn = gi / (Math.sqrt(vi / biasCorrection2) + eps);
    if (decay) gn += wd * yi;
    p[i] = yi + c * (zi - yi) + yStep * gn;
    z[i] = zi + zStep * gn;
    probe += (p[i]! + z[i]! + v[i]!) * 0;
  }
  return probe === 0;
}
const LOOPS = byArrayType(scheduleFreeAdamw);

export const scheduleFreeAdamwRule: UpdateRule<ScheduleFreeAdamWOptions, ScheduleFreeAdamWHyper, ScheduleFreeAdamWState> = {
  name: 'ScheduleFreeAdamW',
  kernels: SCHEDULE_FREE_ADAMW_KERNELS,
  optionNames: NAMES,
  globalOptions: [],
  key: 'schedulefree-adamw',
  paper: 'Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky (2024), "The road less scheduled"',
  weightDecayKind: 'update',
  fixedOptions: {
    beta1:
      'the parameters hold y = (1 - beta1) z + beta1 x, and eval() and train() convert with beta1: a beta1 that changed between steps would leave them at a point neither undoes',
  },
  peers: { optax: 'optax.contrib.schedule_free_adamw' },
  resolve(options) {
    checkKnownOptions('ScheduleFreeAdamW', options, NAMES);
    const common = resolveScheduleFree('ScheduleFreeAdamW', options, 0.0025, 'update');
    // eval divides by beta1 (the reference does not check: beta1 0 divides by zero there).
    const beta1 = options.beta1 ?? 0.9;
    if (!(typeof beta1 === 'number' && beta1 > 0 && beta1 <= 1)) throw optionError('ScheduleFreeAdamW', 'beta1', beta1, 'a number in (0, 1]');
    return {
      ...common,
      beta1,
      beta2: numberOption('ScheduleFreeAdamW', 'beta2', options.beta2, 0.999, { min: 0, below: 1 }),
      eps: numberOption('ScheduleFreeAdamW', 'eps', options.eps, 1e-8, { min: 0 }),
    };
  },
  bufferNames: () => ['z', 'expAvgSq'],
  buffersOf: (s) => [s.z, s.expAvgSq],
  scalarNames: SCHEDULE_FREE_SCALARS,
  stateBounds: { expAvgSq: { min: 0 }, lrMax: { min: -1 }, weightSum: { min: 0 } },
  copyScalars: copyScheduleFreeScalars,
  // The reference's starts (lr_max -1, weight_sum 0), as literal fields: an object made
  // by a spread has a shape whose double fields V8 may box at every write (measured: 16
  // bytes per step on the wasm path).
  init: (length: number, dtype: Dtype, _h: ScheduleFreeAdamWHyper, alloc: Allocator = allocate) => ({
    step: 0,
    lrMax: -1,
    weightSum: 0,
    trainMode: 1,
    z: alloc(dtype, length),
    expAvgSq: alloc(dtype, length),
  }),
  step(p: FloatArray, g: FloatArray, state: ScheduleFreeAdamWState, h: ScheduleFreeAdamWHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars);
    return loopFor(LOOPS, p)(p, g, state.z, state.expAvgSq, p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: ScheduleFreeAdamWState, h: ScheduleFreeAdamWHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars);
    return k.exports.scheduleFreeAdamw(p.byteOffset, g.byteOffset, state.z.byteOffset, state.expAvgSq.byteOffset, p.length, k.address) === 0;
  },
};

/**
 * Schedule-Free AdamW over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new ScheduleFreeAdamW({ lr: 0.0025, warmupSteps: 100 });
 * opt.update(params, grads); // params hold y
 * opt.eval(params);          // params hold x: evaluate or save
 * opt.train(params);         // back to y
 * ```
 */
export class ScheduleFreeAdamW extends ScheduleFreeOptimizer<ScheduleFreeAdamWOptions, ScheduleFreeAdamWHyper, ScheduleFreeAdamWState> {
  constructor(options: Schedulable<ScheduleFreeAdamWOptions> & OptimizerOptions<ScheduleFreeAdamWOptions> = {}) {
    super(scheduleFreeAdamwRule, (h) => h.beta1, options);
  }
}
