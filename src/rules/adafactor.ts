/**
 * Adafactor: Adam's per-element second moment replaced, for a matrix, by the product of
 * a row and a column average, so that an R x C matrix keeps R + C numbers of state
 * instead of R * C. Shazeer & Stern (2018), "Adafactor: adaptive learning rates with
 * sublinear memory cost", ICML, Algorithms 4 and 5; as `optax.adafactor` (optax 0.2.8)
 * computes it (optax/_src/alias.py `adafactor`: `scale_by_factored_rms`,
 * `clip_by_block_rms`, `scale_by_learning_rate`, `scale_by_param_block_rms`, `ema`,
 * `add_decayed_weights`, `scale(-1)`). At the 1-based step t of a parameter:
 *
 *     beta2 = 1 - (t - decayOffset)^(-decayRate)             (0 at the first step)
 *     G     = g * g + eps
 *     factored (a matrix whose both dimensions are >= minDimSizeToFactor):
 *       vRow <- beta2 vRow + (1 - beta2) mean(G over the longer dimension)   (one per index of the shorter)
 *       vCol <- beta2 vCol + (1 - beta2) mean(G over the shorter dimension)  (one per index of the longer)
 *       u     = g / sqrt(vRow / mean(vRow)) / sqrt(vCol)       (vRow and vCol broadcast)
 *     otherwise (a vector, an unshaped parameter, a small matrix, factored: false):
 *       v    <- beta2 v + (1 - beta2) G;   u = g / sqrt(v)
 *     u     /= max(1, rms(u) / clippingThreshold)              (clippingThreshold: null skips it)
 *     u     *= lr * max(rms(p), 1e-3)                          (multiplyByParameterScale; lr alone when false)
 *     m    <- momentum m + (1 - momentum) u;  u = m            (momentum: null keeps no m)
 *     p    <- p - u - weightDecayRate * p
 *
 * rms is over the whole tensor, so a step needs the tensor's u before any element moves
 * (`perParameter`: a ParamStore update steps each parameter on its own). The "rows" and
 * "columns" are optax's: vRow runs along the shorter dimension (a mean over the longer
 * one), vCol along the longer, whichever of the two is the matrix's first; on a square
 * matrix vRow is per row.
 *
 * Shapes: a parameter's [rows, cols] comes from `options.shapes`, else from its
 * ParamStore (as Muon takes them); a parameter with neither is a vector and keeps the
 * full v, as does a 1-D shape (optax factors only the two largest dimensions of a
 * tensor of rank 2 or more). A shape of rank 3 or more whose two largest dimensions
 * both reach minDimSizeToFactor is refused (optax factors it; here only matrices are).
 *
 * Differences from optax: its schedule beta2 is computed in float32 and its momentum
 * kept in float32 (`dtype_momentum`) whatever the parameters' type; here both are of the
 * parameters' type (the schedule in double), so float64 parameters get float64
 * throughout (the reference fixture passes `dtype_momentum=float64` and a float64
 * schedule to optax's transforms; for float32 parameters the two agree). Before
 * step decayOffset + 1, optax's beta2 is 1 - 0^-0.8 or of a negative base: NaN for every
 * element; here it is 0 (the average restarts from the current gradient, as at the first
 * step). optax keeps placeholder arrays of one element for the unused state of a
 * parameter; here they have no elements. `maximize` negates the gradient (optax has
 * none); `weightDecayRate` takes a number (optax also takes a schedule; its mask is
 * `partition`'s job here).
 *
 * Where optax differs from the paper, this follows optax: weightDecayRate is not scaled
 * by the lr (p <- p - u - wd p); the update is clipped before the lr scales it; lr
 * defaults to 1, optax's None (no scaling at all), not the paper's relative step size
 * min(1e-2, 1 / sqrt(t)): with multiplyByParameterScale the lr is already relative to
 * the parameter's rms, and `lr: (t) => Math.min(1e-2, 1 / Math.sqrt(t + 1))` is the
 * paper's schedule (t is 0-based); the paper's beta1 = 0 default is optax's momentum
 * null.
 *
 * State: `vRow`, `vCol` (factored), `v` (otherwise) and `m` (with momentum), optax's
 * v_row, v_col, v and the ema's mu; the two scalars `rows` and `cols` record the matrix
 * the state was factored for (0 and 0: the full v), so that a loaded state is checked
 * against the parameter's shape. The state lives in arrays of Adafactor's own, also for
 * a ParamStore (`stateBuffersPerParam()` is 0): a store's state regions are as long as
 * the parameter, which is what factoring saves.
 *
 * Kernels: JS only. A step is three passes over the tensor with per-row and per-column
 * sums between them, not one elementwise loop: the WebAssembly kernels here are
 * elementwise (one pass, any split of the range, threads), which this is not.
 *
 * Overflow: G = g * g passes float32's 3.4e38 from |g| = 1.8e19 on. The full v is then
 * Infinity and that element's u is 0; in a factored matrix a row's and a column's
 * averages become Infinity, their factors NaN, and the tensor's rms passes the NaN on to
 * every element. The step reports every NaN or Infinity it writes, and update() throws
 * an UpdateError naming it.
 */
