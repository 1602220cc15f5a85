/**
 * A line search for the strong Wolfe conditions along x + a d (d a descent direction,
 * phi(a) = f(x + a d), phi'(a) = g(x + a d).d):
 *
 *     sufficient decrease  phi(a) <= phi(0) + c1 a phi'(0)
 *     curvature            |phi'(a)| <= c2 |phi'(0)|
 *
 * Nocedal & Wright, "Numerical Optimization" (2006), Algorithm 3.5 (bracketing: try
 * a = 1, 2, 4, ... until phi goes up or its slope turns) and 3.6 (zoom: shrink the
 * bracket by cubic, then quadratic interpolation, then bisection), as optax 0.2.8's
 * `zoom_linesearch` does it, rule for rule: its interval updates, its safeguards (an
 * interpolated point within 20% (cubic) or 10% (quadratic) of the bracket's ends is
 * replaced), its fallbacks (a bracket shorter than 1e-5 ends the search at the best
 * point with a sufficient decrease; at most 20 trials).
 *
 * Near a minimum phi(a) - phi(0) is the difference of two nearly equal values: rounding
 * alone makes the sufficient-decrease test fail there, and the search would give up
 * before the gradient is small. Hager & Zhang's approximate Wolfe condition, "A new
 * conjugate gradient method with guaranteed descent and an efficient line search"
 * (SIAM J. Optim. 16, 2005, eq. 4.1) and "Algorithm 851: CG_DESCENT" (ACM TOMS 32,
 * 2006, eq. 23), tests the slope instead, which keeps its precision:
 *
 *     phi'(a) <= (2 c1 - 1) phi'(0)   and   phi(a) <= phi(0) + eps |phi(0)|   (eps = 1e-6)
 *
 * A trial passes the decrease test when either form holds (optax's rule). The second
 * half keeps the approximate form to points no higher than phi(0) up to eps, that is,
 * to where the values are at rounding level of each other.
 *
 * The cubic interpolant's minimiser is computed as a - C / (B + sqrt(B^2 - 3 A C)) when
 * B > 0: the same root as scipy's and optax's (-B + sqrt(B^2 - 3 A C)) / (3 A), without
 * the cancellation that makes theirs meaningless when the cubic term A vanishes (on a
 * quadratic, where the interpolant is exact).
 *
 * A trial where f or its gradient is not finite fails both tests and ends the bracket
 * there (the search then bisects towards a), as optax treats it.
 */

/** The constants of the search: Nocedal & Wright's c1 and c2, and optax's defaults for the rest. */
export interface WolfeConstants {
  c1: number;
  c2: number;
}

const APPROXIMATE_DECREASE = 1e-6;
const MAX_TRIALS = 20;
const SHORTEST_BRACKET = 1e-5;
const GROWTH = 2;

/**
 * 'wolfe': the point written into `point` / `grad` satisfies both conditions (or the
 * approximate ones). 'sufficient-decrease': the trials ran out or the bracket shrank to
 * nothing; the point is the lowest trial with a sufficient decrease. 'failed': no trial
 * had a sufficient decrease (the last was finite); 'non-finite': nor that, and the last
 * trial was not finite; 'budget': the caller's evaluation budget ended the search, and
 * `point` holds the lowest trial with a sufficient decrease when `step` > 0.
 */
export type WolfeStatus = 'wolfe' | 'sufficient-decrease' | 'failed' | 'non-finite' | 'budget';

export interface WolfeOutcome {
  status: WolfeStatus;
  /** The accepted step a (0 when nothing was accepted). */
  step: number;
  /** f at the accepted point. */
  value: number;
}

/** Buffers the search writes into, each of the problem's length. */
export interface WolfeBuffers {
  /** The accepted point x + a d, on return. */
  point: Float64Array;
  /** The gradient there. */
  grad: Float64Array;
  /** The trial point and its gradient, while searching. */
  trial: Float64Array;
  trialGrad: Float64Array;
}

/** Where the interpolating cubic through (a, fa) with slope fpa there, (b, fb), (c, fc) has its minimum (NaN when none). */
export function cubicMinimizer(a: number, fa: number, fpa: number, b: number, fb: number, c: number, fc: number): number {
  const db = b - a;
  const dc = c - a;
  const denominator = (db * dc) ** 2 * (db - dc);
  const rb = fb - fa - fpa * db;
  const rc = fc - fa - fpa * dc;
  const cubic = (dc * dc * rb - db * db * rc) / denominator;
  const square = (-(dc ** 3) * rb + db ** 3 * rc) / denominator;
  const root = Math.sqrt(square * square - 3 * cubic * fpa);
  return square > 0 ? a - fpa / (square + root) : a + (-square + root) / (3 * cubic);
}

/** Where the parabola through (a, fa) with slope fpa there and (b, fb) has its minimum. */
export function quadraticMinimizer(a: number, fa: number, fpa: number, b: number, fb: number): number {
  const db = b - a;
  const curvature = (fb - fa - fpa * db) / (db * db);
  return a - fpa / (2 * curvature);
}

/**
 * Searches along d from x, where f = value0 with gradient grad0 and slope0 = grad0.d < 0.
 * `evaluate(at, gradOut)` is f and its gradient (counted by the caller); `canEvaluate()`
 * says whether the budget allows one more call.
 */
