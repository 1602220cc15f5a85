/**
 * QHM, quasi-hyperbolic momentum: a weighted average of a plain SGD step and a momentum
 * step. Ma & Yarats (2019), "Quasi-hyperbolic momentum and Adam for deep learning",
 * ICLR, section 3, equations (2)-(3); as the authors' qhoptim (`qhoptim.pyt.QHM`,
 * weight_decay_type "grad") computes it:
 *
 *     d <- g + weightDecay * p                      (coupled weight decay)
 *     b <- beta * b + (1 - beta) * d                (dampened momentum, b starts at 0)
 *     p <- p - lr * (nu * b + (1 - nu) * d)
 *
 * nu = 0 is plain SGD, nu = 1 dampened momentum (momentum with its lr scaled by
 * 1 - beta). With nu = beta it is Nesterov's accelerated gradient in PyTorch's form:
 * `QHM.fromNesterov({ lr, momentum })` makes the QHM whose steps are those of
 * `new Nesterov({ lr, momentum, variant: 'pytorch' })` (lr / (1 - momentum), nu =
 * momentum: the buffer is (1 - beta) times torch's, the step the same). The immediate
 * discount nu is the look-ahead of NAG made a knob: how much of the fresh gradient the
 * step takes beside the average.
 *
 * Defaults (the authors' recommendation, the paper's section 7): momentum 0.999, nu 0.7,
 * lr 1 (the authors' example: QHM normalises the buffer, so its lr is momentum SGD's
 * divided by 1 - beta; lr 0.1 at beta 0.9 becomes 1). State (qhoptim's key):
 * `momentumBuffer`. `maximize` negates the gradient (ours; the paper has none).
 *
 * Overflow: b is a convex combination of gradients and the step a combination of b and
 * d, so only an lr or a gradient near float32's 3.4e38 leaves the range; the kernels
 * report every NaN or Infinity they write, and update() throws an UpdateError naming it.
 */
import { allocate, COMMON_OPTION_NAMES, resolveCommon, writeWeightDecay, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray, LearningRate } from '../types.ts';
import { checkKnownOptions, numberOption } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { optionError } from '../errors.ts';

export interface QHMOptions extends CommonOptions {
  /** beta, the momentum of the dampened buffer: in [0, 1). Default 0.999. */
  momentum?: number;
  /** nu, the immediate discount: the buffer's share of the step, in [0, 1]. Default 0.7. */
  nu?: number;
}

export interface QHMHyper extends CommonHyper {
  readonly momentum: number;
  readonly nu: number;
}

export interface QHMState extends RuleState {
  momentumBuffer: FloatArray;
}

const NAMES = [...COMMON_OPTION_NAMES, 'momentum', 'nu'] as const;

/** The wasm kernel `qhm(p, g, b, n, s)` (assembly/rules/qhm.ts). */
const QHM_KERNEL = kernelLayout({ entry: 'qhm', arrays: ['p', 'g', 'b'], reads: ['p', 'g', 'b'], writes: ['p', 'b'], scalars: ['lr', 'beta', 'nu', 'sign', 'wd', 'shrink'] });
// As module constants: read through the layout object inside writeScalars, the indices
// cost a property load (and an allocation) per step.
const LR = QHM_KERNEL.at.lr;
const BETA = QHM_KERNEL.at.beta;
const NU = QHM_KERNEL.at.nu;
const SIGN = QHM_KERNEL.at.sign;
const WD = QHM_KERNEL.at.wd;
const SHRINK = QHM_KERNEL.at.shrink;

/** Counts the step and writes the kernel's scalars: lr, beta, nu, sign, weight decay (the JS twin reads them at 0..5). */
function writeScalars(s: Float64Array, state: QHMState, h: QHMHyper, scalars: StepScalars): void {
  state.step += 1;
  s[LR] = scalars.lr;
  s[BETA] = h.momentum;
  s[NU] = h.nu;
  s[SIGN] = h.maximize ? -1 : 1;
  writeWeightDecay(s, WD, SHRINK, h, scalars);
}

