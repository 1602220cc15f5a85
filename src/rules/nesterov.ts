/**
 * Nesterov's accelerated gradient (NAG), in three formulations.
 *
 * Sutskever et al. (2013), "On the importance of initialization and momentum in deep
 * learning", eqs. 3-4, take the gradient at the look-ahead point theta + mu * v:
 *
 *     v     <- mu * v - lr * grad f(theta + mu * v)
 *     theta <- theta + v
 *
 * `variant: 'nag'` (default) stores the look-ahead point p = theta + mu * v instead
 * (Bengio et al. 2012, "Advances in optimizing recurrent networks"), so the gradient
 * is the one at the stored parameters. With the OLD velocity on the right:
 *
 *     p <- p + mu^2 * v - (1 + mu) * lr * g
 *     v <- mu * v - lr * g
 *
 * Its iterates are exactly theta_t + mu * v_t of the look-ahead form, and the same
 * trajectory as Keras 3, TF.js `useNesterov` and PyTorch under a constant lr.
 *
 * `variant: 'pytorch'` is `torch.optim.SGD(nesterov=True)`: a gradient buffer with the
 * lr outside it (first step b = g), so under a schedule it differs exactly as PyTorch
 * does. It also computes PyTorch's formula with `dampening` (torch's class rejects
 * nesterov with dampening; its functional form computes this):
 *
 *     b <- mu * b + (1 - dampening) * g
 *     p <- p - lr * (g + mu * b)
 *
 * `variant: 'book'` is the book's `Nesterov` class ("Deep Learning from Scratch",
 * `common/optimizer.py`, quoted in the seed post) operation for operation:
 *
 *     v *= mu; v -= lr * g
 *     p += mu * mu * v; p -= (1 + mu) * lr * g
 *
 * It applies mu^2 to the NEW velocity: p <- p + mu^3 v - (1 + mu + mu^2) lr g. That is
 * not NAG: its first step is (1 + mu + mu^2) lr g instead of (1 + mu) lr g. It is here
 * for reproducing the book's numbers.
 *
 * With `decoupledWeightDecay: true` it is SGDW with Nesterov momentum (Loshchilov &
 * Hutter 2019): the stored parameters p <- p * (1 - lr * weightDecay), then the step
 * without decay; no separate class.
 *
 * Defaults: lr 0.01, momentum 0.9 (the book's). State: `velocity` ('nag', 'book') or
 * `momentumBuffer` ('pytorch').
 *
 * Overflow: in float32, v or p past 3.4e38 (lr 10 at g = 1e38: (1 + mu) lr g = 1.9e39).
 * The kernels report every NaN or Infinity they write (params and buffer), and update()
 * throws an UpdateError saying so (the step is applied: see optimizer.ts).
 */
import { allocate, COMMON_OPTION_NAMES, resolveCommon, writeWeightDecay, type CommonHyper, type CommonOptions, type RuleState, type StepScalars, type UpdateRule, type Allocator } from '../rule.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import { describeValue, UpdateError } from '../errors.ts';
import { forEachArray, getArray, isFloatArray, type Dtype, type FloatArray, type ParamSet } from '../types.ts';
import { checkKnownOptions, choiceOption, numberOption, requireNeutral } from '../validate.ts';
import { byArrayType, jsScalars, kernelLayout, loopFor } from '../kernel.ts';
import { writeTorchBufferFactors } from './momentum.ts';

export type NesterovVariant = 'nag' | 'pytorch' | 'book';

export interface NesterovOptions extends CommonOptions {
  momentum?: number;
  /** Only with variant 'pytorch'. */
  dampening?: number;
  variant?: NesterovVariant;
}

export interface NesterovHyper extends CommonHyper {
  readonly momentum: number;
  readonly dampening: number;
  readonly variant: NesterovVariant;
}

export interface NesterovState extends RuleState {
  /** 'nag' and 'book': the velocity v (saved as `velocity`); absent in 'pytorch'. */
  velocity?: FloatArray;
  /** 'pytorch': torch's gradient buffer b (saved as `momentumBuffer`); absent otherwise. */
  momentumBuffer?: FloatArray;
}

