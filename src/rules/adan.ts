/**
 * Adan, adaptive Nesterov momentum: Adam's moments of the gradient and of a Nesterov
 * estimate, plus a moment of the gradient's change. Xie, Zhou, Li, Lin & Yan (2022),
 * "Adan: adaptive Nesterov momentum algorithm for faster optimizing deep models", arXiv
 * 2208.06677, Algorithm 1; as optax 0.2.8 computes it (`optax.adan` = chain(
 * `scale_by_adan`, `add_decayed_weights`, `scale_by_learning_rate`)):
 *
 *     delta = g - g_prev   (0 on the first step: optax's where(count == 0, 0, ...))
 *     m <- beta1 * m + (1 - beta1) * g
 *     v <- beta2 * v + (1 - beta2) * delta
 *     n <- beta3 * n + (1 - beta3) * (g + (1 - beta2) * delta)^2
 *     u  = (m / (1 - beta1^t) + (1 - beta2) * v / (1 - beta2^t))
 *            / (sqrt(n / (1 - beta3^t) + epsRoot) + eps)
 *     p <- p - lr * (u + weightDecay * p)             (= p (1 - lr wd) - lr u)
 *     g_prev <- g
 *
 * Where the gradient difference comes from (the paper's section 3): Nesterov's method
 * takes its gradient at the extrapolated point p - lr (1 - b1) m (b1 the paper's small
 * beta1). Lemma 1 rewrites it so that only gradients at the iterates are needed: the
 * gradient at the look-ahead point is estimated by g_k + (1 - b1)(g_k - g_{k-1}), a
 * first-order extrapolation one step ahead, and m averages that estimate. Adan splits
 * the estimate in two averages with their own decays, m of g and v of the change, steps
 * along m + (1 - b2) v, and normalises by the second moment n of g_k + (1 - b2)(g_k -
 * g_{k-1}), with b2 the paper's small beta2 (0.08), so 1 - b2 = 0.92: the code's beta2.
 * In the authors' form with beta1 = beta2 and no normalisation, m + beta2 v is the
 * average of g + beta2 (g - g_prev): NAG's reformulation, step for step.
 *
 * Where optax differs from the authors' code (sail-sg/Adan `adan.py`), followed here:
 * - the paper writes its betas as the weights of the new value (beta1 = 0.02, ...); the
 *   authors' code and optax take 1 minus those (0.98, 0.92, 0.99), as we do. The paper's
 *   weight of the difference, 1 - b2, is then the code's beta2 = 0.92, and the authors
 *   use beta2 in n and in the step. optax uses 1 - beta2 = 0.08 in both places (the
 *   formulas above; reported upstream as google-deepmind/optax pull request 1715, open):
 *   0.08 where the authors have 0.92, with the defaults. The first step (no difference
 *   yet) and v itself agree; from the second step on the two take different steps.
 * - weight decay: optax decays as p - lr wd p (the authors' `no_prox=True`); the authors'
 *   default is the proximal form p <- (p - lr u) / (1 + lr wd), Algorithm 1's.
 * - epsRoot: default 1e-8, as `optax.adan` (its `scale_by_adan` and the authors have
 *   none: eps outside the square root only; `epsRoot: 0` gives theirs).
 * - the authors' optional global gradient-norm clipping (max_grad_norm) is not part of
 *   the rule: clip beforehand (`clipGradNorm`, or a wrapper).
 *
 * Defaults: lr 1e-3 (the authors'; optax has none), beta1 0.98, beta2 0.92, beta3 0.99,
 * eps 1e-8, epsRoot 1e-8, weightDecay 0 (decoupled, as above). State: `expAvg` (m),
 * `expAvgDiff` (v), `expAvgSq` (n), `prevGrad` (the last gradient as the rule saw it,
 * after `maximize`'s negation). `maximize` negates the gradient (ours).
 *
 * Overflow: n = (1 - beta3) (g + (1 - beta2) delta)^2 passes float32's 3.4e38 from
 * |g| = 1.84e20 on (beta3 0.99, a first step); n is then Infinity and the step 0. The
 * kernels report every NaN or Infinity they write, and update() throws an UpdateError
 * naming the state `expAvgSq` (the step is applied: see optimizer.ts).
 */
