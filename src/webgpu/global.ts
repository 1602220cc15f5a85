/**
 * A rule with a global phase (src/rule.ts `GlobalPhase`: Prodigy, D-Adapt AdamW) on the
 * GPU: its buffer of optimizer-level scalars, its pipelines and bind groups, and the
 * capture of a parameter's step scalars. One compute pass per step (global-encode.ts
 * encodes it; global-wgsl.ts makes its shaders), in it
 *
 *   1. the scan of every gradient (nonFinite 'error' or 'skip'), as for every rule;
 *   2. pass 1, one dispatch per parameter: the rule's elementwise update of its state
 *      (the WGSL twin of its wasm kernel), and each element's contribution to the step's
 *      totals, summed by reduce.ts's tree (4096 elements per workgroup) into one partial
 *      sum per workgroup and total;
 *   3. the partials of every parameter summed by the same tree, level after level, until
 *      one workgroup sums the rest into the totals; its invocation 0 then runs the rule's
 *      `reduce` (its WGSL twin, in the rule's GPU file): the optimizer-level scalars (d,
 *      ...) of the step from the old ones and the totals;
 *   4. pass 2, one dispatch per parameter: the parameters moved with them.
 *
 * The optimizer-level scalars never leave the device during training: they live in one
 * small storage buffer (`now`, the scalars as of the last step; `before`, those pass 1 of
 * the last step read; the totals; the partials and the levels' sums), read back by
 * `stateDict()` only. Every pass that writes the state or the partials reads the refusal
 * flag first and writes nothing on a refused step, so a refused step leaves the scalars
 * as they were; with 'skip', each parameter's passes are encoded once per number of skips
 * the steps in flight may have had (optimizer-skip.ts), all of them writing the same
 * partials, and the one the flag selects runs.
 *
 * The per-step scalars the rule computes on the CPU (bias corrections, the lr's factors,
 * the counters) come from the rule's own `global.accumulate` and `global.apply`, run on
 * the parameter's zero-length twin against the stand-in for the wasm kernels
 * (scalars.ts), with every optimizer-level scalar set to 1: each of the rule's scalars
 * that depends on d is linear in it (dlr = d lr bc, Prodigy's sScale), so the block holds
 * its value per unit of d, and the WGSL multiplies it by the device's d
 * (test/webgpu-registry.test.ts checks the linearity against a capture at another d).
 */
import type { CommonHyper, GlobalPhase, RuleState } from '../rule.ts';
import { accumulateReads, accumulateSource, ACCUMULATE_HEADER, applySource, GLOBAL_STEP_SCALARS, levelAreas, PARTIALS_HEADER, partialsSource, type GpuGlobalPhase } from './global-wgsl.ts';
import { checkGpuKernel, UNIFORM_HEADER, UNIFORM_SLOT, uniformWords, type ArrayRole, type FlagUse } from './kernel.ts';
import type { GpuOptimizerCore, Pipeline } from './optimizer-core.ts';
import { reduceLevels } from './reduce.ts';
import { captureCalls, type CapturedStep } from './scalars.ts';

export type { GpuGlobalPhase } from './global-wgsl.ts';
export { GLOBAL_STEP_SCALARS } from './global-wgsl.ts';
// The step's encoding, by its callers' (optimizer-step.ts, optimizer-skip.ts) name for it.
export { encodeGlobalSkipping, encodeGlobalStep, type GlobalSkipParam, type GlobalStepParam } from './global-encode.ts';

const COMPUTE = 0x4; // GPUShaderStage.COMPUTE
const GLOBAL_USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */
const STAGING_USAGE = 0x01 /* MAP_READ */ | 0x08; /* COPY_DST */

function roleKey(role: ArrayRole): string {
  return typeof role === 'string' ? role : `state:${role.state}`;
}

/** A level of the tree over the partials: its pipeline, and how it reads the flag. */
interface LevelPipeline {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly flag: FlagUse;
}

/** One parameter's captured passes of a step. */
interface CapturedPasses {
  readonly accumulate: CapturedStep;
  readonly apply: CapturedStep;
}

/** A GPUOptimizer's global phase: its scalars buffer, its pipelines and bind groups, the capture of a step's scalars. */
export class GpuGlobal<K extends string> {
  readonly core: GpuOptimizerCore<K>;
  readonly phase: GlobalPhase<CommonHyper, RuleState>;
  readonly spec: GpuGlobalPhase;
  /** Floats of `now`, `before` and the totals, before the partials. */
  readonly #head: number;
  /** Floats after the head a step uses at most: its partials (a workgroup per 4096 elements of each parameter), then the levels' sums over them. */
  readonly #partialFloats: number;
  #buffer: GPUBuffer | undefined;
  readonly #levels = new Map<string, LevelPipeline>();
  readonly #pipelines = new Map<string, Pipeline>();

