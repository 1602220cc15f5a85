/**
 * QHAdam, quasi-hyperbolic Adam: each of Adam's two moments is averaged with its fresh
 * value before the step. Ma & Yarats (2019), "Quasi-hyperbolic momentum and Adam for deep
 * learning", ICLR, Algorithm 2; as the authors' qhoptim (`qhoptim.pyt.QHAdam`,
 * decouple_weight_decay False) computes it:
 *
 *     d <- g + weightDecay * p                              (coupled weight decay)
 *     m <- beta1 * m + (1 - beta1) * d;   m_hat = m / (1 - beta1^t)
 *     v <- beta2 * v + (1 - beta2) * d^2; v_hat = v / (1 - beta2^t)
 *     p <- p - lr * ((1 - nu1) d + nu1 m_hat) / (sqrt((1 - nu2) d^2 + nu2 v_hat) + eps)
 *
 * nu1 = nu2 = 1 is Adam (PyTorch's form); nu1 = 0, nu2 = 1 RMSProp with bias correction;
 * nu1 = nu2 = 0 sign-like SGD, d / (|d| + eps). `QHAdam.fromNAdam({ lr, beta1, beta2,
 * eps })` (qhoptim's `from_nadam`: nu1 = beta1, nu2 = 1) is NAdam in the form the QHAdam
 * paper gives it (its section 4, after Dozat 2016 with the momentum beta1 held constant):
 * p <- p - lr (beta1 m_hat + (1 - beta1) d) / (sqrt(v_hat) + eps), m_hat bias-corrected
 * at step t. It is not `torch.optim.NAdam` (our `NAdam`: the momentum schedule
 * beta1 (1 - 0.5 * 0.96^(t psi)) and its running product), nor quite `optax.nadam`, which
 * corrects m by 1 - beta1^(t+1) and d by 1 - beta1^t (Dozat's Algorithm 2 with a constant
 * momentum); the differences fade as beta1^t does. qhoptim says the same of its preset.
 *
 * qhoptim keeps the bias-corrected averages themselves (its `beta1_weight` recursion,
 * m_hat_t = (1 - 1 / w_t) m_hat_{t-1} + d / w_t with w_t = 1 + beta1 w_{t-1}); the state
 * here is the paper's m and v with the correction from the step count, as Adam's: equal
 * in exact arithmetic. `weightDecay` is qhoptim's default kind, added to the gradient
 * before both moments (its `QHAdamW`, the decoupled kind, is not this rule's option).
 * `maximize` negates the gradient (ours; the paper has none).
 *
 * Defaults: lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-8 (Adam's), nu1 0.7, nu2 1 (the
 * paper's recommended discounts, section 7; it pairs them with beta1 0.995; qhoptim
 * defaults nus to (1, 1), plain Adam). State: `expAvg` (m), `expAvgSq` (v).
 *
 * Overflow: as Adam's, v = (1 - beta2) d^2 passes float32's 3.4e38 from |d| = 5.8e20 on
 * (beta2 0.999); v is then Infinity and the step 0. (With nu2 < 1 the denominator's
 * (1 - nu2) d^2 can overflow first: that step is 0, nothing non-finite is stored.) The kernels report every NaN or Infinity they write,
 * and update() throws an UpdateError naming the state `expAvgSq` (the step is applied:
 * see optimizer.ts).
 */