import { powIntInto } from '../math.ts';
import { allocate, COMMON_OPTION_NAMES, resolveCommon, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { checkKnownOptions, numberOption } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

export interface AdanOptions extends CommonOptions {
  /** The decay of the gradient's average m, in [0, 1). Default 0.98. */
  beta1?: number;
  /** The decay of the difference's average v, in [0, 1); 1 - beta2 also weighs the difference. Default 0.92. */
  beta2?: number;
  /** The decay of the second moment n, in [0, 1). Default 0.99. */
  beta3?: number;
  /** Added to the denominator's square root, >= 0. Default 1e-8. */
  eps?: number;
  /** Added inside the square root, >= 0. Default 0. */
  epsRoot?: number;
}

export interface AdanHyper extends CommonHyper {
  readonly beta1: number;
  readonly beta2: number;
  readonly beta3: number;
  readonly eps: number;
  readonly epsRoot: number;
}

export interface AdanState extends RuleState {
  expAvg: FloatArray;
  expAvgDiff: FloatArray;
  expAvgSq: FloatArray;
  prevGrad: FloatArray;
}

const NAMES = [...COMMON_OPTION_NAMES, 'beta1', 'beta2', 'beta3', 'eps', 'epsRoot'] as const;

/** The wasm kernel `adan(p, g, m, v, sq, prev, n, s)` (assembly/rules/adan.ts). */
const ADAN_KERNEL = kernelLayout({
  entry: 'adan',
  arrays: ['p', 'g', 'm', 'v', 'sq', 'prev'],
  reads: ['p', 'g', 'm', 'v', 'sq', 'prev'],
  writes: ['p', 'm', 'v', 'sq', 'prev'],
  scalars: ['mStep', 'vStep', 'rootEps', 'eps', 'beta1', 'beta2', 'beta3', 'first', 'shrink', 'sign'],
});
// As module constants: read through the layout object inside writeScalars, the indices
// cost a property load per step.
const M_STEP = ADAN_KERNEL.at.mStep;
const V_STEP = ADAN_KERNEL.at.vStep;
const ROOT_EPS = ADAN_KERNEL.at.rootEps;
const EPS = ADAN_KERNEL.at.eps;
const BETA1 = ADAN_KERNEL.at.beta1;
const BETA2 = ADAN_KERNEL.at.beta2;
const BETA3 = ADAN_KERNEL.at.beta3;
const FIRST = ADAN_KERNEL.at.first;
const SHRINK = ADAN_KERNEL.at.shrink;
const SIGN = ADAN_KERNEL.at.sign;

// beta1^t, beta2^t and beta3^t of the step being taken (see powIntInto for why in an array).
const powers = new Float64Array(3);

/**
 * Counts the step and writes the kernel's scalars. The bias corrections are folded in,
 * numerator and denominator multiplied by sqrt(bc3) (bc_i = 1 - beta_i^t), so that each
 * element costs one square root and one division:
 *
 *     lr u = (mStep m + vStep v) / (sqrt(n + rootEps) + eps')
 *     mStep = -lr sqrt(bc3) / bc1,  vStep = -lr sqrt(bc3) (1 - beta2) / bc2,
 *     rootEps = epsRoot bc3,  eps' = eps sqrt(bc3)
 *
 * then beta1, beta2, beta3, first (1 on the first step: no difference yet), shrink =
 * 1 - lr weightDecay, sign.
 */
function writeScalars(s: Float64Array, state: AdanState, h: AdanHyper, scalars: StepScalars): void {
  const lr = scalars.lr;
  state.step += 1;
  powers[0] = h.beta1;
  powIntInto(powers, 0, state.step);
  powers[1] = h.beta2;
  powIntInto(powers, 1, state.step);
  powers[2] = h.beta3;
  powIntInto(powers, 2, state.step);
  const bc3 = 1 - powers[2]!;
  const bc3Sqrt = Math.sqrt(bc3);
  s[M_STEP] = (-lr * bc3Sqrt) / (1 - powers[0]!);
  s[V_STEP] = (-lr * bc3Sqrt * (1 - h.beta2)) / (1 - powers[1]!);
  s[ROOT_EPS] = h.epsRoot * bc3;
  s[EPS] = h.eps * bc3Sqrt;
  s[BETA1] = h.beta1;
  s[BETA2] = h.beta2;
  s[BETA3] = h.beta3;
  s[FIRST] = state.step === 1 ? 1 : 0;
  s[SHRINK] = 1 - lr * h.weightDecay;
  s[SIGN] = h.maximize ? -1 : 1;
}

/** The JS kernel, twin of `adan` in assembly/rules/adan.ts (its scalars in `s`, see writeScalars). */
function adan(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, sq: FloatArray, prev: FloatArray, n: number, s: Float64Array): boolean {
  const mStep = s[0]!;
  const vStep = s[1]!;
  const rootEps = s[2]!;
  const eps = s[3]!;
  const beta1 = s[4]!;
  const beta2 = s[5]!;
  const beta3 = s[6]!;
  const first = s[7] === 1;
  const shrink = s[8]!;
  const sign = s[9]!;
  const oneMinusBeta1 = 1 - beta1;
  const oneMinusBeta2 = 1 - beta2;
  const oneMinusBeta3 = 1 - beta3;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    const gi = sign * g[i]!;
    // optax's where(count == 0, 0, g - g_prev): a select, so a non-finite g on the
    // first step does not make the difference NaN.
    const delta = first ? 0 : gi - prev[i]!;
    m[i] = beta1 * m[i]! + oneMinusBeta1 * gi;
    v[i] = beta2 * v[i]! + oneMinusBeta2 * delta;
    const look = gi + oneMinusBeta2 * delta; // the gradient at the look-ahead point, estimated
    sq[i] = beta3 * sq[i]! + oneMinusBeta3 * look * look;
    prev[i] = gi;
    // The moments as stored (a float32 store rounds): the step uses what the state holds.
    p[i] = p[i]! * shrink + (mStep * m[i]! + vStep * v[i]!) / (Math.sqrt(sq[i]! + rootEps) + eps);
    probe += (p[i]! + m[i]! + v[i]! + sq[i]! + prev[i]!) * 0;
  }
  return probe === 0;
}
const ADAN_LOOPS = byArrayType(adan);

