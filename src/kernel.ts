/**
 * The JS kernels' plumbing: one copy of each loop per array type, and the block their
 * scalars travel in.
 *
 * A rule's JS kernel is a plain function `(p, g, ...buffers, n, s)` with the signature
 * and the scalar layout of its WebAssembly twin in assembly/kernels.ts, so one function
 * of the rule fills the scalars for either backend.
 *
 * Why copies: V8 keeps type feedback per function. One loop that has seen both
 * Float32Array and Float64Array makes every element access polymorphic (a map check and
 * a branch per access), about 1.4x slower than a loop that only ever saw one type
 * (measured: Adam 'book' on a 1e6 Float32Array, 5.1 ns/element alone and 7.3 after the
 * same loop ran on Float64Arrays). `byArrayType` compiles the loop's source twice, into
 * two functions with feedback of their own, and `loopFor` picks the one for the arrays.
 *
 * A loop given to `byArrayType` must be self-contained: no free variables but globals
 * such as `Math` (its copies are made from its source text, outside its module). Where
 * `new Function` is not allowed (a Content-Security-Policy without 'unsafe-eval'), both
 * "copies" are the loop itself: the same results, at the polymorphic speed.
 *
 * Every kernel also returns whether each value it wrote (params and state) is finite,
 * found in the same pass: `probe += (a + b) * 0` over the written elements a, b, read
 * back from the arrays (a float32 store can round a finite double to Infinity), stays 0
 * while all are finite and is NaN for good after the first NaN or Infinity. A sum of
 * two huge finite float64 values can overflow and report a false alarm: the caller's
 * second pass, which looks for the element, then finds none and reports nothing.
 */
import type { FloatArray } from './types.ts';

/** A JS kernel: its first argument is the array that picks the copy (params, grads, ...). */
export type KernelLoop = (array: FloatArray, ...rest: never[]) => unknown;

/** One loop compiled once per array type. */
export interface LoopsByArrayType<F extends KernelLoop> {
  readonly float32: F;
  readonly float64: F;
}

function recompiled<F extends KernelLoop>(loop: F): F {
  try {
    const copy: unknown = new Function(`'use strict'; return (${String(loop)});`)();
    if (typeof copy === 'function' && copy.length === loop.length) return copy as F;
  } catch {
    // No eval here: fall through to the shared loop.
  }
  return loop;
}

export function byArrayType<F extends KernelLoop>(loop: F): LoopsByArrayType<F> {
  return { float32: recompiled(loop), float64: recompiled(loop) };
}

/** The copy of a loop for these arrays (params, grads and state share one type). */
export function loopFor<F extends KernelLoop>(loops: LoopsByArrayType<F>, p: FloatArray): F {
  return p instanceof Float32Array ? loops.float32 : loops.float64;
}

/**
 * The JS kernels' scalar block (the wasm kernels' is in their memory): filled by a rule
 * right before its loop runs, read once at the loop's top. Scalars travel in a typed
 * array, not as arguments: a double passed to a call V8 does not inline is boxed, an
 * allocation per call.
 */
export const jsScalars = new Float64Array(16);

/**
 * A rule's WebAssembly kernel, described once: its export, the arrays it takes, and its
 * scalars by name. The rule's `writeScalars` writes `s[layout.at.beta1]`; the build
 * (scripts/build-wasm.ts) writes the same names into assembly/layout.generated.ts as
 * byte offsets (`LION_BETA1`), which the kernel reads; the bench reads `at` too. The
 * JS kernels read the same block by literal index: they are self-contained loops,
 * compiled from their source text (see byArrayType), so they cannot read a map; the
 * reference fixtures, run on both backends, fail if the two ever disagree.
 */
export interface KernelLayout<Scalar extends string = string> {
  /** The kernel's export in the wasm module (assembly/rules/*.ts). */
  readonly entry: string;
  /** The arrays it takes, in argument order, by its argument names (first p, then g, ...). */
  readonly arrays: readonly string[];
  /** The arrays one step reads and writes with the rule's default options (the bench's bytes per element). */
  readonly reads: readonly string[];
  readonly writes: readonly string[];
  /** Its scalars, in block order. */
  readonly scalars: readonly Scalar[];
  /** Each scalar's index in the block. */
  readonly at: { readonly [K in Scalar]: number };
}

/** A rule's kernels by variant (`nag`, `book`, ...; `step` for a rule with one). */
export type RuleKernels = { readonly [variant: string]: KernelLayout };

/** Builds a layout, checking its names (a typo here would otherwise reach the wasm build). */
export function kernelLayout<const Scalar extends string>(spec: Omit<KernelLayout<Scalar>, 'at'>): KernelLayout<Scalar> {
  const at = {} as { [K in Scalar]: number };
  spec.scalars.forEach((name, index) => {
    if (name in at) throw new Error(`kernelLayout ${spec.entry}: scalar ${name} twice`);
    at[name] = index;
  });
  for (const name of [...spec.reads, ...spec.writes]) {
    if (!spec.arrays.includes(name)) throw new Error(`kernelLayout ${spec.entry}: ${name} is not one of its arrays (${spec.arrays.join(', ')})`);
  }
  return { ...spec, at };
}
