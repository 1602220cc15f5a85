/**
 * The ParamStore update path of the optimizer: the checks of a store step, the
 * finiteness scan of its grads region, and the step itself, one kernel call per run of
 * parameters sharing hyperparameters (the runs are planned in plan.ts). The optimizer
 * (../optimizer.ts) owns the slots and the counters; this holds the plan and the scan
 * ranges of the last store update.
 */
import type { NonFinitePolicy } from '../contract.ts';
import type { CommonHyper, RuleState, UpdateRule } from '../rule.ts';
import type { AnyParamStore } from '../store.ts';
import type { FloatArray } from '../types.ts';
import { checkOverridesUsed } from './checks.ts';
import { firstNonFinite, locateOverflow, nonFiniteGradientError, overflowError, type Overflow } from './finite.ts';
import type { GlobalScalars } from './global.ts';
import { checkStorePlan, kernelsFor, makePlan, planCurrent, type Planner, type Run, type StorePlan } from './plan.ts';

/** The ranges of the grads region a store update scans: its parameters, neighbours merged. */
interface ScanRanges {
  readonly store: AnyParamStore;
  readonly names: readonly string[];
  /** [from, to) pairs of element offsets. */
  readonly ranges: readonly number[];
  /** The whole grads region, for the JS scan (made once: a view per step would allocate). */
  readonly grads: FloatArray;
}

function scanRangesOf(store: AnyParamStore, names: readonly string[]): ScanRanges {
  const grads = store.view(1, 0, store.regionLength);
  if (names === store.names) return { store, names, ranges: [0, store.regionLength], grads };
  const ranges: number[] = [];
  let previous = -2;
  for (const name of names) {
    const index = store.names.indexOf(name);
    const from = store.offsets[name]!;
    const to = from + store.lengths[name]!;
    if (index === previous + 1 && ranges.length > 0) ranges[ranges.length - 1] = to;
    else ranges.push(from, to);
    previous = index;
  }
  return { store, names, ranges, grads };
}

/** What the store path reads of its optimizer, given once at construction. */
export interface StorePathOptions<H extends CommonHyper, S extends RuleState> {
  readonly planner: Planner<H, S>;
  readonly backend: string;
  readonly nonFinite: NonFinitePolicy;
  readonly overrides: readonly { readonly matches: (name: string) => boolean; readonly hyper: H }[];
  readonly global: GlobalScalars<H, S> | undefined;
  /** The optimizer's checked lr of this step under `hyper`, written into `target`. */
  setLearningRate(target: { lr: number }, hyper: H, name: string): void;
}

// ---------------------------------------------------------------------------------
// ParamStore updates: one kernel call per run of parameters sharing hyperparameters.

export class StorePath<H extends CommonHyper, S extends RuleState> {
  readonly #o: StorePathOptions<H, S>;
  readonly #owner: string;
  #plan: StorePlan<H, S> | undefined;
  #scan: ScanRanges | undefined;
  /** Where the last apply wrote a NaN or an Infinity, thrown by throwOverflow. */
  #overflow: { readonly name: string; readonly at: Overflow; readonly index: number } | undefined;

  constructor(options: StorePathOptions<H, S>) {
    this.#o = options;
    this.#owner = options.planner.owner;
  }

  /** Drops the plan (the slots it refers to changed). */
  forgetPlan(): void {
    this.#plan = undefined;
  }

  #planFor(store: AnyParamStore, names: readonly string[]): StorePlan<H, S> | undefined {
    const plan = this.#plan;
    return plan !== undefined && plan.store === store && plan.names === names && planCurrent(plan, this.#o.planner.slots) ? plan : undefined;
  }

