/**
 * A rule with a global phase (src/rule.ts `GlobalPhase`: Prodigy, D-Adapt AdamW) on the
 * GPU: one compute pass per step, in it
 *
 *   1. the scan of every gradient (nonFinite 'error' or 'skip'), as for every rule;
 *   2. pass 1, one dispatch per parameter: the rule's elementwise update of its state
 *      (the WGSL twin of its wasm kernel), and each element's contribution to the step's
 *      totals, summed per workgroup by a tree in workgroup memory into one partial sum per
 *      workgroup and total;
 *   3. one workgroup: the partials summed into the totals, then its invocation 0 runs the
 *      rule's `reduce` (its WGSL twin, in the rule's GPU file): the optimizer-level
 *      scalars (d, ...) of the step from the old ones and the totals;
 *   4. pass 2, one dispatch per parameter: the parameters moved with them.
 *
 * The optimizer-level scalars never leave the device during training: they live in one
 * small storage buffer (`now`, the scalars as of the last step; `before`, those pass 1 of
 * the last step read; the totals; the partials), read back by `stateDict()` only. Every
 * pass that writes reads the refusal flag first and writes nothing on a refused step, so a
 * refused step leaves the scalars as they were; with 'skip', each parameter's passes are
 * encoded once per number of skips the steps in flight may have had (optimizer-skip.ts),
 * all of them writing the same partials, and the one the flag selects runs.
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
import { checkGpuKernel, grid, scanGrid, UNIFORM_SLOT, uniformNames, uniformWords, WORKGROUP, writeScanUniforms, writeUniforms, type ArrayRole, type FlagUse, type GpuKernel } from './kernel.ts';
import type { GpuOptimizerCore } from './optimizer-core.ts';
import { readFlag } from './optimizer-verdict.ts';
import { captureCalls, scalarRecord, type CapturedStep } from './scalars.ts';

const COMPUTE = 0x4; // GPUShaderStage.COMPUTE
const GLOBAL_USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */
const STAGING_USAGE = 0x01 /* MAP_READ */ | 0x08; /* COPY_DST */

/**
 * The GPU twin of a rule's global phase, in the rule's GPU file beside its elementwise
 * kernels (whose bodies read the optimizer-level scalars as `gl.now.<name>`, and in pass
 * 2 those pass 1 read as `gl.before.<name>`).
 */
export interface GpuGlobalPhase {
  /** The names of the step's totals, in the order of the rule's `sums` (WGSL identifiers). */
  readonly totals: readonly string[];
  /** Per pass-1 wasm entry: per total, the WGSL expression of element `i`'s contribution (from the body's variables). */
  readonly contributions: { readonly [entry: string]: readonly string[] };
  /** Arrays a GPU kernel binds besides its wasm layout's (the sums' inputs), by entry: name to role. */
  readonly extraArrays?: { readonly [entry: string]: { readonly [name: string]: ArrayRole } };
  /**
   * Per pass-1 entry: an array that takes a copy of another at the parameter's first step,
   * before the body reads it (Prodigy's x0 = x), by the kernel's array names.
   */
  readonly firstStepCopy?: { readonly [entry: string]: { readonly into: string; readonly from: string } };
  /** The uniforms of `reduce`, from the optimizer's hyperparameters, each rounded once to float32. */
  readonly reduceUniforms: { readonly [name: string]: (hyper: CommonHyper) => number };
  /**
   * WGSL of the rule's `reduce`, in the CPU's order of operations (invocation 0 alone;
   * it may `return`): reads `gl.now.<scalar>` (the scalars before the step),
   * `gl.totals.<total>` and `r.<uniform>`, writes `gl.now.<scalar>`.
   */
  readonly reduce: string;
}

/** The step scalar a pass-1 kernel of a global rule may read besides its layout's: the step's lr (the weight of a parameter's sums). */
export const GLOBAL_STEP_SCALARS = ['lr'] as const;

const REDUCE_HEADER_WORDS = 4;

/** WGSL: a NaN test on the bits (a shader compiler may fold `x != x` away). */
const IS_NAN = `fn isNan(x: f32) -> bool {
  let b = bitcast<u32>(x);
  return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u;
}`;

