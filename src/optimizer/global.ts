/**
 * The global phase of a step (a rule's `global`, src/rule.ts): pass 1 over every
 * parameter adds to the step's totals, the optimizer-level scalars are reduced from them
 * once, pass 2 moves every parameter. The optimizer owns one of these beside its slots;
 * it holds the scalars (saved in the state dict's `scalars`), the copy pass 2 reads of
 * the scalars before the step, and the totals.
 *
 * Exactness: each parameter's sums are summed by the rule over that parameter alone,
 * then added to the totals in parameter order (the plain set's key order, or the names
 * of a ParamStore update). A global rule is `perParameter`, so a ParamStore's runs are
 * single parameters and the totals are the same whether the parameters are plain arrays
 * or a store, however the store lays them out. A reduction is never split across threads:
 * the rule's sums run in JS on the calling thread (its elementwise kernels may split).
 *
 * Nothing here runs before every check of the step passed (the facade scans every
 * gradient for NaN and Infinity first): a refused or skipped step leaves the scalars as
 * they were.
 */
import { StateError, describeValue } from '../errors.ts';
import type { CommonHyper, GlobalPhase, RuleState, StepScalars } from '../rule.ts';
import type { FloatArray } from '../types.ts';
import type { WasmKernels } from '../wasm/kernels.ts';

export class GlobalScalars<H extends CommonHyper, S extends RuleState> {
  readonly #phase: GlobalPhase<H, S>;
  readonly #hyper: H;
  /** The scalars as of the last step (or as loaded). */
  readonly #values: Float64Array;
  /** The scalars pass 1 of the current step read. */
  readonly #before: Float64Array;
  readonly #sums: Float64Array;
  /** Whether every pass 1 of the current step wrote finite values only. */
  #pass1Finite = true;

  /** `hyper`: the optimizer's defaults (the rule's global options cannot be overridden per parameter). */
  constructor(rule: { readonly name: string; readonly perParameter?: boolean; readonly global?: GlobalPhase<H, S> }, hyper: H) {
    const phase = rule.global!;
    // Runs of several parameters would make the sums depend on the store's grouping.
    if (rule.perParameter !== true) throw new Error(`${rule.name}: a rule with a global phase must be perParameter`);
    this.#phase = phase;
    this.#hyper = hyper;
    this.#values = new Float64Array(phase.scalarNames.length);
    this.#before = new Float64Array(phase.scalarNames.length);
    this.#sums = new Float64Array(phase.sumCount);
    phase.initial(hyper, this.#values);
  }

  /** Back to the values before the first step. */
  reset(): void {
    this.#phase.initial(this.#hyper, this.#values);
  }

  /** Opens a step: the totals at 0, the scalars pass 1 reads saved. */
  begin(): void {
    this.#before.set(this.#values);
    this.#sums.fill(0);
    this.#pass1Finite = true;
  }

  accumulate(param: FloatArray, grad: FloatArray, state: S, hyper: H, step: StepScalars, kernels: WasmKernels | null): void {
    if (!this.#phase.accumulate(param, grad, state, hyper, step, this.#before, this.#sums, kernels)) this.#pass1Finite = false;
  }

  /** After pass 1 over every parameter: the new scalars. */
  reduce(): void {
    this.#values.set(this.#before);
    this.#phase.reduce(this.#hyper, this.#values, this.#sums);
  }

  /**
   * Pass 2 over one parameter. False when it, or any pass 1 of this step, wrote a NaN or
   * an Infinity: the facade then looks for it in every parameter, as after any step.
   */
  apply(param: FloatArray, grad: FloatArray, state: S, hyper: H, step: StepScalars, kernels: WasmKernels | null): boolean {
    return this.#phase.apply(param, grad, state, hyper, step, this.#before, this.#values, kernels) && this.#pass1Finite;
  }

  /** The scalars by name, for the state dict (a record without prototype, as the decoders make). */
  record(): { [name: string]: number } {
    const out = Object.create(null) as { [name: string]: number };
    this.#phase.scalarNames.forEach((name, i) => {
      out[name] = this.#values[i]!;
    });
    return out;
  }

  /**
   * The scalars of a saved state dict, checked (exactly this phase's names, finite, within
   * bounds); throws a StateError and changes nothing. Apply them with `load`.
   */
  parse(owner: string, saved: unknown): Float64Array {
    const names = this.#phase.scalarNames;
    const record = (saved as { scalars?: unknown }).scalars;
    if (record === null || typeof record !== 'object') {
      throw new StateError(`${owner}: the state has no optimizer scalars (expected scalars { ${names.join(', ')} }, got ${describeValue(record)})`);
    }
    const got = Object.keys(record);
    if (got.length !== names.length || names.some((name) => !Object.hasOwn(record, name))) {
      throw new StateError(`${owner}: the state's optimizer scalars are [${got.join(', ')}], expected [${names.join(', ')}]`);
    }
    const values = new Float64Array(names.length);
    names.forEach((name, i) => {
      const value = (record as { [key: string]: unknown })[name];
      const min = Object.hasOwn(this.#phase.scalarBounds, name) ? this.#phase.scalarBounds[name]!.min : -Infinity;
      if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
        throw new StateError(`${owner}: the optimizer scalar '${name}' is ${describeValue(value)}, expected a finite number${min === -Infinity ? '' : ` >= ${min}`}`);
      }
      values[i] = value;
    });
    return values;
  }

  load(values: Float64Array): void {
    this.#values.set(values);
  }
}
