/**
 * Stochastic gradient descent.
 *
 *     g <- g + weightDecay * p          (coupled weight decay, optional)
 *     p <- p - lr * g
 *
 * With `decoupledWeightDecay: true` it is SGDW (Loshchilov & Hutter 2019): p <- p * (1 -
 * lr * weightDecay), then the step without decay; there is no separate class.
 *
 * Robbins & Monro (1951). Identical to the book's `SGD` ("Deep Learning from Scratch",
 * `common/optimizer.py`) and to `torch.optim.SGD(momentum=0)`, element for element.
 * Default lr 0.01 (the book's; PyTorch requires one).
 *
 * State: only the step count.
 *
 * Overflow: in float32, |lr * g| past 3.4e38 (lr 10 at g = 1e38) makes p -Infinity. The
 * kernel reports every NaN or Infinity it writes, and update() throws an UpdateError
 * saying so (the step is applied: see optimizer.ts).
 */
import { COMMON_OPTION_NAMES, resolveCommon, writeWeightDecay, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { FloatArray } from '../types.ts';
import { checkKnownOptions } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

export type SGDOptions = CommonOptions;
export type SGDHyper = CommonHyper;
export type SGDState = RuleState;

/** The wasm kernel: `sgd(p, g, n, s)`. */
const SGD_KERNEL = kernelLayout({ entry: 'sgd', arrays: ['p', 'g'], reads: ['p', 'g'], writes: ['p'], scalars: ['lr', 'sign', 'wd', 'shrink'] });

/** Counts the step and writes the kernel's scalars: lr, sign, weight decay (coupled wd, decoupled shrink). */
function writeScalars(s: Float64Array, state: SGDState, h: SGDHyper, scalars: StepScalars): void {
  const lr = scalars.lr;
  state.step += 1;
  s[SGD_KERNEL.at.lr] = lr;
  s[SGD_KERNEL.at.sign] = h.maximize ? -1 : 1;
  writeWeightDecay(s, SGD_KERNEL.at.wd, SGD_KERNEL.at.shrink, h, scalars);
}

/**
 * The JS kernel, twin of `sgd` in assembly/kernels.ts. Returns true when every value it
 * wrote is finite (see probe in kernel.ts).
 */
function sgd(p: FloatArray, g: FloatArray, n: number, s: Float64Array): boolean {
  const lr = s[0]!;
  const sign = s[1]!;
  const wd = s[2]!;
  const shrink = s[3]!;
  const decay = wd !== 0;
  const decoupled = shrink !== 1;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    let gi = sign * g[i]!;
    if (decay) gi += wd * p[i]!;
    let pi = p[i]!;
    if (decoupled) pi *= shrink;
    p[i] = pi - lr * gi;
    probe += p[i]! * 0;
  }
  return probe === 0;
}
const SGD_LOOPS = byArrayType(sgd);

/** torch.optim.SGD's options that are separate classes here. */
const SGD_HINTS = {
  momentum: 'SGD here is plain SGD: for momentum use Momentum, or Nesterov for NAG',
  dampening: 'dampening belongs to Momentum and Nesterov (variant \'pytorch\')',
  nesterov: 'use the Nesterov class',
};

export const sgdRule: UpdateRule<SGDOptions, SGDHyper, SGDState> = {
  name: 'SGD',
  kernels: { step: SGD_KERNEL },
  optionNames: COMMON_OPTION_NAMES,
  globalOptions: [],
  key: 'sgd',
  paper: 'Robbins & Monro (1951), "A stochastic approximation method"',
  weightDecayKind: 'coupled',
  peers: { torch: 'torch.optim.SGD', optax: 'optax.sgd', keras: 'keras.optimizers.SGD', tfjs: 'tf.train.sgd' },
  resolve(options) {
    checkKnownOptions('SGD', options, COMMON_OPTION_NAMES, SGD_HINTS);
    return resolveCommon('SGD', options, 0.01);
  },
  bufferNames: () => [],
  buffersOf: () => [],
  scalarNames: [],
  init: () => ({ step: 0 }),
  step(p: FloatArray, g: FloatArray, state: SGDState, h: SGDHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars);
    return loopFor(SGD_LOOPS, p)(p, g, p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: SGDState, h: SGDHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars);
    return k.exports.sgd(p.byteOffset, g.byteOffset, p.length, k.address) === 0;
  },
};

/**
 * SGD over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new SGD({ lr: 0.1 });
 * opt.update(params, grads); // in place
 * ```
 */
export class SGD extends Optimizer<SGDOptions, SGDHyper, SGDState> {
  constructor(options: Schedulable<SGDOptions> & OptimizerOptions<SGDOptions> = {}) {
    super(sgdRule, options);
  }
}