  constructor(core: GpuOptimizerCore<K>, spec: GpuGlobalPhase) {
    this.core = core;
    this.phase = core.rule.global as unknown as GlobalPhase<CommonHyper, RuleState>;
    this.spec = spec;
    if (spec.totals.length !== this.phase.sumCount) throw new Error(`${core.rule.name}: its GPU global phase names ${spec.totals.length} totals, the rule sums ${this.phase.sumCount}`);
    const names = this.phase.scalarNames;
    this.#head = 2 * names.length + spec.totals.length;
    const store = core.store;
    const partials = store.names.reduce((sum, name) => sum + reduceLevels(store.lengths[name])[0]!.chunks, 0);
    this.#partialFloats = spec.totals.length * levelAreas(partials).floats;
  }

  /** The scalars' buffer, made at first use with the rule's initial scalars. */
  buffer(): GPUBuffer {
    if (this.#buffer === undefined) {
      const size = Math.ceil(((this.#head + this.#partialFloats) * 4) / 16) * 16;
      this.#buffer = this.core.store.device.createBuffer({ label: `nesterov ${this.core.rule.name} global scalars`, size, usage: GLOBAL_USAGE, mappedAtCreation: true });
      new Float32Array(this.#buffer.getMappedRange(), 0, this.#head).set(this.#initial());
      this.#buffer.unmap();
      this.core.bindGroups.clear();
    }
    return this.#buffer;
  }

  /** now and before at the rule's initial scalars (from the optimizer's defaults), the totals 0. */
  #initial(): Float32Array {
    const count = this.phase.scalarNames.length;
    const values = new Float64Array(count);
    this.phase.initial(this.core.optimizer.defaults, values);
    const out = new Float32Array(this.#head);
    out.set(values, 0);
    out.set(values, count);
    return out;
  }

  /** Back to the initial scalars (GPUOptimizer.reset()). */
  reset(): void {
    if (this.#buffer !== undefined) this.#write(this.#initial());
  }

  #write(values: Float32Array): void {
    this.core.store.device.queue.writeBuffer(this.buffer(), 0, values.buffer, values.byteOffset, values.byteLength);
  }

  /** Loads a state dict's scalars (already checked by the CPU optimizer's loadStateDict). */
  load(record: { readonly [name: string]: number }): void {
    const count = this.phase.scalarNames.length;
    const values = new Float32Array(this.#head);
    this.phase.scalarNames.forEach((name, k) => {
      values[k] = record[name]!;
      values[count + k] = record[name]!;
    });
    this.#write(values);
  }

  /** The scalars read back, by name (the state dict's `scalars`). */
  async record(): Promise<{ [name: string]: number }> {
    const names = this.phase.scalarNames;
    const out = Object.create(null) as { [name: string]: number };
    let values: Float32Array;
    if (this.#buffer === undefined) {
      values = this.#initial();
    } else {
      const bytes = names.length * 4;
      // A staging buffer per read: two stateDict() calls may be under way at once.
      const staging = this.core.store.device.createBuffer({ size: Math.max(16, bytes), usage: STAGING_USAGE });
      try {
        const encoder = this.core.store.device.createCommandEncoder();
        encoder.copyBufferToBuffer(this.#buffer, 0, staging, 0, bytes);
        this.core.store.device.queue.submit([encoder.finish()]);
        await staging.mapAsync(0x0001 /* GPUMapMode.READ */);
        values = new Float32Array(staging.getMappedRange(0, bytes).slice(0));
      } finally {
        staging.destroy();
      }
    }
    names.forEach((name, k) => {
      out[name] = values[k]!;
    });
    return out;
  }

  /** Copies the scalars (now and before) into `to`'s buffer, in `encoder` (moveTo). */
  copyTo<L extends string>(to: GpuGlobal<L>, encoder: GPUCommandEncoder): void {
    if (this.#buffer === undefined) return;
    encoder.copyBufferToBuffer(this.#buffer, 0, to.buffer(), 0, 2 * this.phase.scalarNames.length * 4);
  }

  destroy(): void {
    this.#buffer?.destroy();
    this.#buffer = undefined;
    this.#levels.clear();
  }

  /** The arrays a pass's kernel binds: its wasm layout's, then the GPU file's extra ones. */
  #arrays(entry: string, roles: readonly ArrayRole[]): { arrays: string[]; roles: ArrayRole[] } {
    const extra = this.spec.extraArrays?.[entry] ?? {};
    return { arrays: [...this.core.layoutOf(entry).arrays, ...Object.keys(extra)], roles: [...roles, ...Object.values(extra)] };
  }

  #flag(): FlagUse {
    return this.core.checked ? 'error' : this.core.skipping ? 'skip' : 'ignore';
  }

  /** The pipeline of a pass-1 (the entry has contributions: global-wgsl.ts accumulateSource) or pass-2 kernel (applySource). */
  pipeline(entry: string, callRoles: readonly ArrayRole[]): Pipeline {
    const core = this.core;
    const flag = this.#flag();
    const { arrays, roles } = this.#arrays(entry, callRoles);
    const key = `${entry}|${roles.map(roleKey).join(',')}|${flag}`;
    const cached = this.#pipelines.get(key);
    if (cached !== undefined) return cached;
    const kernel = core.kernels[entry];
    if (kernel === undefined) throw new Error(`${core.owner}: no GPU kernel for wasm entry '${entry}' (src/webgpu/rules/${core.rule.key}.ts)`);
    const contributions = this.spec.contributions[entry];
    checkGpuKernel(core.rule.name, entry, kernel, [...core.layoutOf(entry).scalars, ...GLOBAL_STEP_SCALARS], arrays, this.headerOf(entry));
    // The names the shaders of global-wgsl.ts declare where the body runs (pass 1's body runs in `load`).
    const taken = contributions === undefined ? ['gl'] : ['gl', 'acc', 'load', 't', 'k', 'seg'];
    const clash = arrays.find((name) => taken.includes(name));
    if (clash !== undefined) throw new Error(`${core.rule.name} GPU kernel ${entry}: array name '${clash}' is not free to use in a global rule's pass`);
    const device = core.store.device;
    const reads = (role: ArrayRole | undefined): boolean => (contributions === undefined ? role === 'grads' : accumulateReads(role));
    const layout = device.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: COMPUTE, buffer: { type: 'uniform' } },
        ...arrays.map((_, k): GPUBindGroupLayoutEntry => ({ binding: k + 1, visibility: COMPUTE, buffer: { type: reads(roles[k]) ? 'read-only-storage' : 'storage' } })),
        ...(flag !== 'ignore' ? [{ binding: arrays.length + 1, visibility: COMPUTE, buffer: { type: 'read-only-storage' as const } }] : []),
        { binding: arrays.length + 2, visibility: COMPUTE, buffer: { type: contributions === undefined ? 'read-only-storage' : 'storage' } },
      ],
    });
    const names = this.phase.scalarNames;
    const code =
      contributions === undefined
        ? applySource(kernel, arrays, roles, flag, names, this.spec.totals)
        : accumulateSource(kernel, arrays, roles, flag, names, this.spec.totals, contributions, this.spec.firstStepCopy?.[entry]);
    const module = device.createShaderModule({ label: `nesterov ${entry}`, code });
    const pipeline: Pipeline = {
      pipeline: device.createComputePipeline({ label: `nesterov ${entry}`, layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: 'main' } }),
      layout,
      kernel,
      arrays,
      roles,
      flag,
    };
    this.#pipelines.set(key, pipeline);
    return pipeline;
  }

  /** The u32 header of an entry's uniforms: pass 1's (a level of the tree) or kernel.ts's. */
  headerOf(entry: string): readonly string[] {
    return this.spec.contributions[entry] === undefined ? UNIFORM_HEADER : ACCUMULATE_HEADER;
  }

  bindGroup(pipeline: Pipeline, entry: string, slot: number, uniforms: GPUBuffer): GPUBindGroup {
    const core = this.core;
    const key = `global|${slot}|${entry}|${pipeline.roles.map(roleKey).join(',')}|${pipeline.flag}`;
    let group = core.bindGroups.get(key);
    if (group !== undefined) return group;
    const bytes = Math.ceil((uniformWords(pipeline.kernel, this.headerOf(entry)) * 4) / 16) * 16;
    group = core.store.device.createBindGroup({
      layout: pipeline.layout,
      entries: [
        { binding: 0, resource: { buffer: uniforms, offset: slot * UNIFORM_SLOT, size: bytes } },
        ...pipeline.roles.map((role, k): GPUBindGroupEntry => ({ binding: k + 1, resource: { buffer: core.bufferFor(role, k) } })),
        ...(pipeline.flag !== 'ignore' ? [{ binding: pipeline.roles.length + 1, resource: { buffer: core.flagBuffer() } }] : []),
        { binding: pipeline.roles.length + 2, resource: { buffer: this.buffer() } },
      ],
    });
    core.bindGroups.set(key, group);
    return group;
  }

  /** The pipeline of a level over the partials; `last`: the one that ends in the rule's reduce (and reads the flag). */
  levelPipeline(last: boolean): LevelPipeline {
    const flag = last ? this.#flag() : 'ignore';
    const key = `${last}|${flag}`;
    let made = this.#levels.get(key);
    if (made === undefined) {
      const device = this.core.store.device;
      const layout = device.createBindGroupLayout({
        entries: [
          { binding: 0, visibility: COMPUTE, buffer: { type: 'uniform' } },
          { binding: 1, visibility: COMPUTE, buffer: { type: 'storage' } },
          ...(flag !== 'ignore' ? [{ binding: 2, visibility: COMPUTE, buffer: { type: 'read-only-storage' as const } }] : []),
        ],
      });
      const label = `nesterov ${this.core.rule.name} ${last ? 'reduce' : 'sum'}`;
      const module = device.createShaderModule({ label, code: partialsSource(this.spec, flag, this.phase.scalarNames, last) });
      made = { layout, flag, pipeline: device.createComputePipeline({ label, layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: 'main' } }) };
      this.#levels.set(key, made);
    }
    return made;
  }

