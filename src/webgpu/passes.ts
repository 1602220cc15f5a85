/**
 * The steps of a GPU program (program.ts) encoded into the step's compute pass: per
 * parameter, its passes in order, each a dispatch (a reduce pass one per level of its
 * tree, reduce.ts), the sums between them in a scratch buffer of the optimizer's. The
 * dispatches of one compute pass run in order and each sees what the ones before wrote,
 * so a step reads the sums of its own earlier passes; the scratch is reused by the next
 * parameter. The map passes (those that write params or state) read the refusal flag
 * as every step kernel does: with nonFinite 'error' nothing is written once a step was
 * refused, with 'skip' only the candidate that matches the device's count of skips
 * writes (each candidate's passes run in sequence, so its sums are its own). The reduce
 * passes write only the scratch and are not guarded.
 */
import type { CommonHyper, RuleState } from '../rule.ts';
import type { AnyUpdateRule } from '../rules/index.ts';
import { elementwiseMain, grid, UNIFORM_HEADER, UNIFORM_SLOT, uniformStruct, type ArrayRole, type Candidate, type FlagUse } from './kernel.ts';
import type { GpuOptimizerCore } from './optimizer-core.ts';
import type { PassCall, PassShape, ProgramPlan } from './program.ts';
import { levelSource, REDUCE_GROUP, reduceLevels, SEGMENTS_PER_DISPATCH } from './reduce.ts';
import { captureStep, newTwin, scalarRecord } from './scalars.ts';

const COMPUTE = 0x4; // GPUShaderStage.COMPUTE
const UNIFORM_USAGE = 0x40 /* UNIFORM */ | 0x08; /* COPY_DST */
const SCRATCH_USAGE = 0x80 /* STORAGE */ | 0x08; /* COPY_DST */
const MAP_HEADER = UNIFORM_HEADER;
const REDUCE_HEADER = ['base', 'n', 'segStride', 'elemStride', 'chunks', 'xGroups', 'segFirst', 'outAt', 'inAt', 'pad0', 'pad1', 'pad2'];
const IDENTIFIER = /^[A-Za-z][A-Za-z0-9]*$/;
const MAX_TERMS = 8;

interface PassPipeline {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly key: string;
}

/** The GPU objects of an optimizer's programs: pipelines, the uniforms of a step's dispatches, the scratch. */
interface Engine {
  readonly pipelines: Map<string, PassPipeline>;
  uniforms: GPUBuffer | undefined;
  uniformSlots: number;
  scratch: GPUBuffer | undefined;
  scratchFloats: number;
}

const engines = new WeakMap<object, Engine>();

function engineOf<K extends string>(core: GpuOptimizerCore<K>): Engine {
  let engine = engines.get(core);
  if (engine === undefined) {
    engine = { pipelines: new Map(), uniforms: undefined, uniformSlots: 0, scratch: undefined, scratchFloats: 0 };
    engines.set(core, engine);
  }
  return engine;
}

/** Frees the buffers of an optimizer's programs (GPUOptimizer.destroy). */
export function destroyPasses<K extends string>(core: GpuOptimizerCore<K>): void {
  const engine = engines.get(core);
  if (engine === undefined) return;
  engine.uniforms?.destroy();
  engine.scratch?.destroy();
  engines.delete(core);
}

/** The shape an `ownState` rule takes for parameter `name` (rule.ts `shapeOf`: throws an UpdateError naming it), else undefined. */
export function shapeFor<K extends string>(core: GpuOptimizerCore<K>, name: string, hyper: CommonHyper): readonly number[] | undefined {
  const rule = core.rule;
  if (rule.ownState !== true) return undefined;
  return rule.shapeOf!(hyper as never, name, core.store.lengths[name as K], core.store.shapes[name as K]);
}

/** A new twin for parameter `name` (an `ownState` rule's made for its shape: Adafactor's rows and cols). */
export function twinFor(rule: AnyUpdateRule, hyper: CommonHyper, shape: readonly number[] | undefined): RuleState {
  if (shape === undefined) return newTwin(rule, hyper);
  return rule.init(0, 'float32', hyper as never, () => new Float32Array(0), shape);
}

/** The length of each state buffer of a parameter (an `ownState` rule's differ from the parameter's). */
export function stateLengths(rule: AnyUpdateRule, hyper: CommonHyper, length: number, shape: readonly number[] | undefined): number[] {
  if (rule.ownState !== true) return rule.bufferNames(hyper as never).map(() => length);
  const lengths: number[] = [];
  rule.init(length, 'float32', hyper as never, (_dtype, size) => {
    lengths.push(size);
    return new Float32Array(0);
  }, shape);
  return lengths;
}

