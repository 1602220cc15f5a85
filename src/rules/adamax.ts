/**
 * Adamax: Adam with the infinity norm in place of the RMS. Kingma & Ba (2015), "Adam: a
 * method for stochastic optimization", ICLR, section 7.1 (Algorithm 2); as
 * `torch.optim.Adamax` (1.13, `_single_tensor_adamax`) computes it:
 *
 *     m <- beta1 * m + (1 - beta1) * g
 *     u <- max(beta2 * u, |g| + eps)
 *     p <- p - (lr / (1 - beta1^t)) * m / u
 *
 * The paper has u = max(beta2 u, |g|) and no eps; torch adds eps inside the max (so u > 0
 * from the first step on, and u never divides by zero). The max propagates NaN, as
 * torch.amax does. `weightDecay` is coupled (added to the gradient).
 *
 * Defaults (PyTorch): lr 0.002, beta1 0.9, beta2 0.999, eps 1e-8. State (torch's keys):
 * `expAvg` (m), `expInf` (u).
 *
 * Overflow: none from a finite gradient. m is an average of gradients and u >= beta2^k
 * |g_{t-k}| for every past gradient, so |m| / u <= (1 - beta1) sum_k (beta1 / beta2)^k:
 * the step is at most lr / (1 - beta1^t) (1 - beta1) / (1 - beta1 / beta2) when
 * beta1 < beta2 (about lr at t = 1), and finite at any t otherwise. Only a
 * weight-decayed gradient g + weightDecay p past float32's 3.4e38 (then m, u and the
 * param turn Infinity or NaN) or an lr near it would do. The kernels still report
 * every NaN or Infinity they write, and update() throws an UpdateError naming where.
 */
import { powIntInto } from '../math.ts';
import { allocate, COMMON_OPTION_NAMES, resolveCommon, writeWeightDecay, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { checkKnownOptions, numberOption } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

export interface AdamaxOptions extends CommonOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export interface AdamaxHyper extends CommonHyper {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
}

export interface AdamaxState extends RuleState {
  expAvg: FloatArray;
  expInf: FloatArray;
}

const NAMES = [...COMMON_OPTION_NAMES, 'beta1', 'beta2', 'eps'] as const;

/** The wasm kernel: `adamax(p, g, m, u, n, s)`. */
const ADAMAX = kernelLayout({
  entry: 'adamax',
  arrays: ['p', 'g', 'm', 'u'],
  reads: ['p', 'g', 'm', 'u'],
  writes: ['p', 'm', 'u'],
  scalars: ['step', 'beta1', 'beta2', 'eps', 'sign', 'wd', 'shrink'],
});

/** Counts the step and writes the kernel's scalars: step (-lr / (1 - beta1^t)), beta1, beta2, eps, sign, weightDecay. */
function writeScalars(s: Float64Array, state: AdamaxState, h: AdamaxHyper, scalars: StepScalars): void {
  const lr = scalars.lr;
  state.step += 1;
  s[ADAMAX.at.step] = h.beta1;
  powIntInto(s, ADAMAX.at.step, state.step); // beta1^t, in place (see powIntInto for why in an array)
  s[ADAMAX.at.step] = -(lr / (1 - s[ADAMAX.at.step]!));
  s[ADAMAX.at.beta1] = h.beta1;
  s[ADAMAX.at.beta2] = h.beta2;
  s[ADAMAX.at.eps] = h.eps;
  s[ADAMAX.at.sign] = h.maximize ? -1 : 1;
  writeWeightDecay(s, ADAMAX.at.wd, ADAMAX.at.shrink, h, scalars);
}

/** The JS kernel, twin of `adamax` in assembly/kernels.ts. */
function adamax(p: FloatArray, g: FloatArray, m: FloatArray, u: FloatArray, n: number, s: Float64Array): boolean {
  const step = s[0]!;
  const beta1 = s[1]!;
  const beta2 = s[2]!;
  const eps = s[3]!;
  const sign = s[4]!;
  const wd = s[5]!;
  const shrink = s[6]!;
  const decoupled = shrink !== 1;
  const decay = wd !== 0;
  const oneMinusBeta1 = 1 - beta1;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    let gi = sign * g[i]!;
    if (decay) gi += wd * p[i]!;
    let pi = p[i]!;
    if (decoupled) pi *= shrink;
    const mi = m[i]! * beta1 + oneMinusBeta1 * gi;
    // Math.max returns NaN if either is NaN, as torch.amax does.
    const ui = Math.max(u[i]! * beta2, Math.abs(gi) + eps);
    m[i] = mi;
    u[i] = ui;
    // torch's addcdiv: p + (value * m) / u
    p[i] = pi + (step * mi) / ui;
    probe += (m[i]! + u[i]! + p[i]!) * 0;
  }
  return probe === 0;
}
const ADAMAX_LOOPS = byArrayType(adamax);

export const adamaxRule: UpdateRule<AdamaxOptions, AdamaxHyper, AdamaxState> = {
  name: 'Adamax',
  kernels: { step: ADAMAX },
  optionNames: NAMES,
  globalOptions: [],
  key: 'adamax',
  paper: 'Kingma & Ba (2015), "Adam: a method for stochastic optimization", section 7.1',
  weightDecayKind: 'coupled',
  peers: { torch: 'torch.optim.Adamax', optax: 'optax.adamax', keras: 'keras.optimizers.Adamax', tfjs: 'tf.train.adamax' },
  resolve(options) {
    checkKnownOptions('Adamax', options, NAMES);
    return {
      ...resolveCommon('Adamax', options, 0.002),
      beta1: numberOption('Adamax', 'beta1', options.beta1, 0.9, { min: 0, below: 1 }),
      beta2: numberOption('Adamax', 'beta2', options.beta2, 0.999, { min: 0, below: 1 }),
      eps: numberOption('Adamax', 'eps', options.eps, 1e-8, { min: 0 }),
    };
  },
  bufferNames: () => ['expAvg', 'expInf'],
  buffersOf: (s) => [s.expAvg, s.expInf],
  scalarNames: [],
  stateBounds: { expInf: { min: 0 } },
  init: (length: number, dtype: Dtype, _h: AdamaxHyper, alloc: Allocator = allocate) => ({
    step: 0,
    expAvg: alloc(dtype, length),
    expInf: alloc(dtype, length),
  }),
  step(p: FloatArray, g: FloatArray, state: AdamaxState, h: AdamaxHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars);
    return loopFor(ADAMAX_LOOPS, p)(p, g, state.expAvg, state.expInf, p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: AdamaxState, h: AdamaxHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars);
    return k.exports.adamax(p.byteOffset, g.byteOffset, state.expAvg.byteOffset, state.expInf.byteOffset, p.length, k.address) === 0;
  },
};

/**
 * Adamax over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new Adamax({ lr: 0.002 });
 * opt.update(params, grads); // in place
 * ```
 */
export class Adamax extends Optimizer<AdamaxOptions, AdamaxHyper, AdamaxState> {
  constructor(options: Schedulable<AdamaxOptions> & OptimizerOptions<AdamaxOptions> = {}) {
    super(adamaxRule, options);
  }
}
