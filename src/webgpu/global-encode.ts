/**
 * The encoding of a global rule's step (Prodigy, D-Adapt AdamW; global.ts holds its
 * buffer and pipelines, global-wgsl.ts its shaders): the scan, pass 1 of every
 * parameter, the levels of the tree over their partials ending in the rule's reduce, pass
 * 2, all in one compute pass, submitted with nothing awaited.
 */
import type { CommonHyper, RuleState } from '../rule.ts';
import type { GpuGlobal } from './global.ts';
import { levelAreas } from './global-wgsl.ts';
import { grid, scanGrid, UNIFORM_SLOT, writeScanUniforms, writeUniformBlock, writeUniforms } from './kernel.ts';
import type { GpuOptimizerCore } from './optimizer-core.ts';
import { readFlag } from './optimizer-verdict.ts';
import { reduceLevels } from './reduce.ts';
import { scalarRecord } from './scalars.ts';

/** One parameter of a global step: its extent in the store and its candidates. */
interface GlobalRun {
  readonly base: number;
  readonly n: number;
  /** One per number of skips the steps in flight may have had (one, without 'skip'): its twin (stepped by the capture), hyperparameters, lr and candidate number. */
  readonly candidates: readonly { readonly twin: RuleState; readonly hyper: CommonHyper; readonly lr: number; readonly cand: number }[];
}

/**
 * Encodes and submits a global rule's step: the scan, pass 1 of every parameter (each of
 * its candidates writes the same partials: only the one the flag selects writes at all),
 * the levels over the partials, the last ending in `reduce` (skipped on a refused or
 * skipped step), pass 2. `scanStep`:
 * the number the scan marks the flag with (the step, or with 'skip' the issue number).
 */
function encodeGlobal<K extends string>(core: GpuOptimizerCore<K>, global: GpuGlobal<K>, runs: readonly GlobalRun[], scanStep: number, known: number, hyper: CommonHyper): void {
  const store = core.store;
  const scanned = core.checked || core.skipping;
  const dispatches = runs.reduce((sum, run) => sum + run.candidates.length, 0);
  const partials = runs.reduce((sum, run) => sum + reduceLevels(run.n)[0]!.chunks, 0);
  const areas = levelAreas(partials);
  // Slots: pass 1 per candidate, pass 2 per candidate, the levels over the partials, then the scans.
  const levelSlot = 2 * dispatches;
  const scanSlot = levelSlot + areas.levels.length;
  const slots = scanSlot + (scanned ? runs.length : 0);
  const uniforms = core.uniformBuffer(slots);
  const block = new ArrayBuffer(slots * UNIFORM_SLOT);
  const device = store.device;
  const encoder = device.createCommandEncoder({ label: core.owner });
  global.buffer();
  const pass = encoder.beginComputePass();
  if (scanned) {
    const scan = core.scanPipeline();
    runs.forEach((run, r) => {
      const { x, y, stride } = scanGrid(run.n);
      const slot = scanSlot + r;
      writeScanUniforms(block, (slot * UNIFORM_SLOT) / 4, run.base, run.n, stride, scanStep);
      pass.setPipeline(scan.pipeline);
      pass.setBindGroup(0, core.scanBindGroup(scan.layout, slot, uniforms));
      if (run.n > 0) pass.dispatchWorkgroups(x, y);
    });
  }
  const terms = global.spec.totals.length;
  const captured = runs.map((run) => run.candidates.map((candidate) => ({ first: candidate.twin.step === 0, passes: global.capture(candidate.twin, candidate.hyper, candidate.lr) })));
  const dispatch = (which: 'accumulate' | 'apply', at: number): void => {
    let part = 0;
    let slot = at;
    runs.forEach((run, r) => {
      const level = reduceLevels(run.n)[0]!;
      run.candidates.forEach((candidate, k) => {
        const { first, passes } = captured[r]![k]!;
        const call = passes[which].calls[0]!;
        const pipeline = global.pipeline(call.entry, call.roles);
        const values = { ...scalarRecord(passes[which].scalars, core.layoutOf(call.entry).scalars), lr: candidate.lr };
        const c = { issue: scanStep, cand: candidate.cand, known };
        pass.setPipeline(pipeline.pipeline);
        pass.setBindGroup(0, global.bindGroup(pipeline, call.entry, slot, uniforms));
        if (which === 'accumulate') {
          // global-wgsl.ts ACCUMULATE_HEADER. Pass 1 runs even over no element: its partial must be 0.
          const header = [run.base, run.n, level.xGroups, c.issue, c.cand, c.known, level.chunks, first ? 1 : 0, part * terms, 0, 0, 0];
          writeUniformBlock(block, (slot * UNIFORM_SLOT) / 4, pipeline.kernel, header, values);
          pass.dispatchWorkgroups(level.xGroups, level.yGroups);
        } else {
          const { x, y, stride } = grid(run.n);
          writeUniforms(block, (slot * UNIFORM_SLOT) / 4, pipeline.kernel, run.base, run.n, stride, values, c);
          if (run.n > 0) pass.dispatchWorkgroups(x, y);
        }
        slot += 1;
      });
      part += level.chunks;
    });
  };
  dispatch('accumulate', 0);
  // The tree over the partials (global-wgsl.ts PARTIALS_HEADER): level l reads level l - 1's sums (the partials first).
  areas.levels.forEach((level, l) => {
    const last = l === areas.levels.length - 1;
    const slot = levelSlot + l;
    const inAt = l === 0 ? 0 : areas.at[l - 1]!;
    const outAt = last ? 0 : areas.at[l]!;
    global.writeLevelUniforms(block, (slot * UNIFORM_SLOT) / 4, [level.n, level.chunks, level.xGroups, 0, inAt * terms, outAt * terms, scanStep, 0], last ? hyper : undefined);
    pass.setPipeline(global.levelPipeline(last).pipeline);
    pass.setBindGroup(0, global.levelBindGroup(last, slot, uniforms));
    pass.dispatchWorkgroups(level.xGroups, level.yGroups);
  });
  dispatch('apply', dispatches);
  pass.end();
  const readsFlag = scanned && core.flagRead === undefined;
  if (readsFlag) encoder.copyBufferToBuffer(core.flagBuffer(), 0, core.flagStagingBuffer(), 0, 16);
  device.queue.writeBuffer(uniforms, 0, block);
  device.queue.submit([encoder.finish()]);
  if (core.skipping) core.issued += 1;
  core.stepCount += 1;
  if (readsFlag) readFlag(core, core.skipping ? core.issued : core.stepCount);
}