import { StateError, UpdateError, optionError } from '../errors.ts';
import { allocate, type Allocator, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule } from '../rule.ts';
import { Optimizer, type OptimizerOptions } from '../optimizer.ts';
import type { ParamStateRecord } from '../state.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { booleanOption, checkKnownOptions, learningRateOption, numberOption } from '../validate.ts';
import { LR, factoredStep, fullStep, stepScalars, writeDecay } from './adafactor/kernels.ts';

export interface AdafactorOptions extends Omit<CommonOptions, 'weightDecay'> {
  /** Factor a matrix only when both its dimensions are at least this. Default 128. */
  minDimSizeToFactor?: number;
  /** The exponent c of the schedule beta2 = 1 - t^-c. Default 0.8. */
  decayRate?: number;
  /** The step the schedule counts from (fine-tuning from a restored state). Default 0. */
  decayOffset?: number;
  /** Scale the step by the parameter's rms (at least 1e-3). Default true. */
  multiplyByParameterScale?: boolean;
  /** Clip the update's rms to this (>= 1), or null not to clip. Default 1. */
  clippingThreshold?: number | null;
  /** The momentum of an average of the updates (in [0, 1)), or null for none (no `m` kept). Default null. */
  momentum?: number | null;
  /** Weight decay added to the step, not scaled by the lr (optax's). Default 0 (none). */
  weightDecayRate?: number | null;
  /** Added to g * g. Default 1e-30. */
  eps?: number;
  /** Factor the second moment of matrices at all. Default true. */
  factored?: boolean;
  /** [rows, cols] of parameters that are not in a ParamStore (a store's shapes are used otherwise). */
  shapes?: { readonly [name: string]: readonly number[] };
}

export interface AdafactorHyper extends CommonHyper {
  readonly minDimSizeToFactor: number;
  readonly decayRate: number;
  readonly decayOffset: number;
  readonly multiplyByParameterScale: boolean;
  readonly clippingThreshold: number | null;
  readonly momentum: number | null;
  /** The same number as `weightDecay` (CommonHyper), under optax's name. */
  readonly weightDecayRate: number;
  readonly eps: number;
  readonly factored: boolean;
  readonly shapes: { readonly [name: string]: readonly number[] };
}

export interface AdafactorState extends RuleState {
  /** The matrix the second moment is factored for; 0 and 0 when the full `v` is kept. */
  rows: number;
  cols: number;
  /** Per index of the shorter dimension (empty when not factored). */
  vRow: FloatArray;
  /** Per index of the longer dimension (empty when not factored). */
  vCol: FloatArray;
  /** Per element (empty when factored). */
  v: FloatArray;
  /** Per element, with momentum only. */
  m?: FloatArray;
}

const NAMES = [
  'lr',
  'maximize',
  'minDimSizeToFactor',
  'decayRate',
  'decayOffset',
  'multiplyByParameterScale',
  'clippingThreshold',
  'momentum',
  'weightDecayRate',
  'eps',
  'factored',
  'shapes',
] as const;

/** An integer option >= min. */
function integerOption(name: string, value: unknown, fallback: number, min: number): number {
  const n = numberOption('Adafactor', name, value, fallback, { min });
  if (!Number.isSafeInteger(n)) throw optionError('Adafactor', name, value, `an integer >= ${min}`);
  return n;
}

