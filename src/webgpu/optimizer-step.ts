/**
 * One step as the GPU runs it without 'skip': the runs of parameters (consecutive ones
 * with equal hyperparameters and counters), their scalars computed on the CPU, one
 * compute pass with one dispatch per run; with nonFinite 'error', a scan of every run's
 * gradients before any run steps. A perParameter rule with a GPU program (passes.ts)
 * runs its passes per parameter in the same compute pass instead.
 */
import { UpdateError, describeValue } from '../errors.ts';
import type { CommonHyper, RuleState } from '../rule.ts';
import type { AnyUpdateRule } from '../rules/index.ts';
import { grid, scanGrid, UNIFORM_SLOT, writeScanUniforms, writeUniforms } from './kernel.ts';
import type { GpuOptimizerCore, GpuSlot } from './optimizer-core.ts';
import { encodeGlobalStep } from './global.ts';
import { readFlag } from './optimizer-verdict.ts';
import { encodePlans, planStep, shapeFor, twinFor } from './passes.ts';
import { captureStep, scalarRecord } from './scalars.ts';

/** A run of one step, before its scalars are taken. */
interface PlannedRun {
  readonly slots: GpuSlot[];
  readonly hyper: CommonHyper;
  readonly lr: number;
}

export function sameHyper(a: CommonHyper, b: CommonHyper): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((key) => (a as unknown as Record<string, unknown>)[key] === (b as unknown as Record<string, unknown>)[key]);
}

export function sameCounters(rule: AnyUpdateRule, a: RuleState, b: RuleState): boolean {
  if (a.step !== b.step) return false;
  return rule.scalarNames.every((key) => (a as unknown as Record<string, number>)[key] === (b as unknown as Record<string, number>)[key]);
}

export function copyCounters(rule: AnyUpdateRule, from: RuleState, to: RuleState): void {
  to.step = from.step;
  for (const key of rule.scalarNames) (to as unknown as Record<string, number>)[key] = (from as unknown as Record<string, number>)[key]!;
}