  levelBindGroup(last: boolean, slot: number, uniforms: GPUBuffer): GPUBindGroup {
    const core = this.core;
    const { layout, flag } = this.levelPipeline(last);
    const key = `global|${slot}|level|${last}|${flag}`;
    let group = core.bindGroups.get(key);
    if (group === undefined) {
      const floats = last ? Object.keys(this.spec.reduceUniforms).length : 0;
      const bytes = Math.ceil(((PARTIALS_HEADER.length + floats) * 4) / 16) * 16;
      group = core.store.device.createBindGroup({
        layout,
        entries: [
          { binding: 0, resource: { buffer: uniforms, offset: slot * UNIFORM_SLOT, size: bytes } },
          { binding: 1, resource: { buffer: this.buffer() } },
          ...(flag !== 'ignore' ? [{ binding: 2, resource: { buffer: core.flagBuffer() } }] : []),
        ],
      });
      core.bindGroups.set(key, group);
    }
    return group;
  }

  /**
   * Writes a level's uniform block (PARTIALS_HEADER: the values it reads, its workgroups,
   * where it reads and writes in the partials, the step's issue number), and for the last
   * the rule's reduce uniforms.
   */
  writeLevelUniforms(target: ArrayBuffer, at: number, header: readonly number[], hyper: CommonHyper | undefined): void {
    new Uint32Array(target, at * 4, PARTIALS_HEADER.length).set(header);
    if (hyper === undefined) return;
    const names = Object.keys(this.spec.reduceUniforms);
    const values = new Float32Array(target, (at + PARTIALS_HEADER.length) * 4, names.length);
    names.forEach((name, k) => {
      values[k] = this.spec.reduceUniforms[name]!(hyper);
    });
  }