function shapesOption(value: unknown): { readonly [name: string]: readonly number[] } {
  const shapes = Object.create(null) as { [name: string]: readonly number[] };
  if (value === undefined) return Object.freeze(shapes);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw optionError('Adafactor', 'shapes', value, 'an object { name: [rows, cols] }');
  for (const [name, shape] of Object.entries(value as object)) {
    if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
      throw optionError('Adafactor', `shapes['${name}']`, shape, 'an array of dimensions, integers >= 0 ([rows, cols] for a matrix)');
    }
    shapes[name] = Object.freeze([...(shape as number[])]);
  }
  return Object.freeze(shapes);
}

/**
 * Whether the second moment of a parameter of this shape is factored (optax's
 * `_factored_dims`: rank >= 2 and the second largest dimension >= minDimSizeToFactor).
 * Called at every step's checks: it allocates nothing.
 */
function isFactored(shape: readonly number[] | undefined, h: AdafactorHyper): boolean {
  if (shape === undefined || !h.factored || shape.length < 2) return false;
  let largest = -1;
  let second = -1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (d > largest) {
      second = largest;
      largest = d;
    } else if (d > second) {
      second = d;
    }
  }
  return second >= h.minDimSizeToFactor;
}

const describeFactoring = (rows: number, cols: number): string => (rows === 0 ? 'the full second moment (not factored)' : `a factored ${rows} x ${cols} matrix`);