/** A parameter of the step, its hyperparameters and lr checked (optimizer-step.ts). */
export interface GlobalStepParam {
  readonly name: string;
  readonly hyper: CommonHyper;
  readonly lr: number;
}

/**
 * The step of a global rule (nonFinite 'error' or 'ignore'), after optimizer-step.ts has
 * checked every parameter's hyperparameters, saved the twins (the history) and set up the
 * new parameters' state. A parameter is a run of its own (the rule is perParameter): its
 * sums are weighted by its own lr and bias correction.
 */
export function encodeGlobalStep<K extends string>(core: GpuOptimizerCore<K>, global: GpuGlobal<K>, order: readonly GlobalStepParam[]): void {
  const store = core.store;
  const runs = order.map(({ name, hyper, lr }): GlobalRun => ({ base: store.offsets[name as K], n: store.lengths[name as K], candidates: [{ twin: core.slots.get(name)!.twin, hyper, lr, cand: 0 }] }));
  encodeGlobal(core, global, runs, core.stepCount, 0, order[0]?.hyper ?? core.optimizer.defaults);
}

/** A parameter of a 'skip' step: its hyperparameters and lr per candidate, checked (optimizer-skip.ts). */
export interface GlobalSkipParam {
  readonly name: string;
  readonly hypers: readonly CommonHyper[];
  readonly lrs: readonly number[];
}

/**
 * The step of a global rule with nonFinite 'skip', after optimizer-skip.ts has checked
 * every candidate's hyperparameters and set up the new parameters' state and chains:
 * each parameter's passes once per number of skips among the `inFlight` steps before it
 * (the chain's twin of that count), the reduction once; the newest candidate's twin
 * extends each chain. `key`: the parameters' indices, which the steps in flight share.
 */
export function encodeGlobalSkipping<K extends string>(core: GpuOptimizerCore<K>, global: GpuGlobal<K>, order: readonly GlobalSkipParam[], inFlight: number, key: string): void {
  const store = core.store;
  const runs = order.map(({ name, hypers, lrs }): GlobalRun => {
    const chain = core.chains.get(name)!;
    const candidates = hypers.map((hyper, k) => ({ twin: { ...chain[k]! }, hyper, lr: lrs[k]!, cand: inFlight - k }));
    return { base: store.offsets[name as K], n: store.lengths[name as K], candidates };
  });
  const issue = core.issued;
  // The reduce's hyperparameters: those of the newest candidate (the global options are not per parameter).
  encodeGlobal(core, global, runs, issue, core.baseFlagSkips, order[0]?.hypers.at(-1) ?? core.optimizer.defaults);
  // The newest candidate (no skip in flight) extends every chain; its twin has taken this step.
  order.forEach(({ name }, r) => {
    const chain = core.chains.get(name)!;
    chain.push(runs[r]!.candidates[inFlight]!.twin);
  });
  core.pendingNames = key;
}
