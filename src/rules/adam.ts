/**
 * Adam: momentum on the gradient, scaled by a running RMS, with bias correction.
 *
 * `variant: 'pytorch'` (default) is Algorithm 1 of Kingma & Ba (2015), "Adam: a method
 * for stochastic optimization", as `torch.optim.Adam` computes it:
 *
 *     m <- beta1 * m + (1 - beta1) * g
 *     v <- beta2 * v + (1 - beta2) * g * g
 *     v_max <- max(v_max, v)                                  (amsgrad only)
 *     p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * `variant: 'book'` is the book's `Adam` class operation for operation: the bias
 * correction folded into the step size with eps outside it (the "epsilon hat" form
 * Kingma & Ba give just before section 2.1), eps 1e-7:
 *
 *     lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
 *     m += (1 - beta1) * (g - m);  v += (1 - beta2) * (g * g - v)
 *     p -= lr_t * m / (sqrt(v) + 1e-7)
 *
 * The two agree when eps is negligible against sqrt(v); they differ in the first steps
 * and wherever gradients are tiny. Keras 2 uses the book's form with eps 1e-7; TF.js 4
 * uses the 'pytorch' form with eps 1e-7 (checked in test/tfjs.test.ts).
 * amsgrad: Reddi, Kale & Kumar (2018), "On the convergence of Adam and beyond".
 *
 * `decoupledWeightDecay: true` (torch 2.x's `Adam(decoupled_weight_decay=True)`) makes it
 * AdamW (adamw.ts), bit for bit: p <- p * (1 - lr * weightDecay), then the step above.
 *
 * Defaults: lr 0.001, beta1 0.9, beta2 0.999 (book = PyTorch), eps 1e-8 (PyTorch;
 * 'book': 1e-7). State: `expAvg` (m), `expAvgSq` (v), `maxExpAvgSq` (amsgrad).
 *
 * Overflow: v = (1 - beta2) g^2 passes float32's 3.4e38 from |g| = 5.8e20 on (beta2
 * 0.999; 'book': g^2 itself, from 1.84e19); v is then Infinity, the step m / sqrt(v) is
 * 0 and the element never moves again. The kernels report every NaN or Infinity they
 * write (params and state), and update() throws an UpdateError naming the state
 * `expAvgSq` (the step is applied: see optimizer.ts).
 */
import { powIntInto } from '../math.ts';
import { allocate, COMMON_OPTION_NAMES, resolveCommon, writeWeightDecay, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';
import { booleanOption, checkKnownOptions, choiceOption, numberOption, requireNeutral } from '../validate.ts';

export type AdamVariant = 'pytorch' | 'book';

export interface AdamOptions extends CommonOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** 'pytorch' only. */
  amsgrad?: boolean;
  variant?: AdamVariant;
}

export interface AdamHyper extends CommonHyper {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly amsgrad: boolean;
  readonly variant: AdamVariant;
  /**
   * Whether `weightDecay` is decoupled (AdamW, or Adam with `decoupledWeightDecay: true`:
   * `p *= 1 - lr * weightDecay` before the step) rather than coupled (Adam's default:
   * `g += weightDecay * p`). The same as `decoupledWeightDecay`, the name every rule has.
   */
  readonly decoupled: boolean;
}

export interface AdamState extends RuleState {
  expAvg: FloatArray;
  expAvgSq: FloatArray;
  /** amsgrad only; an empty array otherwise. */
  maxExpAvgSq: FloatArray;
}

export const ADAM_OPTION_NAMES = [...COMMON_OPTION_NAMES, 'beta1', 'beta2', 'eps', 'amsgrad', 'variant'] as const;

/**
 * Validates the options Adam and AdamW share. `decoupled`: AdamW, whose decay is
 * decoupled by definition; Adam's is coupled unless `decoupledWeightDecay: true`, and
 * then it is AdamW's step bit for bit (the same kernel with the same scalars).
 */
export function resolveAdamFamily(
  owner: string,
  options: AdamOptions,
  defaults: { lr: number; weightDecay: number },
  decoupled: boolean,
): AdamHyper {
  const variant = choiceOption<AdamVariant>(owner, 'variant', options.variant, ['pytorch', 'book']);
  if (variant === 'book') requireNeutral(owner, 'amsgrad', options.amsgrad, false, "with variant 'book'");
  const common = resolveCommon(owner, options, defaults.lr, decoupled ? 'decoupled' : 'coupled');
  const weightDecay = options.weightDecay === undefined ? defaults.weightDecay : common.weightDecay;
  return {
    ...common,
    weightDecay,
    decoupled: common.decoupledWeightDecay,
    beta1: numberOption(owner, 'beta1', options.beta1, 0.9, { min: 0, below: 1 }),
    beta2: numberOption(owner, 'beta2', options.beta2, 0.999, { min: 0, below: 1 }),
    eps: numberOption(owner, 'eps', options.eps, variant === 'book' ? 1e-7 : 1e-8, { min: 0 }),
    amsgrad: booleanOption(owner, 'amsgrad', options.amsgrad, false),
    variant,
  };
}

