/**
 * RAdam: Adam whose adaptive step is switched on only once the variance of its
 * adaptive learning rate is tractable, and rectified by the factor r_t that makes that
 * variance consistent. Liu, Jiang, He, Chen, Liu, Gao & Han (2020), "On the variance of
 * the adaptive learning rate and beyond", ICLR, Algorithm 2; as `torch.optim.RAdam`
 * (1.13, `_single_tensor_radam`) computes it:
 *
 *     m <- beta1 * m + (1 - beta1) * g
 *     v <- beta2 * v + (1 - beta2) * g * g
 *     rho_inf = 2 / (1 - beta2) - 1
 *     rho_t   = rho_inf - 2 t beta2^t / (1 - beta2^t)
 *     if rho_t > 5:
 *       r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
 *       p <- p - lr * m / (1 - beta1^t) * r * sqrt(1 - beta2^t) / (sqrt(v) + eps)
 *     else:
 *       p <- p - lr * m / (1 - beta1^t)                    (SGD with momentum)
 *
 * rho_t is the length of the approximated simple moving average; it is 1 at t = 1 and
 * grows towards rho_inf, so the first steps (the first 5 with beta2 0.999) are plain
 * momentum steps. The switch is torch's `rho_t > 5`, decided once per step (all elements
 * take the same branch); the paper's Algorithm 2 says `rho_t > 4`, the authors' code
 * `>= 5`. `weightDecay` is coupled (added to the gradient), the only kind 1.13 has
 * (later releases add `decoupled_weight_decay`). `maximize` is ours: torch 1.13's RAdam
 * has none; here, as in every rule, it negates the gradient.
 *
 * Defaults (PyTorch): lr 0.001, beta1 0.9, beta2 0.999, eps 1e-8. State (torch's keys):
 * `expAvg` (m), `expAvgSq` (v).
 *
 * Overflow: as Adam's, v = (1 - beta2) g^2 passes float32's 3.4e38 from |g| = 5.8e20 on
 * (beta2 0.999); v is then Infinity and a rectified step m / sqrt(v) is 0. The kernels
 * report every NaN or Infinity they write (params and state), and update() throws an
 * UpdateError naming the state `expAvgSq` (the step is applied: see optimizer.ts).
 */
