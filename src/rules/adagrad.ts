/**
 * AdaGrad: per-coordinate step sizes from the sum of squared gradients.
 *
 * `variant: 'pytorch'` (default), as `torch.optim.Adagrad`:
 *
 *     lr_t = lr / (1 + (t - 1) * lrDecay)
 *     h   <- h + g * g                     (h starts at initialAccumulatorValue)
 *     p   <- p - lr_t * g / (sqrt(h) + eps)
 *
 * `variant: 'book'`, the book's `AdaGrad` class, operation for operation:
 * `h += g * g; p -= lr * g / (sqrt(h) + 1e-7)`. Same formula, eps 1e-7, and the
 * division rounded in the book's order (lr * g first).
 *
 * Duchi, Hazan & Singer (2011), "Adaptive subgradient methods for online learning and
 * stochastic optimization", JMLR. Keras' Adagrad starts h at 0.1 and uses eps 1e-7.
 *
 * Defaults: lr 0.01 (book and PyTorch), eps 1e-10 (PyTorch; 'book': 1e-7),
 * lrDecay 0, initialAccumulatorValue 0. State: `sum` (h).
 *
 * Overflow: the running sum h = sum of g^2 passes float32's 3.4e38 from |g| = 1.84e19 on
 * (one step at 1.9e19 does it); h is then Infinity and the element never moves again.
 * The kernel reports every NaN or Infinity it writes, and update() throws an UpdateError
 * naming the state `sum` (the step is applied: see optimizer.ts).
 */
import { allocate, COMMON_OPTION_NAMES, resolveCommon, writeWeightDecay, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { checkKnownOptions, choiceOption, numberOption, requireNeutral } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

export type AdaGradVariant = 'pytorch' | 'book';

export interface AdaGradOptions extends CommonOptions {
  eps?: number;
  /** 'pytorch' only. */
  lrDecay?: number;
  initialAccumulatorValue?: number;
  variant?: AdaGradVariant;
}

export interface AdaGradHyper extends CommonHyper {
  readonly eps: number;
  readonly lrDecay: number;
  readonly initialAccumulatorValue: number;
  readonly variant: AdaGradVariant;
}

export interface AdaGradState extends RuleState {
  sum: FloatArray;
}

const NAMES = [...COMMON_OPTION_NAMES, 'eps', 'lrDecay', 'initialAccumulatorValue', 'variant'] as const;

/** The wasm kernel, both variants: `adagrad(p, g, h, n, s)`. */
const ADAGRAD = kernelLayout({
  entry: 'adagrad',
  arrays: ['p', 'g', 'h'],
  reads: ['p', 'g', 'h'],
  writes: ['p', 'h'],
  scalars: ['negativeStep', 'eps', 'book', 'sign', 'wd', 'shrink'],
});

/** Counts the step and writes the kernel's scalars: negativeStep, eps, book (0/1), sign, weightDecay. */
function writeScalars(s: Float64Array, state: AdaGradState, h: AdaGradHyper, scalars: StepScalars): void {
  const lr = scalars.lr;
  state.step += 1;
  // 'book' computes p - (lr g) / d, which is p + (-lr g) / d exactly: one loop for both.
  s[ADAGRAD.at.negativeStep] = h.variant === 'book' ? -lr : -(lr / (1 + (state.step - 1) * h.lrDecay));
  s[ADAGRAD.at.eps] = h.eps;
  s[ADAGRAD.at.book] = h.variant === 'book' ? 1 : 0;
  s[ADAGRAD.at.sign] = h.maximize ? -1 : 1;
  writeWeightDecay(s, ADAGRAD.at.wd, ADAGRAD.at.shrink, h, scalars);
}

/** The JS kernel, twin of `adagrad` in assembly/kernels.ts. */
function adagrad(p: FloatArray, g: FloatArray, sum: FloatArray, n: number, s: Float64Array): boolean {
  const negativeStep = s[0]!;
  const eps = s[1]!;
  const sign = s[3]!;
  const wd = s[4]!;
  const shrink = s[5]!;
  const decoupled = shrink !== 1;
  const decay = wd !== 0;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    let gi = sign * g[i]!;
    if (decay) gi += wd * p[i]!;
    let pi = p[i]!;
    if (decoupled) pi *= shrink;
    const si = sum[i]! + gi * gi;
    sum[i] = si;
    // torch's addcdiv: p + (value * g) / std
    p[i] = pi + (negativeStep * gi) / (Math.sqrt(si) + eps);
    probe += (sum[i]! + p[i]!) * 0;
  }
  return probe === 0;
}
const ADAGRAD_LOOPS = byArrayType(adagrad);

export const adagradRule: UpdateRule<AdaGradOptions, AdaGradHyper, AdaGradState> = {
  name: 'AdaGrad',
  kernels: { step: ADAGRAD },
  optionNames: NAMES,
  globalOptions: ['variant'],
  key: 'adagrad',
  paper: 'Duchi, Hazan & Singer (2011), "Adaptive subgradient methods for online learning and stochastic optimization"',
  weightDecayKind: 'coupled',
  fixedOptions: { initialAccumulatorValue: "the sum buffer starts at it: it is read once, when a parameter's state is made" },
  peers: { torch: 'torch.optim.Adagrad', optax: 'optax.adagrad', keras: 'keras.optimizers.Adagrad', tfjs: 'tf.train.adagrad' },
  resolve(options) {
    checkKnownOptions('AdaGrad', options, NAMES);
    const variant = choiceOption<AdaGradVariant>('AdaGrad', 'variant', options.variant, ['pytorch', 'book']);
    if (variant === 'book') requireNeutral('AdaGrad', 'lrDecay', options.lrDecay, 0, "with variant 'book'");
    return {
      ...resolveCommon('AdaGrad', options, 0.01),
      eps: numberOption('AdaGrad', 'eps', options.eps, variant === 'book' ? 1e-7 : 1e-10, { min: 0 }),
      lrDecay: numberOption('AdaGrad', 'lrDecay', options.lrDecay, 0, { min: 0 }),
      initialAccumulatorValue: numberOption('AdaGrad', 'initialAccumulatorValue', options.initialAccumulatorValue, 0, { min: 0 }),
      variant,
    };
  },
  bufferNames: () => ['sum'],
  buffersOf: (s) => [s.sum],
  scalarNames: [],
  stateBounds: { sum: { min: 0 } },
  init: (length: number, dtype: Dtype, h: AdaGradHyper, alloc: Allocator = allocate) => ({ step: 0, sum: alloc(dtype, length, h.initialAccumulatorValue) }),
  step(p: FloatArray, g: FloatArray, state: AdaGradState, h: AdaGradHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars);
    return loopFor(ADAGRAD_LOOPS, p)(p, g, state.sum, p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: AdaGradState, h: AdaGradHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars);
    return k.exports.adagrad(p.byteOffset, g.byteOffset, state.sum.byteOffset, p.length, k.address) === 0;
  },
};

/**
 * AdaGrad over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new AdaGrad({ lr: 0.01 });
 * opt.update(params, grads); // in place
 * ```
 */
export class AdaGrad extends Optimizer<AdaGradOptions, AdaGradHyper, AdaGradState> {
  constructor(options: Schedulable<AdaGradOptions> & OptimizerOptions<AdaGradOptions> = {}) {
    super(adagradRule, options);
  }
}
