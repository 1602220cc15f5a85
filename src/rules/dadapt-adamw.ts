/**
 * D-Adaptation AdamW: AdamW whose step size is learned from a lower bound d on the
 * distance to the solution. Defazio & Mishchenko (2023), "Learning-rate-free learning
 * by D-Adaptation", ICML; as `optax.contrib.dadapt_adamw` computes it (optax 0.2.8,
 * optax/contrib/_dadapt_adamw.py), with t the step (from 1), g the gradient and
 * b = sqrt(beta2):
 *
 *     bc   = sqrt(1 - beta2^t) / (1 - beta1^t)
 *     dlr  = d * lr * bc
 *     r   <- b * r + (1 - b) * dlr * <g, s / (sqrt(v) + eps)>   (s, v before this step;
 *                                                                 a sum over ALL parameters)
 *     m   <- beta1 * m + (1 - beta1) * dlr * g
 *     v   <- beta2 * v + (1 - beta2) * g^2
 *     s   <- b * s + (1 - b) * dlr * g
 *     d'   = max(d, r / ((1 - b) * sum |s|))                   (|s| summed over ALL parameters)
 *     x   <- x - weightDecay * dlr * x - m / (sqrt(v) + eps)
 *
 * `lr` is a multiplier on the learned step size (1 by default, as optax's; it is inside
 * m, so a schedule acts through the moment). d starts at `estimLr0` (1e-6) and only
 * grows, by the ratio of the gradients' correlation with their own running sum to the
 * size of that sum: slowly at first, then to the scale of the problem. The new d is
 * used from the next step on.
 *
 * One step is one estimate, whatever the number of tensors: the sums run over every
 * parameter of the update before any parameter moves (the rule's `global` phase,
 * src/optimizer/global.ts). d and r are the optimizer's scalars `estimLr` and
 * `numeratorWeighted` in its state dict (`stateDict().scalars`), not per parameter.
 *
 * optax follows the paper's Algorithm (Adam version, with bias correction); the authors'
 * package (github.com/facebookresearch/dadaptation, `DAdaptAdam`) adds a `growth_rate`
 * limit, `d_coef`, coupled decay (`decouple=False`) and has no bias correction by
 * default. One difference from optax: when every gradient so far was exactly 0, sum |s|
 * is 0 and optax's d becomes NaN (0 / 0), which reaches the parameters; here d keeps
 * its value.
 *
 * Per parameter: `lr`, `weightDecay` and `maximize` (negates g first; optax has none)
 * may be overridden; the betas, eps and estimLr0 shape the single estimate and may not.
 * A parameter's bias correction counts its own steps.
 *
 * Defaults (optax): lr 1, beta1 0.9, beta2 0.999, eps 1e-8, estimLr0 1e-6,
 * weightDecay 0. State per parameter (optax's names): `expAvg` (m), `expAvgSq` (v),
 * `gradSum` (s).
 *
 * Kernels: pass 1 and pass 2 as JS loops (pass 1's sums in double), or, over a float32
 * ParamStore, as WebAssembly SIMD kernels (assembly/rules/dadapt-adamw.ts: pass 1's
 * moments, pass 2) with the sums in JS around them, on the calling thread: the
 * elementwise kernels split across a thread pool's threads, a sum never does, so two
 * threads equal one bit for bit.
 */
import { powIntInto } from '../math.ts';
import { allocate, COMMON_OPTION_NAMES, resolveCommon, type Allocator, type CommonHyper, type CommonOptions, type GlobalPhase, type RuleState, type StepScalars, type UpdateRule } from '../rule.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { checkKnownOptions, numberOption } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';
import { positiveOption } from './prodigy.ts';

export interface DAdaptAdamWOptions extends CommonOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** The initial estimate d0. Default 1e-6. */
  estimLr0?: number;
}

export interface DAdaptAdamWHyper extends CommonHyper {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly estimLr0: number;
}

export interface DAdaptAdamWState extends RuleState {
  expAvg: FloatArray;
  expAvgSq: FloatArray;
  gradSum: FloatArray;
}

const NAMES = [...COMMON_OPTION_NAMES, 'beta1', 'beta2', 'eps', 'estimLr0'] as const;

/**
 * The kernels' scalars, one block for every pass, written per parameter: the wasm
 * passes `dadaptMoments(g, m, v, sum, n, s)` and `dadaptApply(p, m, v, n, s)` read theirs
 * by name; the JS passes (the same indices, as literals) also leave the sums
 * <g, s / (sqrt(v) + eps)> and sum |s| in `dot` and `l1`.
 */
const DADAPT_SCALARS = ['sign', 'beta1', 'beta2', 'sqrtBeta2', 'dlr', 'eps', 'wd', 'dot', 'l1', 'bc'] as const;
const DADAPT_KERNELS = {
  moments: kernelLayout({ entry: 'dadaptMoments', arrays: ['g', 'm', 'v', 'sum'], reads: ['g', 'm', 'v', 'sum'], writes: ['m', 'v', 'sum'], scalars: DADAPT_SCALARS }),
  apply: kernelLayout({ entry: 'dadaptApply', arrays: ['p', 'm', 'v'], reads: ['p', 'm', 'v'], writes: ['p'], scalars: DADAPT_SCALARS }),
};
const { sign: SIGN, beta1: BETA1, beta2: BETA2, sqrtBeta2: SQRT_BETA2, dlr: DLR, eps: EPS, wd: WD, dot: DOT, l1: L1, bc: BC } = DADAPT_KERNELS.moments.at;
const k = jsScalars;

