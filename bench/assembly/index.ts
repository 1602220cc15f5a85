// The bench's own WebAssembly module (scripts/build-wasm.ts builds it into
// bench/kernels.generated.ts; it is not part of the package): the loops that move a
// rule's bytes with no arithmetic (the streaming bound and its floors), and the
// unchecked twins of two kernels (the probe's cost). bench/kernels.ts loads it over a
// ParamStore's memory.

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { probe, verdict } from '../../assembly/skeleton';

export { nesterovNagUnchecked } from '../../assembly/generated/nesterov';
export { adamUnchecked } from '../../assembly/generated/adam';

/**
 * The memory traffic of a Nesterov step and nothing else: reads a, b, c and writes a
 * and c (p' = g, v' = p). The benchmark's streaming bound.
 */
export function stream3to2(a: usize, b: usize, c: usize, n: i32): void {
  const end = <usize>n << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const x = v128.load(a + o);
      const y = v128.load(b + o);
      const z = v128.load(c + o);
      v128.store(a + o, f32x4.add(y, z));
      v128.store(c + o, x);
      {
        const q = o + 16;
        const x = v128.load(a + q);
        const y = v128.load(b + q);
        const z = v128.load(c + q);
        v128.store(a + q, f32x4.add(y, z));
        v128.store(c + q, x);
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const x = v128.load(a + o);
    const y = v128.load(b + o);
    const z = v128.load(c + o);
    v128.store(a + o, f32x4.add(y, z));
    v128.store(c + o, x);
  }
}

/** The memory traffic of an Adam step: reads a, b, c, d and writes a, c, d. */
export function stream4to3(a: usize, b: usize, c: usize, d: usize, n: i32): void {
  const end = <usize>n << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const x = v128.load(a + o);
      const y = v128.load(b + o);
      const z = v128.load(c + o);
      const w = v128.load(d + o);
      v128.store(a + o, f32x4.add(y, z));
      v128.store(c + o, w);
      v128.store(d + o, x);
      {
        const q = o + 16;
        const x = v128.load(a + q);
        const y = v128.load(b + q);
        const z = v128.load(c + q);
        const w = v128.load(d + q);
        v128.store(a + q, f32x4.add(y, z));
        v128.store(c + q, w);
        v128.store(d + q, x);
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const x = v128.load(a + o);
    const y = v128.load(b + o);
    const z = v128.load(c + o);
    const w = v128.load(d + o);
    v128.store(a + o, f32x4.add(y, z));
    v128.store(c + o, w);
    v128.store(d + o, x);
  }
}

/** One vector of stream3to2 at a, b, c: loads, then stores. */
@inline function stream3to2Vector(a: usize, b: usize, c: usize): void {
  const x = v128.load(a);
  const y = v128.load(b);
  const z = v128.load(c);
  v128.store(a, f32x4.add(y, z));
  v128.store(c, x);
}

/** One vector of stream4to3 at a, b, c, d: loads, then stores. */
@inline function stream4to3Vector(a: usize, b: usize, c: usize, d: usize): void {
  const x = v128.load(a);
  const y = v128.load(b);
  const z = v128.load(c);
  const w = v128.load(d);
  v128.store(a, f32x4.add(y, z));
  v128.store(c, w);
  v128.store(d, x);
}

/**
 * stream3to2's traffic with one vector in each quarter of the arrays per iteration (12
 * streams read, 8 written), the access order of the kernels that run in quarters
 * (nesterovNag, lion, ...). Whichever of the two loops is faster on the machine is the
 * benchmark's bound: a kernel is never held to a loop slower than the fastest one.
 */
export function stream3to2Quarters(a: usize, b: usize, c: usize, n: i32): void {
  const end = <usize>n << 2;
  const end4 = end & ~(<usize>63);
  if (end4 != 0) {
    const quarter = end4 >> 2, q2 = quarter << 1, q3 = q2 + quarter;
    let o: usize = 0;
    do {
      stream3to2Vector(a + o, b + o, c + o);
      stream3to2Vector(a + o + quarter, b + o + quarter, c + o + quarter);
      stream3to2Vector(a + o + q2, b + o + q2, c + o + q2);
      stream3to2Vector(a + o + q3, b + o + q3, c + o + q3);
      o += 16;
    } while (o < quarter);
  }
  for (let o = end4; o < end; o += 16) stream3to2Vector(a + o, b + o, c + o);
}

