/**
 * Sums over a parameter on the device, between the passes of a step (LAMB's two norms,
 * Adafactor's row and column sums): a workgroup tree, level after level, into a small
 * scratch buffer that the later passes of the step read. Nothing is read back. A global
 * rule's sums over every parameter (Prodigy's, D-Adapt AdamW's: global-wgsl.ts) are the
 * same tree: its pass 1 is a level 0, the levels over its partials follow.
 *
 * A reduction sums `terms` values per element (WGSL of the rule's setting `t[0]`,
 * `t[1]`, ... from element `i`) over each of `segments` segments of `n` elements
 * (element k of segment g at `base + g * segStride + k * elemStride`: a whole tensor is
 * one segment, a matrix's rows are `rows` segments of stride `cols`, its columns `cols`
 * segments of element stride `cols`). Level 0 sums each 4096 consecutive elements of a
 * segment in one workgroup: each of its 256 invocations adds 16 of them as a balanced
 * binary tree in registers, then the workgroup adds its 256 sums as a balanced tree in
 * workgroup memory (an element past the end counts 0, which adds exactly). While a
 * segment has more than one partial sum, the next level sums those 4096 at a time the
 * same way. So every sum is a pairwise tree of depth 12 per level, D = 12 max(1,
 * ceil(log_4096 n)): 12 up to 4096 elements, 24 up to 2^24. (Sixteen per invocation
 * before the workgroup's tree: a workgroup barrier costs far more than an addition,
 * above all where WebGPU runs on the CPU.)
 *
 * How close to the CPU's float64 sums (Higham, "Accuracy and stability of numerical
 * algorithms", 4.2, pairwise summation): a tree of depth D over float32 values x_k is
 * within gamma_D sum |x_k| (gamma_D = D eps / (1 - D eps), eps = 2^-23) of their exact sum;
 * the CPU's float64 sum is within 2^-52 n sum |x_k| of it, nothing at this scale. The
 * rules' sums are of squares and of positive values (one sign): there the bound is
 * relative, D eps of the sum itself. A sequential float32 loop would be within (n - 1) eps
 * instead (n eps sum |x|), which grows with the tensor.
 */

/** Invocations per reduction workgroup (WebGPU's least guaranteed maxComputeInvocationsPerWorkgroup). */
export const REDUCE_GROUP = 256;
/** Values each invocation adds in registers before the workgroup's tree (a power of 2). */
export const PER_INVOCATION = 16;
/** Values one workgroup sums: 4096. */
const SPAN = REDUCE_GROUP * PER_INVOCATION;
/** WebGPU's least guaranteed workgroups per dimension of one dispatch. */
const MAX_GROUPS = 65535;

/** One level of a reduction: the partial sums of `chunks` workgroups per segment. */
export interface ReduceLevel {
  /** Values per segment this level reads (elements at level 0, partial sums after). */
  readonly n: number;
  /** Partial sums per segment it writes (one per workgroup, of 4096 values). */
  readonly chunks: number;
  /** Workgroups in x (the rest in y: chunk = y * xGroups + x). */
  readonly xGroups: number;
  readonly yGroups: number;
}

/** The levels of a reduction over `n` values per segment, until one sum per segment. */
export function reduceLevels(n: number): ReduceLevel[] {
  const levels: ReduceLevel[] = [];
  let length = n;
  do {
    const chunks = Math.max(1, Math.ceil(length / SPAN));
    const xGroups = Math.min(chunks, MAX_GROUPS);
    levels.push({ n: length, chunks, xGroups, yGroups: Math.ceil(chunks / xGroups) });
    length = chunks;
  } while (length > 1);
  return levels;
}

/** The depth of the tree a reduction over `n` values sums in: 12 per level (4 in registers, 8 in the workgroup). */
export function treeDepth(n: number): number {
  return (Math.log2(PER_INVOCATION) + Math.log2(REDUCE_GROUP)) * reduceLevels(n).length;
}

/** Segments per dispatch of a reduction (the z dimension). */
export const SEGMENTS_PER_DISPATCH = MAX_GROUPS;

/**
 * The WGSL of a reduction level: invocation l of the workgroup takes values `chunk * 4096
 * + q * 256 + l` (q < 16) of its segment from `load(seg, k)` (an array of `terms`; called
 * only for k < s.n), adds them as a tree in registers, then the workgroup adds its 256
 * sums as a tree in `acc` (workgroup memory, `terms` floats per invocation, declared by
 * the caller); invocation 0 then runs `write`, the sums in `acc[0 .. terms)`: by default
 * it writes them to `red` at `s.outAt + (seg * s.chunks + chunk) * terms`. A global
 * rule's pass 1 (global-wgsl.ts) loads its elements' terms through its step kernel and
 * writes its partials elsewhere; its last level runs the rule's reduce.
 */
export function levelSource(terms: number, write?: string): string {
  const T = `${terms}u`;
  return `@compute @workgroup_size(${REDUCE_GROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let chunk = wg.y * s.xGroups + wg.x;
  let seg = s.segFirst + wg.z;
  var x: array<array<f32, ${terms}>, ${PER_INVOCATION}>;
  for (var q = 0u; q < ${PER_INVOCATION}u; q++) {
    let k = (chunk * ${PER_INVOCATION}u + q) * ${REDUCE_GROUP}u + l;
    if (chunk < s.chunks && k < s.n) { x[q] = load(seg, k); }
  }
  for (var w = ${PER_INVOCATION / 2}u; w > 0u; w = w >> 1u) {
    for (var q = 0u; q < w; q++) {
      for (var c = 0u; c < ${T}; c++) { x[q][c] = x[q][c] + x[q + w][c]; }
    }
  }
  for (var c = 0u; c < ${T}; c++) { acc[l * ${T} + c] = x[0][c]; }
  workgroupBarrier();
  for (var width = ${REDUCE_GROUP / 2}u; width > 0u; width = width >> 1u) {
    if (l < width) {
      for (var c = 0u; c < ${T}; c++) { acc[l * ${T} + c] = acc[l * ${T} + c] + acc[(l + width) * ${T} + c]; }
    }
    workgroupBarrier();
  }
  if (l == 0u && chunk < s.chunks) {
    ${write ?? `for (var c = 0u; c < ${T}; c++) { red[s.outAt + (seg * s.chunks + chunk) * ${T} + c] = acc[c]; }`}
  }
}`;
}
