/**
 * RMSProp: divide by a running root-mean-square of recent gradients.
 *
 * `variant: 'pytorch'` (default), as `torch.optim.RMSprop`:
 *
 *     s <- alpha * s + (1 - alpha) * g * g
 *     c <- alpha * c + (1 - alpha) * g            (centered only)
 *     d  = sqrt(max(s - c * c, 0)) + eps          (centered)  |  sqrt(s) + eps
 *     b <- momentum * b + g / d;  p <- p - lr * b (momentum > 0)
 *     p <- p - lr * g / d                         (momentum = 0)
 *
 * `variant: 'book'`, the book's `RMSprop` class operation for operation:
 * `h *= alpha; h += (1 - alpha) * g * g; p -= lr * g / (sqrt(h) + 1e-7)`.
 *
 * Tieleman & Hinton (2012), COURSERA Neural Networks lecture 6.5; centered form from
 * Graves (2013), "Generating sequences with recurrent neural networks". Keras uses
 * rho 0.9 and eps 1e-7 with eps inside the square root.
 *
 * Defaults: lr 0.01, alpha 0.99 (book = PyTorch), eps 1e-8 (PyTorch; 'book': 1e-7),
 * momentum 0, centered false. State: `squareAvg`, plus `gradAvg` (centered) and
 * `momentumBuffer` (momentum > 0).
 *
 * The max(., 0) is ours: s - c * c, a variance, is >= 0 in exact arithmetic, but under a
 * steady gradient it rounds to slightly below 0 after a few thousand steps, where
 * PyTorch's formula takes the square root of a negative number and writes NaN into the
 * parameters (found by the overflow check of update(): see optimizer.ts).
 *
 * Overflow: s = (1 - alpha) g^2 passes float32's 3.4e38 from |g| = 1.84e20 on (alpha
 * 0.99); s is then Infinity and the element never moves again. The kernels report every
 * NaN or Infinity they write, and update() throws an UpdateError naming the state
 * `squareAvg` (the step is applied: see optimizer.ts).
 */
import { allocate, COMMON_OPTION_NAMES, resolveCommon, writeWeightDecay, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { booleanOption, checkKnownOptions, choiceOption, numberOption, requireNeutral } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

export type RMSPropVariant = 'pytorch' | 'book';

export interface RMSPropOptions extends CommonOptions {
  alpha?: number;
  eps?: number;
  /** 'pytorch' only. */
  momentum?: number;
  /** 'pytorch' only. */
  centered?: boolean;
  variant?: RMSPropVariant;
}

export interface RMSPropHyper extends CommonHyper {
  readonly alpha: number;
  readonly eps: number;
  readonly momentum: number;
  readonly centered: boolean;
  readonly variant: RMSPropVariant;
}

export interface RMSPropState extends RuleState {
  squareAvg: FloatArray;
  /** Centered only; an empty array otherwise. */
  gradAvg: FloatArray;
  /** momentum > 0 only; an empty array otherwise. */
  momentumBuffer: FloatArray;
}

const NAMES = [...COMMON_OPTION_NAMES, 'alpha', 'eps', 'momentum', 'centered', 'variant'] as const;

/** The wasm kernel, every option: `rmsprop(p, g, sq, ga, buf, n, s)` (ga read and written when centered, buf with momentum). */
const RMSPROP = kernelLayout({
  entry: 'rmsprop',
  arrays: ['p', 'g', 'sq', 'ga', 'buf'],
  reads: ['p', 'g', 'sq'],
  writes: ['p', 'sq'],
  scalars: ['lr', 'alpha', 'eps', 'mu', 'centered', 'useMomentum', 'sign', 'wd', 'shrink'],
});

/**
 * Counts the step and writes the kernel's scalars: lr, alpha, eps, momentum, centered
 * (0/1), useMomentum (0/1), sign, weightDecay. 'book' is the same loop without centering
 * or momentum: p - (lr g) / d is p + (-lr g) / d exactly.
 */
function writeScalars(s: Float64Array, state: RMSPropState, h: RMSPropHyper, scalars: StepScalars): void {
  const lr = scalars.lr;
  state.step += 1;
  s[RMSPROP.at.lr] = lr;
  s[RMSPROP.at.alpha] = h.alpha;
  s[RMSPROP.at.eps] = h.eps;
  s[RMSPROP.at.mu] = h.momentum;
  s[RMSPROP.at.centered] = h.centered ? 1 : 0;
  s[RMSPROP.at.useMomentum] = h.momentum > 0 ? 1 : 0;
  s[RMSPROP.at.sign] = h.maximize ? -1 : 1;
  writeWeightDecay(s, RMSPROP.at.wd, RMSPROP.at.shrink, h, scalars);
}

/** The JS kernel, every option, twin of `rmsprop` in assembly/kernels.ts. */
function rmsprop(p: FloatArray, g: FloatArray, sq: FloatArray, ga: FloatArray, buf: FloatArray, n: number, s: Float64Array): boolean {
  const negativeLr = -s[0]!;
  const alpha = s[1]!;
  const oneMinusAlpha = 1 - alpha;
  const eps = s[2]!;
  const mu = s[3]!;
  const centered = s[4] === 1;
  const useMomentum = s[5] === 1;
  const sign = s[6]!;
  const wd = s[7]!;
  const shrink = s[8]!;
  const decoupled = shrink !== 1;
  const decay = wd !== 0;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    let gi = sign * g[i]!;
    if (decay) gi += wd * p[i]!;
    let pi = p[i]!;
    if (decoupled) pi *= shrink;
    const si = sq[i]! * alpha + oneMinusAlpha * gi * gi;
    sq[i] = si;
    let written = sq[i]!;
    let denominator: number;
    if (centered) {
      const c = ga[i]! * alpha + oneMinusAlpha * gi;
      ga[i] = c;
      written += ga[i]!;
      // The variance, >= 0 in exact arithmetic, can round below 0 under a steady
      // gradient (a NaN in PyTorch): clamped at 0 (Math.max keeps a NaN).
      denominator = Math.sqrt(Math.max(si - c * c, 0)) + eps;
    } else {
      denominator = Math.sqrt(si) + eps;
    }
    if (useMomentum) {
      const b = buf[i]! * mu + gi / denominator;
      buf[i] = b;
      written += buf[i]!;
      p[i] = pi + negativeLr * b;
    } else {
      p[i] = pi + (negativeLr * gi) / denominator;
    }
    probe += (written + p[i]!) * 0;
  }
  return probe === 0;
}
const RMSPROP_LOOPS = byArrayType(rmsprop);

