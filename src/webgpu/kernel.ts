/**
 * A rule's WebGPU kernel, described once, and the WGSL compute shader made from it.
 *
 * The rule's WebAssembly kernel layout (src/kernel.ts: its export, its arrays, its scalars
 * by name) is the contract: the rule's own `writeScalars` fills the scalars of a step in
 * float64 (see scalars.ts), and a GPU kernel file (src/webgpu/rules/<key>.ts) adds only
 * what the GPU needs besides, per wasm entry:
 * - `uniforms`: the values the shader reads, each a float64 expression of the layout's
 *   scalars rounded once to float32, exactly as the wasm kernel's prologue computes them
 *   (`omb2 = <f32>(1 - beta2)`): 1 - f32(0.999) computed in float32 would be 1.3e-5 off,
 *   a bias no later step removes;
 * - `body`: the WGSL statements for element `i`, the arrays by the layout's names
 *   (`p[i]`, `g[i]`, `m[i]`), the uniforms as `s.<name>` (the scalar block, as the wasm kernels call it); the same operations in the same
 *   order as the wasm kernel, so the two differ only by the GPU's rounding.
 *
 * The shader's header (its uniform struct, one storage binding per array of the layout,
 * the index arithmetic) is generated here: a run of parameters is one dispatch, its
 * elements at `s.base + j` for j < `s.n`.
 */

/** A rule's scalars of one step, by the names its kernel layout gives them. */
export type ScalarValues = { readonly [name: string]: number };

/** One wasm entry's GPU twin. */
export interface GpuKernel {
  /** The shader's uniforms: float64 expressions of the layout's scalars, each rounded once to float32. */
  readonly uniforms: { readonly [name: string]: (s: ScalarValues) => number };
  /** WGSL statements for element `i` (a `u32`). */
  readonly body: string;
  /**
   * Scalars of the layout no uniform reads, each with the reason (the wasm kernel does not
   * read it either). Every other scalar must be read: a scalar added to a rule's layout
   * then fails the registry test until its GPU kernel takes it.
   */
  readonly ignores?: { readonly [scalar: string]: string };
}

/** A rule's GPU kernels, by the wasm entry they stand in for (`adam`, `adamBook`). */
export type GpuRuleKernels = { readonly [entry: string]: GpuKernel };

/**
 * WGSL for the common start of an elementwise step: `gi`, the gradient after `maximize`
 * and coupled weight decay, as assembly/skeleton.ts `gradient1` computes it (the decay
 * only where wd is not 0: 0 * p would turn an infinite p into NaN).
 */
export const GRADIENT = `var gi = g[i];
  if (s.sign < 0.0) { gi = -gi; }
  if (s.wd != 0.0) { gi = gi + s.wd * p[i]; }`;

/**
 * WGSL for `p0`, the parameter as the step sees it: p, or p * shrink with decoupled
 * weight decay (`decoupledWeightDecay`), as assembly/skeleton.ts `param1` (the kernel's
 * uniforms then include `shrink`). The coupled decay in GRADIENT reads p itself.
 */
export const PARAM = `var p0 = p[i];
  if (s.shrink != 1.0) { p0 = p0 * s.shrink; }`;

/** What an array of a kernel is bound to at a step. */
export type ArrayRole = 'params' | 'grads' | { readonly state: string } | 'unused';

/** Workgroup size of every step shader. */
export const WORKGROUP = 64;
/** WebGPU's least guaranteed workgroups per dimension of one dispatch. */
export const MAX_GROUPS = 65535;
/** Bytes between two runs' uniforms in the uniform buffer (WebGPU's least offset alignment guarantee). */
export const UNIFORM_SLOT = 256;
/** The u32 words of a step shader's uniform struct, before the kernel's own uniforms (f32). */
export const UNIFORM_HEADER: readonly string[] = ['base', 'n', 'stride', 'issue', 'cand', 'known', 'pad0', 'pad1'];
const RESERVED = new Set([...UNIFORM_HEADER, 'refusal', 'head']);

/**
 * How a step shader treats the refusal flag (see SCAN_SHADER): not at all ('ignore'),
 * writing nothing once a step was refused ('error'), or skipping a step whose own scan
 * found a non-finite gradient and taking the scalars of the candidate that matches the
 * skips so far ('skip').
 */
export type FlagUse = 'ignore' | 'error' | 'skip';
const IDENTIFIER = /^[A-Za-z][A-Za-z0-9]*$/;

/** The WGSL test of a refused step, by how a kernel reads the refusal flag (`s.issue`, `s.cand`, `s.known` from its uniforms). */
export const FLAG_REFUSED: { readonly [use in FlagUse]: string } = {
  ignore: 'false',
  error: 'refusal[1] != 0u',
  skip: 'refusal[3] == s.issue + 1u || refusal[2] - s.known != s.cand',
};

/** The WGSL a kernel that writes runs first: return on a refused step (FLAG_REFUSED). */
export const FLAG_GUARD: { readonly [use in FlagUse]: string } = {
  ignore: '',
  error: `if (${FLAG_REFUSED.error}) { return; }`,
  skip: `if (${FLAG_REFUSED.skip}) { return; }`,
};

