/**
 * Prodigy: AdamW whose step size is learned, from an estimate d of the distance to the
 * solution that grows while the iterates keep moving in one direction. Mishchenko &
 * Defazio (2024), "Prodigy: an expeditiously adaptive parameter-free learner", ICML;
 * as `optax.contrib.prodigy` computes it (optax 0.2.8, optax/contrib/_prodigy.py), with
 * t the step (from 1), g the gradient, x0 the parameters at their first step:
 *
 *     bc   = sqrt(1 - beta2^t) / (1 - beta1^t)
 *     dlr  = d * lr * bc
 *     m   <- beta1 * m + (1 - beta1) * d * g
 *     v   <- beta2 * v + (1 - beta2) * (d * g)^2
 *     s   <- beta3 * s + c * d * g / d0           c = dlr, or d with safeguardWarmup
 *     r   <- beta3 * r + (d / d0) * dlr * <g, x0 - x>       (a sum over ALL parameters)
 *     d'   = max(d, estimLrCoef * r / sum |s|)             (|s| summed over ALL parameters)
 *     x   <- x - weightDecay * dlr * x - dlr * m / (sqrt(v) + d' * eps)
 *
 * `lr` is a multiplier on the learned step size (1 by default, as optax's): a schedule
 * from 1 down to 0, with a warm-up, is what the paper recommends. d starts at `estimLr0`
 * (1e-6, an underestimate) and only grows: by about the ratio of how far the parameters
 * have moved against the gradients to the size of the gradients' running sum, so the
 * first steps are tiny and the step size reaches its scale within tens to hundreds of
 * steps.
 *
 * One step is one estimate, whatever the number of tensors: the sums <g, x0 - x> and
 * sum |s| run over every parameter of the update before any parameter moves (the rule's
 * `global` phase, src/optimizer/global.ts: pass 1 updates m, v, s and sums, d is
 * updated once, pass 2 moves x). d and r are the optimizer's scalars `estimLr` and
 * `numeratorWeighted` in its state dict (`stateDict().scalars`), not per parameter.
 *
 * Where this follows optax rather than the authors' code (github.com/konstmish/prodigy,
 * prodigyopt/prodigy.py): the bias correction bc is always on (the authors' default is
 * off); d is max(d, estimate) at every step, with no `growth_rate` limit nor `slice_p`;
 * x0 is each parameter's value at its first step (optax takes it at `init`, the authors
 * at the first step too); weight decay is decoupled only (the authors also offer the
 * coupled form). Both use the new estimate d' in the eps term and the previous one in dlr.
 * One difference from optax: when every gradient so far was exactly 0, sum |s| is 0 and
 * optax's d becomes NaN (0 / 0), which reaches the parameters; here d keeps its value
 * (the authors' code leaves d as it was too, and skips the step).
 *
 * Per parameter: `lr` (a multiplier; the sums weigh each parameter's <g, x0 - x> by
 * its own dlr), `weightDecay` and `maximize` (negates g first; optax has none) may be
 * overridden; the betas, eps and the estimate's options shape the single estimate and
 * may not. A parameter's bias correction counts its own steps (as every rule here).
 *
 * Defaults (optax): lr 1, beta1 0.9, beta2 0.999, beta3 sqrt(beta2), eps 1e-8,
 * estimLr0 1e-6, estimLrCoef 1, weightDecay 0, safeguardWarmup false.
 * State per parameter (optax's names): `expAvg` (m), `expAvgSq` (v), `gradSum` (s),
 * `params0` (x0). Four buffers: a ParamStore for Prodigy needs `stateBuffers: 4`.
 *
 * Kernels: pass 1 and pass 2 as JS loops (pass 1's sums in double), or, over a float32
 * ParamStore, as WebAssembly SIMD kernels (assembly/rules/prodigy.ts: pass 1's moments,
 * pass 2) with the sums in JS between them, on the calling thread: the elementwise
 * kernels split across a thread pool's threads, a sum never does, so two threads equal
 * one bit for bit.
 */
import { powIntInto } from '../math.ts';
import { allocate, COMMON_OPTION_NAMES, resolveCommon, type Allocator, type CommonHyper, type CommonOptions, type GlobalPhase, type RuleState, type StepScalars, type UpdateRule } from '../rule.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import { optionError } from '../errors.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { booleanOption, checkKnownOptions, numberOption } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