/**
 * Takes one step of parameter `name`'s twin and returns its program's plan. The rule's
 * CPU code counts the step (through `stepWasm` for rules with wasm kernels).
 */
export function planStep<K extends string>(core: GpuOptimizerCore<K>, name: string, twin: RuleState, hyper: CommonHyper, lr: number): ProgramPlan {
  const rule = core.rule;
  return core.program!.plan({
    twin,
    hyper,
    lr,
    length: core.store.lengths[name as K],
    shape: shapeFor(core, name, hyper),
    capture: () => {
      const captured = captureStep(rule, twin, hyper, lr, (entry) => core.layoutOf(entry).arrays.length);
      return captured.calls.map((call) => ({ entry: call.entry, roles: call.roles, scalars: scalarRecord(captured.scalars, core.layoutOf(call.entry).scalars) }));
    },
  });
}

/** One dispatch of a step's programs. */
interface Dispatch {
  readonly kind: 'map' | 'reduce' | 'tree';
  readonly call: PassCall;
  readonly words: Uint32Array;
  readonly groups: readonly [number, number, number];
  readonly candidate: Candidate | undefined;
}

const NO_CANDIDATE: Candidate = { issue: 0, cand: 0, known: 0 };

function checkShape(shape: PassShape): void {
  const names = [...shape.arrays, ...Object.keys(shape.uniforms), ...(shape.sums ?? []).map((slot) => `${slot}At`)];
  for (const name of names) {
    if (!IDENTIFIER.test(name) || MAP_HEADER.includes(name) || REDUCE_HEADER.includes(name) || ['s', 'i', 'j', 'k', 't', 'l', 'q', 'w', 'x', 'c', 'seg', 'red', 'acc', 'chunk', 'load', 'main', 'refusal'].includes(name)) {
      throw new Error(`GPU pass '${shape.label}': the name '${name}' is not free to use`);
    }
  }
  if (new Set(names).size !== names.length) throw new Error(`GPU pass '${shape.label}': a name is given twice`);
  if (shape.terms !== undefined && !(Number.isInteger(shape.terms) && shape.terms >= 1 && shape.terms <= MAX_TERMS)) throw new Error(`GPU pass '${shape.label}': terms ${shape.terms}, not 1 to ${MAX_TERMS}`);
  const words = (shape.terms === undefined ? MAP_HEADER : REDUCE_HEADER).length + names.length - shape.arrays.length;
  if (words * 4 > UNIFORM_SLOT) throw new Error(`GPU pass '${shape.label}': too many uniforms for one ${UNIFORM_SLOT}-byte slot`);
}

/** kernel.ts uniformStruct: the header, the scratch slots' offsets (u32), the pass's uniforms (f32). */
function structSource(header: readonly string[], shape: PassShape | undefined): string {
  return uniformStruct(Object.keys(shape?.uniforms ?? {}), [...header, ...(shape?.sums ?? []).map((slot) => `${slot}At`)]);
}

/** A map pass's shader: the step kernel's header (kernel.ts shaderSource), the scratch read-only, the flag's guard. */
function mapSource(shape: PassShape, roles: readonly ArrayRole[], flag: FlagUse): string {
  const arrays = shape.arrays
    .map((name, k) => `@group(0) @binding(${k + 1}) var<storage, ${roles[k] === 'grads' ? 'read' : 'read_write'}> ${name}: array<f32>;`)
    .join('\n');
  const a = shape.arrays.length;
  return `${structSource(MAP_HEADER, shape)}
${arrays}
@group(0) @binding(${a + 1}) var<storage, read> red: array<f32>;
${flag !== 'ignore' ? `@group(0) @binding(${a + 2}) var<storage, read> refusal: array<u32>;` : ''}

${elementwiseMain(flag, shape.body)}
`;
}

/** A reduce pass's level 0 (`shape`: its terms from the elements) or a later level (undefined: the partial sums of `terms` from the scratch). */
function reduceSource(shape: PassShape | undefined, terms: number): string {
  const arrays = (shape?.arrays ?? []).map((name, k) => `@group(0) @binding(${k + 1}) var<storage, read> ${name}: array<f32>;`).join('\n');
  const a = shape?.arrays.length ?? 0;
  const load =
    shape === undefined
      ? `for (var c = 0u; c < ${terms}u; c++) { t[c] = red[s.inAt + (seg * s.n + k) * ${terms}u + c]; }`
      : `let i = s.base + seg * s.segStride + k * s.elemStride;
  ${shape.body}`;
  return `${structSource(REDUCE_HEADER, shape)}
${arrays}
@group(0) @binding(${a + 1}) var<storage, read_write> red: array<f32>;
var<workgroup> acc: array<f32, ${REDUCE_GROUP * terms}>;

fn load(seg: u32, k: u32) -> array<f32, ${terms}> {
  var t: array<f32, ${terms}>;
  ${load}
  return t;
}

${levelSource(terms)}
`;
}

