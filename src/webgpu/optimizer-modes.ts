/** Schedule-Free's eval and train on the GPU, and the copy of a state to another store (moveTo). */
import { grid, UNIFORM_SLOT, writeUniforms, type ArrayRole } from './kernel.ts';
import type { GpuOptimizerCore } from './optimizer-core.ts';
import { raiseRefusal } from './optimizer-verdict.ts';
import { GPU_MODES } from './rules/index.ts';

/** GPUOptimizer.eval and train: every parameter with state moved to `lerp(p, z, weightOf(beta))`, one dispatch each. */
export function moveParams<K extends string>(core: GpuOptimizerCore<K>, mode: 'eval' | 'train', weightOf: (beta: number) => number): void {
  if (core.refused !== undefined) raiseRefusal(core);
  const modes = GPU_MODES[core.rule.key];
  if (modes === undefined) throw new TypeError(`${core.rule.name}.${mode}: ${core.rule.name} has no eval and train modes (Schedule-Free optimizers have)`);
  const store = core.store;
  const moving = [...core.slots.values()].filter((slot) => slot.twin.step > 0);
  const uniforms = core.uniformBuffer(moving.length);
  const block = new ArrayBuffer(Math.max(1, moving.length) * UNIFORM_SLOT);
  const pipeline = core.pipeline(modes.entry, core.layoutOf(modes.entry).arrays.map((name, k): ArrayRole => (k === 0 ? 'params' : { state: modes.buffer })));
  const encoder = store.device.createCommandEncoder({ label: `${core.rule.name}.${mode}` });
  const pass = encoder.beginComputePass();
  moving.forEach((slot, r) => {
    const w = weightOf(modes.beta(core.optimizer.hyperparameters(slot.name, core.stepCount)));
    const n = store.lengths[slot.name as K];
    const { x, y, stride } = grid(n);
    writeUniforms(block, (r * UNIFORM_SLOT) / 4, pipeline.kernel, store.offsets[slot.name as K], n, stride, { w });
    pass.setPipeline(pipeline.pipeline);
    pass.setBindGroup(0, core.bindGroup(pipeline, modes.entry, r, uniforms));
    if (n > 0) pass.dispatchWorkgroups(x, y);
  });
  pass.end();
  store.device.queue.writeBuffer(uniforms, 0, block);
  store.device.queue.submit([encoder.finish()]);
  core.training = mode === 'train';
  for (const slot of core.slots.values()) (slot.twin as unknown as { trainMode: number }).trainMode = core.training ? 1 : 0;
}

/** Copies the state of `from` to `to` (a new GPUOptimizer over another store of the same device), GPU to GPU. */
export function copyState<K extends string, L extends string>(from: GpuOptimizerCore<K>, to: GpuOptimizerCore<L>, owner: string): void {
  const store = to.store;
  const device = store.device;
  const encoder = device.createCommandEncoder({ label: owner });
  for (const [key, buffer] of from.state) {
    const target = to.stateBuffer(key);
    for (const name of from.slots.keys()) {
      const length = from.store.lengths[name as K];
      if (length > 0) encoder.copyBufferToBuffer(buffer, from.store.byteOffset(name as K), target, store.byteOffset(name as L), length * 4);
    }
  }
  if (from.flag !== undefined) encoder.copyBufferToBuffer(from.flag, 0, to.flagBuffer(), 0, 16);
  if (from.global !== undefined && to.global !== undefined) from.global.copyTo(to.global, encoder);
  device.queue.submit([encoder.finish()]);
  for (const [name, slot] of from.slots) to.slots.set(name, { name, index: (store.names as readonly string[]).indexOf(name), twin: { ...slot.twin } });
  to.stepCount = from.stepCount;
  to.skippedSteps = from.skippedSteps;
  to.training = from.training;
  to.known = from.known;
  to.history = from.history.map((snapshot) => ({ step: snapshot.step, twins: new Map([...snapshot.twins].map(([name, twin]) => [name, { ...twin }])) }));
  to.refused = from.refused;
  to.baseApplied = from.baseApplied;
  to.baseFlagSkips = from.baseFlagSkips;
  for (const [name, slot] of to.slots) to.chains.set(name, [slot.twin]);
}
