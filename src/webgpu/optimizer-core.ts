/**
 * The state of a GPUOptimizer shared by the files that do its jobs (optimizer-step.ts,
 * optimizer-skip.ts, optimizer-verdict.ts, optimizer-state-dict.ts, optimizer-modes.ts),
 * and the GPU objects it owns: state buffers, pipelines, bind groups, uniforms, the
 * refusal flag and the gradient scan. Internal: GPUOptimizer keeps it in a private field.
 */
import type { AnyOptimizer } from '../optimizer.ts';
import type { RuleState } from '../rule.ts';
import type { AnyUpdateRule } from '../rules/index.ts';
import type { FloatArray } from '../types.ts';
import { checkGpuKernel, NONE, SCAN_SHADER, shaderSource, SKIP_SCAN_SHADER, UNIFORM_SLOT, uniformWords, type ArrayRole, type FlagUse, type GpuKernel } from './kernel.ts';
import { GpuGlobal } from './global.ts';
import type { GpuProgram } from './program.ts';
import { GPU_GLOBAL, GPU_MODES, GPU_PROGRAMS } from './rules/index.ts';
import type { GPUParamStore } from './store.ts';

const COMPUTE = 0x4; // GPUShaderStage.COMPUTE
const UNIFORM_USAGE = 0x40 /* UNIFORM */ | 0x08; /* COPY_DST */
const STORAGE_USAGE = 0x80 /* STORAGE */ | 0x08; /* COPY_DST */
const FLAG_USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */
export const CLEAR = new Uint32Array([NONE, 0, 0, 0]);

/** The twins before one step, to go back to when the device refused that step. */
interface Snapshot {
  readonly step: number;
  readonly twins: ReadonlyMap<string, RuleState>;
}

/** One parameter's step and scalars (its buffers are on the GPU). */
export interface GpuSlot {
  readonly name: string;
  readonly index: number;
  twin: RuleState;
}

/** A step kernel's pipeline, with what its bind groups need (the core's, and a global rule's passes, global.ts). */
export interface Pipeline {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly kernel: GpuKernel;
  readonly arrays: readonly string[];
  readonly roles: readonly ArrayRole[];
  /** How it reads the refusal flag. */
  readonly flag: FlagUse;
}

function roleKey(role: ArrayRole): string {
  return typeof role === 'string' ? role : `state:${role.state}`;
}

/** Everything a GPUOptimizer holds but its optimizer and store, and the GPU objects it makes. */
export class GpuOptimizerCore<K extends string> {
  /** The CPU optimizer whose options, schedules, overrides and state format this one follows. */
  readonly optimizer: AnyOptimizer;
  readonly store: GPUParamStore<K>;
  readonly rule: AnyUpdateRule;
  readonly owner: string;
  readonly kernels: { readonly [entry: string]: GpuKernel };
  /** A perParameter rule's step as several passes with sums between them (passes.ts), or undefined: one kernel call per run. */
  readonly program: GpuProgram | undefined;
  readonly slots = new Map<string, GpuSlot>();
  readonly state = new Map<string, GPUBuffer>();
  readonly pipelines = new Map<string, Pipeline>();
  readonly bindGroups = new Map<string, GPUBindGroup>();
  readonly dummies: GPUBuffer[] = [];
  uniforms: GPUBuffer | undefined;
  uniformSlots = 0;
  stepCount = 0;
  skippedSteps = 0;
  training = true;
  // The non-finite contract ('error'): the refusal flag on the device, its asynchronous
  // reads, and the twins before each step not yet known to be applied.
  readonly checked: boolean;
  // nonFinite 'skip': the state as of the last flag read (base), and per parameter its
  // twins after 0, 1, 2, ... applied steps past the base (chain), one per number of
  // skips the steps in flight may have had.
  readonly skipping: boolean;
  issued = 0;
  baseIssued = 0;
  baseApplied = 0;
  /** The flag's count of skipped steps at the base (word 2; 0 after a clear). */
  baseFlagSkips = 0;
  readonly chains = new Map<string, RuleState[]>();
  pendingNames = '';
  flag: GPUBuffer | undefined;
  flagStaging: GPUBuffer | undefined;
  flagRead: Promise<void> | undefined;
  /** Steps below this are known applied (the last flag read covered them). */
  known = 0;
  history: Snapshot[] = [];
  refused: { readonly packed: number; readonly step: number } | undefined;
  /** Bumped by reset and loadStateDict: a flag read begun before is of no account after. */
  epoch = 0;
  scan: { readonly pipeline: GPUComputePipeline; readonly layout: GPUBindGroupLayout } | undefined;
  /** A rule with a global phase: its optimizer-level scalars on the device and its passes (global.ts). */
  readonly global: GpuGlobal<K> | undefined;