export function initAdamState(length: number, dtype: Dtype, h: AdamHyper, alloc: Allocator = allocate): AdamState {
  return {
    step: 0,
    expAvg: alloc(dtype, length),
    expAvgSq: alloc(dtype, length),
    maxExpAvgSq: h.amsgrad ? alloc(dtype, length) : allocate(dtype, 0),
  };
}

export function adamBufferNames(h: AdamHyper): readonly string[] {
  return h.amsgrad ? ['expAvg', 'expAvgSq', 'maxExpAvgSq'] : ['expAvg', 'expAvgSq'];
}

export function adamBuffersOf(s: AdamState, h: AdamHyper): readonly FloatArray[] {
  return h.amsgrad ? [s.expAvg, s.expAvgSq, s.maxExpAvgSq] : [s.expAvg, s.expAvgSq];
}

// beta1^t and beta2^t of the step being taken (see powIntInto for why in an array).
const powers = new Float64Array(2);

/** The wasm kernels: `adam(p, g, m, v, vmax, n, s)` (vmax read and written with amsgrad) and `adamBook(p, g, m, v, n, s)`. */
export const ADAM_KERNELS = {
  pytorch: kernelLayout({
    entry: 'adam',
    arrays: ['p', 'g', 'm', 'v', 'vmax'],
    reads: ['p', 'g', 'm', 'v'],
    writes: ['p', 'm', 'v'],
    scalars: ['negativeStepSize', 'bc2sqrt', 'beta1', 'beta2', 'eps', 'amsgrad', 'shrink', 'sign', 'wd'],
  }),
  book: kernelLayout({
    entry: 'adamBook',
    arrays: ['p', 'g', 'm', 'v'],
    reads: ['p', 'g', 'm', 'v'],
    writes: ['p', 'm', 'v'],
    scalars: ['lrT', 'beta1', 'beta2', 'eps', 'shrink', 'sign', 'wd'],
  }),
};
const PYTORCH = ADAM_KERNELS.pytorch.at;
const BOOK = ADAM_KERNELS.book.at;

/**
 * Counts the step and writes the scalars of the kernel for `h.variant` (`adam` or
 * `adamBook` in assembly/kernels.ts, in that order) into `s`.
 */
function writeScalars(s: Float64Array, state: AdamState, h: AdamHyper, scalars: StepScalars): void {
  const lr = scalars.lr;
  state.step += 1;
  powers[0] = h.beta1;
  powIntInto(powers, 0, state.step);
  powers[1] = h.beta2;
  powIntInto(powers, 1, state.step);
  const biasCorrection1 = 1 - powers[0]!;
  const biasCorrection2 = 1 - powers[1]!;
  const sign = h.maximize ? -1 : 1;
  if (h.variant === 'book') {
    const at = BOOK;
    s[at.lrT] = (lr * Math.sqrt(biasCorrection2)) / biasCorrection1; // the book's lr_t
    s[at.beta1] = h.beta1;
    s[at.beta2] = h.beta2;
    s[at.eps] = h.eps;
    s[at.sign] = sign;
    writeWeightDecay(s, at.wd, at.shrink, h, scalars);
    return;
  }
  const at = PYTORCH;
  s[at.negativeStepSize] = -(lr / biasCorrection1);
  s[at.bc2sqrt] = Math.sqrt(biasCorrection2);
  s[at.beta1] = h.beta1;
  s[at.beta2] = h.beta2;
  s[at.eps] = h.eps;
  s[at.amsgrad] = h.amsgrad ? 1 : 0;
  s[at.sign] = sign;
  writeWeightDecay(s, at.wd, at.shrink, h, scalars);
}

