/**
 * Lion (EvoLved Sign Momentum): a sign step in the direction of an interpolation between
 * the momentum and the new gradient. Chen, Liang, Huang, Real, Wang, Pham, Dong, Luong,
 * Hsieh, Lu & Le (2023), "Symbolic discovery of optimization algorithms", NeurIPS,
 * Algorithm 2; as lucidrains/lion-pytorch (`lion_pytorch/lion_pytorch.py`, `update_fn`)
 * computes it:
 *
 *     c <- beta1 * m + (1 - beta1) * g
 *     p <- p * (1 - lr * weightDecay) - lr * sign(c)
 *     m <- beta2 * m + (1 - beta2) * g
 *
 * The interpolation c mixes the new gradient into the old momentum before the step, in
 * the spirit of NAG's `g + mu b` (Nesterov's look-ahead, see README); with beta2 > beta1
 * the momentum then remembers longer than the step looks. Every element moves by
 * exactly lr (or 0), so Lion wants an lr 3-10x smaller than AdamW's and a weight decay
 * 3-10x larger (the paper's advice).
 *
 * sign(0) = 0 (an element whose c is exactly 0 does not move, as torch.sign). sign(NaN)
 * is NaN, as torch.sign and Math.sign: a NaN in m or g (nonFinite 'ignore') reaches the
 * param instead of being hidden as a step of 0, and the overflow check sees it.
 * sign(+-Infinity) = +-1.
 *
 * `weightDecay` is decoupled as in the paper (p <- p (1 - lr wd), before the sign step,
 * with the scheduled lr), not added to the gradient: unlike the other rules' coupled
 * decay, a Lion weight decay never enters m. `maximize` negates the gradient (the
 * reference has no such option).
 *
 * Defaults (the paper's, lion-pytorch's): lr 1e-4, beta1 0.9, beta2 0.99, weightDecay 0.
 * (Keras 3 defaults lr 1e-3.) State (lion-pytorch's key): `expAvg` (m).
 *
 * Overflow: none from a finite gradient. c and m are convex combinations of finite
 * values and the step moves each element by lr: only a param within lr of float32's
 * 3.4e38, or an lr near it, leaves the range. The kernels still report every NaN or
 * Infinity they write, and update() throws an UpdateError naming where.
 */
import { allocate, COMMON_OPTION_NAMES, resolveCommon, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { checkKnownOptions, numberOption } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

export interface LionOptions extends CommonOptions {
  beta1?: number;
  beta2?: number;
}

export interface LionHyper extends CommonHyper {
  readonly beta1: number;
  readonly beta2: number;
}

export interface LionState extends RuleState {
  expAvg: FloatArray;
}

const NAMES = [...COMMON_OPTION_NAMES, 'beta1', 'beta2'] as const;

/** The wasm kernel: `lion(p, g, m, n, s)`; decay is 1 - lr wd (1: off). */
export const LION = kernelLayout({
  entry: 'lion',
  arrays: ['p', 'g', 'm'],
  reads: ['p', 'g', 'm'],
  writes: ['p', 'm'],
  scalars: ['lr', 'beta1', 'beta2', 'sign', 'decay'],
});

/** Counts the step and writes the kernel's scalars: lr, beta1, beta2, sign, decay (1 - lr wd). */
function writeScalars(s: Float64Array, state: LionState, h: LionHyper, scalars: StepScalars): void {
  const lr = scalars.lr;
  state.step += 1;
  s[LION.at.lr] = lr;
  s[LION.at.beta1] = h.beta1;
  s[LION.at.beta2] = h.beta2;
  s[LION.at.sign] = h.maximize ? -1 : 1;
  s[LION.at.decay] = 1 - lr * h.weightDecay;
}

/** The JS kernel, twin of `lion` in assembly/kernels.ts. */
function lion(p: FloatArray, g: FloatArray, m: FloatArray, n: number, s: Float64Array): boolean {
  const lr = s[0]!;
  const beta1 = s[1]!;
  const beta2 = s[2]!;
  const sign = s[3]!;
  const decay = s[4]!;
  const decays = decay !== 1;
  const oneMinusBeta1 = 1 - beta1;
  const oneMinusBeta2 = 1 - beta2;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    const gi = sign * g[i]!;
    const mi = m[i]!;
    const c = beta1 * mi + oneMinusBeta1 * gi;
    // Math.sign: 0 for +-0, NaN for NaN (see the top).
    const pi = decays ? p[i]! * decay : p[i]!;
    p[i] = pi - lr * Math.sign(c);
    m[i] = beta2 * mi + oneMinusBeta2 * gi;
    probe += (p[i]! + m[i]!) * 0;
  }
  return probe === 0;
}
const LION_LOOPS = byArrayType(lion);

export const lionRule: UpdateRule<LionOptions, LionHyper, LionState> = {
  name: 'Lion',
  kernels: { step: LION },
  optionNames: NAMES,
  globalOptions: [],
  key: 'lion',
  paper: 'Chen, Liang, Huang, Real, Wang, Pham, Dong, Luong, Hsieh, Lu & Le (2023), "Symbolic discovery of optimization algorithms"',
  weightDecayKind: 'decoupled',
  peers: { optax: 'optax.lion', keras: 'keras.optimizers.Lion' },
  resolve(options) {
    checkKnownOptions('Lion', options, NAMES);
    return {
      ...resolveCommon('Lion', options, 1e-4, 'decoupled'),
      beta1: numberOption('Lion', 'beta1', options.beta1, 0.9, { min: 0, max: 1 }),
      beta2: numberOption('Lion', 'beta2', options.beta2, 0.99, { min: 0, max: 1 }),
    };
  },
  bufferNames: () => ['expAvg'],
  buffersOf: (s) => [s.expAvg],
  scalarNames: [],
  init: (length: number, dtype: Dtype, _h: LionHyper, alloc: Allocator = allocate) => ({
    step: 0,
    expAvg: alloc(dtype, length),
  }),
  step(p: FloatArray, g: FloatArray, state: LionState, h: LionHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars);
    return loopFor(LION_LOOPS, p)(p, g, state.expAvg, p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: LionState, h: LionHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars);
    return k.exports.lion(p.byteOffset, g.byteOffset, state.expAvg.byteOffset, p.length, k.address) === 0;
  },
};

/**
 * Lion over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new Lion({ lr: 1e-4, weightDecay: 0.1 });
 * opt.update(params, grads); // in place
 * ```
 */
export class Lion extends Optimizer<LionOptions, LionHyper, LionState> {
  constructor(options: Schedulable<LionOptions> & OptimizerOptions<LionOptions> = {}) {
    super(lionRule, options);
  }
}
