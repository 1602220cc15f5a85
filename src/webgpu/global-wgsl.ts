/**
 * The WGSL of a global rule's step (Prodigy, D-Adapt AdamW; global.ts runs it): the GPU
 * twin of its global phase as the rule's GPU file describes it (`GpuGlobalPhase`), and the
 * shaders made from it:
 *
 * - pass 1 (`accumulateSource`): a level 0 of reduce.ts's tree over one parameter, its
 *   `load` the rule's step kernel for element k (it updates the moments) returning the
 *   element's terms of the step's totals; each workgroup of 4096 elements writes one
 *   partial sum per total into the global buffer;
 * - the levels over the partials of every parameter (`partialsSource`), reduce.ts's tree
 *   again, until one workgroup sums the rest into the totals and its invocation 0 runs the
 *   rule's `reduce`;
 * - pass 2 (`applySource`): the rule's apply kernel, kernel.ts's shader with the global
 *   scalars bound read-only.
 *
 * The sums of one step are thus a pairwise tree of depth 12 over each parameter's level
 * 0 and 12 per level over the partials: L = 12 + 12 max(1, ceil(log_4096 P)), P the
 * partials (one per 4096 elements of each parameter), 24 up to 4096 partials.
 */
import type { CommonHyper } from '../rule.ts';
import { FLAG_REFUSED, shaderSource, uniformNames, uniformStruct, type ArrayRole, type FlagUse, type GpuKernel } from './kernel.ts';
import { levelSource, REDUCE_GROUP, reduceLevels } from './reduce.ts';

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

/**
 * The u32 words of pass 1's uniforms: kernel.ts's header's candidate (issue, cand, known)
 * for the flag's guard, reduce.ts's level (chunks, xGroups, segFirst, outAt: where its
 * partials go in `gl.partials`), `first` (the parameter's first step).
 */
export const ACCUMULATE_HEADER: readonly string[] = ['base', 'n', 'xGroups', 'issue', 'cand', 'known', 'chunks', 'first', 'outAt', 'segFirst', 'pad0', 'pad1'];

/** The u32 words of a level over the partials (`gl.partials` from inAt, into outAt); the last level's reduce uniforms follow as f32. */
export const PARTIALS_HEADER: readonly string[] = ['n', 'chunks', 'xGroups', 'segFirst', 'inAt', 'outAt', 'issue', 'pad0'];

/** WGSL: a NaN test on the bits (a shader compiler may fold `x != x` away). */
const IS_NAN = `fn isNan(x: f32) -> bool {
  let b = bitcast<u32>(x);
  return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u;
}`;

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

/** Whether a pass-1 binding is read-only: the gradients, and the params (pass 1 only reads them). */
export function accumulateReads(role: ArrayRole | undefined): boolean {
  return role === 'grads' || role === 'params';
}

/**
 * The WGSL of pass 1 over one parameter: reduce.ts's level 0, whose `load` runs the
 * rule's step kernel on element k and returns its `contributions`; a refused step (the
 * flag as kernel.ts FLAG_REFUSED reads it) writes neither the state nor the partials.
 */