function flagOf<K extends string>(core: GpuOptimizerCore<K>): FlagUse {
  return core.checked ? 'error' : core.skipping ? 'skip' : 'ignore';
}

function pipelineFor<K extends string>(core: GpuOptimizerCore<K>, engine: Engine, kind: Dispatch['kind'], call: PassCall): PassPipeline {
  const shape = call.shape;
  const flag = kind === 'map' ? flagOf(core) : 'ignore';
  const roleKeys = kind === 'tree' ? '' : call.roles.map((role) => (typeof role === 'string' ? role : `state:${role.state}`)).join(',');
  const key = kind === 'tree' ? `tree|${shape.terms}` : `${core.rule.key}:${shape.label}|${kind}|${roleKeys}|${flag}`;
  let made = engine.pipelines.get(key);
  if (made !== undefined) return made;
  if (kind !== 'tree') checkShape(shape);
  const device = core.store.device;
  const arrays = kind === 'tree' ? 0 : shape.arrays.length;
  const entries: GPUBindGroupLayoutEntry[] = [{ binding: 0, visibility: COMPUTE, buffer: { type: 'uniform' } }];
  for (let k = 0; k < arrays; k++) {
    entries.push({ binding: k + 1, visibility: COMPUTE, buffer: { type: kind === 'reduce' || call.roles[k] === 'grads' ? 'read-only-storage' : 'storage' } });
  }
  entries.push({ binding: arrays + 1, visibility: COMPUTE, buffer: { type: kind === 'map' ? 'read-only-storage' : 'storage' } });
  if (flag !== 'ignore') entries.push({ binding: arrays + 2, visibility: COMPUTE, buffer: { type: 'read-only-storage' } });
  const layout = device.createBindGroupLayout({ entries });
  const code = kind === 'map' ? mapSource(shape, call.roles, flag) : reduceSource(kind === 'tree' ? undefined : shape, shape.terms!);
  const label = `nesterov ${core.rule.key} ${kind === 'tree' ? 'sum' : shape.label}`;
  const module = device.createShaderModule({ label, code });
  made = { key, layout, pipeline: device.createComputePipeline({ label, layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: 'main' } }) };
  engine.pipelines.set(key, made);
  return made;
}

/** Floats of a step's scratch: its slots, then two areas for the partial sums of the levels (even levels in one, odd in the other). */
interface ScratchLayout {
  readonly at: { readonly [slot: string]: number };
  readonly areas: readonly [number, number];
  readonly floats: number;
}

function scratchLayout(plan: ProgramPlan): ScratchLayout {
  const at: { [slot: string]: number } = {};
  let cursor = 0;
  for (const [slot, length] of Object.entries(plan.sums)) {
    at[slot] = cursor;
    cursor += length;
  }
  const sizes = [0, 0];
  for (const call of plan.calls) {
    if (call.shape.terms === undefined) continue;
    const levels = reduceLevels(call.n);
    // Level l's partials go to area l % 2; the last level writes the slot.
    levels.slice(0, -1).forEach((level, l) => {
      sizes[l % 2] = Math.max(sizes[l % 2]!, call.segments! * level.chunks * call.shape.terms!);
    });
  }
  return { at, areas: [cursor, cursor + sizes[0]!], floats: Math.max(4, cursor + sizes[0]! + sizes[1]!) };
}

function headerWords(kind: Dispatch['kind'], call: PassCall, at: ScratchLayout['at'], values: readonly number[]): Uint32Array {
  const sums = kind === 'tree' ? [] : (call.shape.sums ?? []).map((slot) => {
    const offset = at[slot];
    if (offset === undefined) throw new Error(`GPU pass '${call.shape.label}' reads scratch slot '${slot}', which its plan does not make`);
    return offset;
  });
  const floats = kind === 'tree' ? [] : Object.values(call.shape.uniforms).map((uniform) => uniform(call.scalars));
  const words = new Uint32Array(values.length + sums.length + floats.length);
  words.set(values);
  words.set(sums, values.length);
  new Float32Array(words.buffer, (values.length + sums.length) * 4, floats.length).set(floats);
  return words;
}

