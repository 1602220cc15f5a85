/**
 * LAMB: Adam's step rescaled per parameter tensor by the trust ratio ||p|| / ||u||, so
 * that every layer moves by the same fraction of its norm. You, Li, Reddi, Hseu, Kumar,
 * Bhojanapalli, Song, Demmel, Keutzer & Hsieh (2020), "Large batch optimization for deep
 * learning: training BERT in 76 minutes", ICLR, Algorithm 2; as `optax.lamb` computes it
 * (google-deepmind/optax, optax/_src/alias.py `lamb`: `scale_by_adam`,
 * `add_decayed_weights`, `scale_by_trust_ratio`, `scale_by_learning_rate`):
 *
 *     m <- beta1 * m + (1 - beta1) * g
 *     v <- beta2 * v + (1 - beta2) * g * g
 *     u  = (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps) + weightDecay * p
 *     ratio = ||p|| / ||u||, or 1 when ||p|| = 0 or ||u|| = 0   (2-norms over the tensor)
 *     p <- p - lr * ratio * u
 *
 * The ratio makes the step of a tensor lr ||p|| in norm (lr times its own size), whatever
 * the scale of its gradients; a tensor at 0 (a fresh bias) takes Adam's step.
 * `weightDecay` is optax's: added to the normalised update u (inside the trust ratio),
 * not to the gradient; Keras 3's Lamb decays outside the ratio (the two agree at 0).
 * `maximize` negates the gradient (optax has none).
 *
 * The ratio is per parameter: in a ParamStore update each parameter is its own kernel
 * call (`perParameter`), not part of a run of parameters. The norms need u before any p
 * moves, so a step is two passes over the tensor and allocates nothing:
 * 1. m and v are updated and written; ||p||^2 and ||u||^2 are summed (in double) from p
 *    and the m, v just written: reads p, g, m, v, writes m, v.
 * 2. u is recomputed from p, m, v (the same values, so the same u) and p moves: reads p,
 *    m, v, writes p.
 * That is 7 reads and 3 writes of the tensor against Adam's 4 and 3 (storing u instead
 * would need a third buffer and still read it back). The WebAssembly path runs pass 1's
 * moments and pass 2 as SIMD kernels and sums the norms in JS between them over the same
 * memory (3 more reads): a sum does not split across threads bit-identically, while
 * both kernels are elementwise and do.
 *
 * Defaults (optax): lr 0.001 (optax has no default; ours is Adam's), beta1 0.9,
 * beta2 0.999, eps 1e-6, weightDecay 0. State (optax's mu, nu under torch's keys):
 * `expAvg` (m), `expAvgSq` (v).
 *
 * Overflow: as Adam's, v = (1 - beta2) g^2 passes float32's 3.4e38 from |g| = 5.8e20 on;
 * v is then Infinity and that element's u is 0 (it does not move, and the norms are
 * those without it). The kernels report every NaN or Infinity they write, and update()
 * throws an UpdateError naming the state `expAvgSq`.
 */