function refusedTest(flag: FlagUse, issue: string): string {
  if (flag === 'error') return 'refusal[1] != 0u';
  if (flag === 'skip') return `refusal[3] == ${issue} + 1u || refusal[2] - s.known != s.cand`;
  return 'false';
}

function globalStructs(scalarNames: readonly string[], totals: readonly string[]): string {
  return `struct Globals {
${scalarNames.map((name) => `  ${name}: f32,`).join('\n')}
}
struct Totals {
${totals.map((name) => `  ${name}: f32,`).join('\n')}
}
struct GlobalState {
  now: Globals,
  before: Globals,
  totals: Totals,
  partials: array<f32>,
}`;
}

/** The WGSL of a pass-1 (with `contributions`) or pass-2 kernel of a global rule. */
export function globalShaderSource(kernel: GpuKernel, arrays: readonly string[], roles: readonly ArrayRole[], flag: FlagUse, scalarNames: readonly string[], totals: readonly string[], contributions: readonly string[] | undefined, firstStepCopy?: { readonly into: string; readonly from: string }): string {
  const fields = uniformNames(kernel).map((name) => `  ${name}: f32,`).join('\n');
  const bindings = arrays
    .map((name, k) => `@group(0) @binding(${k + 1}) var<storage, ${roles[k] === 'grads' || (contributions !== undefined && roles[k] === 'params') ? 'read' : 'read_write'}> ${name}: array<f32>;`)
    .join('\n');
  const flagBinding = flag === 'ignore' ? '' : `@group(0) @binding(${arrays.length + 1}) var<storage, read> refusal: array<u32>;`;
  const globalBinding = `@group(0) @binding(${arrays.length + 2}) var<storage, ${contributions === undefined ? 'read' : 'read_write'}> gl: GlobalState;`;
  const head = `struct Uniforms {
  base: u32,
  n: u32,
  stride: u32,
  issue: u32,
  cand: u32,
  known: u32,
  part: u32,
  first: u32,
${fields}
}
${globalStructs(scalarNames, totals)}
@group(0) @binding(0) var<uniform> s: Uniforms;
${bindings}
${flagBinding}
${globalBinding}
`;
  const refused = refusedTest(flag, 's.issue');
  if (contributions === undefined) {
    return `${head}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let j = id.y * s.stride + id.x;
  if (j >= s.n) { return; }
  if (${refused}) { return; }
  let i = s.base + j;
  ${kernel.body}
}
`;
  }
  const count = totals.length;
  const zero = totals.map(() => '0.0').join(', ');
  return `${head}
var<workgroup> acc: array<f32, ${WORKGROUP * count}>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let j = id.y * s.stride + id.x;
  let live = !(${refused});
  var c = array<f32, ${count}>(${zero});
  if (j < s.n && live) {
    let i = s.base + j;
    ${firstStepCopy === undefined ? '' : `if (s.first != 0u) { ${firstStepCopy.into}[i] = ${firstStepCopy.from}[i]; }`}
    ${kernel.body}
${contributions.map((expression, k) => `    c[${k}] = ${expression};`).join('\n')}
  }
${totals.map((_, k) => `  acc[l * ${count}u + ${k}u] = c[${k}];`).join('\n')}
  workgroupBarrier();
  for (var half = ${WORKGROUP / 2}u; half > 0u; half = half >> 1u) {
    if (l < half) {
${totals.map((_, k) => `      acc[l * ${count}u + ${k}u] = acc[l * ${count}u + ${k}u] + acc[(l + half) * ${count}u + ${k}u];`).join('\n')}
    }
    workgroupBarrier();
  }
  if (l == 0u && live) {
    let at = (s.part + wg.y * groups.x + wg.x) * ${count}u;
${totals.map((_, k) => `    gl.partials[at + ${k}u] = acc[${k}u];`).join('\n')}
  }
}
`;
}