export const rmspropRule: UpdateRule<RMSPropOptions, RMSPropHyper, RMSPropState> = {
  name: 'RMSProp',
  kernels: { step: RMSPROP },
  optionNames: NAMES,
  globalOptions: ['variant'],
  key: 'rmsprop',
  paper: 'Tieleman & Hinton (2012), Lecture 6.5 of "Neural networks for machine learning"',
  weightDecayKind: 'coupled',
  fixedOptions: {
    momentum: 'whether the momentumBuffer exists depends on it (momentum 0 keeps none)',
    centered: 'it decides whether the gradAvg buffer exists',
  },
  peers: { torch: 'torch.optim.RMSprop', optax: 'optax.rmsprop', keras: 'keras.optimizers.RMSprop', tfjs: 'tf.train.rmsprop' },
  resolve(options) {
    checkKnownOptions('RMSProp', options, NAMES);
    const variant = choiceOption<RMSPropVariant>('RMSProp', 'variant', options.variant, ['pytorch', 'book']);
    if (variant === 'book') {
      requireNeutral('RMSProp', 'momentum', options.momentum, 0, "with variant 'book'");
      requireNeutral('RMSProp', 'centered', options.centered, false, "with variant 'book'");
    }
    return {
      ...resolveCommon('RMSProp', options, 0.01),
      alpha: numberOption('RMSProp', 'alpha', options.alpha, 0.99, { min: 0, below: 1 }),
      eps: numberOption('RMSProp', 'eps', options.eps, variant === 'book' ? 1e-7 : 1e-8, { min: 0 }),
      momentum: numberOption('RMSProp', 'momentum', options.momentum, 0, { min: 0, below: 1 }),
      centered: booleanOption('RMSProp', 'centered', options.centered, false),
      variant,
    };
  },
  bufferNames: (h) => ['squareAvg', ...(h.centered ? ['gradAvg'] : []), ...(h.momentum > 0 ? ['momentumBuffer'] : [])],
  buffersOf: (s, h) => [s.squareAvg, ...(h.centered ? [s.gradAvg] : []), ...(h.momentum > 0 ? [s.momentumBuffer] : [])],
  scalarNames: [],
  stateBounds: { squareAvg: { min: 0 } },
  init: (length: number, dtype: Dtype, h: RMSPropHyper, alloc: Allocator = allocate) => ({
    step: 0,
    squareAvg: alloc(dtype, length),
    gradAvg: h.centered ? alloc(dtype, length) : allocate(dtype, 0),
    momentumBuffer: h.momentum > 0 ? alloc(dtype, length) : allocate(dtype, 0),
  }),
  step(p: FloatArray, g: FloatArray, state: RMSPropState, h: RMSPropHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars);
    return loopFor(RMSPROP_LOOPS, p)(p, g, state.squareAvg, state.gradAvg, state.momentumBuffer, p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: RMSPropState, h: RMSPropHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars);
    return k.exports.rmsprop(p.byteOffset, g.byteOffset, state.squareAvg.byteOffset, state.gradAvg.byteOffset, state.momentumBuffer.byteOffset, p.length, k.address) === 0;
  },
};

/**
 * RMSProp over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new RMSProp({ lr: 0.01, alpha: 0.99 });
 * opt.update(params, grads); // in place
 * ```
 */
export class RMSProp extends Optimizer<RMSPropOptions, RMSPropHyper, RMSPropState> {
  constructor(options: Schedulable<RMSPropOptions> & OptimizerOptions<RMSPropOptions> = {}) {
    super(rmspropRule, options);
  }
}