import { powIntInto } from '../math.ts';
import { allocate, COMMON_OPTION_NAMES, resolveCommon, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { checkKnownOptions, numberOption } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

export interface LAMBOptions extends CommonOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export interface LAMBHyper extends CommonHyper {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
}

export interface LAMBState extends RuleState {
  expAvg: FloatArray;
  expAvgSq: FloatArray;
}

const NAMES = [...COMMON_OPTION_NAMES, 'beta1', 'beta2', 'eps'] as const;

/**
 * The two wasm passes share one scalar block: `lambMoments(g, m, v, n, s)` reads beta1,
 * beta2 and sign; `lambApply(p, m, v, n, s)` bias1 (1 - beta1^t), bias2, eps, wd and
 * step (-lr * trust ratio); the JS passes also leave the two sums of squares after them.
 */
const LAMB_SCALARS = ['beta1', 'beta2', 'bias1', 'bias2', 'sign', 'eps', 'wd', 'step', 'paramSquares', 'updateSquares'] as const;
const LAMB_KERNELS = {
  moments: kernelLayout({ entry: 'lambMoments', arrays: ['g', 'm', 'v'], reads: ['g', 'm', 'v'], writes: ['m', 'v'], scalars: LAMB_SCALARS }),
  apply: kernelLayout({ entry: 'lambApply', arrays: ['p', 'm', 'v'], reads: ['p', 'm', 'v'], writes: ['p'], scalars: LAMB_SCALARS }),
};

// The layout's indices, for the JS passes and the code between them.
const {
  beta1: BETA1,
  beta2: BETA2,
  bias1: BIAS1,
  bias2: BIAS2,
  sign: SIGN,
  eps: EPS,
  wd: WD,
  step: STEP,
  paramSquares: PARAM_SQUARES,
  updateSquares: UPDATE_SQUARES,
} = LAMB_KERNELS.moments.at;

/** Counts the step and writes the scalars of both passes but the step (see the layout above). */
function writeScalars(s: Float64Array, state: LAMBState, h: LAMBHyper): void {
  state.step += 1;
  s[BETA1] = h.beta1;
  powIntInto(s, BETA1, state.step);
  s[BIAS1] = 1 - s[BETA1]!;
  s[BETA2] = h.beta2;
  powIntInto(s, BETA2, state.step);
  s[BIAS2] = 1 - s[BETA2]!;
  s[BETA1] = h.beta1;
  s[BETA2] = h.beta2;
  s[SIGN] = h.maximize ? -1 : 1;
  s[EPS] = h.eps;
  s[WD] = h.weightDecay;
}

/** -lr * ratio, the ratio from the two sums of squares (optax's safe trust ratio). */
function writeStep(s: Float64Array, lr: number, paramSquares: number, updateSquares: number): void {
  const ratio = paramSquares === 0 || updateSquares === 0 ? 1 : Math.sqrt(paramSquares) / Math.sqrt(updateSquares);
  s[STEP] = -lr * ratio;
}

/**
 * Pass 1 in JS: m and v updated and written; the sums of p^2 and u^2 (u from the values
 * as stored) into s[8] and s[9]. Self-contained (see kernel.ts): the indices are literals.
 */
function lambMoments(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, n: number, s: Float64Array): boolean {
  const beta1 = s[0]!;
  const beta2 = s[1]!;
  const bias1 = s[2]!;
  const bias2 = s[3]!;
  const sign = s[4]!;
  const eps = s[5]!;
  const wd = s[6]!;
  const oneMinusBeta1 = 1 - beta1;
  const oneMinusBeta2 = 1 - beta2;
  let paramSquares = 0;
  let updateSquares = 0;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    const gi = sign * g[i]!;
    m[i] = m[i]! * beta1 + oneMinusBeta1 * gi;
    v[i] = v[i]! * beta2 + oneMinusBeta2 * gi * gi;
    const mi = m[i]!;
    const vi = v[i]!;
    const pi = p[i]!;
    const u = mi / bias1 / (Math.sqrt(vi / bias2) + eps) + wd * pi;
    paramSquares += pi * pi;
    updateSquares += u * u;
    probe += (mi + vi) * 0;
  }
  s[8] = paramSquares;
  s[9] = updateSquares;
  return probe === 0;
}
const MOMENTS_LOOPS = byArrayType(lambMoments);

/** The sums of squares of the wasm path (between its two kernels), into s[8] and s[9]. */
function lambNorms(p: FloatArray, m: FloatArray, v: FloatArray, n: number, s: Float64Array): void {
  const bias1 = s[2]!;
  const bias2 = s[3]!;
  const eps = s[5]!;
  const wd = s[6]!;
  let paramSquares = 0;
  let updateSquares = 0;
  for (let i = 0; i < n; i++) {
    const pi = p[i]!;
    const u = m[i]! / bias1 / (Math.sqrt(v[i]! / bias2) + eps) + wd * pi;
    paramSquares += pi * pi;
    updateSquares += u * u;
  }
  s[8] = paramSquares;
  s[9] = updateSquares;
}
const NORMS_LOOPS = byArrayType(lambNorms);