export function accumulateSource(kernel: GpuKernel, arrays: readonly string[], roles: readonly ArrayRole[], flag: FlagUse, scalarNames: readonly string[], totals: readonly string[], contributions: readonly string[], firstStepCopy?: { readonly into: string; readonly from: string }): string {
  const T = totals.length;
  const bindings = arrays
    .map((name, k) => `@group(0) @binding(${k + 1}) var<storage, ${accumulateReads(roles[k]) ? 'read' : 'read_write'}> ${name}: array<f32>;`)
    .join('\n');
  const refused = FLAG_REFUSED[flag];
  return `${uniformStruct(uniformNames(kernel), ACCUMULATE_HEADER)}
${globalStructs(scalarNames, totals)}
${bindings}
${flag === 'ignore' ? '' : `@group(0) @binding(${arrays.length + 1}) var<storage, read> refusal: array<u32>;`}
@group(0) @binding(${arrays.length + 2}) var<storage, read_write> gl: GlobalState;
var<workgroup> acc: array<f32, ${REDUCE_GROUP * T}>;

fn load(seg: u32, k: u32) -> array<f32, ${T}> {
  var t: array<f32, ${T}>;
  if (${refused}) { return t; }
  let i = s.base + k;
  ${firstStepCopy === undefined ? '' : `if (s.first != 0u) { ${firstStepCopy.into}[i] = ${firstStepCopy.from}[i]; }`}
  ${kernel.body}
${contributions.map((expression, c) => `  t[${c}] = ${expression};`).join('\n')}
  return t;
}

${levelSource(T, `if (!(${refused})) { for (var c = 0u; c < ${T}u; c++) { gl.partials[s.outAt + chunk * ${T}u + c] = acc[c]; } }`)}
`;
}

/** The WGSL of pass 2: kernel.ts's step shader, the global scalars bound read-only after the flag. */
export function applySource(kernel: GpuKernel, arrays: readonly string[], roles: readonly ArrayRole[], flag: FlagUse, scalarNames: readonly string[], totals: readonly string[]): string {
  return shaderSource(kernel, arrays, roles, flag, `${globalStructs(scalarNames, totals)}
@group(0) @binding(${arrays.length + 2}) var<storage, read> gl: GlobalState;`);
}

/**
 * The WGSL of a level of the tree over the partials (reduce.ts's, `load` from
 * `gl.partials`). `last`: the one workgroup that sums the rest into `gl.totals` and runs
 * the rule's `reduce` (its uniforms as `r`), unless the step was refused or skipped.
 */
export function partialsSource(spec: GpuGlobalPhase, flag: FlagUse, scalarNames: readonly string[], last: boolean): string {
  const T = spec.totals.length;
  const refused = flag === 'error' ? 'refusal[1] != 0u' : flag === 'skip' ? 'refusal[3] == s.issue + 1u' : 'false';
  const write = last
    ? `if (${refused}) { return; }
${spec.totals.map((name, c) => `    gl.totals.${name} = acc[${c}u];`).join('\n')}
    gl.before = gl.now;
    let r = s;
    ${spec.reduce}`
    : `for (var c = 0u; c < ${T}u; c++) { gl.partials[s.outAt + chunk * ${T}u + c] = acc[c]; }`;
  return `${uniformStruct(last ? Object.keys(spec.reduceUniforms) : [], PARTIALS_HEADER)}
${globalStructs(scalarNames, spec.totals)}
@group(0) @binding(1) var<storage, read_write> gl: GlobalState;
${last && flag !== 'ignore' ? '@group(0) @binding(2) var<storage, read> refusal: array<u32>;' : ''}
var<workgroup> acc: array<f32, ${REDUCE_GROUP * T}>;

${last ? IS_NAN : ''}

fn load(seg: u32, k: u32) -> array<f32, ${T}> {
  var t: array<f32, ${T}>;
  for (var c = 0u; c < ${T}u; c++) { t[c] = gl.partials[s.inAt + k * ${T}u + c]; }
  return t;
}

${levelSource(T, write)}
`;
}

/**
 * Where the levels of the tree over `partials` partial sums write theirs (before the
 * last, which writes the totals): level l at `at[l]` (in units of one sum per total,
 * after the partials themselves), `floats` the whole area in the same units.
 */
export function levelAreas(partials: number): { readonly levels: ReturnType<typeof reduceLevels>; readonly at: readonly number[]; readonly floats: number } {
  const levels = reduceLevels(partials);
  const at: number[] = [];
  let cursor = partials;
  for (const level of levels.slice(0, -1)) {
    at.push(cursor);
    cursor += level.chunks;
  }
  return { levels, at, floats: Math.max(1, cursor) };
}