export const adafactorRule: UpdateRule<AdafactorOptions, AdafactorHyper, AdafactorState> = {
  name: 'Adafactor',
  optionNames: NAMES,
  globalOptions: ['shapes'],
  key: 'adafactor',
  paper: 'Shazeer & Stern (2018), "Adafactor: adaptive learning rates with sublinear memory cost"',
  weightDecayKind: 'decoupled',
  fixedOptions: {
    momentum: 'whether the m buffer exists depends on it (null keeps none)',
    factored: 'it decides whether a matrix keeps vRow and vCol or the whole v',
    minDimSizeToFactor: 'it decides which matrices are factored, and so the shape of their state',
    shapes: "it gives each parameter's matrix shape, which its state is made for",
  },
  peers: { optax: 'optax.adafactor' },
  perParameter: true,
  ownState: true,
  resolve(options) {
    checkKnownOptions('Adafactor', options, NAMES, { weightDecay: "Adafactor's weight decay is optax's weightDecayRate (not scaled by the lr)" });
    const o = options as AdafactorOptions & { readonly [key: string]: unknown };
    const clippingThreshold = o.clippingThreshold === null ? null : numberOption('Adafactor', 'clippingThreshold', o.clippingThreshold, 1, { min: 1 });
    const momentum = o.momentum === null || o.momentum === undefined ? null : numberOption('Adafactor', 'momentum', o.momentum, 0, { min: 0, below: 1 });
    const weightDecayRate = o.weightDecayRate === null ? 0 : numberOption('Adafactor', 'weightDecayRate', o.weightDecayRate, 0, { min: 0 });
    return {
      lr: learningRateOption('Adafactor', o.lr, 1),
      weightDecay: weightDecayRate,
      // Its decay is optax's add_decayed_weights, decoupled by definition (no option for it).
      decoupledWeightDecay: true,
      maximize: booleanOption('Adafactor', 'maximize', o.maximize, false),
      minDimSizeToFactor: integerOption('minDimSizeToFactor', o.minDimSizeToFactor, 128, 0),
      decayRate: numberOption('Adafactor', 'decayRate', o.decayRate, 0.8, { min: 0 }),
      decayOffset: integerOption('decayOffset', o.decayOffset, 0, 0),
      multiplyByParameterScale: booleanOption('Adafactor', 'multiplyByParameterScale', o.multiplyByParameterScale, true),
      clippingThreshold,
      momentum,
      weightDecayRate,
      eps: numberOption('Adafactor', 'eps', o.eps, 1e-30, { min: 0 }),
      factored: booleanOption('Adafactor', 'factored', o.factored, true),
      shapes: shapesOption(o.shapes),
    };
  },
  bufferNames: (h) => (h.momentum === null ? ['vRow', 'vCol', 'v'] : ['vRow', 'vCol', 'v', 'm']),
  buffersOf: (s, h) => (h.momentum === null ? [s.vRow, s.vCol, s.v] : [s.vRow, s.vCol, s.v, s.m!]),
  scalarNames: ['rows', 'cols'],
  copyScalars(from, to) {
    to.rows = from.rows;
    to.cols = from.cols;
  },
  stateBounds: { vRow: { min: 0 }, vCol: { min: 0 }, v: { min: 0 }, rows: { min: 0 }, cols: { min: 0 } },
  init(length: number, dtype: Dtype, h: AdafactorHyper, alloc: Allocator = allocate, shape?: readonly number[]): AdafactorState {
    const factored = isFactored(shape, h);
    const rows = factored ? shape![0]! : 0;
    const cols = factored ? shape![1]! : 0;
    return {
      step: 0,
      rows,
      cols,
      vRow: alloc(dtype, Math.min(rows, cols)),
      vCol: alloc(dtype, Math.max(rows, cols)),
      v: alloc(dtype, factored ? 0 : length),
      ...(h.momentum === null ? {} : { m: alloc(dtype, length) }),
    };
  },
  shapeOf(h: AdafactorHyper, name: string, length: number, storeShape: readonly number[] | undefined): readonly number[] | undefined {
    const shape = Object.hasOwn(h.shapes, name) ? h.shapes[name] : storeShape;
    if (shape === undefined) return undefined;
    let size = 1;
    for (let i = 0; i < shape.length; i++) size *= shape[i]!;
    if (size !== length) {
      throw new UpdateError(`Adafactor.update: parameter '${name}' has ${length} elements, not the ${size} of its shape [${shape.join(', ')}]`, name);
    }
    if (shape.length > 2 && isFactored(shape, h)) {
      throw new UpdateError(
        `Adafactor.update: parameter '${name}' has shape [${shape.join(', ')}]: Adafactor factors matrices only (give it a 2-D shape in options.shapes, or send '${name}' to another optimizer with partition())`,
        name,
      );
    }
    return shape;
  },
  stateMismatch(state: AdafactorState, h: AdafactorHyper, shape: readonly number[] | undefined): string | undefined {
    const factored = isFactored(shape, h);
    const rows = factored ? shape![0]! : 0;
    const cols = factored ? shape![1]! : 0;
    if (state.rows === rows && state.cols === cols) return undefined;
    return `its optimizer state keeps ${describeFactoring(state.rows, state.cols)}, its shape ${shape === undefined ? '(none)' : `[${shape.join(', ')}]`} asks for ${describeFactoring(rows, cols)}`;
  },
  shapeOfRecord(record: ParamStateRecord): readonly number[] | undefined {
    const rows = record.scalars.rows!;
    const cols = record.scalars.cols!;
    const factored = rows > 0 || cols > 0;
    if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || (factored && rows * cols !== record.length)) {
      throw new StateError(`Adafactor.loadStateDict: state scalars rows ${rows} and cols ${cols} are not a matrix of the parameter's ${record.length} elements (or 0 and 0)`);
    }
    return factored ? [rows, cols] : undefined;
  },
  step(p: FloatArray, g: FloatArray, state: AdafactorState, h: AdafactorHyper, scalars: StepScalars): boolean {
    state.step += 1;
    if (p.length === 0) return true;
    const s = stepScalars;
    writeDecay(s, state.step, h);
    s[LR] = scalars.lr;
    return state.rows > 0 ? factoredStep(p, g, state, h) : fullStep(p, g, state, h);
  },
};

/**
 * Adafactor over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new Adafactor({ lr: 0.01, shapes: { W1: [784, 100] } });
 * opt.update(params, grads); // in place; W1's state is 784 + 100 numbers
 * ```
 */
export class Adafactor extends Optimizer<AdafactorOptions, AdafactorHyper, AdafactorState> {
  constructor(options: AdafactorOptions & OptimizerOptions<AdafactorOptions> = {}) {
    super(adafactorRule, options);
  }
}
