/**
 * Accelerated first-order minimization of a smooth function: Nesterov's method as a
 * solver, with the rates it is known for.
 *
 *     const result = minimize(fg, x0, { method: 'nesterov', L });
 *     // fg(x, gradOut) => f(x), writing the gradient into gradOut
 *
 * Methods, all with step 1 / L (L: a Lipschitz constant of the gradient):
 * - 'gd': x+ = x - g(x) / L. f(x_k) - f* = O(1 / k); on an m-strongly convex f the
 *   iterations to a fixed accuracy grow like kappa = L / m.
 * - 'heavy-ball' (Polyak 1964): x+ = x - a g(x) + b (x - x_prev), with a = 4 / (sqrt(L) +
 *   sqrt(m))^2 and b = ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^2 when `mu` is given
 *   (optimal on quadratics), else a = 1 / L and b = `momentum` (default 0.9).
 * - 'nesterov': x+ = y - g(y) / L, y+ = x+ + beta_k (x+ - x). Without `mu`, beta_k =
 *   (t_k - 1) / t_{k+1} with t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2 (Beck & Teboulle's
 *   sequence, as (k - 1) / (k + 2) asymptotically): f(x_k) - f* <= 2 L ||x_0 - x*||^2 /
 *   (k + 1)^2. With `mu` (strong convexity), beta = (sqrt(kappa) - 1) / (sqrt(kappa) + 1):
 *   iterations grow like sqrt(kappa). Nesterov (1983; "Introductory Lectures", 2004).
 * - `restart: 'function' | 'gradient'` (O'Donoghue & Candes 2015) resets the momentum
 *   when f goes up, or when g(y) . (x+ - x) > 0: the strongly convex rate without
 *   knowing mu.
 *
 * - 'fista' (Beck & Teboulle 2009): 'nesterov' with a proximal step x+ = prox(y - g(y) / L,
 *   1 / L) for F = f + h, given the user's `prox(v, step, out)` for h (`softThreshold(lambda)`
 *   is the prox of lambda ||x||_1, for the lasso). Its stopping measure is the gradient
 *   mapping L (y - x+).
 *
 * - 'lbfgs': limited-memory BFGS with a strong-Wolfe line search (src/minimize/lbfgs.ts and
 *   wolfe.ts); it needs no L, and refuses the options above that are about L and momentum.
 *
 * Step size: the user's `L`, or when it is not known, backtracking (`lineSearch:
 * 'backtracking'`, the default then): start from `L` = 1 and double it until the
 * sufficient-decrease test f(x+) <= f(y) + g(y).(x+ - y) + L/2 ||x+ - y||^2 holds; L
 * only grows. `lineSearch: 'adaptive'` also lets it shrink (halved before every step),
 * with Scheinberg, Goldfarb & Bai's (2014) t-sequence t+ = (1 + sqrt(1 + 4 (L+/L) t^2)) / 2.
 * A non-finite f(x+) or gradient also doubles L (a step out of f's domain), but the search
 * ends once the step no longer moves the point or L would overflow: fg that stays NaN
 * stops the run with 'non-finite' instead of doubling L forever.
 *
 * Each iteration evaluates fg once at the point the gradient is needed and once at the
 * new iterate (for its value: the history, restarts, stopping and the line search).
 */
import { optionError } from './errors.ts';
import { lbfgs, lbfgsOptions } from './minimize/lbfgs.ts';
import { evaluateStart, stoppingRules } from './minimize/stopping.ts';
import type { MinimizeResult, StopReason, ValueAndGradient } from './minimize/types.ts';
import { allFinite, norm } from './minimize/vectors.ts';
import { numberOption } from './validate.ts';

export type { MinimizeResult, StopReason, ValueAndGradient } from './minimize/types.ts';
export type Method = 'gd' | 'heavy-ball' | 'nesterov' | 'fista' | 'lbfgs';
/** 'wolfe' is the line search of 'lbfgs' (and only its). */
export type LineSearch = 'none' | 'backtracking' | 'adaptive' | 'wolfe';
/** The proximal operator of h: writes argmin_u h(u) + ||u - v||^2 / (2 step) into out. */
export type Prox = (v: Float64Array, step: number, out: Float64Array) => void;

