/**
 * ParamStore updates: which kernel calls one step makes (a run of consecutive
 * parameters with the same hyperparameters and counters is one call over one flat
 * range), where each parameter's state lives in the store (this optimizer's own state
 * regions, claimed at the first step), and the state's move into the store when it was
 * made elsewhere (loaded, or a plain-set update before).
 *
 * Split in two so that a refused step changes nothing: `checkStorePlan` checks everything
 * the plan needs and writes nothing; `makePlan` (run only once every check of the step
 * passed) claims regions and moves state.
 */
import { UpdateError } from '../errors.ts';
import type { CommonHyper, RuleState, UpdateRule } from '../rule.ts';
import type { AnyParamStore } from '../store.ts';
import type { Dtype, FloatArray } from '../types.ts';
import { wasmUnavailableReason, type WasmKernels } from '../wasm/kernels.ts';

/** One parameter's place in an optimizer. */
export interface Slot<H, S> {
  readonly name: string;
  readonly hyper: H;
  state: S | undefined;
  dtype: Dtype;
  length: number;
  /** The learning rate of the step being taken (checked before anything is written). */
  lr: number;
}

/**
 * One kernel call of a store update: consecutive parameters with the same
 * hyperparameters and step, as one flat range (alignment gaps included).
 */
export interface Run<H, S> {
  readonly hyper: H;
  readonly slots: Slot<H, S>[];
  readonly param: FloatArray;
  readonly grad: FloatArray;
  /** The run's state: views spanning the run in the store's state regions. */
  readonly state: S;
  /** The learning rate of the step being taken. */
  lr: number;
}

export interface StorePlan<H, S> {
  readonly store: AnyParamStore;
  readonly runs: Run<H, S>[];
  /** The parameters this plan updates: `store.names`, or the subset `update` was given. */
  readonly names: readonly string[];
}

/** What planning needs of the optimizer that plans. */
export interface Planner<H extends CommonHyper, S extends RuleState> {
  readonly rule: UpdateRule<never, H, S>;
  /** 'Adam.update', for messages. */
  readonly owner: string;
  /** The key the optimizer's state regions are claimed under. */
  readonly holder: object;
  readonly slots: Map<string, Slot<H, S>>;
  /** The stores the optimizer holds regions in. */
  readonly stores: Set<AnyParamStore>;
  /** The slot of a parameter, made (with no state) when there is none. */
  slotFor(name: string, param: FloatArray): Slot<H, S>;
  hyperFor(name: string): H;
}

/** The kernels a store update runs on, or null for the JS loops. */
export function kernelsFor(rule: UpdateRule<never, CommonHyper, RuleState>, backend: string, store: AnyParamStore): WasmKernels | null {
  return backend !== 'js' && rule.stepWasm !== undefined && store.dtype === 'float32' ? store.kernels : null;
}

/** Everything a plan for `names` of `store` needs, checked; writes nothing. */
export function checkStorePlan<H extends CommonHyper, S extends RuleState>(planner: Planner<H, S>, backend: string, store: AnyParamStore, names: readonly string[]): void {
  const { rule, owner } = planner;
  if (backend === 'wasm' && kernelsFor(rule, backend, store) === null) {
    throw new UpdateError(
      store.dtype === 'float32'
        ? `${owner}: backend 'wasm' is not available: ${wasmUnavailableReason() ?? 'the kernels failed to instantiate over this store'}`
        : `${owner}: backend 'wasm' needs a float32 ParamStore, this one is float64`,
      '',
    );
  }
  for (const name of names) {
    if (typeof name !== 'string' || !Object.hasOwn(store.params, name)) throw new UpdateError(`${owner}: storeNames names '${String(name)}', which is not a parameter of the store`, String(name));
  }
  for (const name of names) {
    const slot = planner.slots.get(name);
    if (slot?.state !== undefined && (slot.length !== store.lengths[name] || slot.dtype !== store.dtype)) {
      throw new UpdateError(
        `${owner}: parameter '${name}' has ${store.lengths[name]} ${store.dtype} elements in the store, but its optimizer state was made for ${slot.length} ${slot.dtype}`,
        name,
      );
    }
  }
  // A rule of shaped state (rule.ts `ownState`): each parameter's shape, and its state's.
  if (rule.ownState === true) {
    for (const name of names) {
      const slot = planner.slots.get(name);
      const hyper = slot?.hyper ?? planner.hyperFor(name);
      const shape = rule.shapeOf!(hyper, name, store.lengths[name]!, store.shapes[name]);
      const why = slot?.state === undefined ? undefined : rule.stateMismatch!(slot.state, hyper, shape);
      if (why !== undefined) throw new UpdateError(`${owner}: parameter '${name}': ${why} (call reset('${name}') to start it afresh)`, name);
    }
    return;
  }
  // This optimizer's own state regions in the store (another optimizer updating the same
  // parameters keeps its own).
  for (const name of names) {
    const needed = rule.bufferNames(planner.slots.get(name)?.hyper ?? planner.hyperFor(name)).length;
    if (store.freeStateFor(planner.holder, name) < needed) {
      const others = store.heldByOthers(planner.holder, name);
      throw new UpdateError(
        `${owner}: parameter '${name}' needs ${needed} state buffer${needed === 1 ? '' : 's'}, but the ParamStore reserves ${store.stateBuffers}` +
          (others > 0 ? ` and another optimizer holds ${others} of them` : '') +
          ' (make the store with stateBuffers: [every optimizer that updates it], or call reset() on an optimizer that is done with it)',
        name,
      );
    }
  }
}