/** The state's one buffer, whichever the variant names it. */
function bufferOf(state: NesterovState): FloatArray {
  return (state.velocity ?? state.momentumBuffer)!;
}

const NAMES = [...COMMON_OPTION_NAMES, 'momentum', 'dampening', 'variant'] as const;

/** The wasm kernels: `nesterovNag` and `nesterovBook` (p, g, v, n, s), `nesterovPytorch` (p, g, b, n, s). */
const NAG_SCALARS = ['lr', 'mu', 'sign', 'wd', 'shrink'] as const;
export const NESTEROV_KERNELS = {
  nag: kernelLayout({
    entry: 'nesterovNag',
    arrays: ['p', 'g', 'v'],
    reads: ['p', 'g', 'v'],
    writes: ['p', 'v'],
    scalars: NAG_SCALARS,
  }),
  book: kernelLayout({
    entry: 'nesterovBook',
    arrays: ['p', 'g', 'v'],
    reads: ['p', 'g', 'v'],
    writes: ['p', 'v'],
    scalars: NAG_SCALARS,
  }),
  pytorch: kernelLayout({
    entry: 'nesterovPytorch',
    arrays: ['p', 'g', 'b'],
    reads: ['p', 'g', 'b'],
    writes: ['p', 'b'],
    scalars: ['lr', 'mu', 'keep', 'take', 'sign', 'wd', 'shrink'],
  }),
};
// 'nag' and 'book' read one list of scalars (NAG_SCALARS): one index map for both.
const NAG = NESTEROV_KERNELS.nag.at;
const PYTORCH = NESTEROV_KERNELS.pytorch.at;

/**
 * Counts the step and writes the kernel's scalars: 'nag' and 'book' lr, mu, sign,
 * weightDecay (`nesterovNag`, `nesterovBook`); 'pytorch' lr, mu, keep, take, sign,
 * weightDecay (`nesterovPytorch`).
 */
function writeScalars(s: Float64Array, state: NesterovState, h: NesterovHyper, scalars: StepScalars): void {
  const lr = scalars.lr;
  state.step += 1;
  const sign = h.maximize ? -1 : 1;
  if (h.variant !== 'pytorch') {
    s[NAG.lr] = lr;
    s[NAG.mu] = h.momentum;
    s[NAG.sign] = sign;
    writeWeightDecay(s, NAG.wd, NAG.shrink, h, scalars);
    return;
  }
  s[PYTORCH.lr] = lr;
  s[PYTORCH.mu] = h.momentum;
  writeTorchBufferFactors(s, PYTORCH, state, h);
  s[PYTORCH.sign] = sign;
  writeWeightDecay(s, PYTORCH.wd, PYTORCH.shrink, h, scalars);
}

/** The JS kernel of variant 'nag', twin of `nesterovNag` in assembly/kernels.ts. */
function nesterovNag(p: FloatArray, g: FloatArray, v: FloatArray, n: number, s: Float64Array): boolean {
  const lr = s[0]!;
  const mu = s[1]!;
  const sign = s[2]!;
  const wd = s[3]!;
  const shrink = s[4]!;
  const decay = wd !== 0;
  const decoupled = shrink !== 1;
  const muSquared = mu * mu;
  const gradScale = (1 + mu) * lr;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    let gi = sign * g[i]!;
    if (decay) gi += wd * p[i]!;
    let pi = p[i]!;
    if (decoupled) pi *= shrink;
    const vOld = v[i]!;
    v[i] = mu * vOld - lr * gi;
    p[i] = pi + (muSquared * vOld - gradScale * gi);
    probe += (v[i]! + p[i]!) * 0;
  }
  return probe === 0;
}
const NAG_LOOPS = byArrayType(nesterovNag);