/** stream4to3's traffic in quarters, as stream3to2Quarters. */
export function stream4to3Quarters(a: usize, b: usize, c: usize, d: usize, n: i32): void {
  const end = <usize>n << 2;
  const end4 = end & ~(<usize>63);
  if (end4 != 0) {
    const quarter = end4 >> 2, q2 = quarter << 1, q3 = q2 + quarter;
    let o: usize = 0;
    do {
      stream4to3Vector(a + o, b + o, c + o, d + o);
      stream4to3Vector(a + o + quarter, b + o + quarter, c + o + quarter, d + o + quarter);
      stream4to3Vector(a + o + q2, b + o + q2, c + o + q2, d + o + q2);
      stream4to3Vector(a + o + q3, b + o + q3, c + o + q3, d + o + q3);
      o += 16;
    } while (o < quarter);
  }
  for (let o = end4; o < end; o += 16) stream4to3Vector(a + o, b + o, c + o, d + o);
}

/** One vector of stream6to5 at a..f: loads, then stores. */
@inline function stream6to5Vector(a: usize, b: usize, c: usize, d: usize, e: usize, f: usize): void {
  const x = v128.load(a);
  const y = v128.load(b);
  const z = v128.load(c);
  const w = v128.load(d);
  const u = v128.load(e);
  const t = v128.load(f);
  v128.store(a, f32x4.add(y, z));
  v128.store(c, w);
  v128.store(d, u);
  v128.store(e, t);
  v128.store(f, x);
}

/** The memory traffic of an Adan step: reads a..f and writes a, c, d, e, f; one vector per iteration. */
export function stream6to5(a: usize, b: usize, c: usize, d: usize, e: usize, f: usize, n: i32): void {
  const end = <usize>n << 2;
  for (let o: usize = 0; o < end; o += 16) stream6to5Vector(a + o, b + o, c + o, d + o, e + o, f + o);
}

/** stream6to5's traffic in quarters, as stream3to2Quarters. */
export function stream6to5Quarters(a: usize, b: usize, c: usize, d: usize, e: usize, f: usize, n: i32): void {
  const end = <usize>n << 2;
  const end4 = end & ~(<usize>63);
  if (end4 != 0) {
    const quarter = end4 >> 2, q2 = quarter << 1, q3 = q2 + quarter;
    let o: usize = 0;
    do {
      stream6to5Vector(a + o, b + o, c + o, d + o, e + o, f + o);
      stream6to5Vector(a + o + quarter, b + o + quarter, c + o + quarter, d + o + quarter, e + o + quarter, f + o + quarter);
      stream6to5Vector(a + o + q2, b + o + q2, c + o + q2, d + o + q2, e + o + q2, f + o + q2);
      stream6to5Vector(a + o + q3, b + o + q3, c + o + q3, d + o + q3, e + o + q3, f + o + q3);
      o += 16;
    } while (o < quarter);
  }
  for (let o = end4; o < end; o += 16) stream6to5Vector(a + o, b + o, c + o, d + o, e + o, f + o);
}

/**
 * The reads of a Nesterov step and nothing else: a, b and c, one vector in each quarter
 * per iteration (as stream3to2Quarters), no store. The benchmark compares it with the
 * streaming bound to show which half of the traffic sets the pace: where it takes about
 * as long as the bound, a step's in-place stores cost almost nothing and its reads are
 * the limit. Returns 1 if any value read is NaN
 * or +-Infinity (the same w - w test as the probes), so no load can be optimised away.
 */
export function read3Quarters(a: usize, b: usize, c: usize, n: i32): i32 {
  let acc0 = v128.splat<i32>(0), acc1 = v128.splat<i32>(0);
  const end = <usize>n << 2;
  const end4 = end & ~(<usize>63);
  if (end4 != 0) {
    const quarter = end4 >> 2, q2 = quarter << 1, q3 = q2 + quarter;
    let o: usize = 0;
    do {
      acc0 = probe(acc0, f32x4.add(f32x4.add(v128.load(a + o), v128.load(b + o)), v128.load(c + o)));
      acc1 = probe(acc1, f32x4.add(f32x4.add(v128.load(a + o + quarter), v128.load(b + o + quarter)), v128.load(c + o + quarter)));
      acc0 = probe(acc0, f32x4.add(f32x4.add(v128.load(a + o + q2), v128.load(b + o + q2)), v128.load(c + o + q2)));
      acc1 = probe(acc1, f32x4.add(f32x4.add(v128.load(a + o + q3), v128.load(b + o + q3)), v128.load(c + o + q3)));
      o += 16;
    } while (o < quarter);
  }
  const end1 = end & ~(<usize>15);
  for (let o = end4; o < end1; o += 16) acc0 = probe(acc0, f32x4.add(f32x4.add(v128.load(a + o), v128.load(b + o)), v128.load(c + o)));
  let tail: f32 = 0;
  for (let o = end1; o < end; o += 4) {
    const s = load<f32>(a + o) + load<f32>(b + o) + load<f32>(c + o);
    tail += s - s;
  }
  return verdict(acc0, acc1, tail);
}
