/**
 * minimize's 'lbfgs': limited-memory BFGS (Liu & Nocedal 1989; Nocedal & Wright,
 * "Numerical Optimization", 2006, Algorithm 7.5) with the strong-Wolfe line search of
 * wolfe.ts.
 *
 * The direction is d = -H g, H the BFGS update of gamma I by the newest `memory` pairs
 * (s_i = x_{i+1} - x_i, y_i = g_{i+1} - g_i), applied without forming H by the two-loop
 * recursion (Algorithm 7.4):
 *
 *     q = g;  for i newest .. oldest:  alpha_i = rho_i s_i.q,  q -= alpha_i y_i
 *     r = gamma q;  for i oldest .. newest:  beta = rho_i y_i.r,  r += (alpha_i - beta) s_i
 *
 * with rho_i = 1 / y_i.s_i and gamma = s.y / y.y of the newest pair (eq. 7.20). Before
 * the first pair, gamma = min(1, 1 / ||g||) as in optax's `scale_by_lbfgs`: the first
 * trial step is at most 1 long. The line search starts every step at a = 1, where the
 * quasi-Newton step is (Nocedal & Wright 3.5: it is accepted most of the time).
 *
 * A pair enters the memory only when y.s > 0, which the curvature condition guarantees
 * (y.s >= (c2 - 1) g.s > 0); after a step that satisfied only the sufficient decrease
 * (the search ran out of trials) y.s may be <= 0, and such a pair would make H
 * indefinite. If rounding still leaves d uphill, the memory is cleared and the step
 * is steepest descent.
 */
import { optionError } from '../errors.ts';
import { numberOption } from '../validate.ts';
import type { StoppingRules } from './stopping.ts';
import type { MinimizeResult, StopReason, ValueAndGradient } from './types.ts';
import { dot, norm } from './vectors.ts';
import { wolfeSearch, type WolfeConstants } from './wolfe.ts';

export interface LbfgsSettings extends StoppingRules, WolfeConstants {
  memory: number;
}

/** The options of 'lbfgs' and those of the other methods that it refuses. */
export interface LbfgsOptions {
  memory?: number;
  lineSearch?: string;
  c1?: number;
  c2?: number;
  L?: number;
  mu?: number;
  momentum?: number;
  restart?: string;
  prox?: unknown;
}

/** Checks the options of 'lbfgs': memory 10, c1 1e-4 and c2 0.9 by default (Nocedal & Wright's, optax's). */
export function lbfgsOptions(owner: string, options: LbfgsOptions): { memory: number; c1: number; c2: number } {
  const memory = options.memory ?? 10;
  if (!Number.isSafeInteger(memory) || memory < 1) throw optionError(owner, 'memory', memory, 'an integer >= 1 (the number of pairs kept)');
  const lineSearch = options.lineSearch ?? 'wolfe';
  if (lineSearch !== 'wolfe') throw optionError(owner, 'lineSearch', lineSearch, "'wolfe' for 'lbfgs'");
  // The approximate Wolfe test needs 2 c1 - 1 < 0; the strong Wolfe conditions, c1 < c2 < 1.
  const c1 = numberOption(owner, 'c1', options.c1, 1e-4, { min: Number.MIN_VALUE, below: 0.5 });
  const c2 = numberOption(owner, 'c2', options.c2, 0.9, { min: Number.MIN_VALUE, below: 1 });
  if (!(c2 > c1)) throw optionError(owner, 'c2', c2, `a number in (c1, 1), c1 being ${c1}`);
  for (const name of ['L', 'mu', 'momentum', 'prox'] as const) {
    if (options[name] !== undefined) throw optionError(owner, name, options[name], "undefined for 'lbfgs' (its line search finds the step)");
  }
  if (options.restart !== undefined && options.restart !== 'none') throw optionError(owner, 'restart', options.restart, "'none' or undefined for 'lbfgs'");
  return { memory, c1, c2 };
}

