/** The stopping rules and the start every method of `minimize` shares. */
import { optionError } from '../errors.ts';
import { numberOption } from '../validate.ts';
import type { ValueAndGradient } from './types.ts';
import { allFinite } from './vectors.ts';

export interface StoppingRules {
  gradTol: number;
  valueTol: number;
  maxIterations: number;
  maxEvaluations: number;
  history: boolean;
}

export interface StoppingOptions {
  gradTol?: number;
  valueTol?: number;
  maxIterations?: number;
  maxEvaluations?: number;
  history?: boolean;
}

export function stoppingRules(owner: string, options: StoppingOptions): StoppingRules {
  const gradTol = numberOption(owner, 'gradTol', options.gradTol, 1e-8, { min: 0 });
  const valueTol = numberOption(owner, 'valueTol', options.valueTol, 0, { min: 0 });
  const maxIterations = options.maxIterations ?? 10_000;
  if (!Number.isSafeInteger(maxIterations) || maxIterations < 0) throw optionError(owner, 'maxIterations', maxIterations, 'an integer >= 0');
  const maxEvaluations = options.maxEvaluations ?? Infinity;
  if (maxEvaluations !== Infinity && (!Number.isSafeInteger(maxEvaluations) || maxEvaluations < 1)) {
    throw optionError(owner, 'maxEvaluations', maxEvaluations, 'an integer >= 1');
  }
  return { gradTol, valueTol, maxIterations, maxEvaluations, history: options.history === true };
}

/** f(x0) into gradOut; throws when f or its gradient is not finite there (no method can start). */
export function evaluateStart(owner: string, fg: ValueAndGradient, x0: Float64Array, gradOut: Float64Array): number {
  const value = fg(x0, gradOut);
  if (!Number.isFinite(value) || !allFinite(gradOut)) {
    throw new RangeError(`${owner}: f or its gradient is not finite at x0 (f = ${value})`);
  }
  return value;
}
