/**
 * Rprop: resilient backpropagation. Each element has its own step size, which grows
 * while its gradient keeps its sign and shrinks when the sign flips; only the gradient's
 * sign moves the parameter. Riedmiller & Braun (1993), "A direct adaptive method for
 * faster backpropagation learning: the RPROP algorithm", IEEE ICNN; as `torch.optim.Rprop`
 * (1.13, `_single_tensor_rprop`) computes it, per element:
 *
 *     q = g * prev
 *     stepSize <- clamp(stepSize * (etaPlus if q > 0, etaMinus if q < 0, else 1),
 *                       stepSizeMin, stepSizeMax)
 *     if q < 0: g <- 0                    (no move after a sign flip)
 *     p <- p - sign(g) * stepSize
 *     prev <- g
 *
 * The step sizes start at lr and prev at 0, so the first step is p - sign(g) lr
 * (clamped). This is torch's variant of the paper's: after a sign flip it skips the move
 * (the paper's Rprop without weight-backtracking, "Rprop-") and stores g = 0, so the next
 * step neither grows nor shrinks the step size. lr only sets the first step sizes: the
 * lr of the first step (a schedule's value at step 0) fills them, and later lrs are not
 * read, as in torch, where lr is read once when the state is made.
 *
 * `weightDecay` (coupled, added to the gradient before its sign is taken) is ours: torch's
 * Rprop has none. `maximize` negates the gradient, as torch's.
 *
 * float32: torch multiplies the step size by the float32 eta and clamps to float32
 * bounds; the JS kernel does the same (the scalars rounded to float32 first, the
 * product of two float32 values is exact in double and rounds once on store), so it
 * matches torch bit for bit, as the wasm kernel does. One difference: q is computed in
 * double in JS, so a product below float32's smallest subnormal (1.4e-45), 0 in torch
 * and in wasm, keeps its sign here.
 *
 * Defaults (PyTorch): lr 0.01, etaMinus 0.5, etaPlus 1.2, stepSizeMin 1e-6,
 * stepSizeMax 50. State (torch's keys): `prev`, `stepSize` (torch's `step_size`).
 *
 * Overflow: none from a finite gradient: the step is at most stepSizeMax, the stored
 * gradient is the gradient. Only a weight-decayed gradient g + weightDecay p past
 * float32's 3.4e38 (stored in `prev`) or a parameter within stepSizeMax of it would do.
 * The kernels still report every NaN or Infinity they write, and update() throws an
 * UpdateError naming where.
 */
import { allocate, COMMON_OPTION_NAMES, resolveCommon, writeWeightDecay, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { checkKnownOptions, numberOption } from '../validate.ts';
import { optionError } from '../errors.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';

export interface RpropOptions extends CommonOptions {
  /** Factor for the step size after a sign flip, in (0, 1). torch: `etas[0]`. */
  etaMinus?: number;
  /** Factor for the step size while the sign holds, > 1. torch: `etas[1]`. */
  etaPlus?: number;
  /** torch: `step_sizes[0]`. */
  stepSizeMin?: number;
  /** torch: `step_sizes[1]`. */
  stepSizeMax?: number;
}

export interface RpropHyper extends CommonHyper {
  readonly etaMinus: number;
  readonly etaPlus: number;
  readonly stepSizeMin: number;
  readonly stepSizeMax: number;
}

export interface RpropState extends RuleState {
  prev: FloatArray;
  stepSize: FloatArray;
}

const NAMES = [...COMMON_OPTION_NAMES, 'etaMinus', 'etaPlus', 'stepSizeMin', 'stepSizeMax'] as const;

/** The wasm kernel: `rprop(p, g, prev, stepSize, n, s)`. */
const RPROP = kernelLayout({
  entry: 'rprop',
  arrays: ['p', 'g', 'prev', 'stepSize'],
  reads: ['p', 'g', 'prev', 'stepSize'],
  writes: ['p', 'prev', 'stepSize'],
  scalars: ['etaMinus', 'etaPlus', 'stepSizeMin', 'stepSizeMax', 'sign', 'wd', 'shrink'],
});

/**
 * Counts the step (filling the step sizes with lr at the first) and writes the kernel's
 * scalars: etaMinus, etaPlus, stepSizeMin, stepSizeMax, sign, weightDecay. `single`
 * rounds the first four to float32 (torch's values in a float32 run) for the JS kernel;
 * the wasm kernel rounds every scalar to float32 itself. (An inline Math.fround, not a
 * rounding function passed in: a double returned from a call V8 does not inline is
 * boxed.)
 */
function writeScalars(s: Float64Array, state: RpropState, h: RpropHyper, scalars: StepScalars, single: boolean): void {
  if (state.step === 0) state.stepSize.fill(scalars.lr);
  state.step += 1;
  s[RPROP.at.etaMinus] = single ? Math.fround(h.etaMinus) : h.etaMinus;
  s[RPROP.at.etaPlus] = single ? Math.fround(h.etaPlus) : h.etaPlus;
  s[RPROP.at.stepSizeMin] = single ? Math.fround(h.stepSizeMin) : h.stepSizeMin;
  s[RPROP.at.stepSizeMax] = single ? Math.fround(h.stepSizeMax) : h.stepSizeMax;
  s[RPROP.at.sign] = h.maximize ? -1 : 1;
  writeWeightDecay(s, RPROP.at.wd, RPROP.at.shrink, h, scalars);
}

/** The JS kernel, twin of `rprop` in assembly/kernels.ts. */
function rprop(p: FloatArray, g: FloatArray, prev: FloatArray, stepSize: FloatArray, n: number, s: Float64Array): boolean {
  const etaMinus = s[0]!;
  const etaPlus = s[1]!;
  const lo = s[2]!;
  const hi = s[3]!;
  const sign = s[4]!;
  const wd = s[5]!;
  const shrink = s[6]!;
  const decoupled = shrink !== 1;
  const decay = wd !== 0;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    let gi = sign * g[i]!;
    if (decay) gi += wd * p[i]!;
    let pi = p[i]!;
    if (decoupled) pi *= shrink;
    const q = gi * prev[i]!;
    let si = stepSize[i]! * (q > 0 ? etaPlus : q < 0 ? etaMinus : 1);
    si = si < lo ? lo : si > hi ? hi : si; // NaN stays NaN, as in torch's clamp
    stepSize[i] = si;
    si = stepSize[i]!; // the stored value (float32: rounded), which torch's step uses
    if (q < 0) gi = 0;
    if (gi > 0) p[i] = pi - si;
    else if (gi < 0) p[i] = pi + si;
    else if (decoupled) p[i] = pi;
    prev[i] = gi;
    probe += (prev[i]! + stepSize[i]! + p[i]!) * 0;
  }
  return probe === 0;
}
const RPROP_LOOPS = byArrayType(rprop);