/** The JS kernel of variant 'pytorch' (and AdamW), twin of `adam` in assembly/kernels.ts. */
function adam(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, vMax: FloatArray, n: number, s: Float64Array): boolean {
  // (-lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps), with numerator and denominator
  // multiplied by sqrt(bc2): one division per element instead of two.
  const biasCorrection2Sqrt = s[1]!;
  const negativeStepSize = s[0]! * biasCorrection2Sqrt;
  const beta1 = s[2]!;
  const beta2 = s[3]!;
  const scaledEps = s[4]! * biasCorrection2Sqrt;
  const amsgrad = s[5] === 1;
  const shrink = s[6]!;
  const sign = s[7]!;
  const wd = s[8]!;
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
    let vi = v[i]! * beta2 + oneMinusBeta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    if (amsgrad) {
      const previous = vMax[i]!;
      if (previous > vi || previous !== previous) vi = previous; // torch.maximum propagates NaN
      vMax[i] = vi;
    }
    p[i] = pi + (negativeStepSize * mi) / (Math.sqrt(vi) + scaledEps);
    // vi: with amsgrad the value written to vMax, a float32 value or v's (read back here).
    probe += (m[i]! + v[i]! + p[i]! + vi) * 0;
  }
  return probe === 0;
}
const ADAM_LOOPS = byArrayType(adam);

/** The JS kernel of variant 'book', twin of `adamBook` in assembly/kernels.ts. */
function adamBook(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, n: number, s: Float64Array): boolean {
  const lrT = s[0]!;
  const oneMinusBeta1 = 1 - s[1]!;
  const oneMinusBeta2 = 1 - s[2]!;
  const eps = s[3]!;
  const shrink = s[4]!;
  const sign = s[5]!;
  const wd = s[6]!;
  const decay = wd !== 0;
  const decoupled = shrink !== 1;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    let gi = sign * g[i]!;
    if (decay) gi += wd * p[i]!;
    let pi = p[i]!;
    if (decoupled) pi *= shrink;
    const mi = m[i]! + oneMinusBeta1 * (gi - m[i]!);
    const vi = v[i]! + oneMinusBeta2 * (gi * gi - v[i]!);
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - (lrT * mi) / (Math.sqrt(vi) + eps);
    probe += (m[i]! + v[i]! + p[i]!) * 0;
  }
  return probe === 0;
}
const ADAM_BOOK_LOOPS = byArrayType(adamBook);

/** One Adam / AdamW step by the JS kernels. */
export function adamStep(p: FloatArray, g: FloatArray, state: AdamState, h: AdamHyper, scalars: StepScalars): boolean {
  writeScalars(jsScalars, state, h, scalars);
  if (h.variant === 'book') return loopFor(ADAM_BOOK_LOOPS, p)(p, g, state.expAvg, state.expAvgSq, p.length, jsScalars);
  return loopFor(ADAM_LOOPS, p)(p, g, state.expAvg, state.expAvgSq, state.maxExpAvgSq, p.length, jsScalars);
}

/** The same step by the WebAssembly kernels. */
export function adamStepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: AdamState, h: AdamHyper, scalars: StepScalars): boolean {
  writeScalars(k.scalars, state, h, scalars);
  if (h.variant === 'book') {
    return k.exports.adamBook(p.byteOffset, g.byteOffset, state.expAvg.byteOffset, state.expAvgSq.byteOffset, p.length, k.address) === 0;
  }
  return k.exports.adam(p.byteOffset, g.byteOffset, state.expAvg.byteOffset, state.expAvgSq.byteOffset, state.maxExpAvgSq.byteOffset, p.length, k.address) === 0;
}

export const adamRule: UpdateRule<AdamOptions, AdamHyper, AdamState> = {
  name: 'Adam',
  kernels: ADAM_KERNELS,
  optionNames: ADAM_OPTION_NAMES,
  globalOptions: ['variant'],
  key: 'adam',
  paper: 'Kingma & Ba (2015), "Adam: a method for stochastic optimization"',
  weightDecayKind: 'coupled',
  fixedOptions: { amsgrad: 'it decides whether the maxExpAvgSq buffer exists' },
  peers: { torch: 'torch.optim.Adam', optax: 'optax.adam', keras: 'keras.optimizers.Adam', tfjs: 'tf.train.adam' },
  resolve(options) {
    checkKnownOptions('Adam', options, ADAM_OPTION_NAMES);
    return resolveAdamFamily('Adam', options, { lr: 0.001, weightDecay: 0 }, false);
  },
  bufferNames: adamBufferNames,
  buffersOf: adamBuffersOf,
  scalarNames: [],
  stateBounds: { expAvgSq: { min: 0 }, maxExpAvgSq: { min: 0 } },
  init: initAdamState,
  step: adamStep,
  stepWasm: adamStepWasm,
};

/**
 * Adam over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new Adam({ lr: 0.001 });
 * opt.update(params, grads); // in place
 * ```
 */
export class Adam extends Optimizer<AdamOptions, AdamHyper, AdamState> {
  constructor(options: Schedulable<AdamOptions> & OptimizerOptions<AdamOptions> = {}) {
    super(adamRule, options);
  }
}