function writeBiasCorrection(b: Float64Array, h: DAdaptAdamWHyper, t: number): void {
  b[BC] = h.beta1;
  powIntInto(b, BC, t);
  const bc1 = 1 - b[BC]!;
  b[BC] = h.beta2;
  powIntInto(b, BC, t);
  b[BC] = Math.sqrt(1 - b[BC]!) / bc1;
}

/**
 * Pass 1: <g, s / (sqrt(v) + eps)> from s, v as they were into s[7]; m, v, s updated;
 * sum |s| into s[8]. Self-contained (see kernel.ts): the indices are literals.
 */
function dadaptAccumulate(g: FloatArray, m: FloatArray, v: FloatArray, gs: FloatArray, n: number, s: Float64Array): boolean {
  const sign = s[0]!;
  const beta1 = s[1]!;
  const beta2 = s[2]!;
  const b = s[3]!;
  const dlr = s[4]!;
  const eps = s[5]!;
  const momentScale = (1 - beta1) * dlr;
  const oneMinusBeta2 = 1 - beta2;
  const sumScale = (1 - b) * dlr;
  let dot = 0;
  let l1 = 0;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    const gi = sign * g[i]!;
    dot += gi * (gs[i]! / (Math.sqrt(v[i]!) + eps));
    m[i] = beta1 * m[i]! + momentScale * gi;
    v[i] = beta2 * v[i]! + oneMinusBeta2 * gi * gi;
    gs[i] = b * gs[i]! + sumScale * gi;
    const si = gs[i]!;
    l1 += Math.abs(si);
    probe += (m[i]! + v[i]! + si) * 0;
  }
  s[7] = dot;
  s[8] = l1;
  return probe === 0;
}
const ACCUMULATE_LOOPS = byArrayType(dadaptAccumulate);

/** The wasm path's first sum, before `dadaptMoments` writes s and v: <g, s / (sqrt(v) + eps)> into s[7]. */
function dadaptDot(g: FloatArray, v: FloatArray, gs: FloatArray, n: number, s: Float64Array): void {
  const sign = s[0]!;
  const eps = s[5]!;
  let dot = 0;
  for (let i = 0; i < n; i++) dot += sign * g[i]! * (gs[i]! / (Math.sqrt(v[i]!) + eps));
  s[7] = dot;
}
const DOT_LOOPS = byArrayType(dadaptDot);

/** The wasm path's second sum, after `dadaptMoments`: sum |s| into s[8]. */
function dadaptL1(gs: FloatArray, n: number, s: Float64Array): void {
  let l1 = 0;
  for (let i = 0; i < n; i++) l1 += Math.abs(gs[i]!);
  s[8] = l1;
}
const L1_LOOPS = byArrayType(dadaptL1);

/** Pass 2: x += -wd * dlr * x - m / (sqrt(v) + eps). */
function dadaptApply(p: FloatArray, m: FloatArray, v: FloatArray, n: number, s: Float64Array): boolean {
  const negativeDecay = -s[6]! * s[4]!;
  const eps = s[5]!;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    const pi = p[i]!;
    p[i] = pi + (negativeDecay * pi - m[i]! / (Math.sqrt(v[i]!) + eps));
    probe += p[i]! * 0;
  }
  return probe === 0;
}
const APPLY_LOOPS = byArrayType(dadaptApply);

const ESTIM_LR = 0;
const NUMERATOR = 1;
const WEIGHTED_DOT = 0;
const SUM_ABS = 1;

/**
 * dlr of a parameter's current step (its step already counted) into b[DLR], from d * lr
 * already there: a double passed to a call V8 does not inline is boxed (see math.ts).
 */
function writeDlr(b: Float64Array, h: DAdaptAdamWHyper, t: number): void {
  writeBiasCorrection(b, h, t);
  b[DLR] = b[DLR]! * b[BC]!;
}

