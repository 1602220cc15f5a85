/**
 * Momentum (Polyak's heavy ball), in two formulations.
 *
 * `variant: 'classic'` (default) keeps the velocity in parameter units, lr inside:
 *
 *     v <- mu * v - lr * g
 *     p <- p + v
 *
 * Polyak (1964), "Some methods of speeding up the convergence of iteration methods".
 * This is, operation for operation, the book's `Momentum` class, and Keras' SGD with
 * momentum.
 *
 * `variant: 'pytorch'` is `torch.optim.SGD(momentum=mu, dampening=d)`: the buffer holds
 * gradients, the lr multiplies it at each step, and the first step stores the
 * gradient undamped:
 *
 *     b <- g                              (first step)
 *     b <- mu * b + (1 - d) * g           (later steps)
 *     p <- p - lr * b
 *
 * Under a constant lr and d = 0 both give the same trajectory (v = -lr * b). Under a
 * schedule they differ: 'pytorch' rescales the whole accumulated buffer by the new lr.
 *
 * With `decoupledWeightDecay: true` it is SGDW with momentum (Loshchilov & Hutter 2019):
 * p <- p * (1 - lr * weightDecay), then the step without decay; no separate class.
 *
 * Defaults: lr 0.01, momentum 0.9 (the book's), dampening 0 ('pytorch' only).
 * State: `velocity` ('classic') or `momentumBuffer` ('pytorch').
 *
 * Overflow: in float32, v or p past 3.4e38 (lr 10 at g = 1e38: v = -lr g). The kernels
 * report every NaN or Infinity they write (params and buffer), and update() throws an
 * UpdateError saying so (the step is applied: see optimizer.ts).
 */
import { allocate, COMMON_OPTION_NAMES, resolveCommon, writeWeightDecay, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { checkKnownOptions, choiceOption, numberOption, requireNeutral } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

export type MomentumVariant = 'classic' | 'pytorch';

export interface MomentumOptions extends CommonOptions {
  momentum?: number;
  dampening?: number;
  variant?: MomentumVariant;
}

export interface MomentumHyper extends CommonHyper {
  readonly momentum: number;
  readonly dampening: number;
  readonly variant: MomentumVariant;
}

export interface MomentumState extends RuleState {
  /** 'classic': the velocity v (saved as `velocity`); absent in 'pytorch'. */
  velocity?: FloatArray;
  /** 'pytorch': torch's gradient buffer b (saved as `momentumBuffer`); absent otherwise. */
  momentumBuffer?: FloatArray;
}

/** The state's one buffer, whichever the variant names it. */
function bufferOf(state: MomentumState): FloatArray {
  return (state.velocity ?? state.momentumBuffer)!;
}

const NAMES = [...COMMON_OPTION_NAMES, 'momentum', 'dampening', 'variant'] as const;

/** The wasm kernels: `momentumClassic(p, g, v, n, s)` and `momentumPytorch(p, g, b, n, s)`. */
const MOMENTUM_KERNELS = {
  classic: kernelLayout({
    entry: 'momentumClassic',
    arrays: ['p', 'g', 'v'],
    reads: ['p', 'g', 'v'],
    writes: ['p', 'v'],
    scalars: ['lr', 'mu', 'sign', 'wd', 'shrink'],
  }),
  pytorch: kernelLayout({
    entry: 'momentumPytorch',
    arrays: ['p', 'g', 'b'],
    reads: ['p', 'g', 'b'],
    writes: ['p', 'b'],
    scalars: ['lr', 'keep', 'take', 'sign', 'wd', 'shrink'],
  }),
};
const CLASSIC = MOMENTUM_KERNELS.classic.at;
const PYTORCH = MOMENTUM_KERNELS.pytorch.at;

/**
 * Counts the step and writes the kernel's scalars: 'classic' lr, mu, sign, weightDecay
 * (`momentumClassic`); 'pytorch' lr, keep, take, sign, weightDecay (`momentumPytorch`).
 */
function writeScalars(s: Float64Array, state: MomentumState, h: MomentumHyper, scalars: StepScalars): void {
  const lr = scalars.lr;
  state.step += 1;
  const sign = h.maximize ? -1 : 1;
  if (h.variant === 'classic') {
    s[CLASSIC.lr] = lr;
    s[CLASSIC.mu] = h.momentum;
    s[CLASSIC.sign] = sign;
    writeWeightDecay(s, CLASSIC.wd, CLASSIC.shrink, h, scalars);
    return;
  }
  s[PYTORCH.lr] = lr;
  writeTorchBufferFactors(s, PYTORCH, state, h);
  s[PYTORCH.sign] = sign;
  writeWeightDecay(s, PYTORCH.wd, PYTORCH.shrink, h, scalars);
}

/**
 * PyTorch's momentum-buffer factors of this step, b <- keep * b + take * g, into
 * s[at] (keep) and s[at + 1] (take). The first step stores the gradient as is (keep 0,
 * take 1), later ones keep mu and take 1 - dampening. Shared with Nesterov 'pytorch':
 * torch's SGD keeps the same buffer with and without nesterov=True.
 */
export function writeTorchBufferFactors(
  s: Float64Array,
  at: { readonly keep: number; readonly take: number },
  state: RuleState,
  h: { readonly momentum: number; readonly dampening: number },
): void {
  const first = state.step === 1;
  s[at.keep] = first ? 0 : h.momentum;
  s[at.take] = first ? 1 : 1 - h.dampening;
}

/** The JS kernel of variant 'classic', twin of `momentumClassic` in assembly/kernels.ts. */
function momentumClassic(p: FloatArray, g: FloatArray, b: FloatArray, n: number, s: Float64Array): boolean {
  const lr = s[0]!;
  const mu = s[1]!;
  const sign = s[2]!;
  const wd = s[3]!;
  const shrink = s[4]!;
  const decay = wd !== 0;
  const decoupled = shrink !== 1;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    let gi = sign * g[i]!;
    if (decay) gi += wd * p[i]!;
    let pi = p[i]!;
    if (decoupled) pi *= shrink;
    const v = mu * b[i]! - lr * gi;
    b[i] = v;
    p[i] = pi + v;
    probe += (b[i]! + p[i]!) * 0;
  }
  return probe === 0;
}
const CLASSIC_LOOPS = byArrayType(momentumClassic);

