/**
 * NAdam: Adam with Nesterov momentum (Dozat 2016, "Incorporating Nesterov momentum
 * into Adam"), with PyTorch's momentum schedule:
 *
 *     mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentumDecay))
 *     P_t  = mu_1 * ... * mu_t                               (state: muProduct)
 *     m <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g * g
 *     d  = sqrt(v) / sqrt(1 - beta2^t) + eps
 *     p <- p - lr * (1 - mu_t) / (1 - P_t) * g / d
 *            - lr * mu_{t+1} / (1 - P_t * mu_{t+1}) * m / d
 *
 * This is torch 1.13's `foreach=True` path and later PyTorch releases. torch 1.13's
 * default single-tensor path multiplies mu_t into the second product twice
 * (`mu_product * mu * mu_next`): a different method. Keras 3 uses 0.96^t (psi = 1)
 * and eps 1e-7; optax's nadam keeps beta1 constant. Three algorithms share the name.
 *
 * Scheduled beta1 or momentumDecay (a schedule, or `setHyperparameters` between steps):
 * mu_t and mu_{t+1} are computed with step t's values, and muProduct multiplies in
 * each step's mu_t as it was, so P_t = mu_1(beta1_1) * ... * mu_t(beta1_t) is not
 * recomputed from the current beta1. This is what torch does when
 * `param_groups[0]['betas']` changes between steps (its `mu_product *= mu`). The bias
 * correction 1 - beta2^t uses the current beta2, as torch's does.
 *
 * Defaults: lr 0.002, beta1 0.9, beta2 0.999, eps 1e-8, momentumDecay 0.004 (PyTorch).
 * `weightDecay` is coupled (added to the gradient); `decoupledWeightDecay: true` (torch
 * 2.x's `decoupled_weight_decay=True`) makes it NAdamW (nadamw.ts): p <- p * (1 - lr *
 * weightDecay), then the step above without decay. State: `expAvg`, `expAvgSq`, and
 * the scalar `muProduct` (a double; torch 1.13 keeps it as a float32 tensor).
 *
 * Overflow: as Adam's, v = (1 - beta2) g^2 passes float32's 3.4e38 from |g| = 5.8e20
 * on. The kernel reports every NaN or Infinity it writes, and update() throws an
 * UpdateError naming the state `expAvgSq` (the step is applied: see optimizer.ts).
 */
import { powIntInto } from '../math.ts';
import { allocate, COMMON_OPTION_NAMES, resolveCommon, writeWeightDecay, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { checkKnownOptions, numberOption } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

export interface NAdamOptions extends CommonOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  momentumDecay?: number;
}

export interface NAdamHyper extends CommonHyper {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly momentumDecay: number;
}

export interface NAdamState extends RuleState {
  muProduct: number;
  expAvg: FloatArray;
  expAvgSq: FloatArray;
}

export const NADAM_OPTION_NAMES = [...COMMON_OPTION_NAMES, 'beta1', 'beta2', 'eps', 'momentumDecay'] as const;
const NAMES = NADAM_OPTION_NAMES;

/**
 * Validates the options NAdam and NAdamW share; `decay` 'decoupled' for NAdamW, whose
 * weight decay is decoupled by definition (and `defaultWeightDecay` its own default).
 */
export function resolveNAdamFamily(owner: string, options: NAdamOptions, defaultWeightDecay: number, decay: 'coupled' | 'decoupled'): NAdamHyper {
  const common = resolveCommon(owner, options, 0.002, decay);
  return {
    ...common,
    weightDecay: options.weightDecay === undefined ? defaultWeightDecay : common.weightDecay,
    beta1: numberOption(owner, 'beta1', options.beta1, 0.9, { min: 0, below: 1 }),
    beta2: numberOption(owner, 'beta2', options.beta2, 0.999, { min: 0, below: 1 }),
    eps: numberOption(owner, 'eps', options.eps, 1e-8, { min: 0 }),
    momentumDecay: numberOption(owner, 'momentumDecay', options.momentumDecay, 0.004, { min: 0 }),
  };
}

/** The wasm kernel: `nadam(p, g, m, v, n, s)`. */
export const NADAM = kernelLayout({
  entry: 'nadam',
  arrays: ['p', 'g', 'm', 'v'],
  reads: ['p', 'g', 'm', 'v'],
  writes: ['p', 'm', 'v'],
  scalars: ['gradStep', 'avgStep', 'bc2sqrt', 'beta1', 'beta2', 'eps', 'sign', 'wd', 'shrink'],
});

/**
 * Counts the step, updates muProduct, and writes the kernel's scalars: gradStep,
 * avgStep, sqrt(1 - beta2^t), beta1, beta2, eps, sign, weight decay (coupled wd, decoupled shrink).
 */
