// The finiteness scans of nonFinite: 'error' (src/optimizer.ts): is any gradient NaN or
// +-Infinity, and which is the first.

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).

/** 0 while every lane of x is finite, NaN lanes otherwise: x - x (+0 for every finite x). */
@inline function nonFiniteBits(x: v128): v128 {
  return f32x4.sub(x, x);
}

/** One cache line (4 vectors) at a, folded: the sum of its vectors minus itself (NaN if any lane is not finite). */
@inline function line(a: usize): v128 {
  const s = f32x4.add(f32x4.add(v128.load(a), v128.load(a, 16)), f32x4.add(v128.load(a, 32), v128.load(a, 48)));
  return nonFiniteBits(s);
}

/**
 * 1 if any of the n floats at x may be NaN or +-Infinity, else 0: 1 for sure when one is,
 * and falsely when four finite values near float32's limit (3.4e38) add up past it
 * (firstNonFinite then finds none). A pure read, shaped for the memory's read bandwidth:
 * - eight streams at once (the eighths of the array, a cache line of each per
 *   iteration): one core's bandwidth is limited by how many cache misses are in flight,
 *   and the hardware prefetchers keep more in flight for several streams than for one
 *   (at 1.6e7 elements eight streams scan in 0.35x of a Nesterov step's streaming bound,
 *   one stream in 0.59x);
 * - each line's four vectors summed, then s - s: +0 while finite, NaN otherwise, ORed
 *   into two accumulators (an OR's latency is one cycle: no iteration waits on an add);
 * - no branch on the data; `do { } while` (see scripts/kernel-source.ts); one reduction.
 */
export function anyNonFinite(x: usize, n: i32): i32 {
  let a0 = v128.splat<i32>(0), a1 = v128.splat<i32>(0);
  const lines = <usize>(n >> 4);
  const eighth = (lines >> 3) << 6;
  if (eighth != 0) {
    const x1 = x + eighth, x2 = x1 + eighth, x3 = x2 + eighth, x4 = x3 + eighth, x5 = x4 + eighth, x6 = x5 + eighth, x7 = x6 + eighth;
    let o: usize = 0;
    do {
      a0 = v128.or(a0, v128.or(v128.or(line(x + o), line(x1 + o)), v128.or(line(x2 + o), line(x3 + o))));
      a1 = v128.or(a1, v128.or(v128.or(line(x4 + o), line(x5 + o)), v128.or(line(x6 + o), line(x7 + o))));
      o += 64;
    } while (o < eighth);
  }
  const end = <usize>(n & ~3) << 2;
  for (let o = eighth << 3; o < end; o += 16) a0 = v128.or(a0, nonFiniteBits(v128.load(x + o)));
  let tail: f32 = 0;
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const xi = load<f32>(x + o);
    tail += xi - xi;
  }
  return <i32>(v128.any_true(v128.or(a0, a1)) | (tail != tail));
}

/** Index of the first NaN or +-Infinity in n floats at x, or -1: the fast scan, then (only if it finds one) a loop for the index. */
export function firstNonFinite(x: usize, n: i32): i32 {
  if (anyNonFinite(x, n) == 0) return -1;
  for (let i: i32 = 0; i < n; i++) {
    const xi = load<f32>(x + (<usize>i << 2));
    if (xi - xi != 0) return i;
  }
  return -1;
}