  constructor(optimizer: AnyOptimizer, store: GPUParamStore<K>, rule: AnyUpdateRule, kernels: { readonly [entry: string]: GpuKernel }) {
    this.optimizer = optimizer;
    this.store = store;
    this.rule = rule;
    this.owner = `${rule.name}.update`;
    this.kernels = kernels;
    this.program = GPU_PROGRAMS[rule.key];
    this.checked = optimizer.nonFinite === 'error';
    this.skipping = optimizer.nonFinite === 'skip';
    const global = GPU_GLOBAL[rule.key];
    this.global = global === undefined ? undefined : new GpuGlobal(this, global);
  }

  /** Frees the buffers owned here (uniforms, refusal flag, placeholders); the state buffers go with the store. */
  destroy(): void {
    this.uniforms?.destroy();
    this.uniforms = undefined;
    this.flag?.destroy();
    this.flag = undefined;
    this.flagStaging?.destroy();
    this.flagStaging = undefined;
    this.scan = undefined;
    this.global?.destroy();
    for (const buffer of this.dummies) buffer.destroy();
    this.dummies.length = 0;
    this.bindGroups.clear();
  }

  layoutOf(entry: string): { readonly arrays: readonly string[]; readonly scalars: readonly string[] } {
    const layout = Object.values(this.rule.kernels ?? {}).find((candidate) => candidate.entry === entry);
    if (layout === undefined) throw new Error(`${this.owner}: the rule called kernel '${entry}', which its layouts do not declare`);
    return layout;
  }

  stateBuffer(key: string): GPUBuffer {
    let buffer = this.state.get(key);
    if (buffer === undefined) {
      buffer = this.store.createRegion(`nesterov ${this.rule.name} ${key}`);
      this.state.set(key, buffer);
      this.bindGroups.clear();
    }
    return buffer;
  }

  upload(buffer: GPUBuffer, offset: number, array: FloatArray): void {
    const values = array instanceof Float32Array ? array : Float32Array.from(array);
    if (values.length > 0) this.store.device.queue.writeBuffer(buffer, offset * 4, values.buffer, values.byteOffset, values.byteLength);
  }

  uniformBuffer(runs: number): GPUBuffer {
    if (this.uniforms === undefined || this.uniformSlots < runs) {
      this.uniforms?.destroy();
      this.uniformSlots = Math.max(runs, 2 * this.uniformSlots, 4);
      this.uniforms = this.store.device.createBuffer({ label: `nesterov ${this.rule.name} uniforms`, size: this.uniformSlots * UNIFORM_SLOT, usage: UNIFORM_USAGE });
      this.bindGroups.clear();
    }
    return this.uniforms;
  }