const dadaptGlobal: GlobalPhase<DAdaptAdamWHyper, DAdaptAdamWState> = {
  scalarNames: ['estimLr', 'numeratorWeighted'],
  scalarBounds: { estimLr: { min: 0 } },
  initial(h, into) {
    into[ESTIM_LR] = h.estimLr0;
    into[NUMERATOR] = 0;
  },
  sumCount: 2,
  accumulate(_p, g, state, h, step: StepScalars, scalars, sums, kernels) {
    state.step += 1;
    const b = kernels === null ? k : kernels.scalars;
    b[DLR] = scalars[ESTIM_LR]! * step.lr;
    writeDlr(b, h, state.step);
    b[SIGN] = h.maximize ? -1 : 1;
    b[BETA1] = h.beta1;
    b[BETA2] = h.beta2;
    b[SQRT_BETA2] = Math.sqrt(h.beta2);
    b[EPS] = h.eps;
    let finite: boolean;
    if (kernels === null) {
      finite = loopFor(ACCUMULATE_LOOPS, g)(g, state.expAvg, state.expAvgSq, state.gradSum, g.length, b);
    } else {
      const v = state.expAvgSq as Float32Array;
      const gs = state.gradSum as Float32Array;
      DOT_LOOPS.float32(g as Float32Array, v, gs, g.length, b);
      finite = kernels.exports.dadaptMoments(g.byteOffset, state.expAvg.byteOffset, v.byteOffset, gs.byteOffset, g.length, kernels.address) === 0;
      L1_LOOPS.float32(gs, g.length, b);
    }
    sums[WEIGHTED_DOT] = sums[WEIGHTED_DOT]! + b[DLR]! * b[DOT]!;
    sums[SUM_ABS] = sums[SUM_ABS]! + b[L1]!;
    return finite;
  },
  reduce(h, scalars, sums) {
    const b = Math.sqrt(h.beta2);
    const numerator = b * scalars[NUMERATOR]! + (1 - b) * sums[WEIGHTED_DOT]!;
    scalars[NUMERATOR] = numerator;
    const l1 = sums[SUM_ABS]!;
    // 0 only while every gradient has been 0: optax's 0 / 0 would make d NaN; d keeps its value.
    if (l1 === 0) return;
    const estimate = numerator / ((1 - b) * l1);
    const d = scalars[ESTIM_LR]!;
    if (estimate > d || estimate !== estimate) scalars[ESTIM_LR] = estimate; // jnp.maximum propagates NaN
  },
  apply(p, _g, state, h, step: StepScalars, before, _after, kernels) {
    const b = kernels === null ? k : kernels.scalars;
    b[DLR] = before[ESTIM_LR]! * step.lr;
    writeDlr(b, h, state.step);
    b[WD] = h.weightDecay;
    b[EPS] = h.eps;
    if (kernels === null) return loopFor(APPLY_LOOPS, p)(p, state.expAvg, state.expAvgSq, p.length, b);
    return kernels.exports.dadaptApply(p.byteOffset, state.expAvg.byteOffset, state.expAvgSq.byteOffset, p.length, kernels.address) === 0;
  },
};

function globalOnly(): never {
  throw new Error('DAdaptAdamW steps through its global phase (one estimate over every parameter): use the DAdaptAdamW class');
}

export const dadaptAdamwRule: UpdateRule<DAdaptAdamWOptions, DAdaptAdamWHyper, DAdaptAdamWState> = {
  name: 'DAdaptAdamW',
  kernels: DADAPT_KERNELS,
  optionNames: NAMES,
  globalOptions: ['beta1', 'beta2', 'eps', 'estimLr0'],
  key: 'dadapt-adamw',
  paper: 'Defazio & Mishchenko (2023), "Learning-rate-free learning by D-Adaptation"',
  weightDecayKind: 'decoupled',
  fixedOptions: { estimLr0: 'the estimate d starts at it' },
  peers: { optax: 'optax.contrib.dadapt_adamw' },
  perParameter: true,
  resolve(options) {
    checkKnownOptions('DAdaptAdamW', options, NAMES);
    return {
      ...resolveCommon('DAdaptAdamW', options, 1, 'decoupled'),
      beta1: numberOption('DAdaptAdamW', 'beta1', options.beta1, 0.9, { min: 0, below: 1 }),
      beta2: numberOption('DAdaptAdamW', 'beta2', options.beta2, 0.999, { min: 0, below: 1 }),
      eps: numberOption('DAdaptAdamW', 'eps', options.eps, 1e-8, { min: 0 }),
      estimLr0: positiveOption('DAdaptAdamW', 'estimLr0', options.estimLr0, 1e-6),
    };
  },
  bufferNames: () => ['expAvg', 'expAvgSq', 'gradSum'],
  buffersOf: (s) => [s.expAvg, s.expAvgSq, s.gradSum],
  scalarNames: [],
  stateBounds: { expAvgSq: { min: 0 } },
  init: (length: number, dtype: Dtype, _h: DAdaptAdamWHyper, alloc: Allocator = allocate) => ({
    step: 0,
    expAvg: alloc(dtype, length),
    expAvgSq: alloc(dtype, length),
    gradSum: alloc(dtype, length),
  }),
  step: globalOnly,
  // Says that it has WebAssembly kernels (backend 'wasm'); the facade runs `global`, which calls them.
  stepWasm: globalOnly,
  global: dadaptGlobal,
};

/**
 * D-Adaptation AdamW over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new DAdaptAdamW(); // lr 1: a multiplier on the learned step size
 * opt.update(params, grads); // in place, every parameter in one call
 * ```
 */
export class DAdaptAdamW extends Optimizer<DAdaptAdamWOptions, DAdaptAdamWHyper, DAdaptAdamWState> {
  constructor(options: Schedulable<DAdaptAdamWOptions> & OptimizerOptions<DAdaptAdamWOptions> = {}) {
    super(dadaptAdamwRule, options);
  }
}