/** Pass 2 in JS, twin of `lambApply` in assembly/kernels.ts: p += step * u. */
function lambApply(p: FloatArray, m: FloatArray, v: FloatArray, n: number, s: Float64Array): boolean {
  const bias1 = s[2]!;
  const bias2 = s[3]!;
  const eps = s[5]!;
  const wd = s[6]!;
  const step = s[7]!;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    const pi = p[i]!;
    const u = m[i]! / bias1 / (Math.sqrt(v[i]! / bias2) + eps) + wd * pi;
    p[i] = pi + step * u;
    probe += p[i]! * 0;
  }
  return probe === 0;
}
const APPLY_LOOPS = byArrayType(lambApply);

export const lambRule: UpdateRule<LAMBOptions, LAMBHyper, LAMBState> = {
  name: 'LAMB',
  kernels: LAMB_KERNELS,
  optionNames: NAMES,
  globalOptions: [],
  key: 'lamb',
  paper: 'You, Li, Reddi, Hseu, Kumar, Bhojanapalli, Song, Demmel, Keutzer & Hsieh (2020), "Large batch optimization for deep learning: training BERT in 76 minutes"',
  weightDecayKind: 'update',
  peers: { optax: 'optax.lamb', keras: 'keras.optimizers.Lamb' },
  perParameter: true,
  resolve(options) {
    checkKnownOptions('LAMB', options, NAMES);
    return {
      ...resolveCommon('LAMB', options, 0.001, 'update'),
      beta1: numberOption('LAMB', 'beta1', options.beta1, 0.9, { min: 0, below: 1 }),
      beta2: numberOption('LAMB', 'beta2', options.beta2, 0.999, { min: 0, below: 1 }),
      eps: numberOption('LAMB', 'eps', options.eps, 1e-6, { min: 0 }),
    };
  },
  bufferNames: () => ['expAvg', 'expAvgSq'],
  buffersOf: (s) => [s.expAvg, s.expAvgSq],
  scalarNames: [],
  stateBounds: { expAvgSq: { min: 0 } },
  init: (length: number, dtype: Dtype, _h: LAMBHyper, alloc: Allocator = allocate) => ({
    step: 0,
    expAvg: alloc(dtype, length),
    expAvgSq: alloc(dtype, length),
  }),
  step(p: FloatArray, g: FloatArray, state: LAMBState, h: LAMBHyper, scalars: StepScalars): boolean {
    const s = jsScalars;
    writeScalars(s, state, h);
    const moments = loopFor(MOMENTS_LOOPS, p)(p, g, state.expAvg, state.expAvgSq, p.length, s);
    writeStep(s, scalars.lr, s[PARAM_SQUARES]!, s[UPDATE_SQUARES]!);
    const applied = loopFor(APPLY_LOOPS, p)(p, state.expAvg, state.expAvgSq, p.length, s);
    return moments && applied;
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: LAMBState, h: LAMBHyper, scalars: StepScalars): boolean {
    const s = k.scalars;
    writeScalars(s, state, h);
    const m = state.expAvg as Float32Array;
    const v = state.expAvgSq as Float32Array;
    const moments = k.exports.lambMoments(g.byteOffset, m.byteOffset, v.byteOffset, p.length, k.address) === 0;
    NORMS_LOOPS.float32(p, m, v, p.length, s);
    writeStep(s, scalars.lr, s[PARAM_SQUARES]!, s[UPDATE_SQUARES]!);
    const applied = k.exports.lambApply(p.byteOffset, m.byteOffset, v.byteOffset, p.length, k.address) === 0;
    return moments && applied;
  },
};

/**
 * LAMB over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new LAMB({ lr: 0.001, weightDecay: 0.01 });
 * opt.update(params, grads); // in place
 * ```
 */
export class LAMB extends Optimizer<LAMBOptions, LAMBHyper, LAMBState> {
  constructor(options: Schedulable<LAMBOptions> & OptimizerOptions<LAMBOptions> = {}) {
    super(lambRule, options);
  }
}