export function wolfeSearch(
  evaluate: (at: Float64Array, gradOut: Float64Array) => number,
  canEvaluate: () => boolean,
  x: Float64Array,
  d: Float64Array,
  value0: number,
  slope0: number,
  constants: WolfeConstants,
  buffers: WolfeBuffers,
): WolfeOutcome {
  const { c1, c2 } = constants;
  const { point, grad, trial, trialGrad } = buffers;
  const n = x.length;
  let safeStep = 0;
  let safeValue = value0;
  const keepSafe = (step: number, value: number): void => {
    safeStep = step;
    safeValue = value;
    point.set(trial);
    grad.set(trialGrad);
  };

  /** Evaluates phi at a; a non-finite value or gradient reads as +Infinity (and NaN slope). */
  const phi = (a: number): { value: number; slope: number; finite: boolean } => {
    for (let i = 0; i < n; i++) trial[i] = x[i]! + a * d[i]!;
    let value = evaluate(trial, trialGrad);
    let slope = 0;
    for (let i = 0; i < n; i++) slope += trialGrad[i]! * d[i]!;
    const finite = Number.isFinite(value) && Number.isFinite(slope);
    if (!finite) {
      value = Infinity;
      slope = NaN;
    }
    return { value, slope, finite };
  };
  /** How far the decrease test fails (0: it holds; Infinity: not finite). */
  const decreaseError = (a: number, value: number, slope: number): number => {
    const armijo = value - value0 - c1 * a * slope0;
    const approximate = Math.max(slope - (2 * c1 - 1) * slope0, value - value0 - APPROXIMATE_DECREASE * Math.abs(value0));
    const error = Math.max(Math.min(armijo, approximate), 0);
    return Number.isNaN(error) ? Infinity : error;
  };
  const curvatureError = (slope: number): number => {
    const error = Math.max(Math.abs(slope) - c2 * Math.abs(slope0), 0);
    return Number.isNaN(error) ? Infinity : error;
  };
  const giveUp = (status: WolfeStatus, lastFinite: boolean): WolfeOutcome => {
    if (safeStep > 0) return { status: status === 'budget' ? 'budget' : 'sufficient-decrease', step: safeStep, value: safeValue };
    return { status: status === 'budget' ? 'budget' : lastFinite ? 'failed' : 'non-finite', step: 0, value: value0 };
  };
  const accept = (step: number, value: number): WolfeOutcome => {
    point.set(trial);
    grad.set(trialGrad);
    return { status: 'wolfe', step, value };
  };

  // Bracketing (Algorithm 3.5): the previous trial, starting at a = 0.
  let previous = 0;
  let previousValue = value0;
  let previousSlope = slope0;
  let low = 0;
  let lowValue = value0;
  let lowSlope = slope0;
  let high = 0;
  let highValue = value0;
  let count = 0;
  let lastFinite = true;
  for (;;) {
    if (!canEvaluate()) return giveUp('budget', true);
    const a = count === 0 ? 1 : GROWTH * previous;
    const { value, slope, finite } = phi(a);
    lastFinite = finite;
    const decrease = decreaseError(a, value, slope);
    const curvature = curvatureError(slope);
    if (decrease <= 0 && curvature <= 0) return accept(a, value);
    if (decrease <= 0) keepSafe(a, value);
    const toHigh = decrease > 0 || (value >= previousValue && count > 0);
    count += 1;
    if (toHigh) {
      [low, lowValue, lowSlope, high, highValue] = [previous, previousValue, previousSlope, a, value];
      break;
    }
    if (slope >= 0) {
      [low, lowValue, lowSlope, high, highValue] = [a, value, slope, previous, previousValue];
      break;
    }
    if (count >= MAX_TRIALS) return giveUp('failed', finite);
    [previous, previousValue, previousSlope] = [a, value, slope];
  }
  if (count >= MAX_TRIALS) return giveUp('failed', lastFinite);

  // Zoom (Algorithm 3.6) into [low, high] (either order): low has the lowest value with
  // a sufficient decrease so far, and phi'(low) (high - low) < 0.
  let reference = low;
  let referenceValue = lowValue;
  for (;;) {
    if (!canEvaluate()) return giveUp('budget', true);
    const span = Math.abs(high - low);
    const left = Math.min(low, high);
    const right = Math.max(low, high);
    const tooShort = span <= SHORTEST_BRACKET;
    // Past a non-finite trial the interpolants mean nothing: bisect.
    let a = Number.isFinite(highValue) && Number.isFinite(referenceValue) ? cubicMinimizer(low, lowValue, lowSlope, high, highValue, reference, referenceValue) : NaN;
    if (!(a > left + 0.2 * span && a < right - 0.2 * span)) {
      a = Number.isFinite(highValue) ? quadraticMinimizer(low, lowValue, lowSlope, high, highValue) : NaN;
      if (!(a > left + 0.1 * span && a < right - 0.1 * span)) a = (low + high) / 2;
    }
    const { value, slope, finite } = phi(a);
    const decrease = decreaseError(a, value, slope);
    const curvature = curvatureError(slope);
    if (decrease <= 0 && curvature <= 0) return accept(a, value);
    if (decrease <= 0 && value < safeValue) keepSafe(a, value);
    count += 1;
    const toHigh = decrease > 0 || value >= lowValue;
    const lowToHigh = !toHigh && slope * (high - low) >= 0;
    if (toHigh || lowToHigh) {
      [reference, referenceValue] = [high, highValue];
    } else {
      [reference, referenceValue] = [low, lowValue];
    }
    if (toHigh) {
      [high, highValue] = [a, value];
    } else {
      if (lowToHigh) [high, highValue] = [low, lowValue];
      [low, lowValue, lowSlope] = [a, value, slope];
    }
    if (count >= MAX_TRIALS || (tooShort && safeStep > 0)) return giveUp('failed', finite);
  }
}