export interface ProdigyOptions extends CommonOptions {
  beta1?: number;
  beta2?: number;
  /** The decay of the estimate's sums. Default sqrt(beta2). */
  beta3?: number;
  eps?: number;
  /** The initial estimate d0 (an underestimate of the distance to the solution). Default 1e-6. */
  estimLr0?: number;
  /** Multiplies every new estimate. Default 1. */
  estimLrCoef?: number;
  /** Leave lr out of the sum |s| (for warm-up schedules that start near 0). Default false. */
  safeguardWarmup?: boolean;
}

export interface ProdigyHyper extends CommonHyper {
  readonly beta1: number;
  readonly beta2: number;
  readonly beta3: number;
  readonly eps: number;
  readonly estimLr0: number;
  readonly estimLrCoef: number;
  readonly safeguardWarmup: boolean;
}

export interface ProdigyState extends RuleState {
  expAvg: FloatArray;
  expAvgSq: FloatArray;
  gradSum: FloatArray;
  params0: FloatArray;
}

const NAMES = [...COMMON_OPTION_NAMES, 'beta1', 'beta2', 'beta3', 'eps', 'estimLr0', 'estimLrCoef', 'safeguardWarmup'] as const;

/** A finite number > 0 (numberOption's ranges are inclusive). */
export function positiveOption(owner: string, name: string, value: unknown, fallback: number): number {
  const resolved = numberOption(owner, name, value, fallback, { min: 0 });
  if (resolved === 0) throw optionError(owner, name, value, 'a finite number > 0');
  return resolved;
}

/**
 * The kernels' scalars, one block for every pass, written per parameter: the wasm
 * passes `prodigyMoments(g, m, v, sum, n, s)` and `prodigyApply(p, m, v, n, s)` read
 * theirs by name; the JS passes (the same indices, as literals) also leave the sums
 * <g, x0 - x> and sum |s| in `dot` and `l1`.
 */
const PRODIGY_SCALARS = ['sign', 'd', 'beta1', 'beta2', 'beta3', 'sScale', 'dlr', 'wd', 'epsD', 'dot', 'l1', 'bc'] as const;
const PRODIGY_KERNELS = {
  moments: kernelLayout({ entry: 'prodigyMoments', arrays: ['g', 'm', 'v', 'sum'], reads: ['g', 'm', 'v', 'sum'], writes: ['m', 'v', 'sum'], scalars: PRODIGY_SCALARS }),
  apply: kernelLayout({ entry: 'prodigyApply', arrays: ['p', 'm', 'v'], reads: ['p', 'm', 'v'], writes: ['p'], scalars: PRODIGY_SCALARS }),
};
const { sign: SIGN, d: D, beta1: BETA1, beta2: BETA2, beta3: BETA3, sScale: S_SCALE, dlr: DLR, wd: WD, epsD: EPS_D, dot: DOT, l1: L1, bc: BC } = PRODIGY_KERNELS.moments.at;
const k = jsScalars;

/** sqrt(1 - beta2^t) / (1 - beta1^t) of the parameter's step t into b[BC]. */
function writeBiasCorrection(b: Float64Array, h: ProdigyHyper, t: number): void {
  b[BC] = h.beta1;
  powIntInto(b, BC, t);
  const bc1 = 1 - b[BC]!;
  b[BC] = h.beta2;
  powIntInto(b, BC, t);
  b[BC] = Math.sqrt(1 - b[BC]!) / bc1;
}

/**
 * Pass 1: m, v, s updated and written; <g, x0 - x> into s[9], sum |s| into s[10].
 * Self-contained (see kernel.ts): the indices are literals.
 */
function prodigyAccumulate(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, gs: FloatArray, p0: FloatArray, n: number, s: Float64Array): boolean {
  const sign = s[0]!;
  const d = s[1]!;
  const beta1 = s[2]!;
  const beta2 = s[3]!;
  const beta3 = s[4]!;
  const sScale = s[5]!;
  const oneMinusBeta1 = 1 - beta1;
  const oneMinusBeta2 = 1 - beta2;
  let dot = 0;
  let l1 = 0;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    const gi = sign * g[i]!;
    dot += gi * (p0[i]! - p[i]!);
    const dg = d * gi;
    m[i] = beta1 * m[i]! + oneMinusBeta1 * dg;
    v[i] = beta2 * v[i]! + oneMinusBeta2 * dg * dg;
    gs[i] = beta3 * gs[i]! + sScale * dg;
    const si = gs[i]!;
    l1 += Math.abs(si);
    probe += (m[i]! + v[i]! + si) * 0;
  }
  s[9] = dot;
  s[10] = l1;
  return probe === 0;
}
const ACCUMULATE_LOOPS = byArrayType(prodigyAccumulate);