function writeScalars(s: Float64Array, state: NAdamState, h: NAdamHyper, scalars: StepScalars): void {
  const lr = scalars.lr;
  state.step += 1;
  const t = state.step;
  const mu = h.beta1 * (1 - 0.5 * 0.96 ** (t * h.momentumDecay));
  const muNext = h.beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * h.momentumDecay));
  const muProduct = state.muProduct * mu;
  state.muProduct = muProduct;
  s[NADAM.at.gradStep] = ((lr * (1 - mu)) / (1 - muProduct)) * -1;
  s[NADAM.at.avgStep] = ((lr * muNext) / (1 - muProduct * muNext)) * -1;
  s[NADAM.at.bc2sqrt] = h.beta2;
  powIntInto(s, NADAM.at.bc2sqrt, t); // beta2^t, in place (see powIntInto for why in an array)
  s[NADAM.at.bc2sqrt] = Math.sqrt(1 - s[NADAM.at.bc2sqrt]!);
  s[NADAM.at.beta1] = h.beta1;
  s[NADAM.at.beta2] = h.beta2;
  s[NADAM.at.eps] = h.eps;
  s[NADAM.at.sign] = h.maximize ? -1 : 1;
  writeWeightDecay(s, NADAM.at.wd, NADAM.at.shrink, h, scalars);
}

/** The JS kernel, twin of `nadam` in assembly/kernels.ts. */
function nadam(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, n: number, s: Float64Array): boolean {
  const biasCorrection2Sqrt = s[2]!;
  const gradScale = s[0]! * biasCorrection2Sqrt;
  const avgScale = s[1]! * biasCorrection2Sqrt;
  const beta1 = s[3]!;
  const beta2 = s[4]!;
  const scaledEps = s[5]! * biasCorrection2Sqrt;
  const sign = s[6]!;
  const wd = s[7]!;
  const shrink = s[8]!;
  const decay = wd !== 0;
  const decoupled = shrink !== 1;
  const oneMinusBeta1 = 1 - beta1;
  const oneMinusBeta2 = 1 - beta2;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    let gi = sign * g[i]!;
    if (decay) gi += wd * p[i]!;
    let pi = p[i]!;
    if (decoupled) pi *= shrink;
    const mi = m[i]! * beta1 + oneMinusBeta1 * gi;
    const vi = v[i]! * beta2 + oneMinusBeta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    // PyTorch's two steps, (gradStep g + avgStep m) / (sqrt(v) / sqrt(bc2) + eps), with
    // numerator and denominator multiplied by sqrt(bc2): one division, not three.
    p[i] = pi + (gradScale * gi + avgScale * mi) / (Math.sqrt(vi) + scaledEps);
    probe += (m[i]! + v[i]! + p[i]!) * 0;
  }
  return probe === 0;
}
const NADAM_LOOPS = byArrayType(nadam);

export const nadamRule: UpdateRule<NAdamOptions, NAdamHyper, NAdamState> = {
  name: 'NAdam',
  kernels: { step: NADAM },
  optionNames: NAMES,
  globalOptions: [],
  key: 'nadam',
  paper: 'Dozat (2016), "Incorporating Nesterov momentum into Adam"',
  weightDecayKind: 'coupled',
  peers: { torch: 'torch.optim.NAdam', optax: 'optax.nadam', keras: 'keras.optimizers.Nadam' },
  resolve(options) {
    checkKnownOptions('NAdam', options, NAMES);
    return resolveNAdamFamily('NAdam', options, 0, 'coupled');
  },
  bufferNames: () => ['expAvg', 'expAvgSq'],
  buffersOf: (s) => [s.expAvg, s.expAvgSq],
  scalarNames: ['muProduct'],
  stateBounds: { expAvgSq: { min: 0 }, muProduct: { min: 0 } },
  copyScalars(from, to) {
    to.muProduct = from.muProduct;
  },
  init: (length: number, dtype: Dtype, _h: NAdamHyper, alloc: Allocator = allocate) => ({
    step: 0,
    muProduct: 1,
    expAvg: alloc(dtype, length),
    expAvgSq: alloc(dtype, length),
  }),
  step(p: FloatArray, g: FloatArray, state: NAdamState, h: NAdamHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars);
    return loopFor(NADAM_LOOPS, p)(p, g, state.expAvg, state.expAvgSq, p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: NAdamState, h: NAdamHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars);
    return k.exports.nadam(p.byteOffset, g.byteOffset, state.expAvg.byteOffset, state.expAvgSq.byteOffset, p.length, k.address) === 0;
  },
};

/**
 * NAdam over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new NAdam({ lr: 0.002 });
 * opt.update(params, grads); // in place
 * ```
 */
export class NAdam extends Optimizer<NAdamOptions, NAdamHyper, NAdamState> {
  constructor(options: Schedulable<NAdamOptions> & OptimizerOptions<NAdamOptions> = {}) {
    super(nadamRule, options);
  }
}
