// The pieces every elementwise kernel shares (AssemblyScript). The loops themselves are
// written once, in scripts/kernel-source.ts: AssemblyScript has no closures, and a
// function reference would be an indirect call per vector, so the build stitches each
// rule's vector and scalar bodies (assembly/rules/*.ts) into the loop as source text.
// The result is the loop a person would write by hand for that rule, operation for
// operation: the same instructions, the same bits, the same speed.
//
// Conventions, relied on by src/wasm/kernels.ts: every kernel takes its pointers first
// (byte offsets into memory, 16-byte aligned), then the element count, then `s`, the
// address of its scalars: f64 values in a block of memory at the offsets named in
// layout.generated.ts (built from the rules' declarations in src/rules/*.ts; flags as 0
// or 1), rounded to f32 here, once. Scalars travel through memory rather than as
// arguments because a double passed from JS to wasm is boxed whenever V8 does not
// inline the call: an allocation per step. `sign` is -1 for maximize, else 1; `wd` the
// coupled weight decay (0: off); `shrink` the decoupled one's factor 1 - lr wd (1: off).
//
// Arithmetic is float32 throughout (as in PyTorch and numpy for float32 tensors); the
// JS kernels compute in double and round on store, so the two differ by a few ulps.
//
// Every kernel also reports whether each value it wrote (params and state) is finite:
// it returns 0 when all are, 1 when one is NaN or +-Infinity (a step whose own arithmetic
// overflowed, e.g. Adam's g * g past 3.4e38 with a finite g). The check costs no memory
// traffic: each written vector w is folded into an accumulator in registers as
// acc |= w - w, which keeps no bit set while every w is finite (w - w = +0) and some bit
// for good at the first NaN or Infinity (their w - w is NaN); several written vectors are
// summed first (a + b is non-finite when a or b is). One reduction at the end turns the
// accumulators into the flag. A sum of two huge finite values can overflow and raise the
// flag falsely; the caller's second pass, which looks for the non-finite element, then
// finds none. The caller splits nothing but ORs the flags of a call's chunks (threads).

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).

/**
 * The gradient as the rule sees it: sign * g (+ wd * p). sign is +-1, so sign * g is g or
 * -g exactly: a negation (maximize) instead of a multiply on every vector, the same bits.
 */
@inline export function gradient(g: usize, p: usize, negate: bool, wd: v128, decay: bool): v128 {
  let gi = v128.load(g);
  if (negate) gi = f32x4.neg(gi);
  if (decay) gi = f32x4.add(gi, f32x4.mul(wd, v128.load(p)));
  return gi;
}

/** `gradient` for one element (the scalar tail). */
@inline export function gradient1(g: usize, p: usize, sign: f32, wd: f32, decay: bool): f32 {
  let gi = load<f32>(g) * sign;
  if (decay) gi += wd * load<f32>(p);
  return gi;
}

/**
 * The parameter as the rule's step sees it: p, or p * shrink with decoupled weight decay
 * (`decoupledWeightDecay`: p <- p (1 - lr wd) before the step). Folded into the load the
 * step makes anyway, so the decay costs a multiply, not a second pass over memory; the
 * flag is false for a factor of exactly 1, and the default path loads p as before.
 */
@inline export function param(p: usize, decoupled: bool, vshrink: v128): v128 {
  let pi = v128.load(p);
  if (decoupled) pi = f32x4.mul(pi, vshrink);
  return pi;
}

/** `param` for one element (the scalar tail). */
@inline export function param1(p: usize, decoupled: bool, shrink: f32): f32 {
  let pi = load<f32>(p);
  if (decoupled) pi *= shrink;
  return pi;
}

/**
 * `acc | (w - w)`: w - w is +0 (no bit set) for every finite w and NaN otherwise, so the
 * accumulator keeps no bit set while every w is finite and some bit for good after the
 * first NaN or Infinity. An OR, not an add: its latency is one cycle, so the chain of
 * accumulations never holds the loop up.
 */
@inline export function probe(acc: v128, w: v128): v128 {
  return v128.or(acc, f32x4.sub(w, w));
}

/** The kernel's result from its accumulators: 1 if any lane (or the scalar tail's) saw a non-finite value. */
@inline export function verdict(acc0: v128, acc1: v128, tail: f32): i32 {
  return <i32>(v128.any_true(v128.or(acc0, acc1)) | (tail != tail));
}
