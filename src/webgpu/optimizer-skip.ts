/**
 * nonFinite 'skip' on the GPU: the candidate encodings of a step (one per number of
 * skips the steps in flight may have had) and the rebase once the flag says which.
 */
import { UpdateError, describeValue } from '../errors.ts';
import type { CommonHyper } from '../rule.ts';
import { grid, scanGrid, UNIFORM_SLOT, writeScanUniforms, writeUniforms } from './kernel.ts';
import type { GpuOptimizerCore, GpuSlot } from './optimizer-core.ts';
import { encodeGlobalSkipping } from './global.ts';
import { copyCounters, sameCounters, sameHyper } from './optimizer-step.ts';
import { readFlag } from './optimizer-verdict.ts';
import { encodePlans, planStep, shapeFor, twinFor, type PlannedStep } from './passes.ts';
import { captureStep, scalarRecord } from './scalars.ts';

/** nonFinite 'skip': steps that may be in flight unchecked (each is encoded once per number of skips before it). */
const MAX_IN_FLIGHT = 16;

/**
 * nonFinite 'skip': the step, encoded once per number j of steps the device may have
 * skipped among those in flight (0..U), each dispatch with the scalars of the step as
 * it is after U - j applied steps; the step kernels run the one whose j the flag's
 * count of skips matches, and none when this step's own scan found a non-finite
 * gradient. The CPU learns which happened at the next flag read (rebase).
 */