/** The sums of the wasm path, after `prodigyMoments` (x and x0 unchanged, s as written), into s[9] and s[10]. */
function prodigySums(p: FloatArray, g: FloatArray, gs: FloatArray, p0: FloatArray, n: number, s: Float64Array): void {
  const sign = s[0]!;
  let dot = 0;
  let l1 = 0;
  for (let i = 0; i < n; i++) {
    dot += sign * g[i]! * (p0[i]! - p[i]!);
    l1 += Math.abs(gs[i]!);
  }
  s[9] = dot;
  s[10] = l1;
}
const SUMS_LOOPS = byArrayType(prodigySums);

/** Pass 2: x += -wd * dlr * x - dlr * m / (sqrt(v) + d' * eps). */
function prodigyApply(p: FloatArray, m: FloatArray, v: FloatArray, n: number, s: Float64Array): boolean {
  const dlr = s[6]!;
  const negativeDecay = -s[7]! * dlr;
  const epsD = s[8]!;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    const pi = p[i]!;
    p[i] = pi + (negativeDecay * pi - (dlr * m[i]!) / (Math.sqrt(v[i]!) + epsD));
    probe += p[i]! * 0;
  }
  return probe === 0;
}
const APPLY_LOOPS = byArrayType(prodigyApply);

// The optimizer-level scalars: the estimate d and the weighted numerator r.
const ESTIM_LR = 0;
const NUMERATOR = 1;
// The step's totals: sum of dlr * <g, x0 - x> over parameters, and sum |s|.
const WEIGHTED_DOT = 0;
const SUM_ABS = 1;

const prodigyGlobal: GlobalPhase<ProdigyHyper, ProdigyState> = {
  scalarNames: ['estimLr', 'numeratorWeighted'],
  scalarBounds: { estimLr: { min: 0 } },
  initial(h, into) {
    into[ESTIM_LR] = h.estimLr0;
    into[NUMERATOR] = 0;
  },
  sumCount: 2,
  accumulate(p, g, state, h, step: StepScalars, scalars, sums, kernels) {
    state.step += 1;
    // optax's params0 is the parameters when the optimizer is made; here a parameter's own first step.
    if (state.step === 1) state.params0.set(p);
    const b = kernels === null ? k : kernels.scalars;
    writeBiasCorrection(b, h, state.step);
    const d = scalars[ESTIM_LR]!;
    const dlr = d * step.lr * b[BC]!;
    b[SIGN] = h.maximize ? -1 : 1;
    b[D] = d;
    b[BETA1] = h.beta1;
    b[BETA2] = h.beta2;
    b[BETA3] = h.beta3;
    b[S_SCALE] = (h.safeguardWarmup ? d : dlr) / h.estimLr0;
    let finite: boolean;
    if (kernels === null) {
      finite = loopFor(ACCUMULATE_LOOPS, p)(p, g, state.expAvg, state.expAvgSq, state.gradSum, state.params0, p.length, b);
    } else {
      const m = state.expAvg as Float32Array;
      finite = kernels.exports.prodigyMoments(g.byteOffset, m.byteOffset, state.expAvgSq.byteOffset, state.gradSum.byteOffset, p.length, kernels.address) === 0;
      SUMS_LOOPS.float32(p as Float32Array, g as Float32Array, state.gradSum as Float32Array, state.params0 as Float32Array, p.length, b);
    }
    sums[WEIGHTED_DOT] = sums[WEIGHTED_DOT]! + dlr * b[DOT]!;
    sums[SUM_ABS] = sums[SUM_ABS]! + b[L1]!;
    return finite;
  },
  reduce(h, scalars, sums) {
    const d = scalars[ESTIM_LR]!;
    const numerator = h.beta3 * scalars[NUMERATOR]! + (d / h.estimLr0) * sums[WEIGHTED_DOT]!;
    scalars[NUMERATOR] = numerator;
    const denominator = sums[SUM_ABS]!;
    // 0 only while every gradient has been 0: optax's 0 / 0 would make d NaN; d keeps its value.
    if (denominator === 0) return;
    const estimate = (h.estimLrCoef * numerator) / denominator;
    if (estimate > d) scalars[ESTIM_LR] = estimate;
    else if (estimate !== estimate) scalars[ESTIM_LR] = estimate; // NaN propagates (jnp.maximum), and is reported
  },
  apply(p, _g, state, h, step: StepScalars, before, after, kernels) {
    const b = kernels === null ? k : kernels.scalars;
    writeBiasCorrection(b, h, state.step);
    b[DLR] = before[ESTIM_LR]! * step.lr * b[BC]!;
    b[WD] = h.weightDecay;
    b[EPS_D] = after[ESTIM_LR]! * h.eps;
    if (kernels === null) return loopFor(APPLY_LOOPS, p)(p, state.expAvg, state.expAvgSq, p.length, b);
    return kernels.exports.prodigyApply(p.byteOffset, state.expAvg.byteOffset, state.expAvgSq.byteOffset, p.length, kernels.address) === 0;
  },
};

