/** The types `minimize` and its methods share (minimize.ts re-exports the public ones). */

/**
 * 'non-finite': fg gave NaN or Infinity (value or gradient) where no shorter step helps;
 * 'line-search-failed': the line search found no step with a sufficient decrease
 * (backtracking: it shortened the step to nothing, which only a non-deterministic fg
 * causes; 'lbfgs': its Wolfe search ran out of trials, on a non-smooth or noisy f). Both
 * return the last accepted iterate, its value and its L.
 */
export type StopReason = 'gradient-tolerance' | 'value-tolerance' | 'max-iterations' | 'max-evaluations' | 'non-finite' | 'line-search-failed';

/** f and its gradient: writes the gradient of f at x into gradOut and returns f(x). */
export type ValueAndGradient = (x: Float64Array, gradOut: Float64Array) => number;

export interface MinimizeResult {
  x: Float64Array;
  value: number;
  gradNorm: number;
  iterations: number;
  evaluations: number;
  converged: boolean;
  reason: StopReason;
  /** f(x_0), f(x_1), ... when `history` was asked for. */
  history: number[] | undefined;
  restarts: number;
  /**
   * The L of the last step (the line search's estimate, or the given one). For 'lbfgs',
   * the curvature y'y / s'y of the newest pair (s the step, y the change of the gradient),
   * which scales its initial inverse Hessian: a Rayleigh quotient of the Hessian averaged
   * along the step, so between its smallest and largest eigenvalue; before the first
   * step, max(1, ||g(x0)||).
   */
  L: number;
}