/** The WGSL of the final reduction (one workgroup: the partials into the totals) and the rule's `reduce` (its invocation 0). */
export function reduceShaderSource(spec: GpuGlobalPhase, flag: FlagUse, scalarNames: readonly string[]): string {
  const count = spec.totals.length;
  const zero = spec.totals.map(() => '0.0').join(', ');
  const fields = Object.keys(spec.reduceUniforms).map((name) => `  ${name}: f32,`).join('\n');
  const refused = flag === 'error' ? 'refusal[1] != 0u' : flag === 'skip' ? 'refusal[3] == r.issue + 1u' : 'false';
  return `struct ReduceUniforms {
  count: u32,
  issue: u32,
  pad0: u32,
  pad1: u32,
${fields}
}
${globalStructs(scalarNames, spec.totals)}
@group(0) @binding(0) var<uniform> r: ReduceUniforms;
@group(0) @binding(1) var<storage, read_write> gl: GlobalState;
${flag === 'ignore' ? '' : '@group(0) @binding(2) var<storage, read> refusal: array<u32>;'}
var<workgroup> acc: array<f32, ${WORKGROUP * count}>;

${IS_NAN}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(local_invocation_index) l: u32) {
  var c = array<f32, ${count}>(${zero});
  for (var q = l; q < r.count; q = q + ${WORKGROUP}u) {
${spec.totals.map((_, k) => `    c[${k}] = c[${k}] + gl.partials[q * ${count}u + ${k}u];`).join('\n')}
  }
${spec.totals.map((_, k) => `  acc[l * ${count}u + ${k}u] = c[${k}];`).join('\n')}
  workgroupBarrier();
  for (var half = ${WORKGROUP / 2}u; half > 0u; half = half >> 1u) {
    if (l < half) {
${spec.totals.map((_, k) => `      acc[l * ${count}u + ${k}u] = acc[l * ${count}u + ${k}u] + acc[(l + half) * ${count}u + ${k}u];`).join('\n')}
    }
    workgroupBarrier();
  }
  if (l != 0u) { return; }
  if (${refused}) { return; }
${spec.totals.map((name, k) => `  gl.totals.${name} = acc[${k}u];`).join('\n')}
  gl.before = gl.now;
  ${spec.reduce}
}
`;
}

interface GlobalPipeline {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly kernel: GpuKernel;
  readonly arrays: readonly string[];
  readonly roles: readonly ArrayRole[];
  readonly flag: FlagUse;
}

/** One parameter's captured passes of a step. */
interface CapturedPasses {
  readonly accumulate: CapturedStep;
  readonly apply: CapturedStep;
}

/** A GPUOptimizer's global phase: its scalars buffer, its pipelines and the encoding of its step. */
export class GpuGlobal<K extends string> {
  readonly core: GpuOptimizerCore<K>;
  readonly phase: GlobalPhase<CommonHyper, RuleState>;
  readonly spec: GpuGlobalPhase;
  /** Floats of `now`, `before` and the totals, before the partials. */
  readonly #head: number;
  /** Partial sums per total one step writes at most: a workgroup per 64 elements of each parameter. */
  readonly #partials: number;
  #buffer: GPUBuffer | undefined;
  #reduce: { readonly pipeline: GPUComputePipeline; readonly layout: GPUBindGroupLayout; readonly flag: FlagUse } | undefined;
  readonly #pipelines = new Map<string, GlobalPipeline>();