export const adanRule: UpdateRule<AdanOptions, AdanHyper, AdanState> = {
  name: 'Adan',
  kernels: { step: ADAN_KERNEL },
  optionNames: NAMES,
  globalOptions: [],
  key: 'adan',
  paper: 'Xie, Zhou, Li, Lin & Yan (2022), "Adan: adaptive Nesterov momentum algorithm for faster optimizing deep models"',
  weightDecayKind: 'decoupled',
  peers: { optax: 'optax.adan' },
  resolve(options) {
    checkKnownOptions('Adan', options, NAMES);
    return {
      ...resolveCommon('Adan', options, 1e-3, 'decoupled'),
      beta1: numberOption('Adan', 'beta1', options.beta1, 0.98, { min: 0, below: 1 }),
      beta2: numberOption('Adan', 'beta2', options.beta2, 0.92, { min: 0, below: 1 }),
      beta3: numberOption('Adan', 'beta3', options.beta3, 0.99, { min: 0, below: 1 }),
      eps: numberOption('Adan', 'eps', options.eps, 1e-8, { min: 0 }),
      epsRoot: numberOption('Adan', 'epsRoot', options.epsRoot, 1e-8, { min: 0 }),
    };
  },
  bufferNames: () => ['expAvg', 'expAvgDiff', 'expAvgSq', 'prevGrad'],
  buffersOf: (s) => [s.expAvg, s.expAvgDiff, s.expAvgSq, s.prevGrad],
  scalarNames: [],
  stateBounds: { expAvgSq: { min: 0 } },
  init: (length: number, dtype: Dtype, _h: AdanHyper, alloc: Allocator = allocate) => ({
    step: 0,
    expAvg: alloc(dtype, length),
    expAvgDiff: alloc(dtype, length),
    expAvgSq: alloc(dtype, length),
    prevGrad: alloc(dtype, length),
  }),
  step(p: FloatArray, g: FloatArray, state: AdanState, h: AdanHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars);
    return loopFor(ADAN_LOOPS, p)(p, g, state.expAvg, state.expAvgDiff, state.expAvgSq, state.prevGrad, p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: AdanState, h: AdanHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars);
    return (
      k.exports.adan(p.byteOffset, g.byteOffset, state.expAvg.byteOffset, state.expAvgDiff.byteOffset, state.expAvgSq.byteOffset, state.prevGrad.byteOffset, p.length, k.address) === 0
    );
  },
};

/**
 * Adan over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new Adan({ lr: 1e-3, weightDecay: 0.02 });
 * opt.update(params, grads); // in place
 * ```
 */
export class Adan extends Optimizer<AdanOptions, AdanHyper, AdanState> {
  constructor(options: Schedulable<AdanOptions> & OptimizerOptions<AdanOptions> = {}) {
    super(adanRule, options);
  }
}