/** The newest `memory` pairs in a ring: slot (newest - j) mod memory is the j-th newest. */
class PairMemory {
  readonly s: Float64Array[];
  readonly y: Float64Array[];
  readonly rho: Float64Array;
  readonly alpha: Float64Array;
  count = 0;
  newest = -1;
  constructor(
    readonly memory: number,
    n: number,
  ) {
    this.s = Array.from({ length: memory }, () => new Float64Array(n));
    this.y = Array.from({ length: memory }, () => new Float64Array(n));
    this.rho = new Float64Array(memory);
    this.alpha = new Float64Array(memory);
  }
  /** Stores s = to - from and y = gradTo - gradFrom when y.s > 0; returns y.y / y.s, or NaN when skipped. */
  push(from: Float64Array, to: Float64Array, gradFrom: Float64Array, gradTo: Float64Array): number {
    const slot = (this.newest + 1) % this.memory;
    const s = this.s[slot]!;
    const y = this.y[slot]!;
    let ys = 0;
    let yy = 0;
    for (let i = 0; i < s.length; i++) {
      s[i] = to[i]! - from[i]!;
      y[i] = gradTo[i]! - gradFrom[i]!;
      ys += y[i]! * s[i]!;
      yy += y[i]! * y[i]!;
    }
    if (!(ys > 0) || !Number.isFinite(yy)) return NaN;
    this.rho[slot] = 1 / ys;
    this.newest = slot;
    this.count = Math.min(this.count + 1, this.memory);
    return yy / ys;
  }
  clear(): void {
    this.count = 0;
    this.newest = -1;
  }
  /** out = -H g by the two-loop recursion, H0 = gamma I. */
  direction(g: Float64Array, gamma: number, out: Float64Array): void {
    const { s, y, rho, alpha, memory } = this;
    out.set(g);
    for (let j = 0; j < this.count; j++) {
      const slot = (this.newest - j + memory) % memory;
      const a = rho[slot]! * dot(s[slot]!, out);
      alpha[slot] = a;
      const yi = y[slot]!;
      for (let i = 0; i < out.length; i++) out[i] = out[i]! - a * yi[i]!;
    }
    for (let i = 0; i < out.length; i++) out[i] = gamma * out[i]!;
    for (let j = this.count - 1; j >= 0; j--) {
      const slot = (this.newest - j + memory) % memory;
      const beta = rho[slot]! * dot(y[slot]!, out);
      const si = s[slot]!;
      const step = alpha[slot]! - beta;
      for (let i = 0; i < out.length; i++) out[i] = out[i]! + step * si[i]!;
    }
    for (let i = 0; i < out.length; i++) out[i] = -out[i]!;
  }
}

/**
 * Runs L-BFGS from x0, where fg has already been evaluated (value0, grad0: finite) and
 * counted as one evaluation.
 */
export function lbfgs(fg: ValueAndGradient, x0: Float64Array, value0: number, grad0: Float64Array, settings: LbfgsSettings): MinimizeResult {
  const { gradTol, valueTol, maxIterations, maxEvaluations } = settings;
  const n = x0.length;
  const x = Float64Array.from(x0);
  const grad = Float64Array.from(grad0);
  const d = new Float64Array(n);
  const buffers = { point: new Float64Array(n), grad: new Float64Array(n), trial: new Float64Array(n), trialGrad: new Float64Array(n) };
  const memory = new PairMemory(settings.memory, n);
  let evaluations = 1;
  const evaluate = (at: Float64Array, out: Float64Array): number => {
    evaluations += 1;
    return fg(at, out);
  };
  const canEvaluate = (): boolean => evaluations < maxEvaluations;

  let value = value0;
  let gradNorm = norm(grad);
  const history = settings.history ? [value] : undefined;
  // 1 / gamma: the curvature the initial inverse Hessian gamma I assumes.
  let curvature = Math.max(1, gradNorm);

  const finish = (reason: StopReason, iterations: number): MinimizeResult => ({
    x: Float64Array.from(x),
    value,
    gradNorm,
    iterations,
    evaluations,
    converged: reason === 'gradient-tolerance' || reason === 'value-tolerance',
    reason,
    history,
    restarts: 0,
    L: curvature,
  });

  for (let k = 0; ; k++) {
    if (gradNorm <= gradTol) return finish('gradient-tolerance', k);
    if (k >= maxIterations) return finish('max-iterations', k);
    if (!canEvaluate()) return finish('max-evaluations', k);

    memory.direction(grad, 1 / curvature, d);
    let slope = dot(grad, d);
    if (!(slope < 0)) {
      memory.clear();
      curvature = Math.max(1, gradNorm);
      memory.direction(grad, 1 / curvature, d);
      slope = dot(grad, d);
    }
    const outcome = wolfeSearch(evaluate, canEvaluate, x, d, value, slope, settings, buffers);
    if (outcome.step === 0) {
      const reason = outcome.status === 'budget' ? 'max-evaluations' : outcome.status === 'non-finite' ? 'non-finite' : 'line-search-failed';
      return finish(reason, k);
    }
    const pairCurvature = memory.push(x, buffers.point, grad, buffers.grad);
    if (Number.isFinite(pairCurvature)) curvature = pairCurvature;
    x.set(buffers.point);
    grad.set(buffers.grad);
    const previousValue = value;
    value = outcome.value;
    gradNorm = norm(grad);
    history?.push(value);
    if (outcome.status === 'budget') return finish(gradNorm <= gradTol ? 'gradient-tolerance' : 'max-evaluations', k + 1);
    if (valueTol > 0 && Math.abs(value - previousValue) <= valueTol * Math.max(1, Math.abs(previousValue))) {
      return finish('value-tolerance', k + 1);
    }
  }
}