  pipeline(entry: string, roles: readonly ArrayRole[]): Pipeline {
    const flag: FlagUse = entry === GPU_MODES[this.rule.key]?.entry ? 'ignore' : this.checked ? 'error' : this.skipping ? 'skip' : 'ignore';
    const key = `${entry}|${roles.map(roleKey).join(',')}|${flag}`;
    let pipeline = this.pipelines.get(key);
    if (pipeline !== undefined) return pipeline;
    const kernel = this.kernels[entry];
    if (kernel === undefined) throw new Error(`${this.owner}: no GPU kernel for wasm entry '${entry}' (src/webgpu/rules/${this.rule.key}.ts)`);
    const { arrays, scalars } = this.layoutOf(entry);
    checkGpuKernel(this.rule.name, entry, kernel, scalars, arrays);
    const device = this.store.device;
    const layout = device.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: COMPUTE, buffer: { type: 'uniform' } },
        ...arrays.map((_, k): GPUBindGroupLayoutEntry => ({ binding: k + 1, visibility: COMPUTE, buffer: { type: roles[k] === 'grads' ? 'read-only-storage' : 'storage' } })),
        ...(flag !== 'ignore' ? [{ binding: arrays.length + 1, visibility: COMPUTE, buffer: { type: 'read-only-storage' as const } }] : []),
      ],
    });
    const module = device.createShaderModule({ label: `nesterov ${entry}`, code: shaderSource(kernel, arrays, roles, flag) });
    pipeline = {
      pipeline: device.createComputePipeline({ label: `nesterov ${entry}`, layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: 'main' } }),
      layout,
      kernel,
      arrays,
      roles,
      flag,
    };
    this.pipelines.set(key, pipeline);
    return pipeline;
  }

  bindGroup(pipeline: Pipeline, entry: string, slot: number, uniforms: GPUBuffer): GPUBindGroup {
    const key = `${slot}|${entry}|${pipeline.roles.map(roleKey).join(',')}|${pipeline.flag}`;
    let group = this.bindGroups.get(key);
    if (group !== undefined) return group;
    const store = this.store;
    const bytes = Math.ceil((uniformWords(pipeline.kernel) * 4) / 16) * 16;
    group = store.device.createBindGroup({
      layout: pipeline.layout,
      entries: [
        { binding: 0, resource: { buffer: uniforms, offset: slot * UNIFORM_SLOT, size: bytes } },
        ...pipeline.roles.map((role, k): GPUBindGroupEntry => ({ binding: k + 1, resource: { buffer: this.bufferFor(role, k) } })),
        ...(pipeline.flag !== 'ignore' ? [{ binding: pipeline.roles.length + 1, resource: { buffer: this.flagBuffer() } }] : []),
      ],
    });
    this.bindGroups.set(key, group);
    return group;
  }

  bufferFor(role: ArrayRole, binding: number): GPUBuffer {
    if (role === 'params') return this.store.params;
    if (role === 'grads') return this.store.grads;
    if (role === 'unused') {
      // A placeholder per binding: two writable bindings of one buffer are not allowed.
      while (this.dummies.length <= binding) this.dummies.push(this.store.device.createBuffer({ size: 16, usage: STORAGE_USAGE }));
      return this.dummies[binding]!;
    }
    return this.stateBuffer(role.state);
  }

  flagBuffer(): GPUBuffer {
    if (this.flag === undefined) {
      this.flag = this.store.device.createBuffer({ label: `nesterov ${this.rule.name} refusal`, size: 16, usage: FLAG_USAGE, mappedAtCreation: true });
      new Uint32Array(this.flag.getMappedRange()).set(CLEAR);
      this.flag.unmap();
    }
    return this.flag;
  }

  flagStagingBuffer(): GPUBuffer {
    this.flagStaging ??= this.store.device.createBuffer({ size: 16, usage: 0x01 /* MAP_READ */ | 0x08 /* COPY_DST */ });
    return this.flagStaging;
  }

  scanPipeline(): { readonly pipeline: GPUComputePipeline; readonly layout: GPUBindGroupLayout } {
    if (this.scan === undefined) {
      const device = this.store.device;
      const layout = device.createBindGroupLayout({
        entries: [
          { binding: 0, visibility: COMPUTE, buffer: { type: 'uniform' } },
          { binding: 1, visibility: COMPUTE, buffer: { type: 'read-only-storage' } },
          { binding: 2, visibility: COMPUTE, buffer: { type: 'storage' } },
        ],
      });
      const module = device.createShaderModule({ label: 'nesterov scan', code: this.skipping ? SKIP_SCAN_SHADER : SCAN_SHADER });
      this.scan = { layout, pipeline: device.createComputePipeline({ label: 'nesterov scan', layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: 'main' } }) };
    }
    return this.scan;
  }

  scanBindGroup(layout: GPUBindGroupLayout, slot: number, uniforms: GPUBuffer): GPUBindGroup {
    const key = `${slot}|scan`;
    let group = this.bindGroups.get(key);
    if (group === undefined) {
      group = this.store.device.createBindGroup({
        layout,
        entries: [
          { binding: 0, resource: { buffer: uniforms, offset: slot * UNIFORM_SLOT, size: 16 } },
          { binding: 1, resource: { buffer: this.store.grads } },
          { binding: 2, resource: { buffer: this.flagBuffer() } },
        ],
      });
      this.bindGroups.set(key, group);
    }
    return group;
  }
}