  /** Every check of a store step, writing nothing; false when the step is to be skipped. */
  check(store: AnyParamStore, names: readonly string[]): boolean {
    const o = this.#o;
    // The gradients are scanned first: a refused step must leave the optimizer exactly
    // as it was, and a skipped one needs no other check.
    if (o.nonFinite !== 'ignore') {
      const index = this.#firstNonFiniteGradient(store, names);
      if (index >= 0) {
        if (o.nonFinite === 'skip') return false;
        const name = store.nameAt(index)!;
        const local = index - store.offsets[name]!;
        throw nonFiniteGradientError(this.#owner, name, local, store.grads[name]![local]!);
      }
    }
    const plan = this.#planFor(store, names);
    if (plan !== undefined) {
      // The plan's checks held when it was made and nothing they read has changed since.
      const runs = plan.runs;
      for (let r = 0; r < runs.length; r++) {
        const run = runs[r]!;
        o.setLearningRate(run, run.hyper, run.slots[0]!.name);
      }
      return true;
    }
    checkStorePlan(o.planner, o.backend, store, names);
    checkOverridesUsed(this.#owner, o.overrides, names);
    const probe = { lr: 0 };
    for (const name of names) o.setLearningRate(probe, o.planner.slots.get(name)?.hyper ?? o.planner.hyperFor(name), name);
    return true;
  }

  /** The first non-finite gradient among `names` of the store, as an offset in the grads region, or -1. */
  #firstNonFiniteGradient(store: AnyParamStore, names: readonly string[]): number {
    let scan = this.#scan;
    if (scan === undefined || scan.store !== store || scan.names !== names) scan = this.#scan = scanRangesOf(store, names);
    const ranges = scan.ranges;
    // The wasm scan reads eight streams at once (and splits across threads when a pool is
    // attached); only when it finds something does firstNonFinite look for the index.
    const kernels = kernelsFor(this.#o.planner.rule as unknown as UpdateRule<never, CommonHyper, RuleState>, this.#o.backend, store);
    for (let r = 0; r < ranges.length; r += 2) {
      const from = ranges[r]!;
      const to = ranges[r + 1]!;
      if (kernels !== null) {
        const at = store.byteOffset(1, from);
        if (kernels.exports.anyNonFinite(at, to - from) === 0) continue;
        const index = kernels.exports.firstNonFinite(at, to - from);
        if (index >= 0) return from + index;
      } else {
        const index = firstNonFinite(scan.grads, from, to);
        if (index >= 0) return index;
      }
    }
    return -1;
  }

  /**
   * Applies the checked step to every run; true when the wasm kernels ran it. The
   * optimizer then counts the step and calls throwOverflow.
   */
  apply(store: AnyParamStore, names: readonly string[]): boolean {
    const o = this.#o;
    let plan = this.#planFor(store, names);
    if (plan === undefined) {
      plan = this.#plan = makePlan(o.planner, store, names);
      const runs = plan.runs;
      for (let r = 0; r < runs.length; r++) {
        const run = runs[r]!;
        o.setLearningRate(run, run.hyper, run.slots[0]!.name);
      }
    }
    // Looked up at every step: a thread pool may attach to the store at any time.
    const kernels = kernelsFor(o.planner.rule as unknown as UpdateRule<never, CommonHyper, RuleState>, o.backend, store);
    const rule = o.planner.rule;
    const runs = plan.runs;
    let overflow: { readonly name: string; readonly at: Overflow; readonly index: number } | undefined;
    const global = o.global;
    if (global !== undefined) {
      // A global rule is perParameter: each run is one parameter, in the order of `names`.
      global.begin();
      for (let r = 0; r < runs.length; r++) global.accumulate(runs[r]!.param, runs[r]!.grad, runs[r]!.state, runs[r]!.hyper, runs[r]!, kernels);
      global.reduce();
    }
    for (let r = 0; r < runs.length; r++) {
      const run: Run<H, S> = runs[r]!;
      const state = run.state;
      const finite = global !== undefined
        ? global.apply(run.param, run.grad, state, run.hyper, run, kernels)
        : kernels !== null
          ? rule.stepWasm!(kernels, run.param as Float32Array, run.grad as Float32Array, state, run.hyper, run)
          : rule.step(run.param, run.grad, state, run.hyper, run);
      if (!finite && o.nonFinite !== 'ignore' && overflow === undefined) {
        // Where, as the parameter's name and its own index (a run spans several parameters).
        const at = locateOverflow(run.param, run.grad, rule.buffersOf(state, run.hyper), rule.bufferNames(run.hyper));
        const first = store.offsets[run.slots[0]!.name]!;
        const name = at === undefined ? undefined : store.nameAt(first + at.index);
        if (at !== undefined && name !== undefined) overflow = { name, at, index: first + at.index - store.offsets[name]! };
      }
      // Every parameter of the run took the step: copy the run's counters to each.
      const slots = run.slots;
      for (let i = 0; i < slots.length; i++) {
        const own = slots[i]!.state!;
        own.step = state.step;
        rule.copyScalars?.(state, own);
      }
    }
    this.#overflow = overflow;
    return kernels !== null;
  }

  /** The step is applied to every run; then, if one wrote a NaN or an Infinity, say where. */
  throwOverflow(): void {
    const overflow = this.#overflow;
    if (overflow === undefined) return;
    this.#overflow = undefined;
    throw overflowError(this.#owner, overflow.name, overflow.at, overflow.index, this.#o.nonFinite);
  }
}