/** The JS kernel: QHM over one array (its scalars in `s`, see writeScalars). */
function qhm(p: FloatArray, g: FloatArray, b: FloatArray, n: number, s: Float64Array): boolean {
  const lr = s[0]!;
  const beta = s[1]!;
  const nu = s[2]!;
  const sign = s[3]!;
  const wd = s[4]!;
  const shrink = s[5]!;
  const decoupled = shrink !== 1;
  const oneMinusBeta = 1 - beta;
  const onBuffer = lr * nu;
  const onGradient = lr * (1 - nu);
  let probe = 0;
  for (let i = 0; i < n; i++) {
    const d = sign * g[i]! + wd * p[i]!;
    let pi = p[i]!;
    if (decoupled) pi *= shrink;
    b[i] = beta * b[i]! + oneMinusBeta * d;
    // The buffer as stored (a float32 store rounds): the step uses what the state holds.
    p[i] = pi - onBuffer * b[i]! - onGradient * d;
    probe += (p[i]! + b[i]!) * 0;
  }
  return probe === 0;
}
const QHM_LOOPS = byArrayType(qhm);

export const qhmRule: UpdateRule<QHMOptions, QHMHyper, QHMState> = {
  name: 'QHM',
  kernels: { step: QHM_KERNEL },
  optionNames: NAMES,
  globalOptions: [],
  key: 'qhm',
  paper: 'Ma & Yarats (2019), "Quasi-hyperbolic momentum and Adam for deep learning"',
  weightDecayKind: 'coupled',
  peers: {},
  resolve(options) {
    checkKnownOptions('QHM', options, NAMES);
    return {
      ...resolveCommon('QHM', options, 1),
      momentum: numberOption('QHM', 'momentum', options.momentum, 0.999, { min: 0, below: 1 }),
      nu: numberOption('QHM', 'nu', options.nu, 0.7, { min: 0, max: 1 }),
    };
  },
  bufferNames: () => ['momentumBuffer'],
  buffersOf: (s) => [s.momentumBuffer],
  scalarNames: [],
  init: (length: number, dtype: Dtype, _h: QHMHyper, alloc: Allocator = allocate) => ({
    step: 0,
    momentumBuffer: alloc(dtype, length),
  }),
  step(p: FloatArray, g: FloatArray, state: QHMState, h: QHMHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars);
    return loopFor(QHM_LOOPS, p)(p, g, state.momentumBuffer, p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: QHMState, h: QHMHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars);
    return k.exports.qhm(p.byteOffset, g.byteOffset, state.momentumBuffer.byteOffset, p.length, k.address) === 0;
  },
};

/**
 * QHM over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new QHM({ lr: 1, momentum: 0.999, nu: 0.7 });
 * opt.update(params, grads); // in place
 * ```
 */
export class QHM extends Optimizer<QHMOptions, QHMHyper, QHMState> {
  constructor(options: Schedulable<QHMOptions> & OptimizerOptions<QHMOptions> = {}) {
    super(qhmRule, options);
  }

  /**
   * The QHM that steps as `new Nesterov({ lr, momentum, variant: 'pytorch' })` does (the
   * paper's section 4: NAG is QHM with nu = beta): lr / (1 - momentum), nu = momentum.
   * The other options (weightDecay, maximize, nonFinite, ...) pass through.
   */
  static fromNesterov(options: Omit<QHMOptions, 'nu'> & OptimizerOptions<QHMOptions> & { lr: LearningRate; momentum: number }): QHM {
    const { lr, momentum, ...rest } = options;
    if (typeof momentum !== 'number' || !(momentum >= 0 && momentum < 1)) throw optionError('QHM.fromNesterov', 'momentum', momentum, 'a number in [0, 1)');
    const scale = 1 / (1 - momentum);
    const scaled: LearningRate = typeof lr === 'function' ? (t: number) => lr(t) * scale : lr * scale;
    return new QHM({ ...rest, lr: scaled, momentum, nu: momentum });
  }
}