/** The uniform names of a kernel, in struct order. */
export function uniformNames(kernel: GpuKernel): readonly string[] {
  return Object.keys(kernel.uniforms);
}

/** Floats of one run's uniform block: the header (UNIFORM_HEADER unless another is given) and the kernel's uniforms. */
export function uniformWords(kernel: GpuKernel, header: readonly string[] = UNIFORM_HEADER): number {
  return header.length + uniformNames(kernel).length;
}

/** WGSL: a shader's uniform struct (`header`'s u32 words, then `floats`: a kernel's uniformNames), bound at 0 as `s`. */
export function uniformStruct(floats: readonly string[], header: readonly string[] = UNIFORM_HEADER): string {
  const fields = [...header.map((name) => `  ${name}: u32,`), ...floats.map((name) => `  ${name}: f32,`)];
  return `struct Uniforms {\n${fields.join('\n')}\n}\n@group(0) @binding(0) var<uniform> s: Uniforms;`;
}

/**
 * Checks a GPU kernel against its wasm layout: every uniform reads only scalars the layout
 * names, names are WGSL identifiers, and the block fits its slot. Throws naming the problem.
 */
export function checkGpuKernel(ruleName: string, entry: string, kernel: GpuKernel, scalars: readonly string[], arrays: readonly string[], header: readonly string[] = UNIFORM_HEADER): void {
  const known = new Set(scalars);
  const probe = new Proxy({} as ScalarValues, {
    get(_target, key) {
      if (typeof key !== 'string' || !known.has(key)) throw new Error(`${ruleName} GPU kernel ${entry}: a uniform reads scalar ${String(key)}, not one of its layout's (${scalars.join(', ')})`);
      return 0.5;
    },
  });
  for (const [name, value] of Object.entries(kernel.uniforms)) {
    if (!IDENTIFIER.test(name) || RESERVED.has(name) || header.includes(name) || arrays.includes(name)) throw new Error(`${ruleName} GPU kernel ${entry}: uniform name '${name}' is not free to use`);
    value(probe);
  }
  for (const name of arrays) {
    if (!IDENTIFIER.test(name) || RESERVED.has(name) || header.includes(name) || name === 's' || name === 'i') throw new Error(`${ruleName} GPU kernel ${entry}: array name '${name}' is not a usable WGSL name`);
  }
  if (uniformWords(kernel, header) * 4 > UNIFORM_SLOT) throw new Error(`${ruleName} GPU kernel ${entry}: too many uniforms for one ${UNIFORM_SLOT}-byte slot`);
}

/**
 * The WGSL module of one kernel, its arrays bound as `roles` says (the gradients
 * read-only). With `flag` 'error' or 'skip', one more binding after the arrays: the
 * refusal flag of SCAN_SHADER / SKIP_SCAN_SHADER, read as FlagUse says. `declarations`:
 * WGSL after the bindings (a global rule's scalars, global-wgsl.ts).
 */
export function shaderSource(kernel: GpuKernel, arrays: readonly string[], roles: readonly ArrayRole[], flag: FlagUse, declarations = ''): string {
  const checked = flag !== 'ignore';
  const bindings = arrays
    .map((name, k) => `@group(0) @binding(${k + 1}) var<storage, ${roles[k] === 'grads' ? 'read' : 'read_write'}> ${name}: array<f32>;`)
    .join('\n');
  return `${uniformStruct(uniformNames(kernel))}
${bindings}
${checked ? `@group(0) @binding(${arrays.length + 1}) var<storage, read> refusal: array<u32>;` : ''}
${declarations}

${elementwiseMain(flag, kernel.body)}
`;
}

/**
 * WGSL: the entry point of an elementwise shader over a dispatch of `grid`: element
 * `i = s.base + j` for j < `s.n` runs `body` (after the flag's guard: FLAG_GUARD).
 */
export function elementwiseMain(flag: FlagUse, body: string): string {
  return `@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let j = id.y * s.stride + id.x;
  if (j >= s.n) { return; }
  ${FLAG_GUARD[flag]}
  let i = s.base + j;
  ${body}
}`;
}

/** What a 'skip' step shader compares with the flag: its step's issue number, its candidate, the skips counted when it was made. */
export interface Candidate {
  readonly issue: number;
  readonly cand: number;
  readonly known: number;
}

const NO_CANDIDATE: Candidate = { issue: 0, cand: 0, known: 0 };

/**
 * Writes one run's uniform block into `target` at float index `at`: base, n, the
 * dispatch's row stride and the candidate as u32, then the kernel's uniforms from `scalars`.
 */
export function writeUniforms(target: ArrayBuffer, at: number, kernel: GpuKernel, base: number, n: number, stride: number, scalars: ScalarValues, candidate: Candidate = NO_CANDIDATE): void {
  writeUniformBlock(target, at, kernel, [base, n, stride, candidate.issue, candidate.cand, candidate.known, 0, 0], scalars);
}