  constructor(core: GpuOptimizerCore<K>, spec: GpuGlobalPhase) {
    this.core = core;
    this.phase = core.rule.global as unknown as GlobalPhase<CommonHyper, RuleState>;
    this.spec = spec;
    if (spec.totals.length !== this.phase.sumCount) throw new Error(`${core.rule.name}: its GPU global phase names ${spec.totals.length} totals, the rule sums ${this.phase.sumCount}`);
    const names = this.phase.scalarNames;
    this.#head = 2 * names.length + spec.totals.length;
    const store = core.store;
    this.#partials = store.names.reduce((sum, name) => {
      const { x, y } = grid(store.lengths[name]);
      return sum + x * y;
    }, 0);
  }

  /** The scalars' buffer, made at first use with the rule's initial scalars. */
  buffer(): GPUBuffer {
    if (this.#buffer === undefined) {
      const size = Math.ceil(((this.#head + this.#partials * this.spec.totals.length) * 4) / 16) * 16;
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
    this.#reduce = undefined;
  }

  /** The arrays a pass's kernel binds: its wasm layout's, then the GPU file's extra ones. */
  #arrays(entry: string, roles: readonly ArrayRole[]): { arrays: string[]; roles: ArrayRole[] } {
    const extra = this.spec.extraArrays?.[entry] ?? {};
    return { arrays: [...this.core.layoutOf(entry).arrays, ...Object.keys(extra)], roles: [...roles, ...Object.values(extra)] };
  }

  #flag(): FlagUse {
    return this.core.checked ? 'error' : this.core.skipping ? 'skip' : 'ignore';
  }

  pipeline(entry: string, callRoles: readonly ArrayRole[]): GlobalPipeline {
    const core = this.core;
    const flag = this.#flag();
    const { arrays, roles } = this.#arrays(entry, callRoles);
    const key = `${entry}|${roles.map((role) => (typeof role === 'string' ? role : `state:${role.state}`)).join(',')}|${flag}`;
    const cached = this.#pipelines.get(key);
    if (cached !== undefined) return cached;
    const kernel = core.kernels[entry];
    if (kernel === undefined) throw new Error(`${core.owner}: no GPU kernel for wasm entry '${entry}' (src/webgpu/rules/${core.rule.key}.ts)`);
    const contributions = this.spec.contributions[entry];
    checkGpuKernel(core.rule.name, entry, kernel, [...core.layoutOf(entry).scalars, ...GLOBAL_STEP_SCALARS], arrays);
    const device = core.store.device;
    const layout = device.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: COMPUTE, buffer: { type: 'uniform' } },
        ...arrays.map((_, k): GPUBindGroupLayoutEntry => ({ binding: k + 1, visibility: COMPUTE, buffer: { type: roles[k] === 'grads' || (contributions !== undefined && roles[k] === 'params') ? 'read-only-storage' : 'storage' } })),
        ...(flag !== 'ignore' ? [{ binding: arrays.length + 1, visibility: COMPUTE, buffer: { type: 'read-only-storage' as const } }] : []),
        { binding: arrays.length + 2, visibility: COMPUTE, buffer: { type: contributions === undefined ? 'read-only-storage' : 'storage' } },
      ],
    });
    const code = globalShaderSource(kernel, arrays, roles, flag, this.phase.scalarNames, this.spec.totals, contributions, this.spec.firstStepCopy?.[entry]);
    const module = device.createShaderModule({ label: `nesterov ${entry}`, code });
    const pipeline: GlobalPipeline = {
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

  bindGroup(pipeline: GlobalPipeline, entry: string, slot: number, uniforms: GPUBuffer): GPUBindGroup {
    const core = this.core;
    const key = `global|${slot}|${entry}|${pipeline.roles.map((role) => (typeof role === 'string' ? role : `state:${role.state}`)).join(',')}|${pipeline.flag}`;
    let group = core.bindGroups.get(key);
    if (group !== undefined) return group;
    const bytes = Math.ceil((uniformWords(pipeline.kernel) * 4) / 16) * 16;
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

  reducePipeline(): { readonly pipeline: GPUComputePipeline; readonly layout: GPUBindGroupLayout; readonly flag: FlagUse } {
    const flag = this.#flag();
    if (this.#reduce === undefined || this.#reduce.flag !== flag) {
      const device = this.core.store.device;
      const layout = device.createBindGroupLayout({
        entries: [
          { binding: 0, visibility: COMPUTE, buffer: { type: 'uniform' } },
          { binding: 1, visibility: COMPUTE, buffer: { type: 'storage' } },
          ...(flag !== 'ignore' ? [{ binding: 2, visibility: COMPUTE, buffer: { type: 'read-only-storage' as const } }] : []),
        ],
      });
      const module = device.createShaderModule({ label: `nesterov ${this.core.rule.name} reduce`, code: reduceShaderSource(this.spec, flag, this.phase.scalarNames) });
      this.#reduce = { layout, flag, pipeline: device.createComputePipeline({ label: `nesterov ${this.core.rule.name} reduce`, layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: 'main' } }) };
    }
    return this.#reduce;
  }

  reduceBindGroup(slot: number, uniforms: GPUBuffer): GPUBindGroup {
    const core = this.core;
    const { layout, flag } = this.reducePipeline();
    const key = `global|${slot}|reduce|${flag}`;
    let group = core.bindGroups.get(key);
    if (group === undefined) {
      const bytes = Math.ceil(((REDUCE_HEADER_WORDS + Object.keys(this.spec.reduceUniforms).length) * 4) / 16) * 16;
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

  /** Writes the reduce's uniform block: the partials' count, the step's issue number, the rule's uniforms. */
  writeReduceUniforms(target: ArrayBuffer, at: number, count: number, issue: number, hyper: CommonHyper): void {
    const words = new Uint32Array(target, at * 4, REDUCE_HEADER_WORDS);
    words[0] = count;
    words[1] = issue;
    words[2] = 0;
    words[3] = 0;
    const names = Object.keys(this.spec.reduceUniforms);
    const values = new Float32Array(target, (at + REDUCE_HEADER_WORDS) * 4, names.length);
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
 * the reduction and `reduce` (skipped on a refused or skipped step), pass 2. `scanStep`:
 * the number the scan marks the flag with (the step, or with 'skip' the issue number).
 */
function encodeGlobal<K extends string>(core: GpuOptimizerCore<K>, global: GpuGlobal<K>, runs: readonly GlobalRun[], scanStep: number, known: number, hyper: CommonHyper): void {
  const store = core.store;
  const scanned = core.checked || core.skipping;
  const dispatches = runs.reduce((sum, run) => sum + run.candidates.length, 0);
  // Slots: pass 1 per candidate, pass 2 per candidate, the reduce, then the scans.
  const reduceSlot = 2 * dispatches;
  const slots = reduceSlot + 1 + (scanned ? runs.length : 0);
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
      const slot = reduceSlot + 1 + r;
      writeScanUniforms(block, (slot * UNIFORM_SLOT) / 4, run.base, run.n, stride, scanStep);
      pass.setPipeline(scan.pipeline);
      pass.setBindGroup(0, core.scanBindGroup(scan.layout, slot, uniforms));
      if (run.n > 0) pass.dispatchWorkgroups(x, y);
    });
  }
  const captured = runs.map((run) => run.candidates.map((candidate) => ({ first: candidate.twin.step === 0, passes: global.capture(candidate.twin, candidate.hyper, candidate.lr) })));
  const dispatch = (which: 'accumulate' | 'apply', at: number): number => {
    let part = 0;
    let slot = at;
    runs.forEach((run, r) => {
      const { x, y, stride } = grid(run.n);
      run.candidates.forEach((candidate, k) => {
        const { first, passes } = captured[r]![k]!;
        const call = passes[which].calls[0]!;
        const pipeline = global.pipeline(call.entry, call.roles);
        const values = { ...scalarRecord(passes[which].scalars, core.layoutOf(call.entry).scalars), lr: candidate.lr };
        writeUniforms(block, (slot * UNIFORM_SLOT) / 4, pipeline.kernel, run.base, run.n, stride, values, { issue: scanStep, cand: candidate.cand, known });
        const words = new Uint32Array(block, slot * UNIFORM_SLOT + 24, 2);
        words[0] = part;
        words[1] = first ? 1 : 0;
        pass.setPipeline(pipeline.pipeline);
        pass.setBindGroup(0, global.bindGroup(pipeline, call.entry, slot, uniforms));
        // Pass 1 runs even over no element: its partials must be 0.
        if (which === 'accumulate' || run.n > 0) pass.dispatchWorkgroups(x, y);
        slot += 1;
      });
      part += x * y;
    });
    return part;
  };
  const partials = dispatch('accumulate', 0);
  global.writeReduceUniforms(block, (reduceSlot * UNIFORM_SLOT) / 4, partials, scanStep, hyper);
  pass.setPipeline(global.reducePipeline().pipeline);
  pass.setBindGroup(0, global.reduceBindGroup(reduceSlot, uniforms));
  pass.dispatchWorkgroups(1);
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