export function stepSkipping<K extends string>(core: GpuOptimizerCore<K>, names: readonly K[], indices: readonly number[]): void {
  const store = core.store;
  const rule = core.rule;
  const inFlight = core.issued - core.baseIssued;
  const key = [...indices].sort((a, b) => a - b).join(',');
  if (inFlight > 0 && key !== core.pendingNames) {
    throw new UpdateError(`${core.owner}: with nonFinite 'skip', a step of other parameters than the ${inFlight} step(s) still unchecked on the device: await sync() first`, '');
  }
  if (inFlight >= MAX_IN_FLIGHT) {
    throw new UpdateError(`${core.owner}: with nonFinite 'skip', ${inFlight} steps are unchecked on the device: await sync() (or read anything back) at least every ${MAX_IN_FLIGHT} steps`, '');
  }
  // Every candidate's hyperparameters, checked before anything changes.
  const hypers: CommonHyper[][] = [];
  const lrs: number[][] = [];
  names.forEach((name) => {
    const h: CommonHyper[] = [];
    const l: number[] = [];
    for (let k = 0; k <= inFlight; k++) {
      const count = core.baseApplied + k;
      const hyper = core.optimizer.hyperparameters(name, count);
      const lr = typeof hyper.lr === 'number' ? hyper.lr : hyper.lr(count);
      if (typeof lr !== 'number' || !(lr >= 0) || lr === Infinity) {
        throw new UpdateError(`${core.owner}: the lr schedule of parameter '${name}' returned ${describeValue(lr)} at step ${count} (expected a finite number >= 0)`, name);
      }
      h.push(hyper);
      l.push(lr);
    }
    hypers.push(h);
    lrs.push(l);
  });
  const shapes = names.map((name, k) => shapeFor(core, name, hypers[k]![0]!));
  const order = names.map((name, k) => ({ name, index: indices[k]!, hypers: hypers[k]!, lrs: lrs[k]!, shape: shapes[k] })).sort((a, b) => a.index - b.index);
  for (const { name, index, hypers: h, shape } of order) {
    for (const bufferName of rule.bufferNames(h[0] as never)) core.stateBuffer(bufferName);
    if (core.slots.has(name)) continue;
    const initial = rule.init(store.lengths[name as K], 'float32', h[0] as never, undefined, shape);
    rule.buffersOf(initial as never, h[0] as never).forEach((array, b) => {
      core.upload(core.stateBuffer(rule.bufferNames(h[0] as never)[b]!), store.offsets[name as K], array);
    });
    const twin = twinFor(rule, h[0]!, shape);
    core.slots.set(name, { name, index, twin });
    core.chains.set(name, [twin]);
  }
  if (core.global !== undefined) {
    encodeGlobalSkipping(core, core.global, order, inFlight, key);
    return;
  }
  // Runs: consecutive parameters equal in every candidate.
  type Run = { slots: GpuSlot[]; hypers: CommonHyper[]; lrs: number[] };
  const runs: Run[] = [];
  for (const { name, index, hypers: h, lrs: l } of order) {
    const slot = core.slots.get(name)!;
    const last = runs.at(-1);
    const previous = last?.slots.at(-1);
    if (last !== undefined && rule.perParameter !== true && previous!.index === index - 1 && l.every((lr, k) => lr === last.lrs[k] && sameHyper(h[k]!, last.hypers[k]!)) && sameCounters(rule, previous!.twin, slot.twin)) {
      last.slots.push(slot);
    } else {
      runs.push({ slots: [slot], hypers: h, lrs: l });
    }
  }
  const candidates = inFlight + 1;
  const slots = runs.length * (candidates + 1);
  const uniforms = core.uniformBuffer(slots);
  const block = new ArrayBuffer(slots * UNIFORM_SLOT);
  const device = store.device;
  const encoder = device.createCommandEncoder({ label: core.owner });
  const pass = encoder.beginComputePass();
  const issue = core.issued;
  const scan = core.scanPipeline();
  const extent = (run: Run): { base: number; n: number } => {
    const base = store.offsets[run.slots[0]!.name as K];
    const last = run.slots.at(-1)!;
    return { base, n: store.offsets[last.name as K] + store.lengths[last.name as K] - base };
  };
  runs.forEach((run, r) => {
    const { base, n } = extent(run);
    const { x, y, stride } = scanGrid(n);
    const slot = runs.length * candidates + r;
    writeScanUniforms(block, (slot * UNIFORM_SLOT) / 4, base, n, stride, issue);
    pass.setPipeline(scan.pipeline);
    pass.setBindGroup(0, core.scanBindGroup(scan.layout, slot, uniforms));
    if (n > 0) pass.dispatchWorkgroups(x, y);
  });
  // A perParameter rule's program: each candidate's passes in sequence (planned here, encoded after the loop).
  const planned: PlannedStep[] = [];
  runs.forEach((run, r) => {
    const { base, n } = extent(run);
    const { x, y, stride } = grid(n);
    const chain = core.chains.get(run.slots[0]!.name)!;
    for (let k = 0; k < candidates; k++) {
      const twin = { ...chain[k]! };
      const candidate = { issue, cand: inFlight - k, known: core.baseFlagSkips };
      const captured = core.program === undefined ? captureStep(rule, twin, run.hypers[k]!, run.lrs[k]!, (entry) => core.layoutOf(entry).arrays.length) : undefined;
      if (captured === undefined) planned.push({ name: run.slots[0]!.name, plan: planStep(core, run.slots[0]!.name, twin, run.hypers[k]!, run.lrs[k]!), candidate });
      else if (captured.calls.length !== 1) throw new Error(`${core.owner}: the rule made ${captured.calls.length} kernel calls in a step; the GPU path runs one`);
      if (k === inFlight) {
        // The newest candidate (no skip in flight) extends every chain of the run.
        for (const member of run.slots) {
          const own = core.chains.get(member.name)!;
          const next = { ...own[k]! };
          copyCounters(rule, twin, next);
          own.push(next);
        }
      }
      if (captured === undefined) continue;
      const call = captured.calls[0]!;
      const pipeline = core.pipeline(call.entry, call.roles);
      const slot = r * candidates + k;
      writeUniforms(block, (slot * UNIFORM_SLOT) / 4, pipeline.kernel, base, n, stride, scalarRecord(captured.scalars, core.layoutOf(call.entry).scalars), candidate);
      pass.setPipeline(pipeline.pipeline);
      pass.setBindGroup(0, core.bindGroup(pipeline, call.entry, slot, uniforms));
      if (n > 0) pass.dispatchWorkgroups(x, y);
    }
  });
  encodePlans(core, pass, planned);
  pass.end();
  const readsFlag = core.flagRead === undefined;
  if (readsFlag) encoder.copyBufferToBuffer(core.flagBuffer(), 0, core.flagStagingBuffer(), 0, 16);
  device.queue.writeBuffer(uniforms, 0, block);
  device.queue.submit([encoder.finish()]);
  core.issued += 1;
  core.stepCount += 1;
  core.pendingNames = key;
  if (readsFlag) readFlag(core, core.issued);
}


/** nonFinite 'skip': the device has run the steps below issue `covered`, `flagSkips` of them skipped since the flag was cleared. */
export function rebase<K extends string>(core: GpuOptimizerCore<K>, covered: number, flagSkips: number): void {
  if (covered <= core.baseIssued) return;
  const skipped = flagSkips - core.baseFlagSkips;
  const applied = covered - core.baseIssued - skipped;
  // A chain of the steps in flight keeps the twins of the counts still possible; one of
  // a parameter outside them (length 1) stays as it is.
  const possible = core.issued - covered + 1;
  for (const [name, chain] of core.chains) {
    if (chain.length === 1) continue;
    const rest = chain.slice(applied, applied + possible);
    core.chains.set(name, rest);
    const slot = core.slots.get(name);
    if (slot !== undefined) slot.twin = rest[0]!;
  }
  core.baseIssued = covered;
  core.baseApplied += applied;
  core.baseFlagSkips = flagSkips;
  core.skippedSteps += skipped;
  core.stepCount = core.baseApplied + (core.issued - covered);
  if (covered === core.issued) core.pendingNames = '';
}
