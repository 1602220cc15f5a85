/**
 * The device's verdict on the steps submitted: the refusal flag's asynchronous reads,
 * the twins before each step not yet known applied (nonFinite 'error'), going back to
 * them when a step was refused, and forgetting all that when a new state replaces the old.
 */
import { nonFiniteGradientError } from '../optimizer/finite.ts';
import { CLEAR, type GpuOptimizerCore } from './optimizer-core.ts';
import { rebase } from './optimizer-skip.ts';

/** GPUOptimizer.sync: reads the flag until it covers every step submitted, then raises a refused step. */
export async function sync<K extends string>(core: GpuOptimizerCore<K>): Promise<void> {
  while (core.skipping ? core.baseIssued < core.issued : core.checked && core.refused === undefined && core.known < core.stepCount) {
    if (core.flagRead === undefined) {
      const encoder = core.store.device.createCommandEncoder();
      encoder.copyBufferToBuffer(core.flagBuffer(), 0, core.flagStagingBuffer(), 0, 16);
      core.store.device.queue.submit([encoder.finish()]);
      readFlag(core, core.skipping ? core.issued : core.stepCount);
    }
    await core.flagRead;
  }
  if (core.refused !== undefined) raiseRefusal(core);
}


/** Maps the staging copy of the flag; what it says covers the steps below `covered`. */
export function readFlag<K extends string>(core: GpuOptimizerCore<K>, covered: number): void {
  const staging = core.flagStaging!;
  const epoch = core.epoch;
  core.flagRead = staging.mapAsync(0x0001 /* GPUMapMode.READ */).then(() => {
    const words = new Uint32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    core.flagRead = undefined;
    if (epoch !== core.epoch) return;
    if (core.skipping) {
      rebase(core, covered, words[2]!);
    } else if (words[1] === 0) {
      core.known = Math.max(core.known, covered);
      core.history = core.history.filter((snapshot) => snapshot.step >= covered);
    } else if (core.refused === undefined) {
      core.refused = { packed: words[0]!, step: words[1]! - 1 };
    }
  });
}


/** Goes back to the twins before the refused step, clears the flag, throws the step's error. */
export function raiseRefusal<K extends string>(core: GpuOptimizerCore<K>): never {
  const { packed, step } = core.refused!;
  const snapshot = core.history.find((candidate) => candidate.step === step);
  core.slots.clear();
  for (const [name, twin] of snapshot?.twins ?? []) {
    core.slots.set(name, { name, index: (core.store.names as readonly string[]).indexOf(name), twin: { ...twin } });
  }
  core.stepCount = step;
  core.known = step;
  core.history = [];
  core.refused = undefined;
  core.epoch += 1;
  core.store.device.queue.writeBuffer(core.flagBuffer(), 0, CLEAR);
  const index = Math.floor(packed / 4);
  const value = [NaN, Infinity, -Infinity][packed % 4]!;
  const name = core.store.nameAt(index) ?? '';
  throw nonFiniteGradientError(core.owner, name, index - (name === '' ? 0 : core.store.offsets[name as K]), value);
}

/** A new state replaces the old: what the device said of the old steps no longer applies. */
export function forgetRefusal<K extends string>(core: GpuOptimizerCore<K>): void {
  core.epoch += 1;
  core.refused = undefined;
  core.history = [];
  core.known = core.stepCount;
  core.issued = 0;
  core.baseIssued = 0;
  core.baseApplied = core.stepCount;
  core.baseFlagSkips = 0;
  core.pendingNames = '';
  core.chains.clear();
  for (const [name, slot] of core.slots) core.chains.set(name, [slot.twin]);
  if (core.flag !== undefined) core.store.device.queue.writeBuffer(core.flag, 0, CLEAR);
}