/** The JS kernel of variant 'book', twin of `nesterovBook` in assembly/kernels.ts. */
function nesterovBook(p: FloatArray, g: FloatArray, v: FloatArray, n: number, s: Float64Array): boolean {
  const lr = s[0]!;
  const mu = s[1]!;
  const sign = s[2]!;
  const wd = s[3]!;
  const shrink = s[4]!;
  const decay = wd !== 0;
  const decoupled = shrink !== 1;
  const muSquared = mu * mu; // the book's `self.momentum * self.momentum`
  const gradScale = (1 + mu) * lr; // `(1 + self.momentum) * self.lr`
  let probe = 0;
  for (let i = 0; i < n; i++) {
    let gi = sign * g[i]!;
    if (decay) gi += wd * p[i]!;
    let pi = p[i]!;
    if (decoupled) pi *= shrink;
    const vNew = mu * v[i]! - lr * gi;
    v[i] = vNew;
    // Two statements in the book, two roundings here.
    const halfway = pi + muSquared * vNew;
    p[i] = halfway - gradScale * gi;
    probe += (v[i]! + p[i]!) * 0;
  }
  return probe === 0;
}
const BOOK_LOOPS = byArrayType(nesterovBook);

/** The JS kernel of variant 'pytorch', twin of `nesterovPytorch` in assembly/kernels.ts. */
function nesterovPytorch(p: FloatArray, g: FloatArray, b: FloatArray, n: number, s: Float64Array): boolean {
  const lr = s[0]!;
  const mu = s[1]!;
  const keep = s[2]!;
  const take = s[3]!;
  const sign = s[4]!;
  const wd = s[5]!;
  const shrink = s[6]!;
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
    p[i] = pi - lr * (gi + mu * buf);
    probe += (b[i]! + p[i]!) * 0;
  }
  return probe === 0;
}
const PYTORCH_LOOPS = byArrayType(nesterovPytorch);

export const nesterovRule: UpdateRule<NesterovOptions, NesterovHyper, NesterovState> = {
  name: 'Nesterov',
  kernels: NESTEROV_KERNELS,
  optionNames: NAMES,
  globalOptions: ['variant'],
  key: 'nesterov',
  paper: 'Nesterov (1983), "A method for solving the convex programming problem with convergence rate O(1/k^2)"; Sutskever, Martens, Dahl & Hinton (2013)',
  weightDecayKind: 'coupled',
  peers: { torch: 'torch.optim.SGD(nesterov=True)', optax: 'optax.sgd(nesterov=True)', keras: 'keras.optimizers.SGD(nesterov=True)', tfjs: 'tf.train.momentum(useNesterov)' },
  resolve(options) {
    checkKnownOptions('Nesterov', options, NAMES);
    const variant = choiceOption<NesterovVariant>('Nesterov', 'variant', options.variant, ['nag', 'pytorch', 'book']);
    if (variant !== 'pytorch') {
      requireNeutral('Nesterov', 'dampening', options.dampening, 0, `with variant '${variant}' (dampening is defined by variant 'pytorch')`);
    }
    return {
      ...resolveCommon('Nesterov', options, 0.01),
      momentum: numberOption('Nesterov', 'momentum', options.momentum, 0.9, { min: 0, below: 1 }),
      dampening: numberOption('Nesterov', 'dampening', options.dampening, 0, { min: 0, max: 1 }),
      variant,
    };
  },
  bufferNames: (h) => (h.variant === 'pytorch' ? ['momentumBuffer'] : ['velocity']),
  buffersOf: (s) => [bufferOf(s)],
  scalarNames: [],
  init: (length: number, dtype: Dtype, h: NesterovHyper, alloc: Allocator = allocate) =>
    h.variant === 'pytorch' ? { step: 0, momentumBuffer: alloc(dtype, length) } : { step: 0, velocity: alloc(dtype, length) },
  step(p: FloatArray, g: FloatArray, state: NesterovState, h: NesterovHyper, scalars: StepScalars): boolean {
    writeScalars(jsScalars, state, h, scalars);
    const loops = h.variant === 'nag' ? NAG_LOOPS : h.variant === 'book' ? BOOK_LOOPS : PYTORCH_LOOPS;
    return loopFor(loops, p)(p, g, bufferOf(state), p.length, jsScalars);
  },
  stepWasm(k: WasmKernels, p: Float32Array, g: Float32Array, state: NesterovState, h: NesterovHyper, scalars: StepScalars): boolean {
    writeScalars(k.scalars, state, h, scalars);
    const e = k.exports;
    const kernel = h.variant === 'nag' ? e.nesterovNag : h.variant === 'book' ? e.nesterovBook : e.nesterovPytorch;
    return kernel(p.byteOffset, g.byteOffset, bufferOf(state).byteOffset, p.length, k.address) === 0;
  },
};