function globalOnly(): never {
  throw new Error('Prodigy steps through its global phase (one estimate over every parameter): use the Prodigy class');
}

export const prodigyRule: UpdateRule<ProdigyOptions, ProdigyHyper, ProdigyState> = {
  name: 'Prodigy',
  kernels: PRODIGY_KERNELS,
  optionNames: NAMES,
  globalOptions: ['beta1', 'beta2', 'beta3', 'eps', 'estimLr0', 'estimLrCoef', 'safeguardWarmup'],
  key: 'prodigy',
  paper: 'Mishchenko & Defazio (2024), "Prodigy: an expeditiously adaptive parameter-free learner"',
  weightDecayKind: 'decoupled',
  fixedOptions: { estimLr0: 'the estimate d starts at it, and every step scales by d / estimLr0' },
  peers: { optax: 'optax.contrib.prodigy' },
  perParameter: true,
  resolve(options) {
    checkKnownOptions('Prodigy', options, NAMES);
    const beta2 = numberOption('Prodigy', 'beta2', options.beta2, 0.999, { min: 0, below: 1 });
    return {
      ...resolveCommon('Prodigy', options, 1, 'decoupled'),
      beta1: numberOption('Prodigy', 'beta1', options.beta1, 0.9, { min: 0, below: 1 }),
      beta2,
      beta3: numberOption('Prodigy', 'beta3', options.beta3, Math.sqrt(beta2), { min: 0, below: 1 }),
      eps: numberOption('Prodigy', 'eps', options.eps, 1e-8, { min: 0 }),
      estimLr0: positiveOption('Prodigy', 'estimLr0', options.estimLr0, 1e-6),
      estimLrCoef: positiveOption('Prodigy', 'estimLrCoef', options.estimLrCoef, 1),
      safeguardWarmup: booleanOption('Prodigy', 'safeguardWarmup', options.safeguardWarmup, false),
    };
  },
  bufferNames: () => ['expAvg', 'expAvgSq', 'gradSum', 'params0'],
  buffersOf: (s) => [s.expAvg, s.expAvgSq, s.gradSum, s.params0],
  scalarNames: [],
  stateBounds: { expAvgSq: { min: 0 } },
  init: (length: number, dtype: Dtype, _h: ProdigyHyper, alloc: Allocator = allocate) => ({
    step: 0,
    expAvg: alloc(dtype, length),
    expAvgSq: alloc(dtype, length),
    gradSum: alloc(dtype, length),
    params0: alloc(dtype, length),
  }),
  step: globalOnly,
  // Says that it has WebAssembly kernels (backend 'wasm'); the facade runs `global`, which calls them.
  stepWasm: globalOnly,
  global: prodigyGlobal,
};

/**
 * Prodigy over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new Prodigy(); // lr 1: a multiplier on the learned step size
 * opt.update(params, grads); // in place, every parameter in one call
 * ```
 */
export class Prodigy extends Optimizer<ProdigyOptions, ProdigyHyper, ProdigyState> {
  constructor(options: Schedulable<ProdigyOptions> & OptimizerOptions<ProdigyOptions> = {}) {
    super(prodigyRule, options);
  }
}