function sameRegions(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((region, i) => region === b[i]);
}

function copyScalarsByName<S>(names: readonly string[], from: S, to: S): void {
  for (const key of names) (to as unknown as Record<string, number>)[key] = (from as unknown as Record<string, number>)[key]!;
}

function sameCounters<S extends RuleState>(names: readonly string[], a: S, b: S): boolean {
  if (a.step !== b.step) return false;
  for (const key of names) {
    if (!Object.is((a as unknown as Record<string, number>)[key], (b as unknown as Record<string, number>)[key])) return false;
  }
  return true;
}

/** A plan stays valid while every parameter's state is where and as the plan left it. */
export function planCurrent<H, S extends RuleState>(plan: StorePlan<H, S>, slots: ReadonlyMap<string, Slot<H, S>>): boolean {
  for (const run of plan.runs) {
    for (const slot of run.slots) {
      if (slots.get(slot.name) !== slot || slot.state === undefined || slot.state.step !== run.state.step) return false;
    }
  }
  return true;
}

/**
 * Claims the state regions and moves every state into them, then groups the runs. Call
 * only after `checkStorePlan` passed for the same store and names.
 */
export function makePlan<H extends CommonHyper, S extends RuleState>(planner: Planner<H, S>, store: AnyParamStore, names: readonly string[]): StorePlan<H, S> {
  const rule = planner.rule;
  const slots = names.map((name) => planner.slotFor(name, store.params[name]!));
  const ownState = rule.ownState === true;
  const regions = slots.map((slot) => (ownState ? [] : store.claimState(planner.holder, slot.name, rule.bufferNames(slot.hyper).length)!));
  planner.stores.add(store);
  // A rule of shaped state keeps it in arrays of its own (rule.ts `ownState`): made here
  // at a parameter's first step, kept as it is otherwise.
  if (ownState) {
    for (const slot of slots) {
      if (slot.state === undefined) slot.state = rule.init(slot.length, store.dtype, slot.hyper, undefined, rule.shapeOf!(slot.hyper, slot.name, slot.length, store.shapes[slot.name]));
    }
  }
  // Move every state into its regions (views at the parameter's offset).
  slots.forEach((slot, i) => {
    if (ownState) return;
    const offset = store.offsets[slot.name]!;
    const own = regions[i]!;
    const old = slot.state;
    if (old !== undefined && rule.buffersOf(old, slot.hyper).every((array, k) => array.buffer === store.buffer && array.byteOffset === store.byteOffset(own[k]!, offset))) return;
    let k = 0;
    const fresh = rule.init(slot.length, store.dtype, slot.hyper, (_dtype, length, fill = 0) => {
      const view = store.view(own[k++]!, offset, length);
      view.fill(fill);
      return view;
    });
    if (old !== undefined) {
      const from = rule.buffersOf(old, slot.hyper);
      rule.buffersOf(fresh, slot.hyper).forEach((array, b) => array.set(from[b]!));
      // The state moved here from another store: give its regions there back.
      for (const other of planner.stores) if (other !== store && from[0]?.buffer === other.buffer) other.releaseState(planner.holder, slot.name);
      fresh.step = old.step;
      copyScalarsByName(rule.scalarNames, old, fresh);
    }
    slot.state = fresh;
  });
  // Group consecutive parameters that can share one kernel call (neighbours in the
  // store's layout too: a run spans everything between its first and last parameter).
  const runs: Run<H, S>[] = [];
  const adjacent = (i: number): boolean => store.names.indexOf(names[i]!) === store.names.indexOf(names[i - 1]!) + 1;
  let start = 0;
  for (let i = 1; i <= slots.length; i++) {
    const a = slots[start]!;
    const b = slots[i];
    if (b !== undefined && rule.perParameter !== true && !ownState && b.hyper === a.hyper && adjacent(i) && sameRegions(regions[start]!, regions[i]!) && sameCounters(rule.scalarNames, a.state!, b.state!)) continue;
    const members = slots.slice(start, i);
    const own = regions[start]!;
    const first = store.offsets[a.name]!;
    const last = members[members.length - 1]!;
    const length = store.offsets[last.name]! + last.length - first;
    let k = 0;
    // An ownState run is one parameter, stepping its own state.
    const state = ownState ? a.state! : rule.init(length, store.dtype, a.hyper, (_dtype, size) => store.view(own[k++]!, first, size));
    state.step = a.state!.step;
    if (!ownState) copyScalarsByName(rule.scalarNames, a.state!, state);
    runs.push({ hyper: a.hyper, slots: members, param: store.view(0, first, length), grad: store.view(1, first, length), state, lr: 0 });
    start = i;
  }
  return { store, runs, names };
}