/** The prox of lambda ||x||_1: soft thresholding by step * lambda. */
export function softThreshold(lambda: number): Prox {
  if (!(lambda >= 0) || !Number.isFinite(lambda)) throw optionError('softThreshold', 'lambda', lambda, 'a finite number >= 0');
  return (v, step, out) => {
    const t = step * lambda;
    for (let i = 0; i < v.length; i++) {
      const x = v[i]!;
      out[i] = x > t ? x - t : x < -t ? x + t : 0;
    }
  };
}
export type Restart = 'none' | 'function' | 'gradient';
export interface MinimizeOptions {
  method?: Method;
  /** Lipschitz constant of the gradient; without it, a line search finds one. */
  L?: number;
  /** Default 'none' with L, 'backtracking' without. */
  lineSearch?: LineSearch;
  /** 'fista': the prox of the non-smooth part. */
  prox?: Prox;
  /** Strong convexity constant, if known (nesterov, heavy-ball). */
  mu?: number;
  /** heavy-ball without mu: the momentum b (default 0.9). */
  momentum?: number;
  restart?: Restart;
  /** Stop when the gradient norm at the iterate is at most this (default 1e-8). */
  gradTol?: number;
  /** Stop when |f_{k+1} - f_k| <= valueTol * max(1, |f_k|) (default 0: off). */
  valueTol?: number;
  maxIterations?: number;
  maxEvaluations?: number;
  /** Record f at every iterate x_0, x_1, ... (default false). */
  history?: boolean;
  /** 'lbfgs': the number of (step, gradient change) pairs kept (default 10). */
  memory?: number;
  /** 'lbfgs': the sufficient-decrease constant of the Wolfe conditions (default 1e-4, in (0, 1/2)). */
  c1?: number;
  /** 'lbfgs': the curvature constant of the Wolfe conditions (default 0.9, in (c1, 1)); small: a nearly exact line search. */
  c2?: number;
}

const OWNER = 'minimize';
const KNOWN = ['method', 'L', 'lineSearch', 'prox', 'mu', 'momentum', 'restart', 'gradTol', 'valueTol', 'maxIterations', 'maxEvaluations', 'history', 'memory', 'c1', 'c2'];
const LBFGS_ONLY = ['memory', 'c1', 'c2'] as const;