/**
 * Nesterov over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new Nesterov({ lr: 0.01, momentum: 0.9 }); // variant 'nag'
 * opt.update(params, grads); // in place
 * ```
 */
export class Nesterov extends Optimizer<NesterovOptions, NesterovHyper, NesterovState> {
  // The look-ahead points theta + mu v handed to step()'s closure, made once per name.
  // A record without prototype, so that any name works, '__proto__' too.
  readonly #lookahead: { [name: string]: FloatArray } = Object.create(null) as { [name: string]: FloatArray };

  constructor(options: Schedulable<NesterovOptions> & OptimizerOptions<NesterovOptions> = {}) {
    super(nesterovRule, options);
  }

  /**
   * One step of the look-ahead form (Sutskever et al. 2013, eqs. 3-4), for code that can
   * evaluate the gradient anywhere. `params` hold theta. `closure(at)` must write into
   * `grads` the gradient at `at` = theta + mu v, and may return the loss, which `step`
   * returns. Then v <- mu v - lr g and theta <- theta + v.
   *
   * It keeps the same velocity as variant 'nag' (whose stored parameters are theta + mu v),
   * so the two give the same path: a test checks it. Use either `step` or `update` on one
   * optimizer, not both (params mean theta for one and theta + mu v for the other).
   */
  step<R, K extends string = string>(params: ParamSet<K>, grads: ParamSet<K>, closure: (at: { readonly [P in K]: FloatArray }) => R): R {
    if (this.defaults.variant !== 'nag') {
      throw new RangeError(`Nesterov.step: the look-ahead closure is NAG; this optimizer uses variant '${this.defaults.variant}'`);
    }
    const at = this.#lookahead;
    forEachArray(params, (array, name) => {
      if (!isFloatArray(array)) throw new UpdateError(`Nesterov.step: parameter '${name}' must be a Float32Array or Float64Array, got ${describeValue(array)}`, name);
      let point = at[name];
      if (point === undefined || point.length !== array.length || point.constructor !== array.constructor) {
        point = at[name] = array instanceof Float32Array ? new Float32Array(array.length) : new Float64Array(array.length);
      }
      const v = this.stateOf(name)?.velocity;
      const mu = this.hyperparameters(name).momentum;
      for (let i = 0; i < array.length; i++) point[i] = array[i]! + (v === undefined ? 0 : mu * v[i]!);
    });
    for (const name of Object.keys(at)) if (getArray(params, name) === undefined) delete at[name];
    const result = closure(at as { readonly [P in K]: FloatArray });
    const applied = this.stepCount;
    const backToTheta = (): void => {
      forEachArray(params, (array, name) => {
        const p = array as FloatArray;
        const point = at[name]!;
        const v = this.stateOf(name)!.velocity!;
        const mu = this.hyperparameters(name).momentum;
        for (let i = 0; i < p.length; i++) p[i] = point[i]! - mu * v[i]!;
      });
    };
    try {
      this.update(at as ParamSet, grads as ParamSet); // 'nag' on the look-ahead point: p+ = theta+ + mu v+
    } catch (error) {
      // An overflow is reported after the step was applied: params must still move with
      // it (to theta+), as update() would have moved them, before the error goes on.
      if (this.stepCount !== applied) backToTheta();
      throw error;
    }
    backToTheta();
    return result;
  }
}