import { powIntInto } from '../math.ts';
import { allocate, COMMON_OPTION_NAMES, resolveCommon, writeWeightDecay, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { checkKnownOptions, numberOption } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

export interface QHAdamOptions extends CommonOptions {
  /** The first moment's decay, in [0, 1). Default 0.9. */
  beta1?: number;
  /** The second moment's decay, in [0, 1). Default 0.999. */
  beta2?: number;
  /** The first moment's share of the numerator (the rest is the fresh gradient), in [0, 1]. Default 0.7. */
  nu1?: number;
  /** The second moment's share of the denominator (the rest is the fresh g^2), in [0, 1]. Default 1. */
  nu2?: number;
  /** Added to the denominator's square root, >= 0. Default 1e-8. */
  eps?: number;
}

export interface QHAdamHyper extends CommonHyper {
  readonly beta1: number;
  readonly beta2: number;
  readonly nu1: number;
  readonly nu2: number;
  readonly eps: number;
}

export interface QHAdamState extends RuleState {
  expAvg: FloatArray;
  expAvgSq: FloatArray;
}

const NAMES = [...COMMON_OPTION_NAMES, 'beta1', 'beta2', 'nu1', 'nu2', 'eps'] as const;

/** The wasm kernel `qhadam(p, g, m, v, n, s)` (assembly/rules/qhadam.ts). */
const QHADAM_KERNEL = kernelLayout({
  entry: 'qhadam',
  arrays: ['p', 'g', 'm', 'v'],
  reads: ['p', 'g', 'm', 'v'],
  writes: ['p', 'm', 'v'],
  scalars: ['gradStep', 'avgStep', 'gradSq', 'avgSq', 'beta1', 'beta2', 'eps', 'sign', 'wd', 'shrink'],
});
// As module constants: read through the layout object inside writeScalars, the indices
// cost a property load per step.
const GRAD_STEP = QHADAM_KERNEL.at.gradStep;
const AVG_STEP = QHADAM_KERNEL.at.avgStep;
const GRAD_SQ = QHADAM_KERNEL.at.gradSq;
const AVG_SQ = QHADAM_KERNEL.at.avgSq;
const BETA1 = QHADAM_KERNEL.at.beta1;
const BETA2 = QHADAM_KERNEL.at.beta2;
const EPS = QHADAM_KERNEL.at.eps;
const SIGN = QHADAM_KERNEL.at.sign;
const WD = QHADAM_KERNEL.at.wd;
const SHRINK = QHADAM_KERNEL.at.shrink;

// beta1^t and beta2^t of the step being taken (see powIntInto for why in an array).
const powers = new Float64Array(2);

/**
 * Counts the step and writes the kernel's scalars, the bias corrections folded in:
 * gradStep = -lr (1 - nu1), avgStep = -lr nu1 / (1 - beta1^t), gradSq = 1 - nu2,
 * avgSq = nu2 / (1 - beta2^t), then beta1, beta2, eps, sign, weight decay (coupled wd, decoupled shrink).
 */
function writeScalars(s: Float64Array, state: QHAdamState, h: QHAdamHyper, scalars: StepScalars): void {
  const lr = scalars.lr;
  state.step += 1;
  powers[0] = h.beta1;
  powIntInto(powers, 0, state.step);
  powers[1] = h.beta2;
  powIntInto(powers, 1, state.step);
  s[GRAD_STEP] = -lr * (1 - h.nu1);
  s[AVG_STEP] = (-lr * h.nu1) / (1 - powers[0]!);
  s[GRAD_SQ] = 1 - h.nu2;
  s[AVG_SQ] = h.nu2 / (1 - powers[1]!);
  s[BETA1] = h.beta1;
  s[BETA2] = h.beta2;
  s[EPS] = h.eps;
  s[SIGN] = h.maximize ? -1 : 1;
  writeWeightDecay(s, WD, SHRINK, h, scalars);
}

/** The JS kernel, twin of `qhadam` in assembly/rules/qhadam.ts (its scalars in `s`, see writeScalars). */
function qhadam(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, n: number, s: Float64Array): boolean {
  const gradStep = s[0]!;
  const avgStep = s[1]!;
  const gradSq = s[2]!;
  const avgSq = s[3]!;
  const beta1 = s[4]!;
  const beta2 = s[5]!;
  const eps = s[6]!;
  const sign = s[7]!;
  const wd = s[8]!;
  const shrink = s[9]!;
  const decay = wd !== 0;
  const decoupled = shrink !== 1;
  const oneMinusBeta1 = 1 - beta1;
  const oneMinusBeta2 = 1 - beta2;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    let d = sign * g[i]!;
    if (decay) d += wd * p[i]!;
    let pi = p[i]!;
    if (decoupled) pi *= shrink;
    const dd = d * d;
    m[i] = beta1 * m[i]! + oneMinusBeta1 * d;
    v[i] = beta2 * v[i]! + oneMinusBeta2 * dd;
    // The moments as stored (a float32 store rounds): the step uses what the state holds.
    p[i] = pi + (gradStep * d + avgStep * m[i]!) / (Math.sqrt(gradSq * dd + avgSq * v[i]!) + eps);
    probe += (p[i]! + m[i]! + v[i]!) * 0;
  }
  return probe === 0;
}
const QHADAM_LOOPS = byArrayType(qhadam);