  /**
   * One step's two passes of one parameter, captured: the twin's step counted, the
   * scalar blocks the rule's accumulate and apply wrote (at every optimizer-level scalar
   * 1) and the kernels they called.
   */
  capture(twin: RuleState, hyper: CommonHyper, lr: number): CapturedPasses {
    const rule = this.core.rule;
    const phase = this.phase;
    const unit = new Float64Array(phase.scalarNames.length).fill(1);
    const sums = new Float64Array(phase.sumCount);
    const arrayCount = (entry: string): number => this.core.layoutOf(entry).arrays.length;
    const step = { lr };
    const accumulate = captureCalls(rule, twin, hyper, arrayCount, (kernels, p, g) => {
      phase.accumulate(p, g, twin, hyper, step, unit, sums, kernels);
    });
    const apply = captureCalls(rule, twin, hyper, arrayCount, (kernels, p, g) => {
      phase.apply(p, g, twin, hyper, step, unit, unit, kernels);
    });
    for (const [pass, captured] of [['accumulate', accumulate], ['apply', apply]] as const) {
      if (captured.calls.length !== 1) throw new Error(`${this.core.owner}: the rule's ${pass} made ${captured.calls.length} kernel calls; the GPU path runs one`);
    }
    return { accumulate, apply };
  }
}

