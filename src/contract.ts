/**
 * The one contract of "an optimizer" in this library: something that updates named
 * params in place and has a state dict. Every rule's optimizer (`new Adam()`), Muon and
 * every wrapper (`Lookahead`, `partition`, `EMA`, `SWA`, `GradientAccumulation`) is one,
 * and every wrapper takes one, so wrappers nest (a Lookahead inside a partition, an EMA
 * around both). `tfOptimizer` takes a rule's optimizer, Muon or a partition of them.
 *
 * The split of a step into `check` and `update` is what makes a composite step all or
 * nothing: a wrapper over several optimizers checks every member's part of the call
 * before any member writes (compare optax, where an update is a pure function and the
 * question does not arise; torch's optimizers have no such contract).
 */
import type { ParamSet } from './types.ts';

/** What `update` does when a gradient holds NaN or Infinity. */
export type NonFinitePolicy =
  /**
   * a non-finite gradient: throw an UpdateError naming the parameter and first index,
   * nothing written (default); a step whose own arithmetic overflows: throw an
   * UpdateError saying the step was applied
   */
  | 'error'
  /**
   * a non-finite gradient: skip the whole step, count it in `skippedSteps` (optax's
   * `apply_if_finite`); a step that overflows cannot be skipped (it is written in the
   * same pass): the same UpdateError as 'error'
   */
  | 'skip'
  /** do not look (fastest; NaN then flows into params and state) */
  | 'ignore';

export interface OptimizerLike<D = unknown> {
  /** What a non-finite gradient does to a step (see NonFinitePolicy). */
  readonly nonFinite: NonFinitePolicy;
  /**
   * Checks the step `update(params, grads, storeNames)` would take, writing nothing
   * (params, state and counters stay as they are): throws the error `update` would
   * throw before writing, returns false when `update` would skip the step
   * (`nonFinite: 'skip'` and a non-finite gradient), true when it would apply it.
   */
  check(params: ParamSet, grads: ParamSet, storeNames?: readonly string[]): boolean;
  /**
   * One step, in place, for every parameter in `params` (or, on a ParamStore, the
   * parameters named in `storeNames`). Returns false when the step was skipped. Throws
   * before writing anything when the call is not valid.
   */
  update(params: ParamSet, grads: ParamSet, storeNames?: readonly string[]): boolean;
  /** A copy of the whole state, for `loadStateDict` and the state files (src/state.ts). */
  stateDict(): D;
  /** Replaces the whole state with a saved one, validated first: a refusal changes nothing. */
  loadStateDict(value: unknown): void;
  /** Forgets the state of one parameter, or all of it. */
  reset(name?: string): void;
  /** State buffers per parameter kept at most (what a ParamStore reserves for this optimizer). */
  stateBuffersPerParam(): number;
}

/** Whether a value has the methods of an OptimizerLike (for wrappers' argument checks). */
export function isOptimizerLike(value: unknown): value is OptimizerLike {
  if (value === null || typeof value !== 'object') return false;
  const candidate = value as Record<string, unknown>;
  return (
    typeof candidate.update === 'function' &&
    typeof candidate.check === 'function' &&
    typeof candidate.stateDict === 'function' &&
    typeof candidate.loadStateDict === 'function' &&
    typeof candidate.reset === 'function' &&
    typeof candidate.stateBuffersPerParam === 'function'
  );
}