export const rpropRule: UpdateRule<RpropOptions, RpropHyper, RpropState> = {
  name: 'Rprop',
  kernels: { step: RPROP },
  optionNames: NAMES,
  globalOptions: [],
  key: 'rprop',
  paper: 'Riedmiller & Braun (1993), "A direct adaptive method for faster backpropagation learning: the RPROP algorithm"',
  weightDecayKind: 'coupled',
  peers: { torch: 'torch.optim.Rprop', optax: 'optax.rprop' },
  resolve(options) {
    checkKnownOptions('Rprop', options, NAMES);
    // torch 1.13 checks 0 < etaMinus < 1 < etaPlus; the bounds on the step sizes are ours.
    const etaMinus = options.etaMinus ?? 0.5;
    if (!(typeof etaMinus === 'number' && etaMinus > 0 && etaMinus < 1)) throw optionError('Rprop', 'etaMinus', etaMinus, 'a number in (0, 1)');
    const etaPlus = options.etaPlus ?? 1.2;
    if (!(typeof etaPlus === 'number' && etaPlus > 1 && etaPlus < Infinity)) throw optionError('Rprop', 'etaPlus', etaPlus, 'a finite number > 1');
    const stepSizeMin = numberOption('Rprop', 'stepSizeMin', options.stepSizeMin, 1e-6, { min: 0 });
    const stepSizeMax = options.stepSizeMax ?? 50;
    if (!(typeof stepSizeMax === 'number' && stepSizeMax >= stepSizeMin && stepSizeMax < Infinity)) {
      throw optionError('Rprop', 'stepSizeMax', stepSizeMax, `a finite number >= stepSizeMin (${stepSizeMin})`);
    }
    return {
      ...resolveCommon('Rprop', options, 0.01),
      etaMinus,
      etaPlus,
      stepSizeMin,
      stepSizeMax,
    };
  },
  bufferNames: () => ['prev', 'stepSize'],
  buffersOf: (s) => [s.prev, s.stepSize],
  scalarNames: [],
  stateBounds: { stepSize: { min: 0 } },
  // The step sizes start at lr: filled here when lr is a number, and (for a schedule,
  // whose first value is known only then) again at the first step.
  init: (length: number, dtype: Dtype, h: RpropHyper, alloc: Allocator = allocate) => ({
    step: 0,
    prev: alloc(dtype, length),
    stepSize: alloc(dtype, length, typeof h.lr === 'number' ? h.lr : 0),
  }),
  step(p: FloatArray, g: FloatArray, state: RpropState, h: RpropHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars, p instanceof Float32Array);
    return loopFor(RPROP_LOOPS, p)(p, g, state.prev, state.stepSize, p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: RpropState, h: RpropHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars, false);
    return k.exports.rprop(p.byteOffset, g.byteOffset, state.prev.byteOffset, state.stepSize.byteOffset, p.length, k.address) === 0;
  },
};

/**
 * Rprop over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new Rprop({ lr: 0.01, etaMinus: 0.5, etaPlus: 1.2 });
 * opt.update(params, grads); // in place
 * ```
 */
export class Rprop extends Optimizer<RpropOptions, RpropHyper, RpropState> {
  constructor(options: Schedulable<RpropOptions> & OptimizerOptions<RpropOptions> = {}) {
    super(rpropRule, options);
  }
}