/** The JS kernel of variant 'pytorch', twin of `momentumPytorch` in assembly/kernels.ts. */
function momentumPytorch(p: FloatArray, g: FloatArray, b: FloatArray, n: number, s: Float64Array): boolean {
  const lr = s[0]!;
  const keep = s[1]!;
  const take = s[2]!;
  const sign = s[3]!;
  const wd = s[4]!;
  const shrink = s[5]!;
  const decay = wd !== 0;
  const decoupled = shrink !== 1;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    let gi = sign * g[i]!;
    if (decay) gi += wd * p[i]!;
    let pi = p[i]!;
    if (decoupled) pi *= shrink;
    const buf = keep * b[i]! + take * gi;
    b[i] = buf;
    p[i] = pi - lr * buf;
    probe += (b[i]! + p[i]!) * 0;
  }
  return probe === 0;
}
const PYTORCH_LOOPS = byArrayType(momentumPytorch);

export const momentumRule: UpdateRule<MomentumOptions, MomentumHyper, MomentumState> = {
  name: 'Momentum',
  kernels: MOMENTUM_KERNELS,
  optionNames: NAMES,
  globalOptions: ['variant'],
  key: 'momentum',
  paper: 'Polyak (1964), "Some methods of speeding up the convergence of iteration methods"',
  weightDecayKind: 'coupled',
  peers: { torch: 'torch.optim.SGD(momentum)', optax: 'optax.sgd(momentum)', keras: 'keras.optimizers.SGD(momentum)', tfjs: 'tf.train.momentum' },
  resolve(options) {
    checkKnownOptions('Momentum', options, NAMES);
    const variant = choiceOption<MomentumVariant>('Momentum', 'variant', options.variant, ['classic', 'pytorch']);
    if (variant === 'classic') {
      requireNeutral('Momentum', 'dampening', options.dampening, 0, "with variant 'classic' (dampening is defined by variant 'pytorch')");
    }
    return {
      ...resolveCommon('Momentum', options, 0.01),
      momentum: numberOption('Momentum', 'momentum', options.momentum, 0.9, { min: 0, below: 1 }),
      dampening: numberOption('Momentum', 'dampening', options.dampening, 0, { min: 0, max: 1 }),
      variant,
    };
  },
  bufferNames: (h) => (h.variant === 'classic' ? ['velocity'] : ['momentumBuffer']),
  buffersOf: (s) => [bufferOf(s)],
  scalarNames: [],
  init: (length: number, dtype: Dtype, h: MomentumHyper, alloc: Allocator = allocate) =>
    h.variant === 'pytorch' ? { step: 0, momentumBuffer: alloc(dtype, length) } : { step: 0, velocity: alloc(dtype, length) },
  step(p: FloatArray, g: FloatArray, state: MomentumState, h: MomentumHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars);
    return loopFor(h.variant === 'classic' ? CLASSIC_LOOPS : PYTORCH_LOOPS, p)(p, g, bufferOf(state), p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: MomentumState, h: MomentumHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars);
    const kernel = h.variant === 'classic' ? k.exports.momentumClassic : k.exports.momentumPytorch;
    return kernel(p.byteOffset, g.byteOffset, bufferOf(state).byteOffset, p.length, k.address) === 0;
  },
};

/**
 * Momentum over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new Momentum({ lr: 0.01, momentum: 0.9 });
 * opt.update(params, grads); // in place
 * ```
 */
export class Momentum extends Optimizer<MomentumOptions, MomentumHyper, MomentumState> {
  constructor(options: Schedulable<MomentumOptions> & OptimizerOptions<MomentumOptions> = {}) {
    super(momentumRule, options);
  }
}
