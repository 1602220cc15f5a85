/**
 * Sums over a parameter on the device, between the passes of a step (LAMB's two norms,
 * Adafactor's row and column sums): a workgroup tree, level after level, into a small
 * scratch buffer that the later passes of the step read. Nothing is read back.
 *
 * A reduction sums `terms` values per element (WGSL of the rule's setting `t[0]`,
 * `t[1]`, ... from element `i`) over each of `segments` segments of `n` elements
 * (element k of segment g at `base + g * segStride + k * elemStride`: a whole tensor is
 * one segment, a matrix's rows are `rows` segments of stride `cols`, its columns `cols`
 * segments of element stride `cols`). Level 0 sums each 256 consecutive elements of a
 * segment in one workgroup, as a balanced binary tree in workgroup memory (the element
 * past the end counts 0, which adds exactly); while a segment has more than one partial
 * sum, the next level sums those 256 at a time the same way. So every sum is a pairwise
 * tree of depth 8 * ceil(log_256 n): 16 for n <= 65536, 24 for n <= 2^24.
 *
 * How close to the CPU's float64 sums (Higham, "Accuracy and stability of numerical
 * algorithms", 4.2, pairwise summation): a tree of depth d over float32 values x_k is
 * within gamma_d sum |x_k| (gamma_d = d eps / (1 - d eps), eps = 2^-23) of their exact sum;
 * the CPU's float64 sum is within 2^-52 n sum |x_k| of it, nothing at this scale. The
 * rules' sums are of squares and of positive values (one sign): there the bound is
 * relative, d eps of the sum itself, 16 eps below 65537 elements. A sequential float32
 * loop would be within (n - 1) eps instead, which grows with the tensor.
 */

/** Invocations per reduction workgroup (WebGPU's least guaranteed maxComputeInvocationsPerWorkgroup). */
export const REDUCE_GROUP = 256;
/** WebGPU's least guaranteed workgroups per dimension of one dispatch. */
const MAX_GROUPS = 65535;

/** One level of a reduction: the partial sums of `chunks` workgroups per segment. */
export interface ReduceLevel {
  /** Values per segment this level reads (elements at level 0, partial sums after). */
  readonly n: number;
  /** Partial sums per segment it writes (one per workgroup of 256). */
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
    const chunks = Math.max(1, Math.ceil(length / REDUCE_GROUP));
    const xGroups = Math.min(chunks, MAX_GROUPS);
    levels.push({ n: length, chunks, xGroups, yGroups: Math.ceil(chunks / xGroups) });
    length = chunks;
  } while (length > 1);
  return levels;
}

/** The depth of the tree a reduction over `n` values sums in: 8 per level. */
export function treeDepth(n: number): number {
  return 8 * reduceLevels(n).length;
}

/** Segments per dispatch of a reduction (the z dimension). */
export const SEGMENTS_PER_DISPATCH = MAX_GROUPS;

/**
 * The WGSL of a reduction level's tree: `t` holds this invocation's `terms` values;
 * they are summed over the workgroup and written by invocation 0 to `red` at
 * `s.outAt + (seg * s.chunks + chunk) * terms`.
 */
export function treeSource(terms: number): string {
  return `  for (var c = 0u; c < ${terms}u; c++) { acc[l * ${terms}u + c] = t[c]; }
  workgroupBarrier();
  for (var width = ${REDUCE_GROUP / 2}u; width > 0u; width = width >> 1u) {
    if (l < width) {
      for (var c = 0u; c < ${terms}u; c++) { acc[l * ${terms}u + c] = acc[l * ${terms}u + c] + acc[(l + width) * ${terms}u + c]; }
    }
    workgroupBarrier();
  }
  if (l == 0u && chunk < s.chunks) {
    for (var c = 0u; c < ${terms}u; c++) { red[s.outAt + (seg * s.chunks + chunk) * ${terms}u + c] = acc[c]; }
  }`;
}