/** The step of `names` (at `indices` of the store, already checked), encoded and submitted. */
export function encodeStep<K extends string>(core: GpuOptimizerCore<K>, names: readonly K[], indices: readonly number[]): void {
  const store = core.store;
  const rule = core.rule;
  const step = core.stepCount;
  // Every check first: a schedule may refuse a value, and nothing may change then.
  const hypers: CommonHyper[] = [];
  const lrs: number[] = [];
  for (const name of names) {
    const hyper = core.optimizer.hyperparameters(name, step);
    const lr = typeof hyper.lr === 'number' ? hyper.lr : hyper.lr(step);
    if (typeof lr !== 'number' || !(lr >= 0) || lr === Infinity) {
      throw new UpdateError(`${core.owner}: the lr schedule of parameter '${name}' returned ${describeValue(lr)} at step ${step} (expected a finite number >= 0)`, name);
    }
    hypers.push(hyper);
    lrs.push(lr);
  }
  // An ownState rule's shapes (Adafactor's matrices): a shape it cannot take is refused here.
  const shapes = names.map((name, k) => shapeFor(core, name, hypers[k]!));

  if (core.checked) core.history.push({ step, twins: new Map([...core.slots].map(([name, slot]) => [name, { ...slot.twin }])) });

  // New parameters: their initial state, uploaded at their offsets.
  const order = names.map((name, k) => ({ name, index: indices[k]!, hyper: hypers[k]!, lr: lrs[k]!, shape: shapes[k] })).sort((a, b) => a.index - b.index);
  for (const { name, index, hyper, shape } of order) {
    for (const key of rule.bufferNames(hyper as never)) core.stateBuffer(key);
    if (core.slots.has(name)) continue;
    const length = store.lengths[name as K];
    const initial = rule.init(length, 'float32', hyper as never, undefined, shape);
    rule.buffersOf(initial as never, hyper as never).forEach((array, k) => {
      core.upload(core.stateBuffer(rule.bufferNames(hyper as never)[k]!), store.offsets[name as K], array);
    });
    core.slots.set(name, { name, index, twin: twinFor(rule, hyper, shape) });
  }
  if (core.global !== undefined) {
    encodeGlobalStep(core, core.global, order);
    return;
  }

  // Runs: consecutive parameters of the store with equal hyperparameters and counters.
  const runs: PlannedRun[] = [];
  for (const { name, index, hyper, lr } of order) {
    const slot = core.slots.get(name)!;
    const last = runs.at(-1);
    const previous = last?.slots.at(-1);
    if (last !== undefined && rule.perParameter !== true && previous!.index === index - 1 && last.lr === lr && sameHyper(last.hyper, hyper) && sameCounters(rule, previous!.twin, slot.twin)) {
      last.slots.push(slot);
    } else {
      runs.push({ slots: [slot], hyper, lr });
    }
  }

  const checked = core.checked;
  const uniforms = core.uniformBuffer(checked ? 2 * runs.length : runs.length);
  const block = new ArrayBuffer((checked ? 2 : 1) * runs.length * UNIFORM_SLOT);
  const device = store.device;
  const encoder = device.createCommandEncoder({ label: core.owner });
  const pass = encoder.beginComputePass();
  if (checked) {
    // Every run's gradients scanned before any run steps: a refusal writes nothing.
    const scan = core.scanPipeline();
    runs.forEach((run, r) => {
      const base = store.offsets[run.slots[0]!.name as K];
      const last = run.slots.at(-1)!;
      const n = store.offsets[last.name as K] + store.lengths[last.name as K] - base;
      const { x, y, stride } = scanGrid(n);
      const slot = runs.length + r;
      writeScanUniforms(block, (slot * UNIFORM_SLOT) / 4, base, n, stride, step);
      pass.setPipeline(scan.pipeline);
      pass.setBindGroup(0, core.scanBindGroup(scan.layout, slot, uniforms));
      if (n > 0) pass.dispatchWorkgroups(x, y);
    });
  }
  // A perParameter rule's program: each parameter its passes, the sums between them on the device.
  if (core.program !== undefined) encodePlans(core, pass, runs.map((run) => ({ name: run.slots[0]!.name, plan: planStep(core, run.slots[0]!.name, run.slots[0]!.twin, run.hyper, run.lr) })));
  else runs.forEach((run, r) => {
    const first = run.slots[0]!;
    const lastSlot = run.slots.at(-1)!;
    const twin = first.twin;
    const captured = captureStep(rule, twin, run.hyper, run.lr, (entry) => core.layoutOf(entry).arrays.length);
    for (let k = 1; k < run.slots.length; k++) copyCounters(rule, twin, run.slots[k]!.twin);
    if (captured.calls.length !== 1) throw new Error(`${core.owner}: the rule made ${captured.calls.length} kernel calls in a step; the GPU path runs one`);
    const call = captured.calls[0]!;
    const pipeline = core.pipeline(call.entry, call.roles);
    const layout = core.layoutOf(call.entry);
    const base = store.offsets[first.name as K];
    const n = store.offsets[lastSlot.name as K] + store.lengths[lastSlot.name as K] - base;
    const { x, y, stride } = grid(n);
    writeUniforms(block, (r * UNIFORM_SLOT) / 4, pipeline.kernel, base, n, stride, scalarRecord(captured.scalars, layout.scalars));
    pass.setPipeline(pipeline.pipeline);
    pass.setBindGroup(0, core.bindGroup(pipeline, call.entry, r, uniforms));
    if (n > 0) pass.dispatchWorkgroups(x, y);
  });
  pass.end();
  const readsFlag = checked && core.flagRead === undefined;
  if (readsFlag) encoder.copyBufferToBuffer(core.flagBuffer(), 0, core.flagStagingBuffer(), 0, 16);
  device.queue.writeBuffer(uniforms, 0, block);
  device.queue.submit([encoder.finish()]);
  core.stepCount += 1;
  if (readsFlag) readFlag(core, core.stepCount);
}