/** Element-wise equality: the step no longer moves the point. */
function sameValues(a: Float64Array, b: Float64Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function minimize(fg: ValueAndGradient, x0: ArrayLike<number>, options: MinimizeOptions = {}): MinimizeResult {
  if (typeof fg !== 'function') throw new TypeError(`${OWNER}: fg must be a function (x, gradOut) => f(x), got ${typeof fg}`);
  if (options === null || typeof options !== 'object') throw new TypeError(`${OWNER}: options must be an object`);
  for (const key of Object.keys(options)) {
    if (!KNOWN.includes(key)) throw new RangeError(`${OWNER}: unknown option '${key}' (known options: ${KNOWN.join(', ')})`);
  }
  const n = x0?.length;
  if (typeof n !== 'number' || n < 1) throw optionError(OWNER, 'x0', x0, 'a non-empty array of numbers');
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(x0[i])) throw optionError(OWNER, `x0[${i}]`, x0[i], 'a finite number');
  }
  const method = options.method ?? 'nesterov';
  if (!['gd', 'heavy-ball', 'nesterov', 'fista', 'lbfgs'].includes(method)) throw optionError(OWNER, 'method', method, "'gd', 'heavy-ball', 'nesterov', 'fista' or 'lbfgs'");
  if (method === 'lbfgs') {
    const settings = { ...lbfgsOptions(OWNER, options), ...stoppingRules(OWNER, options) };
    const start = Float64Array.from(x0);
    const grad = new Float64Array(n);
    return lbfgs(fg, start, evaluateStart(OWNER, fg, start, grad), grad, settings);
  }
  for (const name of LBFGS_ONLY) {
    if (options[name] !== undefined) throw optionError(OWNER, name, options[name], "undefined unless method is 'lbfgs'");
  }
  const lineSearch = options.lineSearch ?? (options.L === undefined ? 'backtracking' : 'none');
  if (!['none', 'backtracking', 'adaptive'].includes(lineSearch)) throw optionError(OWNER, 'lineSearch', lineSearch, "'none', 'backtracking' or 'adaptive' ('wolfe' is for 'lbfgs')");
  if (lineSearch === 'none' && options.L === undefined) throw optionError(OWNER, 'L', undefined, "a Lipschitz constant of the gradient (or a lineSearch other than 'none')");
  let L = numberOption(OWNER, 'L', options.L, 1, { min: Number.MIN_VALUE });
  const prox = options.prox;
  if (method === 'fista' && typeof prox !== 'function') throw optionError(OWNER, 'prox', prox, "a function (v, step, out) for method 'fista'");
  if (method !== 'fista' && prox !== undefined) throw optionError(OWNER, 'prox', 'a function', "undefined unless method is 'fista'");
  if (method === 'fista' && options.restart === 'function') {
    throw optionError(OWNER, 'restart', 'function', "'gradient' or 'none' for 'fista' (the function scheme needs the value of the non-smooth part)");
  }
  if (lineSearch !== 'none' && method === 'heavy-ball') throw optionError(OWNER, 'lineSearch', lineSearch, "'none' for 'heavy-ball' (it needs L)");
  const mu = options.mu === undefined ? undefined : numberOption(OWNER, 'mu', options.mu, 0, { min: 0, max: L });
  const momentum = numberOption(OWNER, 'momentum', options.momentum, 0.9, { min: 0, below: 1 });
  const restart = options.restart ?? 'none';
  if (!['none', 'function', 'gradient'].includes(restart)) throw optionError(OWNER, 'restart', restart, "'none', 'function' or 'gradient'");
  const { gradTol, valueTol, maxIterations, maxEvaluations } = stoppingRules(OWNER, options);

  const x = Float64Array.from(x0);
  const xPrevious = Float64Array.from(x0);
  const y = Float64Array.from(x0);
  const xNext = new Float64Array(n);
  const gradY = new Float64Array(n);
  const gradX = new Float64Array(n);
  const gradNext = new Float64Array(n);
  const forward = new Float64Array(n);
  let evaluations = 0;
  const evaluate = (at: Float64Array, out: Float64Array): number => {
    evaluations += 1;
    return fg(at, out);
  };

  let value = evaluateStart(OWNER, evaluate, x, gradX);
  const history = options.history ? [value] : undefined;
  let gradNorm = norm(gradX);
  let t = 1;
  let restarts = 0;
  const accelerated = method === 'nesterov' || method === 'fista';
  const kappa = mu !== undefined && mu > 0 ? L / mu : undefined;
  const strongBeta = kappa !== undefined ? (Math.sqrt(kappa) - 1) / (Math.sqrt(kappa) + 1) : undefined;
  const heavyStep = kappa !== undefined ? 4 / (Math.sqrt(L) + Math.sqrt(mu!)) ** 2 : 1 / L;
  const heavyMomentum = strongBeta !== undefined ? strongBeta * strongBeta : momentum;

  const finish = (reason: StopReason, iterations: number): MinimizeResult => ({
    x: Float64Array.from(x),
    value,
    gradNorm,
    iterations,
    evaluations,
    converged: reason === 'gradient-tolerance' || reason === 'value-tolerance',
    reason,
    history,
    restarts,
    L,
  });

  /** Doubles L for a shorter step; false when that would overflow (the step is already ~0). */
  const doubleL = (): boolean => {
    if (!(L * 2 <= Number.MAX_VALUE)) return false;
    L *= 2;
    return true;
  };

  /** x+ from the base point `from` with gradient `grad` and step 1 / L (prox for fista). */
  const stepFrom = (from: Float64Array, grad: Float64Array): void => {
    if (prox !== undefined) {
      for (let i = 0; i < n; i++) forward[i] = from[i]! - grad[i]! / L;
      prox(forward, 1 / L, xNext);
    } else {
      for (let i = 0; i < n; i++) xNext[i] = from[i]! - grad[i]! / L;
    }
  };

  for (let k = 0; ; k++) {
    if (gradNorm <= gradTol) return finish('gradient-tolerance', k);
    if (k >= maxIterations) return finish('max-iterations', k);
    if (evaluations + 2 > maxEvaluations) return finish('max-evaluations', k);

    const base = accelerated ? y : x;
    let baseValue = value;
    const baseGrad = accelerated ? gradY : gradX;
    if (accelerated) {
      baseValue = evaluate(y, gradY);
      if (!Number.isFinite(baseValue) || !allFinite(gradY)) return finish('non-finite', k);
    }
    const previousL = L;
    // Never below the smallest double: at L = 0 the doubling below could not grow it again.
    if (lineSearch === 'adaptive') L = Math.max(L / 2, Number.MIN_VALUE);
    /** Stops the step here: x, value and gradNorm stay those of the last accepted iterate, L its L. */
    const giveUp = (reason: StopReason): MinimizeResult => {
      L = previousL;
      return finish(reason, k);
    };
    let nextValue: number;
    // Bounded: every retry doubles L, and L stops at the largest double (at most ~2100 tries).
    for (;;) {
      if (method === 'heavy-ball') {
        for (let i = 0; i < n; i++) xNext[i] = x[i]! - heavyStep * gradX[i]! + heavyMomentum * (x[i]! - xPrevious[i]!);
      } else {
        stepFrom(base, baseGrad);
      }
      nextValue = evaluate(xNext, gradNext);
      if (!Number.isFinite(nextValue) || !allFinite(gradNext) || !allFinite(xNext)) {
        // A step too long for f's domain: shorten it, unless it no longer moves (fg is not
        // finite at the very point where it was before: shortening cannot help), L cannot
        // grow, or the budget is spent.
        if (lineSearch !== 'none' && evaluations < maxEvaluations && !sameValues(xNext, base) && doubleL()) continue;
        return giveUp('non-finite');
      }
      if (lineSearch === 'none') break;
      // sufficient decrease: f(x+) <= f(y) + g(y).(x+ - y) + L/2 ||x+ - y||^2
      let linear = 0;
      let square = 0;
      for (let i = 0; i < n; i++) {
        const d = xNext[i]! - base[i]!;
        linear += baseGrad[i]! * d;
        square += d * d;
      }
      if (nextValue <= baseValue + linear + (L / 2) * square * (1 + 1e-12) + 1e-15 * Math.abs(baseValue)) break;
      if (evaluations >= maxEvaluations) return finish('max-evaluations', k);
      // Only a non-deterministic fg (or prox) gets here: for a step that no longer moves,
      // f(x+) = f(y) passes the test. Nothing shorter can pass it either.
      if (sameValues(xNext, base) || !doubleL()) return giveUp('line-search-failed');
    }

    // The stopping measure: the gradient at x+ (smooth) or the gradient mapping (fista).
    let measure = 0;
    if (prox !== undefined) {
      for (let i = 0; i < n; i++) measure += (L * (base[i]! - xNext[i]!)) ** 2;
      measure = Math.sqrt(measure);
    } else {
      measure = norm(gradNext);
    }

    // Momentum for the next y, with adaptive restart.
    if (accelerated) {
      let reset = false;
      if (restart === 'function') reset = nextValue > value;
      else if (restart === 'gradient') {
        // generalized gradient L (y - x+) against the step x+ - x
        let dot = 0;
        for (let i = 0; i < n; i++) dot += (base[i]! - xNext[i]!) * (xNext[i]! - x[i]!);
        reset = dot > 0;
      }
      let beta: number;
      if (reset) {
        t = 1;
        beta = 0;
        restarts += 1;
      } else if (strongBeta !== undefined) {
        beta = strongBeta;
      } else {
        const ratio = lineSearch === 'adaptive' ? L / previousL : 1;
        const tNext = (1 + Math.sqrt(1 + 4 * ratio * t * t)) / 2;
        beta = (t - 1) / tNext;
        t = tNext;
      }
      for (let i = 0; i < n; i++) y[i] = xNext[i]! + beta * (xNext[i]! - x[i]!);
    }
    xPrevious.set(x);
    x.set(xNext);
    gradX.set(gradNext);
    const previousValue = value;
    value = nextValue;
    gradNorm = measure;
    history?.push(value);
    if (valueTol > 0 && Math.abs(value - previousValue) <= valueTol * Math.max(1, Math.abs(previousValue))) {
      return finish('value-tolerance', k + 1);
    }
  }
}