/** Writes a uniform block of uniformStruct's layout: the header's u32 words, then the kernel's uniforms from `scalars`. */
export function writeUniformBlock(target: ArrayBuffer, at: number, kernel: GpuKernel, header: readonly number[], scalars: ScalarValues): void {
  new Uint32Array(target, at * 4, header.length).set(header);
  const values = new Float32Array(target, (at + header.length) * 4, uniformNames(kernel).length);
  let k = 0;
  for (const name of uniformNames(kernel)) values[k++] = kernel.uniforms[name]!(scalars);
}

/** The workgroup grid of a dispatch over `n` elements: x at most MAX_GROUPS, rows of x * WORKGROUP elements. */
export function grid(n: number): { readonly x: number; readonly y: number; readonly stride: number } {
  const groups = Math.max(1, Math.ceil(n / WORKGROUP));
  const x = Math.min(groups, MAX_GROUPS);
  const y = Math.ceil(groups / x);
  return { x, y, stride: x * WORKGROUP };
}

/** The flag's "no non-finite gradient found" value (word 0). */
export const NONE = 0xffffffff;

/**
 * The start of both scans (SCAN_SHADER, SKIP_SCAN_SHADER): the uniforms of
 * writeScanUniforms, the gradients read 4 at a time (scanGrid), the flag, and element `j`,
 * the first of the invocation's 4.
 */
const SCAN_HEAD = `struct Scan {
  base: u32,
  n: u32,
  stride: u32,
  step: u32,
}
@group(0) @binding(0) var<uniform> s: Scan;
@group(0) @binding(1) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> refusal: array<atomic<u32>>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let j = (id.y * s.stride + id.x) * 4u;
  if (j >= s.n) { return; }
`;

/**
 * The finiteness scan of one run's gradients, before its step in the same pass. The
 * refusal flag (4 u32): word 0 the least `index << 2 | kind` of a non-finite gradient
 * (kind 0 NaN, 1 +Infinity, 2 -Infinity; NONE when none), word 1 the refused step's
 * number + 1 (0: none). A scan of a later step leaves a set flag alone, so it keeps the
 * first refused step's element; the step kernels read word 1 and write nothing once it
 * is set, so every step from the refused one on is refused until the optimizer has
 * raised the error and cleared the flag. The test is on the bits: a shader compiler may
 * assume that no float is NaN and fold `x != x` away.
 */
export const SCAN_SHADER = `${SCAN_HEAD}  let bits = bitcast<vec4<u32>>(g[(s.base + j) / 4u]);
  if (all((bits & vec4<u32>(0x7f800000u)) != vec4<u32>(0x7f800000u))) { return; }
  let first = atomicLoad(&refusal[1]);
  if (first != 0u && first != s.step + 1u) { return; }
  for (var k = 0u; k < 4u; k++) {
    let b = bits[k];
    if (j + k >= s.n || (b & 0x7f800000u) != 0x7f800000u) { continue; }
    var kind = 0u;
    if ((b & 0x007fffffu) == 0u) { kind = select(1u, 2u, (b >> 31u) == 1u); }
    atomicMax(&refusal[1], s.step + 1u);
    atomicMin(&refusal[0], ((s.base + j + k) << 2u) | kind);
  }
}
`;

/**
 * The scan of nonFinite 'skip': word 3 the issue number + 1 of the last step whose scan
 * found a non-finite gradient (its step kernels then write nothing), word 2 the count of
 * such steps since the flag was cleared (one increment per step: the invocation that
 * raises word 3 counts it). The step kernels of a later step read word 2 to take the
 * scalars of the right candidate: the CPU cannot know, when it encodes a step, how many
 * of the steps before it the device skipped, so it encodes one dispatch per possibility.
 */
export const SKIP_SCAN_SHADER = `${SCAN_HEAD}  let exponents = bitcast<vec4<u32>>(g[(s.base + j) / 4u]) & vec4<u32>(0x7f800000u);
  let lanes = vec4<u32>(j) + vec4<u32>(0u, 1u, 2u, 3u);
  if (!any((exponents == vec4<u32>(0x7f800000u)) & (lanes < vec4<u32>(s.n)))) { return; }
  if (atomicLoad(&refusal[3]) == s.step + 1u) { return; }
  let old = atomicMax(&refusal[3], s.step + 1u);
  if (old < s.step + 1u) { atomicAdd(&refusal[2], 1u); }
}
`;

/**
 * The workgroup grid of a scan over `n` elements: one invocation per 4 (a vec4 load; a
 * run's base is a multiple of 4 elements, the store's 256-byte alignment, and the
 * region past a tensor's end is the store's padding, so the last vec4 stays inside the
 * buffer; lanes past \`n\` are masked). A scan with one element per invocation cost as
 * much as the step it guards: its work per invocation is one load and one compare.
 */
export function scanGrid(n: number): { readonly x: number; readonly y: number; readonly stride: number } {
  return grid(Math.ceil(n / 4));
}

/** Writes one scan's uniform block: base, n, the row stride and the step number. */
export function writeScanUniforms(target: ArrayBuffer, at: number, base: number, n: number, stride: number, step: number): void {
  const words = new Uint32Array(target, at * 4, 4);
  words[0] = base;
  words[1] = n;
  words[2] = stride;
  words[3] = step;
}