export const qhadamRule: UpdateRule<QHAdamOptions, QHAdamHyper, QHAdamState> = {
  name: 'QHAdam',
  kernels: { step: QHADAM_KERNEL },
  optionNames: NAMES,
  globalOptions: [],
  key: 'qhadam',
  paper: 'Ma & Yarats (2019), "Quasi-hyperbolic momentum and Adam for deep learning"',
  weightDecayKind: 'coupled',
  peers: {},
  resolve(options) {
    checkKnownOptions('QHAdam', options, NAMES);
    return {
      ...resolveCommon('QHAdam', options, 1e-3),
      beta1: numberOption('QHAdam', 'beta1', options.beta1, 0.9, { min: 0, below: 1 }),
      beta2: numberOption('QHAdam', 'beta2', options.beta2, 0.999, { min: 0, below: 1 }),
      nu1: numberOption('QHAdam', 'nu1', options.nu1, 0.7, { min: 0, max: 1 }),
      nu2: numberOption('QHAdam', 'nu2', options.nu2, 1, { min: 0, max: 1 }),
      eps: numberOption('QHAdam', 'eps', options.eps, 1e-8, { min: 0 }),
    };
  },
  bufferNames: () => ['expAvg', 'expAvgSq'],
  buffersOf: (s) => [s.expAvg, s.expAvgSq],
  scalarNames: [],
  stateBounds: { expAvgSq: { min: 0 } },
  init: (length: number, dtype: Dtype, _h: QHAdamHyper, alloc: Allocator = allocate) => ({
    step: 0,
    expAvg: alloc(dtype, length),
    expAvgSq: alloc(dtype, length),
  }),
  step(p: FloatArray, g: FloatArray, state: QHAdamState, h: QHAdamHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars);
    return loopFor(QHADAM_LOOPS, p)(p, g, state.expAvg, state.expAvgSq, p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: QHAdamState, h: QHAdamHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars);
    return k.exports.qhadam(p.byteOffset, g.byteOffset, state.expAvg.byteOffset, state.expAvgSq.byteOffset, p.length, k.address) === 0;
  },
};

/**
 * QHAdam over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new QHAdam({ lr: 1e-3, nu1: 0.7, nu2: 1 });
 * opt.update(params, grads); // in place
 * ```
 */
export class QHAdam extends Optimizer<QHAdamOptions, QHAdamHyper, QHAdamState> {
  constructor(options: Schedulable<QHAdamOptions> & OptimizerOptions<QHAdamOptions> = {}) {
    super(qhadamRule, options);
  }

  /**
   * The QHAdam that is NAdam with a constant momentum (qhoptim's `from_nadam`): nu1 =
   * beta1, nu2 = 1, so p <- p - lr (beta1 m_hat + (1 - beta1) d) / (sqrt(v_hat) + eps).
   * Not `NAdam` (PyTorch's, with its momentum schedule): see the top of this file. The
   * other options (lr, beta2, eps, weightDecay, maximize, nonFinite, ...) pass through.
   */
  static fromNAdam(options: Omit<QHAdamOptions, 'nu1' | 'nu2'> & OptimizerOptions<QHAdamOptions> = {}): QHAdam {
    const beta1 = numberOption('QHAdam.fromNAdam', 'beta1', options.beta1, 0.9, { min: 0, below: 1 });
    return new QHAdam({ ...options, beta1, nu1: beta1, nu2: 1 });
  }
}