/** The dispatches of one parameter's plan, in order. */
function dispatchesOf(base: number, plan: ProgramPlan, layout: ScratchLayout, candidate: Candidate | undefined): Dispatch[] {
  const out: Dispatch[] = [];
  for (const call of plan.calls) {
    if (call.shape.terms === undefined) {
      if (call.n === 0) continue;
      const { x, y, stride } = grid(call.n);
      const c = candidate ?? NO_CANDIDATE;
      out.push({ kind: 'map', call, candidate, groups: [x, y, 1], words: headerWords('map', call, layout.at, [base, call.n, stride, c.issue, c.cand, c.known, 0, 0]) });
      continue;
    }
    const into = layout.at[call.into!];
    if (into === undefined) throw new Error(`GPU pass '${call.shape.label}' sums into scratch slot '${call.into}', which its plan does not make`);
    const levels = reduceLevels(call.n);
    const segments = call.segments!;
    levels.forEach((level, l) => {
      const last = l === levels.length - 1;
      const outAt = last ? into : layout.areas[l % 2]!;
      const inAt = l === 0 ? 0 : layout.areas[(l - 1) % 2]!;
      for (let first = 0; first < segments; first += SEGMENTS_PER_DISPATCH) {
        const count = Math.min(SEGMENTS_PER_DISPATCH, segments - first);
        const kind = l === 0 ? 'reduce' : 'tree';
        const header = [base, level.n, call.segStride ?? 0, call.elemStride ?? 1, level.chunks, level.xGroups, first, outAt, inAt, 0, 0, 0];
        out.push({ kind, call, candidate, groups: [level.xGroups, level.yGroups, count], words: headerWords(kind, call, layout.at, header) });
      }
    });
  }
  return out;
}

/** A parameter's plan for this step, with the candidate its map passes run under (nonFinite 'skip'). */
export interface PlannedStep {
  readonly name: string;
  readonly plan: ProgramPlan;
  readonly candidate?: Candidate;
}

/**
 * Encodes the plans into `pass`, in order, and queues the write of their uniforms (before
 * the step's submit, as the step kernels' are).
 */
export function encodePlans<K extends string>(core: GpuOptimizerCore<K>, pass: GPUComputePassEncoder, steps: readonly PlannedStep[]): void {
  const engine = engineOf(core);
  const store = core.store;
  const device = store.device;
  const dispatches: Dispatch[] = [];
  let floats = 4;
  for (const step of steps) {
    const layout = scratchLayout(step.plan);
    floats = Math.max(floats, layout.floats);
    dispatches.push(...dispatchesOf(store.offsets[step.name as K], step.plan, layout, step.candidate));
  }
  if (dispatches.length === 0) return;
  if (engine.scratch === undefined || engine.scratchFloats < floats) {
    engine.scratch?.destroy();
    engine.scratchFloats = Math.max(floats, 2 * engine.scratchFloats);
    engine.scratch = device.createBuffer({ label: `nesterov ${core.rule.name} sums`, size: engine.scratchFloats * 4, usage: SCRATCH_USAGE });
    core.bindGroups.clear();
  }
  if (engine.uniforms === undefined || engine.uniformSlots < dispatches.length) {
    engine.uniforms?.destroy();
    engine.uniformSlots = Math.max(dispatches.length, 2 * engine.uniformSlots, 8);
    engine.uniforms = device.createBuffer({ label: `nesterov ${core.rule.name} pass uniforms`, size: engine.uniformSlots * UNIFORM_SLOT, usage: UNIFORM_USAGE });
    core.bindGroups.clear();
  }
  const block = new Uint32Array((dispatches.length * UNIFORM_SLOT) / 4);
  dispatches.forEach((dispatch, slot) => {
    block.set(dispatch.words, (slot * UNIFORM_SLOT) / 4);
    const made = pipelineFor(core, engine, dispatch.kind, dispatch.call);
    pass.setPipeline(made.pipeline);
    pass.setBindGroup(0, bindGroup(core, engine, made, dispatch, slot));
    pass.dispatchWorkgroups(...dispatch.groups);
  });
  device.queue.writeBuffer(engine.uniforms, 0, block);
}

function bindGroup<K extends string>(core: GpuOptimizerCore<K>, engine: Engine, made: PassPipeline, dispatch: Dispatch, slot: number): GPUBindGroup {
  const key = `pass|${made.key}|${slot}`;
  let group = core.bindGroups.get(key);
  if (group !== undefined) return group;
  const roles = dispatch.kind === 'tree' ? [] : dispatch.call.roles;
  const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: engine.uniforms!, offset: slot * UNIFORM_SLOT, size: Math.ceil((dispatch.words.length * 4) / 16) * 16 } }];
  roles.forEach((role, k) => entries.push({ binding: k + 1, resource: { buffer: core.bufferFor(role, k) } }));
  entries.push({ binding: roles.length + 1, resource: { buffer: engine.scratch! } });
  if (dispatch.kind === 'map' && flagOf(core) !== 'ignore') entries.push({ binding: roles.length + 2, resource: { buffer: core.flagBuffer() } });
  group = core.store.device.createBindGroup({ layout: made.layout, entries });
  core.bindGroups.set(key, group);
  return group;
}
