/**
 * A GPU program: the step of a `perParameter` rule as several passes over one parameter
 * with sums between them on the device (LAMB: its moments, the two norms, the move;
 * Adafactor: row and column sums, their averages, the update's rms, the move). A rule's
 * GPU file (src/webgpu/rules/<key>.ts) describes its passes here; passes.ts encodes them.
 *
 * A pass is WGSL for one element `i` (a `u32`), over the arrays by the names it gives
 * (`p[i]`, `g[i]`, a state buffer's), its uniforms as `s.<name>` (float64 values of the
 * step rounded once to float32), and the scratch sums it reads as `red[s.<slot>At + k]`.
 * A map pass writes arrays (params, state) and is guarded by the refusal flag as every
 * step kernel is; a reduce pass (with `terms`) sets `t[0]`, ..., `t[terms - 1]` for its
 * element and writes nothing but its sums into the scratch (reduce.ts).
 */
import type { CommonHyper, RuleState } from '../rule.ts';
import type { ArrayRole, GpuKernel, ScalarValues } from './kernel.ts';

/** A pass of a program, as its shader is made. */
export interface PassShape {
  /** Unique within the rule's program: it keys the pipeline. */
  readonly label: string;
  /** WGSL names of the arrays it binds, in binding order. */
  readonly arrays: readonly string[];
  /** Its uniforms: float64 expressions of the step's scalars, each rounded once to float32. */
  readonly uniforms: { readonly [name: string]: (s: ScalarValues) => number };
  /** Scratch slots it reads (their offsets as `s.<slot>At`). */
  readonly sums?: readonly string[];
  /** WGSL for element `i` (a reduce pass also has `seg` and `k`, its segment and its index there). */
  readonly body: string;
  /** A reduce pass: the values it sums per element (at most 8). Absent: a map pass. */
  readonly terms?: number;
}

/** A pass of one step: its shape, what its arrays are bound to, its scalars and extent. */
export interface PassCall {
  readonly shape: PassShape;
  readonly roles: readonly ArrayRole[];
  readonly scalars: ScalarValues;
  /** A map pass: its elements (`i = base + j`, j < n, base the parameter's offset). A reduce pass: elements per segment. */
  readonly n: number;
  /** A reduce pass: its segments (element k of segment seg at base + seg segStride + k elemStride), and the slot its sums go to (terms per segment). */
  readonly segments?: number;
  readonly segStride?: number;
  readonly elemStride?: number;
  readonly into?: string;
}

/** What the device runs for one parameter's step. */
export interface ProgramPlan {
  /** The scratch slots of the step, by name, with their lengths in floats. */
  readonly sums: { readonly [slot: string]: number };
  readonly calls: readonly PassCall[];
}

/** One wasm call of a step, as the rule's own `stepWasm` made it (scalars.ts captureStep). */
export interface CapturedKernelCall {
  readonly entry: string;
  readonly roles: readonly ArrayRole[];
  /** The scalar block, by the names of the entry's layout. */
  readonly scalars: ScalarValues;
}

/** A parameter's step as a program sees it. */
export interface ProgramStep {
  readonly twin: RuleState;
  readonly hyper: CommonHyper;
  readonly lr: number;
  readonly length: number;
  /** The parameter's shape as the rule takes it (`ownState` rules), else undefined. */
  readonly shape: readonly number[] | undefined;
  /** Runs the rule's `stepWasm` against the recorder: counts the step on the twin, returns its calls. */
  capture(): readonly CapturedKernelCall[];
}

/** A rule's GPU program. */
export interface GpuProgram {
  /** Takes one step of `step.twin` (counting it, as the rule's CPU code does) and returns what the device runs for it. */
  plan(step: ProgramStep): ProgramPlan;
}

/** A wasm kernel's GPU twin as a map pass over its layout's arrays (reading `sums` besides). */
export function kernelPass(label: string, kernel: GpuKernel, arrays: readonly string[], sums: readonly string[] = []): PassShape {
  return { label, arrays, uniforms: kernel.uniforms, sums, body: kernel.body };
}
