/**
 * Adadelta: per-coordinate steps from the ratio of two running RMS values, of past
 * updates and of gradients, so that the step has the units of the parameter. Zeiler
 * (2012), "ADADELTA: an adaptive learning rate method", arXiv 1212.5701, Algorithm 1; as
 * `torch.optim.Adadelta` (1.13, `_single_tensor_adadelta`) computes it:
 *
 *     s <- rho * s + (1 - rho) * g * g
 *     d  = sqrt(a + eps) / sqrt(s + eps) * g
 *     a <- rho * a + (1 - rho) * d * d
 *     p <- p - lr * d
 *
 * The paper has no lr (lr 1, torch's default); torch scales the update by it. eps sits
 * inside both square roots, as in the paper. `weightDecay` is coupled (added to the
 * gradient).
 *
 * Defaults (PyTorch): lr 1.0, rho 0.9, eps 1e-6. State (torch's keys): `squareAvg` (s),
 * `accDelta` (a).
 *
 * Overflow: s = (1 - rho) g^2 passes float32's 3.4e38 from |g| = 5.8e19 on (rho 0.9);
 * s is then Infinity, d is 0 and the element never moves again. The kernels report every
 * NaN or Infinity they write (params and state), and update() throws an UpdateError
 * naming the state `squareAvg` (the step is applied: see optimizer.ts).
 */
import { allocate, COMMON_OPTION_NAMES, resolveCommon, writeWeightDecay, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { checkKnownOptions, numberOption } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

export interface AdadeltaOptions extends CommonOptions {
  rho?: number;
  eps?: number;
}

export interface AdadeltaHyper extends CommonHyper {
  readonly rho: number;
  readonly eps: number;
}

export interface AdadeltaState extends RuleState {
  squareAvg: FloatArray;
  accDelta: FloatArray;
}

const NAMES = [...COMMON_OPTION_NAMES, 'rho', 'eps'] as const;

/** The wasm kernel: `adadelta(p, g, sq, acc, n, s)`. */
const ADADELTA = kernelLayout({
  entry: 'adadelta',
  arrays: ['p', 'g', 'sq', 'acc'],
  reads: ['p', 'g', 'sq', 'acc'],
  writes: ['p', 'sq', 'acc'],
  scalars: ['step', 'rho', 'eps', 'sign', 'wd', 'shrink'],
});

/** Counts the step and writes the kernel's scalars: step (-lr), rho, eps, sign, weightDecay. */
function writeScalars(s: Float64Array, state: AdadeltaState, h: AdadeltaHyper, scalars: StepScalars): void {
  state.step += 1;
  s[ADADELTA.at.step] = -scalars.lr;
  s[ADADELTA.at.rho] = h.rho;
  s[ADADELTA.at.eps] = h.eps;
  s[ADADELTA.at.sign] = h.maximize ? -1 : 1;
  writeWeightDecay(s, ADADELTA.at.wd, ADADELTA.at.shrink, h, scalars);
}

/** The JS kernel, twin of `adadelta` in assembly/kernels.ts. */
function adadelta(p: FloatArray, g: FloatArray, sq: FloatArray, acc: FloatArray, n: number, s: Float64Array): boolean {
  const step = s[0]!;
  const rho = s[1]!;
  const eps = s[2]!;
  const sign = s[3]!;
  const wd = s[4]!;
  const shrink = s[5]!;
  const decoupled = shrink !== 1;
  const decay = wd !== 0;
  const oneMinusRho = 1 - rho;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    let gi = sign * g[i]!;
    if (decay) gi += wd * p[i]!;
    let pi = p[i]!;
    if (decoupled) pi *= shrink;
    // torch's addcmul: s + (value * g) * g
    const si = sq[i]! * rho + oneMinusRho * gi * gi;
    sq[i] = si;
    const ai = acc[i]!;
    const d = (Math.sqrt(ai + eps) / Math.sqrt(si + eps)) * gi;
    acc[i] = ai * rho + oneMinusRho * d * d;
    p[i] = pi + step * d;
    probe += (sq[i]! + acc[i]! + p[i]!) * 0;
  }
  return probe === 0;
}
const ADADELTA_LOOPS = byArrayType(adadelta);

export const adadeltaRule: UpdateRule<AdadeltaOptions, AdadeltaHyper, AdadeltaState> = {
  name: 'Adadelta',
  kernels: { step: ADADELTA },
  optionNames: NAMES,
  globalOptions: [],
  key: 'adadelta',
  paper: 'Zeiler (2012), "ADADELTA: an adaptive learning rate method"',
  weightDecayKind: 'coupled',
  peers: { torch: 'torch.optim.Adadelta', optax: 'optax.adadelta', keras: 'keras.optimizers.Adadelta', tfjs: 'tf.train.adadelta' },
  resolve(options) {
    checkKnownOptions('Adadelta', options, NAMES);
    return {
      ...resolveCommon('Adadelta', options, 1.0),
      // torch allows rho = 1 (then s and a never move from 0: d = g, plain SGD).
      rho: numberOption('Adadelta', 'rho', options.rho, 0.9, { min: 0, max: 1 }),
      eps: numberOption('Adadelta', 'eps', options.eps, 1e-6, { min: 0 }),
    };
  },
  bufferNames: () => ['squareAvg', 'accDelta'],
  buffersOf: (s) => [s.squareAvg, s.accDelta],
  scalarNames: [],
  stateBounds: { squareAvg: { min: 0 }, accDelta: { min: 0 } },
  init: (length: number, dtype: Dtype, _h: AdadeltaHyper, alloc: Allocator = allocate) => ({
    step: 0,
    squareAvg: alloc(dtype, length),
    accDelta: alloc(dtype, length),
  }),
  step(p: FloatArray, g: FloatArray, state: AdadeltaState, h: AdadeltaHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars);
    return loopFor(ADADELTA_LOOPS, p)(p, g, state.squareAvg, state.accDelta, p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: AdadeltaState, h: AdadeltaHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars);
    return k.exports.adadelta(p.byteOffset, g.byteOffset, state.squareAvg.byteOffset, state.accDelta.byteOffset, p.length, k.address) === 0;
  },
};

/**
 * Adadelta over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new Adadelta(); // lr 1.0, rho 0.9, eps 1e-6
 * opt.update(params, grads); // in place
 * ```
 */
export class Adadelta extends Optimizer<AdadeltaOptions, AdadeltaHyper, AdadeltaState> {
  constructor(options: Schedulable<AdadeltaOptions> & OptimizerOptions<AdadeltaOptions> = {}) {
    super(adadeltaRule, options);
  }
}
