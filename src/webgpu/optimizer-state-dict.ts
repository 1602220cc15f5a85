/** A GPUOptimizer's state dict: read back from the GPU in the CPU's format, and loaded. */
import { StateError } from '../errors.ts';
import { variantOf } from '../optimizer/state-dict.ts';
import { STATE_FORMAT, STATE_VERSION, checkStateDict, type OptimizerStateDict, type ParamStateRecord } from '../state.ts';
import type { FloatArray } from '../types.ts';
import type { GpuOptimizerCore } from './optimizer-core.ts';
import { copyCounters } from './optimizer-step.ts';
import { forgetRefusal, sync } from './optimizer-verdict.ts';
import { shapeFor, stateLengths, twinFor } from './passes.ts';
import { readRanges } from './store.ts';

/** GPUOptimizer.stateDict: the state read back from the GPU, in the CPU optimizer's format. */
export async function stateDict<K extends string>(core: GpuOptimizerCore<K>): Promise<OptimizerStateDict> {
  await sync(core);
  const rule = core.rule;
  const store = core.store;
  const slots = [...core.slots.values()].sort((a, b) => a.index - b.index);
  const keys = [...core.state.keys()];
  // Each buffer's length (an ownState rule's differ from the parameter's: Adafactor's vRow, vCol).
  const lengths = new Map<string, Map<string, number>>();
  for (const slot of slots) {
    const hyper = core.optimizer.hyperparameters(slot.name, core.stepCount);
    const sizes = stateLengths(rule, hyper, store.lengths[slot.name as K], shapeFor(core, slot.name, hyper));
    lengths.set(slot.name, new Map(rule.bufferNames(hyper as never).map((key, k) => [key, sizes[k]!])));
  }
  const read = new Map<string, Float32Array[]>();
  for (const key of keys) {
    const ranges = slots.map((slot): [number, number] => [store.offsets[slot.name as K], lengths.get(slot.name)!.get(key) ?? 0]);
    read.set(key, await readRanges(store.device, core.state.get(key)!, ranges));
  }
  const params = Object.create(null) as { [name: string]: ParamStateRecord };
  slots.forEach((slot, s) => {
    const hyper = core.optimizer.hyperparameters(slot.name, core.stepCount);
    const buffers = Object.create(null) as { [key: string]: FloatArray };
    for (const key of rule.bufferNames(hyper as never)) buffers[key] = read.get(key)![s]!;
    const scalars = Object.create(null) as { [key: string]: number };
    for (const key of rule.scalarNames) scalars[key] = (slot.twin as unknown as Record<string, number>)[key]!;
    params[slot.name] = { dtype: 'float32', length: store.lengths[slot.name as K], step: slot.twin.step, scalars, buffers };
  });
  const dict: OptimizerStateDict = {
    format: STATE_FORMAT,
    version: STATE_VERSION,
    optimizer: rule.name,
    variant: variantOf(core.optimizer.defaults),
    stepCount: core.stepCount,
    skippedSteps: core.skippedSteps,
    params,
  };
  if (core.global !== undefined) dict.scalars = await core.global.record();
  const set = core.optimizer.stateDict().hyperparameters;
  if (set !== undefined) dict.hyperparameters = { ...set };
  return dict;
}

/** GPUOptimizer.loadStateDict: checks `value` (against the store, then through the CPU optimizer), then uploads it. */
export function loadStateDict<K extends string>(core: GpuOptimizerCore<K>, value: unknown): void {
  const owner = `${core.rule.name}.loadStateDict`;
  const saved = checkStateDict(value);
  const store = core.store;
  for (const [name, record] of Object.entries(saved.params)) {
    if (!(store.names as readonly string[]).includes(name)) throw new StateError(`${owner}: the state has parameter '${name}', which the GPU store does not (${store.names.join(', ')})`);
    if (record.length !== store.lengths[name as K]) throw new StateError(`${owner}: parameter '${name}' has length ${record.length} in the state, ${store.lengths[name as K]} in the GPU store`);
  }
  // An ownState rule's state is made for a shape (Adafactor's factored matrix): the store's must be it.
  if (core.rule.ownState === true) {
    for (const [name, record] of Object.entries(saved.params)) {
      const hyper = core.optimizer.hyperparameters(name, saved.stepCount);
      let why: string | undefined;
      try {
        why = core.rule.stateMismatch!({ ...record.scalars, step: record.step ?? 0 } as never, hyper as never, shapeFor(core, name, hyper));
      } catch (error) {
        why = (error as Error).message;
      }
      if (why !== undefined) throw new StateError(`${owner}: parameter '${name}' of the GPU store: ${why}`);
    }
  }
  const cpu = core.optimizer;
  cpu.loadStateDict(value);
  const rule = core.rule;
  core.slots.clear();
  for (const name of Object.keys(saved.params)) {
    const state = cpu.stateOf(name)!;
    const hyper = cpu.hyperparameters(name, saved.stepCount);
    const keys = rule.bufferNames(hyper as never);
    rule.buffersOf(state as never, hyper as never).forEach((array, k) => core.upload(core.stateBuffer(keys[k]!), store.offsets[name as K], array));
    const twin = twinFor(rule, hyper, shapeFor(core, name, hyper));
    copyCounters(rule, state, twin);
    core.slots.set(name, { name, index: (store.names as readonly string[]).indexOf(name), twin });
  }
  core.stepCount = cpu.stepCount;
  core.skippedSteps = cpu.skippedSteps;
  forgetRefusal(core);
  // A global rule's scalars (checked by the CPU's loadStateDict above).
  core.global?.load((value as { scalars: { [name: string]: number } }).scalars);
  // Schedule-Free's mode travels in every parameter's `trainMode` (the CPU checked they agree).
  core.training = [...core.slots.values()].every((slot) => (slot.twin as unknown as { trainMode?: number }).trainMode !== 0);
  // The CPU copy has done its work; the set hyperparameters stay (reset keeps them).
  cpu.reset();
}