import { powIntInto } from '../math.ts';
import { allocate, COMMON_OPTION_NAMES, resolveCommon, writeWeightDecay, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { checkKnownOptions, numberOption } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

export interface RAdamOptions extends CommonOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export interface RAdamHyper extends CommonHyper {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
}

export interface RAdamState extends RuleState {
  expAvg: FloatArray;
  expAvgSq: FloatArray;
}

const NAMES = [...COMMON_OPTION_NAMES, 'beta1', 'beta2', 'eps'] as const;

/** The threshold on rho_t above which the adaptive step is taken (torch's; see the top). */
const RHO_THRESHOLD = 5;

// beta1^t and beta2^t of the step being taken (see powIntInto for why in an array).
const powers = new Float64Array(2);

/** The wasm kernel: `radam(p, g, m, v, n, s)`. */
const RADAM = kernelLayout({
  entry: 'radam',
  arrays: ['p', 'g', 'm', 'v'],
  reads: ['p', 'g', 'm', 'v'],
  writes: ['p', 'm', 'v'],
  scalars: ['step', 'beta1', 'beta2', 'eps', 'rectified', 'sign', 'wd', 'shrink'],
});

/**
 * Counts the step and writes the kernel's scalars: step (negative), beta1, beta2, eps,
 * rectified (0/1), sign, weightDecay. The rectification is scalar math, once per step.
 */
function writeScalars(s: Float64Array, state: RAdamState, h: RAdamHyper, scalars: StepScalars): void {
  const lr = scalars.lr;
  state.step += 1;
  const t = state.step;
  powers[0] = h.beta1;
  powIntInto(powers, 0, t);
  powers[1] = h.beta2;
  powIntInto(powers, 1, t);
  const biasCorrection1 = 1 - powers[0]!;
  const biasCorrection2 = 1 - powers[1]!;
  // torch's expressions, in its order.
  const rhoInf = 2 / (1 - h.beta2) - 1;
  const rhoT = rhoInf - (2 * t * powers[1]!) / biasCorrection2;
  const rectified = rhoT > RHO_THRESHOLD;
  if (rectified) {
    const rect = Math.sqrt(((rhoT - 4) * (rhoT - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rhoT));
    s[RADAM.at.step] = -((lr * rect * Math.sqrt(biasCorrection2)) / biasCorrection1);
  } else {
    s[RADAM.at.step] = -(lr / biasCorrection1);
  }
  s[RADAM.at.beta1] = h.beta1;
  s[RADAM.at.beta2] = h.beta2;
  s[RADAM.at.eps] = h.eps;
  s[RADAM.at.rectified] = rectified ? 1 : 0;
  s[RADAM.at.sign] = h.maximize ? -1 : 1;
  writeWeightDecay(s, RADAM.at.wd, RADAM.at.shrink, h, scalars);
}

/** The JS kernel, twin of `radam` in assembly/kernels.ts. */
function radam(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, n: number, s: Float64Array): boolean {
  const step = s[0]!;
  const beta1 = s[1]!;
  const beta2 = s[2]!;
  const eps = s[3]!;
  const rectified = s[4] === 1;
  const sign = s[5]!;
  const wd = s[6]!;
  const shrink = s[7]!;
  const decoupled = shrink !== 1;
  const decay = wd !== 0;
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
    p[i] = rectified ? pi + (step * mi) / (Math.sqrt(vi) + eps) : pi + step * mi;
    probe += (m[i]! + v[i]! + p[i]!) * 0;
  }
  return probe === 0;
}
const RADAM_LOOPS = byArrayType(radam);

export const radamRule: UpdateRule<RAdamOptions, RAdamHyper, RAdamState> = {
  name: 'RAdam',
  kernels: { step: RADAM },
  optionNames: NAMES,
  globalOptions: [],
  key: 'radam',
  paper: 'Liu, Jiang, He, Chen, Liu, Gao & Han (2020), "On the variance of the adaptive learning rate and beyond"',
  weightDecayKind: 'coupled',
  peers: { torch: 'torch.optim.RAdam', optax: 'optax.radam' },
  resolve(options) {
    checkKnownOptions('RAdam', options, NAMES);
    return {
      ...resolveCommon('RAdam', options, 0.001),
      beta1: numberOption('RAdam', 'beta1', options.beta1, 0.9, { min: 0, below: 1 }),
      beta2: numberOption('RAdam', 'beta2', options.beta2, 0.999, { min: 0, below: 1 }),
      eps: numberOption('RAdam', 'eps', options.eps, 1e-8, { min: 0 }),
    };
  },
  bufferNames: () => ['expAvg', 'expAvgSq'],
  buffersOf: (s) => [s.expAvg, s.expAvgSq],
  scalarNames: [],
  stateBounds: { expAvgSq: { min: 0 } },
  init: (length: number, dtype: Dtype, _h: RAdamHyper, alloc: Allocator = allocate) => ({
    step: 0,
    expAvg: alloc(dtype, length),
    expAvgSq: alloc(dtype, length),
  }),
  step(p: FloatArray, g: FloatArray, state: RAdamState, h: RAdamHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars);
    return loopFor(RADAM_LOOPS, p)(p, g, state.expAvg, state.expAvgSq, p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: RAdamState, h: RAdamHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars);
    return k.exports.radam(p.byteOffset, g.byteOffset, state.expAvg.byteOffset, state.expAvgSq.byteOffset, p.length, k.address) === 0;
  },
};

/**
 * RAdam over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new RAdam({ lr: 0.001 });
 * opt.update(params, grads); // in place
 * ```
 */
export class RAdam extends Optimizer<RAdamOptions, RAdamHyper, RAdamState> {
  constructor(options: Schedulable<RAdamOptions> & OptimizerOptions<RAdamOptions> = {}) {
    super(radamRule, options);
  }
}
