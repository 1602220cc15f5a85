// WebAssembly SIMD kernels (AssemblyScript) for float32 parameters in a ParamStore.
//
// Built by scripts/build-wasm.mjs at `npm run build` (and before tests): asc compiles
// this file to a module that imports its memory (the ParamStore's, created at full size
// up front and never grown) and allocates nothing. Each kernel is the fused loop of one
// rule or variant from src/rules/, four lanes at a time with f32x4, and a scalar tail.
// Arithmetic is float32 throughout (as in PyTorch and numpy for float32 tensors); the
// JS kernels compute in double and round on store, so the two differ by a few ulps.
//
// Conventions, relied on by src/wasm/kernels.ts: every kernel takes its pointers first
// (byte offsets into memory, 16-byte aligned), then the element count, then `s`, the
// address of its scalars: f64 values in a block of memory, in the order listed (flags
// as 0 or 1), rounded to f32 here, once. Scalars travel through memory rather than as
// arguments because a double passed from JS to wasm is boxed whenever V8 does not
// inline the call: an allocation per step. `sign` is -1 for maximize, else 1; `wd` the
// coupled weight decay (0: off).
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
//
// The main loops are `do { } while`, not `for`: V8 (11.3, Node 20) keeps a kernel's
// splatted scalars in registers across a loop whose body runs unconditionally, but
// rebuilds them in every iteration of a `for` loop, whose body sits under a branch
// (measured: Adam's loop without its sqrt and division, 0.49 -> 0.30 ns/element).

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).

/**
 * The gradient as the rule sees it: sign * g (+ wd * p). sign is +-1, so sign * g is g or
 * -g exactly: a negation (maximize) instead of a multiply on every vector, the same bits.
 */
@inline function gradient(g: usize, p: usize, negate: bool, wd: v128, decay: bool): v128 {
  let gi = v128.load(g);
  if (negate) gi = f32x4.neg(gi);
  if (decay) gi = f32x4.add(gi, f32x4.mul(wd, v128.load(p)));
  return gi;
}

/**
 * `acc | (w - w)`: w - w is +0 (no bit set) for every finite w and NaN otherwise, so the
 * accumulator keeps no bit set while every w is finite and some bit for good after the
 * first NaN or Infinity. An OR, not an add: its latency is one cycle, so the chain of
 * accumulations never holds the loop up.
 */
@inline function probe(acc: v128, w: v128): v128 {
  return v128.or(acc, f32x4.sub(w, w));
}

/** The kernel's result from its accumulators: 1 if any lane (or the scalar tail's) saw a non-finite value. */
@inline function verdict(acc0: v128, acc1: v128, tail: f32): i32 {
  return <i32>(v128.any_true(v128.or(acc0, acc1)) | (tail != tail));
}

@inline function gradient1(g: usize, p: usize, sign: f32, wd: f32, decay: bool): f32 {
  let gi = load<f32>(g) * sign;
  if (decay) gi += wd * load<f32>(p);
  return gi;
}

export function sgd(p: usize, g: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, 0);
  const sign64 = load<f64>(s, 8);
  const wd64 = load<f64>(s, 16);
  const lr = <f32>lr64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vlr = f32x4.splat(lr), vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, negate, vwd, decay);
      const pi = f32x4.sub(v128.load(p + o), f32x4.mul(vlr, gi));
      v128.store(p + o, pi);
      ok0 = probe(ok0, pi);
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, negate, vwd, decay);
        const pi = f32x4.sub(v128.load(p + q), f32x4.mul(vlr, gi));
        v128.store(p + q, pi);
        ok1 = probe(ok1, pi);
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, negate, vwd, decay);
    const pi = f32x4.sub(v128.load(p + o), f32x4.mul(vlr, gi));
    v128.store(p + o, pi);
    ok0 = probe(ok0, pi);
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const pi = load<f32>(p + o) - lr * gi;
    store<f32>(p + o, pi);
    tail += pi * 0;
  }
  return verdict(ok0, ok1, tail);
}

/** Momentum 'classic': v = mu v - lr g; p += v. */
export function momentumClassic(p: usize, g: usize, v: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, 0);
  const mu64 = load<f64>(s, 8);
  const sign64 = load<f64>(s, 16);
  const wd64 = load<f64>(s, 24);
  const lr = <f32>lr64, mu = <f32>mu64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vlr = f32x4.splat(lr), vmu = f32x4.splat(mu), vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, negate, vwd, decay);
      const vi = f32x4.sub(f32x4.mul(vmu, v128.load(v + o)), f32x4.mul(vlr, gi));
      v128.store(v + o, vi);
      const pi = f32x4.add(v128.load(p + o), vi);
      v128.store(p + o, pi);
      ok0 = probe(ok0, f32x4.add(pi, vi));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, negate, vwd, decay);
        const vi = f32x4.sub(f32x4.mul(vmu, v128.load(v + q)), f32x4.mul(vlr, gi));
        v128.store(v + q, vi);
        const pi = f32x4.add(v128.load(p + q), vi);
        v128.store(p + q, pi);
        ok1 = probe(ok1, f32x4.add(pi, vi));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, negate, vwd, decay);
    const vi = f32x4.sub(f32x4.mul(vmu, v128.load(v + o)), f32x4.mul(vlr, gi));
    v128.store(v + o, vi);
    const pi = f32x4.add(v128.load(p + o), vi);
    v128.store(p + o, pi);
    ok0 = probe(ok0, f32x4.add(pi, vi));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const vi = mu * load<f32>(v + o) - lr * gi;
    store<f32>(v + o, vi);
    const pi = load<f32>(p + o) + vi;
    store<f32>(p + o, pi);
    tail += (pi + vi) * 0;
  }
  return verdict(ok0, ok1, tail);
}

/** Momentum 'pytorch': b = keep b + take g; p -= lr b. */
export function momentumPytorch(p: usize, g: usize, b: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, 0);
  const keep64 = load<f64>(s, 8);
  const take64 = load<f64>(s, 16);
  const sign64 = load<f64>(s, 24);
  const wd64 = load<f64>(s, 32);
  const lr = <f32>lr64, keep = <f32>keep64, take = <f32>take64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vlr = f32x4.splat(lr), vkeep = f32x4.splat(keep), vtake = f32x4.splat(take), vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, negate, vwd, decay);
      const bi = f32x4.add(f32x4.mul(vkeep, v128.load(b + o)), f32x4.mul(vtake, gi));
      v128.store(b + o, bi);
      const pi = f32x4.sub(v128.load(p + o), f32x4.mul(vlr, bi));
      v128.store(p + o, pi);
      ok0 = probe(ok0, f32x4.add(pi, bi));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, negate, vwd, decay);
        const bi = f32x4.add(f32x4.mul(vkeep, v128.load(b + q)), f32x4.mul(vtake, gi));
        v128.store(b + q, bi);
        const pi = f32x4.sub(v128.load(p + q), f32x4.mul(vlr, bi));
        v128.store(p + q, pi);
        ok1 = probe(ok1, f32x4.add(pi, bi));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, negate, vwd, decay);
    const bi = f32x4.add(f32x4.mul(vkeep, v128.load(b + o)), f32x4.mul(vtake, gi));
    v128.store(b + o, bi);
    const pi = f32x4.sub(v128.load(p + o), f32x4.mul(vlr, bi));
    v128.store(p + o, pi);
    ok0 = probe(ok0, f32x4.add(pi, bi));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const bi = keep * load<f32>(b + o) + take * gi;
    store<f32>(b + o, bi);
    const pi = load<f32>(p + o) - lr * bi;
    store<f32>(p + o, pi);
    tail += (pi + bi) * 0;
  }
  return verdict(ok0, ok1, tail);
}

/**
 * One vector of Nesterov 'nag' at offset o of p, g, v: every load before the first store
 * (see nesterovNagQuarters). p += mu^2 v_old - (1 + mu) lr g is computed as
 * p += mu v_new - lr g, the same quantity (mu v_new - lr g = mu^2 v_old - mu lr g - lr g)
 * with lr g computed once: six operations instead of seven, and in cache the loop is
 * bound by its arithmetic (measured at 4,096 elements: 1.9 ns a vector with seven, 1.1
 * with six; float32 results move by a few ulps). Returns
 * p as written, for the probe: whenever v_new is NaN or +-Infinity, so is p (mu v_new is
 * +-Infinity or NaN, and a sum with a non-finite term is non-finite).
 */
@inline function nesterovNagVector(
  p: usize, g: usize, v: usize, vlr: v128, vmu: v128, vwd: v128, negate: bool, decay: bool,
): v128 {
  let gi = v128.load(g);
  const vOld = v128.load(v);
  const pOld = v128.load(p);
  if (negate) gi = f32x4.neg(gi);
  if (decay) gi = f32x4.add(gi, f32x4.mul(vwd, pOld));
  const lrg = f32x4.mul(vlr, gi);
  const vi = f32x4.sub(f32x4.mul(vmu, vOld), lrg);
  const pi = f32x4.add(pOld, f32x4.sub(f32x4.mul(vmu, vi), lrg));
  v128.store(v, vi);
  v128.store(p, pi);
  return pi;
}

/**
 * nesterovNag's main loop over `4 * quarter` bytes (quarter a multiple of 16): each
 * iteration updates one vector in each quarter of the arrays, so the loop reads 12
 * streams and writes 8 instead of 3 and 2, and the hardware prefetchers keep more lines
 * in flight (as for anyNonFinite); one probe for the iteration's four results. Returns
 * the probe's accumulator. This is the kernel the benchmark holds to the streaming
 * bound: every operation counts.
 *
 * Every load of a vector comes before its stores. The regions of a ParamStore often lie
 * a multiple of 4096 bytes apart (1.6e7 floats: 64,000,000 bytes = 15,625 pages), and on
 * Intel cores a load whose address matches a pending store's in its low 12 bits waits
 * for that store ("4K aliasing"): loading p[i] after storing v[i] did exactly that. V8
 * does not move wasm loads across stores, so the source order is the machine order.
 */
@inline function nesterovNagQuarters(
  p: usize, g: usize, v: usize, quarter: usize, vlr: v128, vmu: v128, vwd: v128, negate: bool, decay: bool, detect: bool,
): v128 {
  let ok = v128.splat<i32>(0);
  const q2 = quarter << 1, q3 = q2 + quarter;
  const stop = g + quarter;
  do {
    const a = nesterovNagVector(p, g, v, vlr, vmu, vwd, negate, decay);
    const b = nesterovNagVector(p + quarter, g + quarter, v + quarter, vlr, vmu, vwd, negate, decay);
    const c = nesterovNagVector(p + q2, g + q2, v + q2, vlr, vmu, vwd, negate, decay);
    const d = nesterovNagVector(p + q3, g + q3, v + q3, vlr, vmu, vwd, negate, decay);
    if (detect) ok = probe(ok, f32x4.add(f32x4.add(a, b), f32x4.add(c, d)));
    p += 16;
    g += 16;
    v += 16;
  } while (g < stop);
  return ok;
}

/**
 * The loop of `nesterovNag`; `detect` false leaves out the finiteness check (for the
 * benchmark's measure of what the check costs: `nesterovNagUnchecked`).
 */
@inline function nesterovNagLoop(p: usize, g: usize, v: usize, n: i32, s: usize, detect: bool): i32 {
  const lr64 = load<f64>(s, 0);
  const mu64 = load<f64>(s, 8);
  const sign64 = load<f64>(s, 16);
  const wd64 = load<f64>(s, 24);
  const lr = <f32>lr64, mu = <f32>mu64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vlr = f32x4.splat(lr), vmu = f32x4.splat(mu), vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  // Four quarters side by side (see nesterovNagQuarters), then single vectors, then
  // scalars. The common case (no maximize, no weight decay) runs a copy of the loop
  // without their per-vector branches.
  const end4 = end & ~(<usize>63);
  if (end4 != 0) {
    const quarter = end4 >> 2;
    if (!negate && !decay) ok0 = nesterovNagQuarters(p, g, v, quarter, vlr, vmu, vwd, false, false, detect);
    else ok0 = nesterovNagQuarters(p, g, v, quarter, vlr, vmu, vwd, negate, decay, detect);
  }
  for (let o = end4; o < end; o += 16) {
    const written = nesterovNagVector(p + o, g + o, v + o, vlr, vmu, vwd, negate, decay);
    if (detect) ok1 = probe(ok1, written);
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const lrg = lr * gi;
    const vi = mu * load<f32>(v + o) - lrg;
    store<f32>(v + o, vi);
    const pi = load<f32>(p + o) + (mu * vi - lrg);
    store<f32>(p + o, pi);
    if (detect) tail += pi * 0;
  }
  return verdict(ok0, ok1, tail);
}

/** Nesterov 'nag': v = mu v_old - lr g; p += mu^2 v_old - (1 + mu) lr g, computed as p += mu v - lr g (see nesterovNagVector). */
export function nesterovNag(p: usize, g: usize, v: usize, n: i32, s: usize): i32 {
  return nesterovNagLoop(p, g, v, n, s, true);
}

/** `nesterovNag` without the finiteness check, for the benchmark only (returns 0). */
export function nesterovNagUnchecked(p: usize, g: usize, v: usize, n: i32, s: usize): i32 {
  return nesterovNagLoop(p, g, v, n, s, false);
}

/** Nesterov 'book': v = mu v - lr g; p += mu^2 v; p -= (1 + mu) lr g. */
export function nesterovBook(p: usize, g: usize, v: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, 0);
  const mu64 = load<f64>(s, 8);
  const sign64 = load<f64>(s, 16);
  const wd64 = load<f64>(s, 24);
  const lr = <f32>lr64, mu = <f32>mu64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const muSquared = <f32>(mu64 * mu64), gradScale = <f32>((1 + mu64) * lr64);
  const vlr = f32x4.splat(lr), vmu = f32x4.splat(mu), vmm = f32x4.splat(muSquared), vscale = f32x4.splat(gradScale);
  const vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, negate, vwd, decay);
      const vNew = f32x4.sub(f32x4.mul(vmu, v128.load(v + o)), f32x4.mul(vlr, gi));
      v128.store(v + o, vNew);
      const halfway = f32x4.add(v128.load(p + o), f32x4.mul(vmm, vNew));
      const pi = f32x4.sub(halfway, f32x4.mul(vscale, gi));
      v128.store(p + o, pi);
      ok0 = probe(ok0, f32x4.add(pi, vNew));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, negate, vwd, decay);
        const vNew = f32x4.sub(f32x4.mul(vmu, v128.load(v + q)), f32x4.mul(vlr, gi));
        v128.store(v + q, vNew);
        const halfway = f32x4.add(v128.load(p + q), f32x4.mul(vmm, vNew));
        const pi = f32x4.sub(halfway, f32x4.mul(vscale, gi));
        v128.store(p + q, pi);
        ok1 = probe(ok1, f32x4.add(pi, vNew));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, negate, vwd, decay);
    const vNew = f32x4.sub(f32x4.mul(vmu, v128.load(v + o)), f32x4.mul(vlr, gi));
    v128.store(v + o, vNew);
    const halfway = f32x4.add(v128.load(p + o), f32x4.mul(vmm, vNew));
    const pi = f32x4.sub(halfway, f32x4.mul(vscale, gi));
    v128.store(p + o, pi);
    ok0 = probe(ok0, f32x4.add(pi, vNew));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const vNew = mu * load<f32>(v + o) - lr * gi;
    store<f32>(v + o, vNew);
    const halfway = load<f32>(p + o) + muSquared * vNew;
    const pi = halfway - gradScale * gi;
    store<f32>(p + o, pi);
    tail += (pi + vNew) * 0;
  }
  return verdict(ok0, ok1, tail);
}

/** Nesterov 'pytorch': b = keep b + take g; p -= lr (g + mu b). */
export function nesterovPytorch(p: usize, g: usize, b: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, 0);
  const mu64 = load<f64>(s, 8);
  const keep64 = load<f64>(s, 16);
  const take64 = load<f64>(s, 24);
  const sign64 = load<f64>(s, 32);
  const wd64 = load<f64>(s, 40);
  const lr = <f32>lr64, mu = <f32>mu64, keep = <f32>keep64, take = <f32>take64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vlr = f32x4.splat(lr), vmu = f32x4.splat(mu), vkeep = f32x4.splat(keep), vtake = f32x4.splat(take);
  const vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, negate, vwd, decay);
      const bi = f32x4.add(f32x4.mul(vkeep, v128.load(b + o)), f32x4.mul(vtake, gi));
      v128.store(b + o, bi);
      const pi = f32x4.sub(v128.load(p + o), f32x4.mul(vlr, f32x4.add(gi, f32x4.mul(vmu, bi))));
      v128.store(p + o, pi);
      ok0 = probe(ok0, f32x4.add(pi, bi));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, negate, vwd, decay);
        const bi = f32x4.add(f32x4.mul(vkeep, v128.load(b + q)), f32x4.mul(vtake, gi));
        v128.store(b + q, bi);
        const pi = f32x4.sub(v128.load(p + q), f32x4.mul(vlr, f32x4.add(gi, f32x4.mul(vmu, bi))));
        v128.store(p + q, pi);
        ok1 = probe(ok1, f32x4.add(pi, bi));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, negate, vwd, decay);
    const bi = f32x4.add(f32x4.mul(vkeep, v128.load(b + o)), f32x4.mul(vtake, gi));
    v128.store(b + o, bi);
    const pi = f32x4.sub(v128.load(p + o), f32x4.mul(vlr, f32x4.add(gi, f32x4.mul(vmu, bi))));
    v128.store(p + o, pi);
    ok0 = probe(ok0, f32x4.add(pi, bi));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const bi = keep * load<f32>(b + o) + take * gi;
    store<f32>(b + o, bi);
    const pi = load<f32>(p + o) - lr * (gi + mu * bi);
    store<f32>(p + o, pi);
    tail += (pi + bi) * 0;
  }
  return verdict(ok0, ok1, tail);
}

/** AdaGrad: h += g^2; 'pytorch': p += (negativeStep g) / (sqrt(h) + eps); 'book': p -= (lr g) / (sqrt(h) + eps). */
export function adagrad(p: usize, g: usize, h: usize, n: i32, s: usize): i32 {
  const negativeStep64 = load<f64>(s, 0);
  const eps64 = load<f64>(s, 8);
  const book = <i32>load<f64>(s, 16);
  const sign64 = load<f64>(s, 24);
  const wd64 = load<f64>(s, 32);
  // 'book' passes lr as negativeStep's magnitude: p - (lr g) / d equals p + (-lr g) / d exactly.
  const step = <f32>negativeStep64, eps = <f32>eps64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vstep = f32x4.splat(step), veps = f32x4.splat(eps), vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, negate, vwd, decay);
      const s = f32x4.add(v128.load(h + o), f32x4.mul(gi, gi));
      v128.store(h + o, s);
      const pi = f32x4.add(v128.load(p + o), f32x4.div(f32x4.mul(vstep, gi), f32x4.add(f32x4.sqrt(s), veps)));
      v128.store(p + o, pi);
      ok0 = probe(ok0, f32x4.add(pi, s));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, negate, vwd, decay);
        const s = f32x4.add(v128.load(h + q), f32x4.mul(gi, gi));
        v128.store(h + q, s);
        const pi = f32x4.add(v128.load(p + q), f32x4.div(f32x4.mul(vstep, gi), f32x4.add(f32x4.sqrt(s), veps)));
        v128.store(p + q, pi);
        ok1 = probe(ok1, f32x4.add(pi, s));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, negate, vwd, decay);
    const s = f32x4.add(v128.load(h + o), f32x4.mul(gi, gi));
    v128.store(h + o, s);
    const pi = f32x4.add(v128.load(p + o), f32x4.div(f32x4.mul(vstep, gi), f32x4.add(f32x4.sqrt(s), veps)));
    v128.store(p + o, pi);
    ok0 = probe(ok0, f32x4.add(pi, s));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const s = load<f32>(h + o) + gi * gi;
    store<f32>(h + o, s);
    const pi = load<f32>(p + o) + (step * gi) / (sqrt<f32>(s) + eps);
    store<f32>(p + o, pi);
    tail += (pi + s) * 0;
  }
  return verdict(ok0, ok1, tail);
}

/**
 * RMSProp, every option; 'book' is centered = momentum = 0 with its own eps. Centered:
 * the variance s - c^2, >= 0 in exact arithmetic, is clamped at 0 (max, which keeps a
 * NaN): rounding makes it slightly negative under a steady gradient (a NaN in PyTorch).
 */
export function rmsprop(p: usize, g: usize, sq: usize, ga: usize, buf: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, 0);
  const alpha64 = load<f64>(s, 8);
  const eps64 = load<f64>(s, 16);
  const mu64 = load<f64>(s, 24);
  const centered = <i32>load<f64>(s, 32);
  const useMomentum = <i32>load<f64>(s, 40);
  const sign64 = load<f64>(s, 48);
  const wd64 = load<f64>(s, 56);
  const lr = <f32>lr64, alpha = <f32>alpha64, oneMinusAlpha = <f32>(1 - alpha64), eps = <f32>eps64, mu = <f32>mu64;
  const sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vnlr = f32x4.splat(-lr), valpha = f32x4.splat(alpha), v1a = f32x4.splat(oneMinusAlpha), veps = f32x4.splat(eps), vmu = f32x4.splat(mu);
  const vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      ok0 = probe(ok0, rmspropVector(p + o, g + o, sq + o, ga + o, buf + o, negate, vwd, decay, valpha, v1a, veps, vmu, vnlr, centered, useMomentum));
      const q = o + 16;
      ok1 = probe(ok1, rmspropVector(p + q, g + q, sq + q, ga + q, buf + q, negate, vwd, decay, valpha, v1a, veps, vmu, vnlr, centered, useMomentum));
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    ok0 = probe(ok0, rmspropVector(p + o, g + o, sq + o, ga + o, buf + o, negate, vwd, decay, valpha, v1a, veps, vmu, vnlr, centered, useMomentum));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const s = load<f32>(sq + o) * alpha + oneMinusAlpha * gi * gi;
    store<f32>(sq + o, s);
    let written = s;
    let d: f32;
    if (centered) {
      const c = load<f32>(ga + o) * alpha + oneMinusAlpha * gi;
      store<f32>(ga + o, c);
      written += c;
      d = sqrt<f32>(max<f32>(s - c * c, 0)) + eps;
    } else {
      d = sqrt<f32>(s) + eps;
    }
    let pi: f32;
    if (useMomentum) {
      const b = load<f32>(buf + o) * mu + gi / d;
      store<f32>(buf + o, b);
      written += b;
      pi = load<f32>(p + o) + -lr * b;
    } else {
      pi = load<f32>(p + o) + (-lr * gi) / d;
    }
    store<f32>(p + o, pi);
    tail += (written + pi) * 0;
  }
  return verdict(ok0, ok1, tail);
}

/** One vector of `rmsprop`; returns the sum of the vectors it wrote (for the finiteness probe). */
@inline function rmspropVector(
  p: usize, g: usize, sq: usize, ga: usize, buf: usize, negate: bool, vwd: v128, decay: bool,
  valpha: v128, v1a: v128, veps: v128, vmu: v128, vnlr: v128, centered: i32, useMomentum: i32,
): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  const s = f32x4.add(f32x4.mul(v128.load(sq), valpha), f32x4.mul(f32x4.mul(v1a, gi), gi));
  v128.store(sq, s);
  let written = s;
  let d: v128;
  if (centered) {
    const c = f32x4.add(f32x4.mul(v128.load(ga), valpha), f32x4.mul(v1a, gi));
    v128.store(ga, c);
    written = f32x4.add(written, c);
    d = f32x4.add(f32x4.sqrt(f32x4.max(f32x4.sub(s, f32x4.mul(c, c)), f32x4.splat(0))), veps);
  } else {
    d = f32x4.add(f32x4.sqrt(s), veps);
  }
  let pi: v128;
  if (useMomentum) {
    const b = f32x4.add(f32x4.mul(v128.load(buf), vmu), f32x4.div(gi, d));
    v128.store(buf, b);
    written = f32x4.add(written, b);
    pi = f32x4.add(v128.load(p), f32x4.mul(vnlr, b));
  } else {
    pi = f32x4.add(v128.load(p), f32x4.div(f32x4.mul(vnlr, gi), d));
  }
  v128.store(p, pi);
  return f32x4.add(written, pi);
}

/** The loop of `adam`; `detect` false leaves out the finiteness check (`adamUnchecked`, for the benchmark). */
@inline function adamLoop(p: usize, g: usize, m: usize, v: usize, vmax: usize, n: i32, s: usize, detect: bool): i32 {
  const negativeStepSize64 = load<f64>(s, 0);
  const bc2sqrt64 = load<f64>(s, 8);
  const beta164 = load<f64>(s, 16);
  const beta264 = load<f64>(s, 24);
  const eps64 = load<f64>(s, 32);
  const amsgrad = <i32>load<f64>(s, 40);
  const shrink64 = load<f64>(s, 48);
  const sign64 = load<f64>(s, 56);
  const wd64 = load<f64>(s, 64);
  const nss = <f32>(negativeStepSize64 * bc2sqrt64), beta1 = <f32>beta164, beta2 = <f32>beta264;
  const omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264), eps = <f32>(eps64 * bc2sqrt64), shrink = <f32>shrink64, decoupled = shrink64 != 1;
  const sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vnss = f32x4.splat(nss), vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2);
  const vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2), veps = f32x4.splat(eps), vshrink = f32x4.splat(shrink);
  const vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, negate, vwd, decay);
      let pi = v128.load(p + o);
      if (decoupled) pi = f32x4.mul(pi, vshrink);
      const mi = f32x4.add(f32x4.mul(v128.load(m + o), vb1), f32x4.mul(vomb1, gi));
      let vi = f32x4.add(f32x4.mul(v128.load(v + o), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
      v128.store(m + o, mi);
      v128.store(v + o, vi);
      // vmax >= v: when v is not finite, neither is vmax, so the probe needs only one.
      if (amsgrad) {
        vi = f32x4.max(v128.load(vmax + o), vi);
        v128.store(vmax + o, vi);
      }
      const d = f32x4.add(f32x4.sqrt(vi), veps);
      pi = f32x4.add(pi, f32x4.div(f32x4.mul(vnss, mi), d));
      v128.store(p + o, pi);
      if (detect) ok0 = probe(ok0, f32x4.add(f32x4.add(pi, mi), vi));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, negate, vwd, decay);
        let pi = v128.load(p + q);
        if (decoupled) pi = f32x4.mul(pi, vshrink);
        const mi = f32x4.add(f32x4.mul(v128.load(m + q), vb1), f32x4.mul(vomb1, gi));
        let vi = f32x4.add(f32x4.mul(v128.load(v + q), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
        v128.store(m + q, mi);
        v128.store(v + q, vi);
        if (amsgrad) {
          vi = f32x4.max(v128.load(vmax + q), vi);
          v128.store(vmax + q, vi);
        }
        const d = f32x4.add(f32x4.sqrt(vi), veps);
        pi = f32x4.add(pi, f32x4.div(f32x4.mul(vnss, mi), d));
        v128.store(p + q, pi);
        if (detect) ok1 = probe(ok1, f32x4.add(f32x4.add(pi, mi), vi));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, negate, vwd, decay);
    let pi = v128.load(p + o);
    if (decoupled) pi = f32x4.mul(pi, vshrink);
    const mi = f32x4.add(f32x4.mul(v128.load(m + o), vb1), f32x4.mul(vomb1, gi));
    let vi = f32x4.add(f32x4.mul(v128.load(v + o), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    if (amsgrad) {
      vi = f32x4.max(v128.load(vmax + o), vi);
      v128.store(vmax + o, vi);
    }
    const d = f32x4.add(f32x4.sqrt(vi), veps);
    pi = f32x4.add(pi, f32x4.div(f32x4.mul(vnss, mi), d));
    v128.store(p + o, pi);
    if (detect) ok0 = probe(ok0, f32x4.add(f32x4.add(pi, mi), vi));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    let pi = load<f32>(p + o);
    if (decoupled) pi *= shrink;
    const mi = load<f32>(m + o) * beta1 + omb1 * gi;
    let vi = load<f32>(v + o) * beta2 + omb2 * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    if (amsgrad) {
      vi = max<f32>(load<f32>(vmax + o), vi);
      store<f32>(vmax + o, vi);
    }
    pi = pi + (nss * mi) / (sqrt<f32>(vi) + eps);
    store<f32>(p + o, pi);
    if (detect) tail += (pi + mi + vi) * 0;
  }
  return verdict(ok0, ok1, tail);
}

/**
 * Adam / AdamW 'pytorch': m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
 * (amsgrad: v = max(vmax, v)); p = p * shrink + (negativeStepSize m) / (sqrt(v) / bc2sqrt + eps).
 * Computed as (negativeStepSize bc2sqrt m) / (sqrt(v) + eps bc2sqrt): the same quantity
 * with one division per element instead of two (a division costs as much as the whole
 * rest of the loop); float32 rounding differs by an ulp or so.
 */
export function adam(p: usize, g: usize, m: usize, v: usize, vmax: usize, n: i32, s: usize): i32 {
  return adamLoop(p, g, m, v, vmax, n, s, true);
}

/** `adam` without the finiteness check, for the benchmark only (returns 0). */
export function adamUnchecked(p: usize, g: usize, m: usize, v: usize, vmax: usize, n: i32, s: usize): i32 {
  return adamLoop(p, g, m, v, vmax, n, s, false);
}

/** Adam / AdamW 'book': m += (1 - beta1)(g - m); v += (1 - beta2)(g^2 - v); p = p * shrink - (lrT m) / (sqrt(v) + eps). */
export function adamBook(p: usize, g: usize, m: usize, v: usize, n: i32, s: usize): i32 {
  const lrT64 = load<f64>(s, 0);
  const beta164 = load<f64>(s, 8);
  const beta264 = load<f64>(s, 16);
  const eps64 = load<f64>(s, 24);
  const shrink64 = load<f64>(s, 32);
  const sign64 = load<f64>(s, 40);
  const wd64 = load<f64>(s, 48);
  const lrT = <f32>lrT64, omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264), eps = <f32>eps64;
  const shrink = <f32>shrink64, decoupled = shrink64 != 1, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vlrT = f32x4.splat(lrT), vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2), veps = f32x4.splat(eps), vshrink = f32x4.splat(shrink);
  const vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, negate, vwd, decay);
      let pi = v128.load(p + o);
      if (decoupled) pi = f32x4.mul(pi, vshrink);
      const mOld = v128.load(m + o);
      const vOld = v128.load(v + o);
      const mi = f32x4.add(mOld, f32x4.mul(vomb1, f32x4.sub(gi, mOld)));
      const vi = f32x4.add(vOld, f32x4.mul(vomb2, f32x4.sub(f32x4.mul(gi, gi), vOld)));
      v128.store(m + o, mi);
      v128.store(v + o, vi);
      pi = f32x4.sub(pi, f32x4.div(f32x4.mul(vlrT, mi), f32x4.add(f32x4.sqrt(vi), veps)));
      v128.store(p + o, pi);
      ok0 = probe(ok0, f32x4.add(f32x4.add(pi, mi), vi));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, negate, vwd, decay);
        let pi = v128.load(p + q);
        if (decoupled) pi = f32x4.mul(pi, vshrink);
        const mOld = v128.load(m + q);
        const vOld = v128.load(v + q);
        const mi = f32x4.add(mOld, f32x4.mul(vomb1, f32x4.sub(gi, mOld)));
        const vi = f32x4.add(vOld, f32x4.mul(vomb2, f32x4.sub(f32x4.mul(gi, gi), vOld)));
        v128.store(m + q, mi);
        v128.store(v + q, vi);
        pi = f32x4.sub(pi, f32x4.div(f32x4.mul(vlrT, mi), f32x4.add(f32x4.sqrt(vi), veps)));
        v128.store(p + q, pi);
        ok1 = probe(ok1, f32x4.add(f32x4.add(pi, mi), vi));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, negate, vwd, decay);
    let pi = v128.load(p + o);
    if (decoupled) pi = f32x4.mul(pi, vshrink);
    const mOld = v128.load(m + o);
    const vOld = v128.load(v + o);
    const mi = f32x4.add(mOld, f32x4.mul(vomb1, f32x4.sub(gi, mOld)));
    const vi = f32x4.add(vOld, f32x4.mul(vomb2, f32x4.sub(f32x4.mul(gi, gi), vOld)));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    pi = f32x4.sub(pi, f32x4.div(f32x4.mul(vlrT, mi), f32x4.add(f32x4.sqrt(vi), veps)));
    v128.store(p + o, pi);
    ok0 = probe(ok0, f32x4.add(f32x4.add(pi, mi), vi));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    let pi = load<f32>(p + o);
    if (decoupled) pi *= shrink;
    const mOld = load<f32>(m + o);
    const vOld = load<f32>(v + o);
    const mi = mOld + omb1 * (gi - mOld);
    const vi = vOld + omb2 * (gi * gi - vOld);
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    pi = pi - (lrT * mi) / (sqrt<f32>(vi) + eps);
    store<f32>(p + o, pi);
    tail += (pi + mi + vi) * 0;
  }
  return verdict(ok0, ok1, tail);
}

/**
 * NAdam: m, v as Adam; p += (gradStep g) / d; p += (avgStep m) / d, d = sqrt(v) / bc2sqrt + eps.
 * Computed as p += (gradStep' g + avgStep' m) / (sqrt(v) + eps bc2sqrt) with both steps
 * multiplied by bc2sqrt: one division instead of three, float32 rounding within ulps.
 */
export function nadam(p: usize, g: usize, m: usize, v: usize, n: i32, s: usize): i32 {
  const gradStep64 = load<f64>(s, 0);
  const avgStep64 = load<f64>(s, 8);
  const bc2sqrt64 = load<f64>(s, 16);
  const beta164 = load<f64>(s, 24);
  const beta264 = load<f64>(s, 32);
  const eps64 = load<f64>(s, 40);
  const sign64 = load<f64>(s, 48);
  const wd64 = load<f64>(s, 56);
  const gs = <f32>(gradStep64 * bc2sqrt64), as = <f32>(avgStep64 * bc2sqrt64), beta1 = <f32>beta164, beta2 = <f32>beta264;
  const omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264), eps = <f32>(eps64 * bc2sqrt64), sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vgs = f32x4.splat(gs), vas = f32x4.splat(as), vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2);
  const vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2), veps = f32x4.splat(eps), vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, negate, vwd, decay);
      const mi = f32x4.add(f32x4.mul(v128.load(m + o), vb1), f32x4.mul(vomb1, gi));
      const vi = f32x4.add(f32x4.mul(v128.load(v + o), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
      v128.store(m + o, mi);
      v128.store(v + o, vi);
      const d = f32x4.add(f32x4.sqrt(vi), veps);
      const step = f32x4.add(f32x4.mul(vgs, gi), f32x4.mul(vas, mi));
      const pi = f32x4.add(v128.load(p + o), f32x4.div(step, d));
      v128.store(p + o, pi);
      ok0 = probe(ok0, f32x4.add(f32x4.add(pi, mi), vi));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, negate, vwd, decay);
        const mi = f32x4.add(f32x4.mul(v128.load(m + q), vb1), f32x4.mul(vomb1, gi));
        const vi = f32x4.add(f32x4.mul(v128.load(v + q), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
        v128.store(m + q, mi);
        v128.store(v + q, vi);
        const d = f32x4.add(f32x4.sqrt(vi), veps);
        const step = f32x4.add(f32x4.mul(vgs, gi), f32x4.mul(vas, mi));
        const pi = f32x4.add(v128.load(p + q), f32x4.div(step, d));
        v128.store(p + q, pi);
        ok1 = probe(ok1, f32x4.add(f32x4.add(pi, mi), vi));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, negate, vwd, decay);
    const mi = f32x4.add(f32x4.mul(v128.load(m + o), vb1), f32x4.mul(vomb1, gi));
    const vi = f32x4.add(f32x4.mul(v128.load(v + o), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    const d = f32x4.add(f32x4.sqrt(vi), veps);
    const step = f32x4.add(f32x4.mul(vgs, gi), f32x4.mul(vas, mi));
    const pi = f32x4.add(v128.load(p + o), f32x4.div(step, d));
    v128.store(p + o, pi);
    ok0 = probe(ok0, f32x4.add(f32x4.add(pi, mi), vi));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const mi = load<f32>(m + o) * beta1 + omb1 * gi;
    const vi = load<f32>(v + o) * beta2 + omb2 * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    const d = sqrt<f32>(vi) + eps;
    const pi = load<f32>(p + o) + (gs * gi + as * mi) / d;
    store<f32>(p + o, pi);
    tail += (pi + mi + vi) * 0;
  }
  return verdict(ok0, ok1, tail);
}

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
 *   (measured at 1.6e7 on a busy 2-core VM, as time over the Nesterov streaming bound:
 *   one stream 0.59x, four 0.41x, eight 0.35x);
 * - each line's four vectors summed, then s - s: +0 while finite, NaN otherwise, ORed
 *   into two accumulators (an OR's latency is one cycle: no iteration waits on an add);
 * - no branch on the data; `do { } while` for the reason at the top; one reduction.
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

/**
 * The reads of a Nesterov step and nothing else: a, b and c, one vector in each quarter
 * per iteration (as stream3to2Quarters), no store. The benchmark compares it with the
 * streaming bound to show which half of the traffic sets the pace: on the Xeon of
 * bench/results.json it takes 0.90-1.01x of the bound, so a step's in-place stores cost
 * almost nothing there and its reads are the limit. Returns 1 if any value read is NaN
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

// PyTorch 1.13 parity rules (issue 13): RAdam, Adamax, Adadelta, Rprop. Each kernel is
// the vector body (`...Vector`, returning the sum of the vectors it wrote, for the
// probe) run by the same loop shape as the kernels above: two vectors per iteration in
// a `do { } while`, then one, then a scalar tail.

/**
 * RAdam: m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2; rectified (rho_t > 5,
 * decided once per step): p += (step m) / (sqrt(v) + eps), else p += step m. Scalars:
 * step (negative: -lr r sqrt(1 - beta2^t) / (1 - beta1^t), or -lr / (1 - beta1^t)),
 * beta1, beta2, eps, rectified, sign, wd.
 */
export function radam(p: usize, g: usize, m: usize, v: usize, n: i32, s: usize): i32 {
  const step64 = load<f64>(s, 0);
  const beta164 = load<f64>(s, 8);
  const beta264 = load<f64>(s, 16);
  const eps64 = load<f64>(s, 24);
  const rectified = <i32>load<f64>(s, 32);
  const sign64 = load<f64>(s, 40);
  const wd64 = load<f64>(s, 48);
  const step = <f32>step64, beta1 = <f32>beta164, beta2 = <f32>beta264, omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264);
  const eps = <f32>eps64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vstep = f32x4.splat(step), vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2), vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2);
  const veps = f32x4.splat(eps), vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      ok0 = probe(ok0, radamVector(p + o, g + o, m + o, v + o, negate, vwd, decay, vstep, vb1, vb2, vomb1, vomb2, veps, rectified));
      const q = o + 16;
      ok1 = probe(ok1, radamVector(p + q, g + q, m + q, v + q, negate, vwd, decay, vstep, vb1, vb2, vomb1, vomb2, veps, rectified));
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    ok0 = probe(ok0, radamVector(p + o, g + o, m + o, v + o, negate, vwd, decay, vstep, vb1, vb2, vomb1, vomb2, veps, rectified));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const mi = load<f32>(m + o) * beta1 + omb1 * gi;
    const vi = load<f32>(v + o) * beta2 + omb2 * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    const pi = rectified ? load<f32>(p + o) + (step * mi) / (sqrt<f32>(vi) + eps) : load<f32>(p + o) + step * mi;
    store<f32>(p + o, pi);
    tail += (pi + mi + vi) * 0;
  }
  return verdict(ok0, ok1, tail);
}

@inline function radamVector(
  p: usize, g: usize, m: usize, v: usize, negate: bool, vwd: v128, decay: bool,
  vstep: v128, vb1: v128, vb2: v128, vomb1: v128, vomb2: v128, veps: v128, rectified: i32,
): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  const mi = f32x4.add(f32x4.mul(v128.load(m), vb1), f32x4.mul(vomb1, gi));
  const vi = f32x4.add(f32x4.mul(v128.load(v), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
  v128.store(m, mi);
  v128.store(v, vi);
  const pi = rectified
    ? f32x4.add(v128.load(p), f32x4.div(f32x4.mul(vstep, mi), f32x4.add(f32x4.sqrt(vi), veps)))
    : f32x4.add(v128.load(p), f32x4.mul(vstep, mi));
  v128.store(p, pi);
  return f32x4.add(f32x4.add(pi, mi), vi);
}

/**
 * Adamax: m = beta1 m + (1 - beta1) g; u = max(beta2 u, |g| + eps) (NaN-propagating, as
 * torch.amax); p += (step m) / u. Scalars: step (-lr / (1 - beta1^t)), beta1, beta2, eps,
 * sign, wd.
 */
export function adamax(p: usize, g: usize, m: usize, u: usize, n: i32, s: usize): i32 {
  const step64 = load<f64>(s, 0);
  const beta164 = load<f64>(s, 8);
  const beta264 = load<f64>(s, 16);
  const eps64 = load<f64>(s, 24);
  const sign64 = load<f64>(s, 32);
  const wd64 = load<f64>(s, 40);
  const step = <f32>step64, beta1 = <f32>beta164, beta2 = <f32>beta264, omb1 = <f32>(1 - beta164);
  const eps = <f32>eps64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vstep = f32x4.splat(step), vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2), vomb1 = f32x4.splat(omb1);
  const veps = f32x4.splat(eps), vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      ok0 = probe(ok0, adamaxVector(p + o, g + o, m + o, u + o, negate, vwd, decay, vstep, vb1, vb2, vomb1, veps));
      const q = o + 16;
      ok1 = probe(ok1, adamaxVector(p + q, g + q, m + q, u + q, negate, vwd, decay, vstep, vb1, vb2, vomb1, veps));
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    ok0 = probe(ok0, adamaxVector(p + o, g + o, m + o, u + o, negate, vwd, decay, vstep, vb1, vb2, vomb1, veps));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const mi = load<f32>(m + o) * beta1 + omb1 * gi;
    const ui = max<f32>(load<f32>(u + o) * beta2, abs<f32>(gi) + eps);
    store<f32>(m + o, mi);
    store<f32>(u + o, ui);
    const pi = load<f32>(p + o) + (step * mi) / ui;
    store<f32>(p + o, pi);
    tail += (pi + mi + ui) * 0;
  }
  return verdict(ok0, ok1, tail);
}

@inline function adamaxVector(
  p: usize, g: usize, m: usize, u: usize, negate: bool, vwd: v128, decay: bool,
  vstep: v128, vb1: v128, vb2: v128, vomb1: v128, veps: v128,
): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  const mi = f32x4.add(f32x4.mul(v128.load(m), vb1), f32x4.mul(vomb1, gi));
  const ui = f32x4.max(f32x4.mul(v128.load(u), vb2), f32x4.add(f32x4.abs(gi), veps));
  v128.store(m, mi);
  v128.store(u, ui);
  const pi = f32x4.add(v128.load(p), f32x4.div(f32x4.mul(vstep, mi), ui));
  v128.store(p, pi);
  return f32x4.add(f32x4.add(pi, mi), ui);
}

/**
 * Adadelta: s = rho s + (1 - rho) g^2; d = sqrt(a + eps) / sqrt(s + eps) * g;
 * a = rho a + (1 - rho) d^2; p += step d. Scalars: step (-lr), rho, eps, sign, wd.
 */
export function adadelta(p: usize, g: usize, sq: usize, acc: usize, n: i32, s: usize): i32 {
  const step64 = load<f64>(s, 0);
  const rho64 = load<f64>(s, 8);
  const eps64 = load<f64>(s, 16);
  const sign64 = load<f64>(s, 24);
  const wd64 = load<f64>(s, 32);
  const step = <f32>step64, rho = <f32>rho64, omr = <f32>(1 - rho64), eps = <f32>eps64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vstep = f32x4.splat(step), vrho = f32x4.splat(rho), vomr = f32x4.splat(omr), veps = f32x4.splat(eps), vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      ok0 = probe(ok0, adadeltaVector(p + o, g + o, sq + o, acc + o, negate, vwd, decay, vstep, vrho, vomr, veps));
      const q = o + 16;
      ok1 = probe(ok1, adadeltaVector(p + q, g + q, sq + q, acc + q, negate, vwd, decay, vstep, vrho, vomr, veps));
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    ok0 = probe(ok0, adadeltaVector(p + o, g + o, sq + o, acc + o, negate, vwd, decay, vstep, vrho, vomr, veps));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const si = load<f32>(sq + o) * rho + omr * gi * gi;
    store<f32>(sq + o, si);
    const d = (sqrt<f32>(load<f32>(acc + o) + eps) / sqrt<f32>(si + eps)) * gi;
    const ai = load<f32>(acc + o) * rho + omr * d * d;
    store<f32>(acc + o, ai);
    const pi = load<f32>(p + o) + step * d;
    store<f32>(p + o, pi);
    tail += (pi + si + ai) * 0;
  }
  return verdict(ok0, ok1, tail);
}

@inline function adadeltaVector(
  p: usize, g: usize, sq: usize, acc: usize, negate: bool, vwd: v128, decay: bool,
  vstep: v128, vrho: v128, vomr: v128, veps: v128,
): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  const si = f32x4.add(f32x4.mul(v128.load(sq), vrho), f32x4.mul(f32x4.mul(vomr, gi), gi));
  v128.store(sq, si);
  const aOld = v128.load(acc);
  const d = f32x4.mul(f32x4.div(f32x4.sqrt(f32x4.add(aOld, veps)), f32x4.sqrt(f32x4.add(si, veps))), gi);
  const ai = f32x4.add(f32x4.mul(aOld, vrho), f32x4.mul(f32x4.mul(vomr, d), d));
  v128.store(acc, ai);
  const pi = f32x4.add(v128.load(p), f32x4.mul(vstep, d));
  v128.store(p, pi);
  return f32x4.add(f32x4.add(pi, si), ai);
}

/**
 * Rprop: with q = g * prev, the step size ss is multiplied by etaPlus (q > 0), etaMinus
 * (q < 0) or 1, then clamped to [stepSizeMin, stepSizeMax]; where q < 0, g counts as 0;
 * p -= sign(g) ss; prev = g. Scalars: etaMinus, etaPlus, stepSizeMin, stepSizeMax, sign, wd.
 * (The step sizes start at lr: src/rules/rprop.ts fills them before the first step.)
 */
export function rprop(p: usize, g: usize, prev: usize, ss: usize, n: i32, s: usize): i32 {
  const etaMinus64 = load<f64>(s, 0);
  const etaPlus64 = load<f64>(s, 8);
  const min64 = load<f64>(s, 16);
  const max64 = load<f64>(s, 24);
  const sign64 = load<f64>(s, 32);
  const wd64 = load<f64>(s, 40);
  const etaMinus = <f32>etaMinus64, etaPlus = <f32>etaPlus64, lo = <f32>min64, hi = <f32>max64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vminus = f32x4.splat(etaMinus), vplus = f32x4.splat(etaPlus), vlo = f32x4.splat(lo), vhi = f32x4.splat(hi), vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      ok0 = probe(ok0, rpropVector(p + o, g + o, prev + o, ss + o, negate, vwd, decay, vminus, vplus, vlo, vhi));
      const q = o + 16;
      ok1 = probe(ok1, rpropVector(p + q, g + q, prev + q, ss + q, negate, vwd, decay, vminus, vplus, vlo, vhi));
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    ok0 = probe(ok0, rpropVector(p + o, g + o, prev + o, ss + o, negate, vwd, decay, vminus, vplus, vlo, vhi));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    let gi = gradient1(g + o, p + o, sign, wd, decay);
    const q = gi * load<f32>(prev + o);
    const factor: f32 = q > 0 ? etaPlus : q < 0 ? etaMinus : 1;
    const si = min<f32>(max<f32>(load<f32>(ss + o) * factor, lo), hi);
    store<f32>(ss + o, si);
    if (q < 0) gi = 0;
    const pi = gi > 0 ? load<f32>(p + o) - si : gi < 0 ? load<f32>(p + o) + si : load<f32>(p + o);
    store<f32>(p + o, pi);
    store<f32>(prev + o, gi);
    tail += (pi + si + gi) * 0;
  }
  return verdict(ok0, ok1, tail);
}

@inline function rpropVector(
  p: usize, g: usize, prev: usize, ss: usize, negate: bool, vwd: v128, decay: bool,
  vminus: v128, vplus: v128, vlo: v128, vhi: v128,
): v128 {
  const zero = f32x4.splat(0);
  const gi = gradient(g, p, negate, vwd, decay);
  const q = f32x4.mul(gi, v128.load(prev));
  const up = f32x4.gt(q, zero);
  const down = f32x4.lt(q, zero);
  const factor = v128.bitselect(vplus, v128.bitselect(vminus, f32x4.splat(1), down), up);
  const si = f32x4.min(f32x4.max(f32x4.mul(v128.load(ss), factor), vlo), vhi);
  v128.store(ss, si);
  const gz = v128.andnot(gi, down); // g where q >= 0, +0 where q < 0
  // sign(g) ss, exactly: ss where g > 0, -ss where g < 0, +0 elsewhere.
  const step = v128.or(v128.and(si, f32x4.gt(gz, zero)), v128.and(f32x4.neg(si), f32x4.lt(gz, zero)));
  const pi = f32x4.sub(v128.load(p), step);
  v128.store(p, pi);
  v128.store(prev, gz);
  return f32x4.add(f32x4.add(pi, si), gz);
}

/**
 * Schedule-Free SGD (src/rules/schedulefree-sgd.ts): g = sign g (+ wd y); z0 = first ? y : z;
 * y = y + c (z0 - y) + yStep g; z = z0 + zStep g. Scalars: c, yStep (lr (beta (1 - c) - 1)),
 * zStep (-lr), wd, sign, first.
 */
export function scheduleFreeSgd(p: usize, g: usize, z: usize, n: i32, s: usize): i32 {
  const c = <f32>load<f64>(s, 0), yStep = <f32>load<f64>(s, 8), zStep = <f32>load<f64>(s, 16);
  const wd = <f32>load<f64>(s, 24), sign64 = load<f64>(s, 32), first = load<f64>(s, 40) == 1;
  const sign = <f32>sign64, decay = wd != 0, negate = sign64 < 0;
  const vc = f32x4.splat(c), vy = f32x4.splat(yStep), vz = f32x4.splat(zStep), vwd = f32x4.splat(wd);
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      ok0 = probe(ok0, scheduleFreeSgdVector(p + o, g + o, z + o, negate, vwd, decay, first, vc, vy, vz));
      const q = o + 16;
      ok1 = probe(ok1, scheduleFreeSgdVector(p + q, g + q, z + q, negate, vwd, decay, first, vc, vy, vz));
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    ok0 = probe(ok0, scheduleFreeSgdVector(p + o, g + o, z + o, negate, vwd, decay, first, vc, vy, vz));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const yi = load<f32>(p + o);
    const zi = first ? yi : load<f32>(z + o);
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const pi = yi + c * (zi - yi) + yStep * gi;
    const zn = zi + zStep * gi;
    store<f32>(p + o, pi);
    store<f32>(z + o, zn);
    tail += (pi + zn) * 0;
  }
  return verdict(ok0, ok1, tail);
}

@inline function scheduleFreeSgdVector(
  p: usize, g: usize, z: usize, negate: bool, vwd: v128, decay: bool, first: bool, vc: v128, vy: v128, vz: v128,
): v128 {
  const yi = v128.load(p);
  const zi = first ? yi : v128.load(z);
  const gi = gradient(g, p, negate, vwd, decay);
  const pi = f32x4.add(f32x4.add(yi, f32x4.mul(vc, f32x4.sub(zi, yi))), f32x4.mul(vy, gi));
  const zn = f32x4.add(zi, f32x4.mul(vz, gi));
  v128.store(p, pi);
  v128.store(z, zn);
  return f32x4.add(pi, zn);
}

/**
 * Schedule-Free AdamW (src/rules/schedulefree-adamw.ts): v = beta2 v + (1 - beta2) g^2;
 * gn = g / (sqrt(v / bc2) + eps) (+ wd y); then Schedule-Free SGD's y and z with gn.
 * Scalars: c, yStep, zStep, wd, sign, first, beta2, bc2 (1 - beta2^t), eps.
 * gn is computed as Adam's kernel does, (bc2sqrt g) / (sqrt(v) + eps bc2sqrt): the same
 * quantity, float32 rounding within ulps, with one division and one square root per
 * element instead of two divisions and a root (the divider bounds the loop in cache:
 * measured at 1e5, 1.33 -> 1.19 ns/element; at 1.6e7, 1.15x -> 1.06x of stream4to3).
 */
export function scheduleFreeAdamw(p: usize, g: usize, z: usize, v: usize, n: i32, s: usize): i32 {
  const c = <f32>load<f64>(s, 0), yStep = <f32>load<f64>(s, 8), zStep = <f32>load<f64>(s, 16);
  const wd = <f32>load<f64>(s, 24), sign64 = load<f64>(s, 32), first = load<f64>(s, 40) == 1;
  const beta264 = load<f64>(s, 48);
  const bc2sqrt64 = sqrt<f64>(load<f64>(s, 56));
  const beta2 = <f32>beta264, omb2 = <f32>(1 - beta264), gscale = <f32>bc2sqrt64, eps = <f32>(load<f64>(s, 64) * bc2sqrt64);
  const sign = <f32>sign64, decay = wd != 0, negate = sign64 < 0;
  const vc = f32x4.splat(c), vy = f32x4.splat(yStep), vz = f32x4.splat(zStep), vwd = f32x4.splat(wd);
  const vb2 = f32x4.splat(beta2), vomb2 = f32x4.splat(omb2), vgscale = f32x4.splat(gscale), veps = f32x4.splat(eps);
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  // Four quarters side by side (see lionQuarters for why), then single vectors, then
  // scalars. The common cases (not the first step, no maximize; with or without weight
  // decay) run copies of the loop with their flags constant.
  const end4 = end & ~(<usize>63);
  if (end4 != 0) {
    const quarter = end4 >> 2;
    if (first || negate) ok0 = scheduleFreeAdamwQuarters(p, g, z, v, quarter, negate, vwd, decay, first, vc, vy, vz, vb2, vomb2, vgscale, veps);
    else if (decay) ok0 = scheduleFreeAdamwQuarters(p, g, z, v, quarter, false, vwd, true, false, vc, vy, vz, vb2, vomb2, vgscale, veps);
    else ok0 = scheduleFreeAdamwQuarters(p, g, z, v, quarter, false, vwd, false, false, vc, vy, vz, vb2, vomb2, vgscale, veps);
  }
  for (let o = end4; o < end; o += 16) {
    ok1 = probe(ok1, scheduleFreeAdamwVector(p + o, g + o, z + o, v + o, negate, vwd, decay, first, vc, vy, vz, vb2, vomb2, vgscale, veps));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const yi = load<f32>(p + o);
    const zi = first ? yi : load<f32>(z + o);
    const gi = sign * load<f32>(g + o);
    const vi = load<f32>(v + o) * beta2 + omb2 * gi * gi;
    store<f32>(v + o, vi);
    let gn = (gscale * gi) / (sqrt<f32>(vi) + eps);
    if (decay) gn += wd * yi;
    const pi = yi + c * (zi - yi) + yStep * gn;
    const zn = zi + zStep * gn;
    store<f32>(p + o, pi);
    store<f32>(z + o, zn);
    tail += (pi + zn + vi) * 0;
  }
  return verdict(ok0, ok1, tail);
}

/** Schedule-Free AdamW's main loop over `4 * quarter` bytes, one vector in each quarter per iteration (see lionQuarters). */
@inline function scheduleFreeAdamwQuarters(
  p: usize, g: usize, z: usize, v: usize, quarter: usize, negate: bool, vwd: v128, decay: bool, first: bool,
  vc: v128, vy: v128, vz: v128, vb2: v128, vomb2: v128, vgscale: v128, veps: v128,
): v128 {
  let ok = v128.splat<i32>(0);
  const q2 = quarter << 1, q3 = q2 + quarter;
  const stop = g + quarter;
  do {
    const a = scheduleFreeAdamwVector(p, g, z, v, negate, vwd, decay, first, vc, vy, vz, vb2, vomb2, vgscale, veps);
    const b = scheduleFreeAdamwVector(p + quarter, g + quarter, z + quarter, v + quarter, negate, vwd, decay, first, vc, vy, vz, vb2, vomb2, vgscale, veps);
    const c = scheduleFreeAdamwVector(p + q2, g + q2, z + q2, v + q2, negate, vwd, decay, first, vc, vy, vz, vb2, vomb2, vgscale, veps);
    const d = scheduleFreeAdamwVector(p + q3, g + q3, z + q3, v + q3, negate, vwd, decay, first, vc, vy, vz, vb2, vomb2, vgscale, veps);
    ok = probe(ok, f32x4.add(f32x4.add(a, b), f32x4.add(c, d)));
    p += 16;
    g += 16;
    z += 16;
    v += 16;
  } while (g < stop);
  return ok;
}

@inline function scheduleFreeAdamwVector(
  p: usize, g: usize, z: usize, v: usize, negate: bool, vwd: v128, decay: bool, first: bool, vc: v128, vy: v128, vz: v128,
  vb2: v128, vomb2: v128, vgscale: v128, veps: v128,
): v128 {
  const yi = v128.load(p);
  const zi = first ? yi : v128.load(z);
  let gi = v128.load(g);
  if (negate) gi = f32x4.neg(gi);
  const vi = f32x4.add(f32x4.mul(v128.load(v), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
  v128.store(v, vi);
  let gn = f32x4.div(f32x4.mul(vgscale, gi), f32x4.add(f32x4.sqrt(vi), veps));
  if (decay) gn = f32x4.add(gn, f32x4.mul(vwd, yi));
  const pi = f32x4.add(f32x4.add(yi, f32x4.mul(vc, f32x4.sub(zi, yi))), f32x4.mul(vy, gn));
  const zn = f32x4.add(zi, f32x4.mul(vz, gn));
  v128.store(p, pi);
  v128.store(z, zn);
  return f32x4.add(f32x4.add(pi, zn), vi);
}

/** Schedule-Free's eval/train switch: p = p + w (z - p). Scalars: w. */
export function scheduleFreeLerp(p: usize, z: usize, n: i32, s: usize): i32 {
  const w = <f32>load<f64>(s, 0);
  const vw = f32x4.splat(w);
  let ok0 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  for (let o: usize = 0; o < end; o += 16) {
    const pi = v128.load(p + o);
    const pn = f32x4.add(pi, f32x4.mul(vw, f32x4.sub(v128.load(z + o), pi)));
    v128.store(p + o, pn);
    ok0 = probe(ok0, pn);
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const pi = load<f32>(p + o);
    const pn = pi + w * (load<f32>(z + o) - pi);
    store<f32>(p + o, pn);
    tail += pn * 0;
  }
  return verdict(ok0, f32x4.splat(0), tail);
}

// Lion (issue 13): same loop shape as the kernels above.

/**
 * Lion: c = beta1 m + (1 - beta1) g; p = p decay - lr sign(c) (sign(0) = 0, sign(NaN) =
 * NaN); m = beta2 m + (1 - beta2) g. Scalars: lr, beta1, beta2, sign, decay (1 - lr wd,
 * the decoupled weight decay; 1: off).
 */
export function lion(p: usize, g: usize, m: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, 0);
  const beta164 = load<f64>(s, 8);
  const beta264 = load<f64>(s, 16);
  const sign64 = load<f64>(s, 24);
  const decay64 = load<f64>(s, 32);
  const lr = <f32>lr64, beta1 = <f32>beta164, beta2 = <f32>beta264, omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264);
  const sign = <f32>sign64, decay = <f32>decay64, decays = decay64 != 1;
  const vlr = f32x4.splat(lr), vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2), vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2);
  const vdecay = f32x4.splat(decay);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  // Four quarters of the array side by side (see lionQuarters), then single vectors, then
  // scalars. The common cases (no maximize; with or without weight decay) run copies of
  // the loop with their flags constant.
  const end4 = end & ~(<usize>63);
  if (end4 != 0) {
    if (negate) ok0 = lionQuarters(p, g, m, end4 >> 2, vlr, vb1, vb2, vomb1, vomb2, vdecay, true, decays);
    else if (decays) ok0 = lionQuarters(p, g, m, end4 >> 2, vlr, vb1, vb2, vomb1, vomb2, vdecay, false, true);
    else ok0 = lionQuarters(p, g, m, end4 >> 2, vlr, vb1, vb2, vomb1, vomb2, vdecay, false, false);
  }
  for (let o = end4; o < end; o += 16) {
    ok1 = probe(ok1, lionVector(p + o, g + o, m + o, negate, vlr, vb1, vb2, vomb1, vomb2, vdecay, decays));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = load<f32>(g + o) * sign;
    const mi = load<f32>(m + o);
    const c = beta1 * mi + omb1 * gi;
    const step: f32 = c > 0 ? lr : c < 0 ? -lr : c == 0 ? 0 : c; // c: NaN
    const pd = decays ? load<f32>(p + o) * decay : load<f32>(p + o);
    const pi = pd - step;
    const mn = beta2 * mi + omb2 * gi;
    store<f32>(p + o, pi);
    store<f32>(m + o, mn);
    tail += (pi + mn) * 0;
  }
  return verdict(ok0, ok1, tail);
}

/**
 * Lion's main loop over `4 * quarter` bytes (quarter a multiple of 16): each iteration
 * updates one vector in each quarter of the arrays, so the loop reads 12 streams and
 * writes 8 instead of 3 and 2. The hardware prefetchers keep more lines in flight for
 * more streams (as in anyNonFinite): measured at 1.6e7 elements on the 2-core Xeon,
 * medians of 15 interleaved rounds, the kernel went from 1.37x of the streaming bound
 * (stream3to2) with two adjacent vectors per iteration to 1.01x with four quarters; in
 * cache (1e5) 0.98 -> 0.86 ns/element. Every element is computed exactly as in
 * lionVector: the split changes the order of the memory accesses, not a bit of the result.
 */
@inline function lionQuarters(
  p: usize, g: usize, m: usize, quarter: usize,
  vlr: v128, vb1: v128, vb2: v128, vomb1: v128, vomb2: v128, vdecay: v128, negate: bool, decays: bool,
): v128 {
  let ok = v128.splat<i32>(0);
  const q2 = quarter << 1, q3 = q2 + quarter;
  const stop = g + quarter;
  do {
    const a = lionVector(p, g, m, negate, vlr, vb1, vb2, vomb1, vomb2, vdecay, decays);
    const b = lionVector(p + quarter, g + quarter, m + quarter, negate, vlr, vb1, vb2, vomb1, vomb2, vdecay, decays);
    const c = lionVector(p + q2, g + q2, m + q2, negate, vlr, vb1, vb2, vomb1, vomb2, vdecay, decays);
    const d = lionVector(p + q3, g + q3, m + q3, negate, vlr, vb1, vb2, vomb1, vomb2, vdecay, decays);
    ok = probe(ok, f32x4.add(f32x4.add(a, b), f32x4.add(c, d)));
    p += 16;
    g += 16;
    m += 16;
  } while (g < stop);
  return ok;
}

/** One vector of Lion; returns p + m as written, for the probe. */
@inline function lionVector(
  p: usize, g: usize, m: usize, negate: bool,
  vlr: v128, vb1: v128, vb2: v128, vomb1: v128, vomb2: v128, vdecay: v128, decays: bool,
): v128 {
  let gi = v128.load(g);
  if (negate) gi = f32x4.neg(gi);
  const mi = v128.load(m);
  const c = f32x4.add(f32x4.mul(vb1, mi), f32x4.mul(vomb1, gi));
  // lr sign(c) in bits: lr with c's sign bit where c != 0 (NaN included), +0 where c is
  // +-0; then a NaN c's own bits ORed in, which keeps the lane a NaN (exponent all ones,
  // mantissa non-zero). Seven operations, no negation or select.
  const signed = v128.and(v128.or(v128.and(c, v128.splat<i32>(0x80000000)), vlr), f32x4.ne(c, f32x4.splat(0)));
  const step = v128.or(signed, v128.and(c, f32x4.ne(c, c)));
  let pd = v128.load(p);
  if (decays) pd = f32x4.mul(pd, vdecay);
  const pi = f32x4.sub(pd, step);
  const mn = f32x4.add(f32x4.mul(vb2, mi), f32x4.mul(vomb2, gi));
  v128.store(p, pi);
  v128.store(m, mn);
  return f32x4.add(pi, mn);
}

// LAMB (issue 13): two elementwise kernels around the per-parameter norms, which
// src/rules/lamb.ts sums in JS between them (a sum does not split across threads
// bit-identically; these two do). Scalars (shared): beta1, beta2, 1 - beta1^t,
// 1 - beta2^t, sign, eps, wd (added to u, optax's), step (-lr * trust ratio).

/** LAMB pass 1: m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2. */
export function lambMoments(g: usize, m: usize, v: usize, n: i32, s: usize): i32 {
  const beta164 = load<f64>(s, 0);
  const beta264 = load<f64>(s, 8);
  const sign64 = load<f64>(s, 32);
  const beta1 = <f32>beta164, beta2 = <f32>beta264, omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264), sign = <f32>sign64;
  const vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2), vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2);
  const negate = sign64 < 0;
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      ok0 = probe(ok0, lambMomentsVector(g + o, m + o, v + o, negate, vb1, vb2, vomb1, vomb2));
      const q = o + 16;
      ok1 = probe(ok1, lambMomentsVector(g + q, m + q, v + q, negate, vb1, vb2, vomb1, vomb2));
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    ok0 = probe(ok0, lambMomentsVector(g + o, m + o, v + o, negate, vb1, vb2, vomb1, vomb2));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = load<f32>(g + o) * sign;
    const mi = load<f32>(m + o) * beta1 + omb1 * gi;
    const vi = load<f32>(v + o) * beta2 + omb2 * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    tail += (mi + vi) * 0;
  }
  return verdict(ok0, ok1, tail);
}

@inline function lambMomentsVector(g: usize, m: usize, v: usize, negate: bool, vb1: v128, vb2: v128, vomb1: v128, vomb2: v128): v128 {
  let gi = v128.load(g);
  if (negate) gi = f32x4.neg(gi);
  const mi = f32x4.add(f32x4.mul(v128.load(m), vb1), f32x4.mul(vomb1, gi));
  const vi = f32x4.add(f32x4.mul(v128.load(v), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
  v128.store(m, mi);
  v128.store(v, vi);
  return f32x4.add(mi, vi);
}

/** LAMB pass 2: u = (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps) + wd p; p += step u. */
export function lambApply(p: usize, m: usize, v: usize, n: i32, s: usize): i32 {
  const bias164 = load<f64>(s, 16);
  const bias264 = load<f64>(s, 24);
  const eps64 = load<f64>(s, 40);
  const wd64 = load<f64>(s, 48);
  const step64 = load<f64>(s, 56);
  const bias1 = <f32>bias164, bias2 = <f32>bias264, eps = <f32>eps64, wd = <f32>wd64, step = <f32>step64, decay = wd != 0;
  const vbias1 = f32x4.splat(bias1), vbias2 = f32x4.splat(bias2), veps = f32x4.splat(eps), vwd = f32x4.splat(wd), vstep = f32x4.splat(step);
  let ok0 = f32x4.splat(0), ok1 = f32x4.splat(0), tail: f32 = 0;
  const end = <usize>(n & ~3) << 2;
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      ok0 = probe(ok0, lambApplyVector(p + o, m + o, v + o, vbias1, vbias2, veps, vwd, decay, vstep));
      const q = o + 16;
      ok1 = probe(ok1, lambApplyVector(p + q, m + q, v + q, vbias1, vbias2, veps, vwd, decay, vstep));
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    ok0 = probe(ok0, lambApplyVector(p + o, m + o, v + o, vbias1, vbias2, veps, vwd, decay, vstep));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const pi = load<f32>(p + o);
    let u = load<f32>(m + o) / bias1 / (sqrt<f32>(load<f32>(v + o) / bias2) + eps);
    if (decay) u += wd * pi;
    const pn = pi + step * u;
    store<f32>(p + o, pn);
    tail += pn * 0;
  }
  return verdict(ok0, ok1, tail);
}

@inline function lambApplyVector(p: usize, m: usize, v: usize, vbias1: v128, vbias2: v128, veps: v128, vwd: v128, decay: bool, vstep: v128): v128 {
  const pi = v128.load(p);
  let u = f32x4.div(f32x4.div(v128.load(m), vbias1), f32x4.add(f32x4.sqrt(f32x4.div(v128.load(v), vbias2)), veps));
  if (decay) u = f32x4.add(u, f32x4.mul(vwd, pi));
  const pn = f32x4.add(pi, f32x4.mul(vstep, u));
  v128.store(p, pn);
  return pn;
}

// ---------------------------------------------------------------------------------
// Muon's Newton-Schulz iteration (src/rules/muon.ts): dense float32 matrix products.
// Matrices are row-major with both dimensions padded to multiples of 4 by zeros (the
// padding stays zero through the iteration: a zero row or column of X gives a zero row
// and column of A = X X^T, of A A and of B X). Register-blocked: 4 x 4 dot products in
// `gram`, 4 rows x 16 columns of accumulators in `nsApply`, so that each vector loaded is
// used four times and the working set of the inner loop stays in the first cache levels.

/** Horizontal sum of the four lanes. */
@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/**
 * out (rows x rows) = x x^T for x (rows x cols); rows and cols multiples of 4. Each 4 x 4
 * block of dot products above the diagonal is computed once and written to both halves
 * (the product is symmetric; both halves then hold the same bits).
 */
export function gram(x: usize, rows: i32, cols: i32, out: usize): void {
  const rowBytes = <usize>cols << 2;
  const outRow = <usize>rows << 2;
  for (let i = 0; i < rows; i += 4) {
    const xi0 = x + <usize>i * rowBytes, xi1 = xi0 + rowBytes, xi2 = xi1 + rowBytes, xi3 = xi2 + rowBytes;
    for (let j = i; j < rows; j += 4) {
      const xj0 = x + <usize>j * rowBytes, xj1 = xj0 + rowBytes, xj2 = xj1 + rowBytes, xj3 = xj2 + rowBytes;
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a03 = f32x4.splat(0);
      let a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0), a13 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a22 = f32x4.splat(0), a23 = f32x4.splat(0);
      let a30 = f32x4.splat(0), a31 = f32x4.splat(0), a32 = f32x4.splat(0), a33 = f32x4.splat(0);
      for (let o: usize = 0; o < rowBytes; o += 16) {
        const u0 = v128.load(xi0 + o), u1 = v128.load(xi1 + o), u2 = v128.load(xi2 + o), u3 = v128.load(xi3 + o);
        const w0 = v128.load(xj0 + o), w1 = v128.load(xj1 + o), w2 = v128.load(xj2 + o), w3 = v128.load(xj3 + o);
        a00 = f32x4.add(a00, f32x4.mul(u0, w0)); a01 = f32x4.add(a01, f32x4.mul(u0, w1));
        a02 = f32x4.add(a02, f32x4.mul(u0, w2)); a03 = f32x4.add(a03, f32x4.mul(u0, w3));
        a10 = f32x4.add(a10, f32x4.mul(u1, w0)); a11 = f32x4.add(a11, f32x4.mul(u1, w1));
        a12 = f32x4.add(a12, f32x4.mul(u1, w2)); a13 = f32x4.add(a13, f32x4.mul(u1, w3));
        a20 = f32x4.add(a20, f32x4.mul(u2, w0)); a21 = f32x4.add(a21, f32x4.mul(u2, w1));
        a22 = f32x4.add(a22, f32x4.mul(u2, w2)); a23 = f32x4.add(a23, f32x4.mul(u2, w3));
        a30 = f32x4.add(a30, f32x4.mul(u3, w0)); a31 = f32x4.add(a31, f32x4.mul(u3, w1));
        a32 = f32x4.add(a32, f32x4.mul(u3, w2)); a33 = f32x4.add(a33, f32x4.mul(u3, w3));
      }
      const r0 = out + <usize>i * outRow + (<usize>j << 2), r1 = r0 + outRow, r2 = r1 + outRow, r3 = r2 + outRow;
      const c0 = out + <usize>j * outRow + (<usize>i << 2), c1 = c0 + outRow, c2 = c1 + outRow, c3 = c2 + outRow;
      const s00 = hsum(a00), s01 = hsum(a01), s02 = hsum(a02), s03 = hsum(a03);
      const s10 = hsum(a10), s11 = hsum(a11), s12 = hsum(a12), s13 = hsum(a13);
      const s20 = hsum(a20), s21 = hsum(a21), s22 = hsum(a22), s23 = hsum(a23);
      const s30 = hsum(a30), s31 = hsum(a31), s32 = hsum(a32), s33 = hsum(a33);
      store<f32>(r0, s00); store<f32>(r0, s01, 4); store<f32>(r0, s02, 8); store<f32>(r0, s03, 12);
      store<f32>(r1, s10); store<f32>(r1, s11, 4); store<f32>(r1, s12, 8); store<f32>(r1, s13, 12);
      store<f32>(r2, s20); store<f32>(r2, s21, 4); store<f32>(r2, s22, 8); store<f32>(r2, s23, 12);
      store<f32>(r3, s30); store<f32>(r3, s31, 4); store<f32>(r3, s32, 8); store<f32>(r3, s33, 12);
      store<f32>(c0, s00); store<f32>(c0, s10, 4); store<f32>(c0, s20, 8); store<f32>(c0, s30, 12);
      store<f32>(c1, s01); store<f32>(c1, s11, 4); store<f32>(c1, s21, 8); store<f32>(c1, s31, 12);
      store<f32>(c2, s02); store<f32>(c2, s12, 4); store<f32>(c2, s22, 8); store<f32>(c2, s32, 12);
      store<f32>(c3, s03); store<f32>(c3, s13, 4); store<f32>(c3, s23, 8); store<f32>(c3, s33, 12);
    }
  }
}

/** m (n elements, a multiple of 4) = b a + c m: Newton-Schulz's B = b A + c A A, in place. */
export function nsPoly(a: usize, m: usize, n: i32, s: usize): void {
  const vb = f32x4.splat(<f32>load<f64>(s, 8)), vc = f32x4.splat(<f32>load<f64>(s, 16));
  const end = <usize>n << 2;
  for (let o: usize = 0; o < end; o += 16) {
    v128.store(m + o, f32x4.add(f32x4.mul(vb, v128.load(a + o)), f32x4.mul(vc, v128.load(m + o))));
  }
}

/**
 * out (rows x cols) = a x + bm x, bm (rows x rows); rows and cols multiples of 4.
 * Column tiles of 16 (then 4), rows in fours: the tile's accumulators stay in registers
 * over the whole sum, and the rows x 16 strip of x it reads stays in cache across rows.
 */
export function nsApply(bm: usize, x: usize, rows: i32, cols: i32, out: usize, s: usize): void {
  const va = f32x4.splat(<f32>load<f64>(s, 0));
  const rowBytes = <usize>cols << 2;
  const bRow = <usize>rows << 2;
  const wide = <usize>(cols & ~15) << 2;
  for (let t: usize = 0; t < wide; t += 64) {
    for (let i = 0; i < rows; i += 4) {
      const b0 = bm + <usize>i * bRow, b1 = b0 + bRow, b2 = b1 + bRow, b3 = b2 + bRow;
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c02 = f32x4.splat(0), c03 = f32x4.splat(0);
      let c10 = f32x4.splat(0), c11 = f32x4.splat(0), c12 = f32x4.splat(0), c13 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c22 = f32x4.splat(0), c23 = f32x4.splat(0);
      let c30 = f32x4.splat(0), c31 = f32x4.splat(0), c32 = f32x4.splat(0), c33 = f32x4.splat(0);
      let xk = x + t;
      for (let k: usize = 0; k < bRow; k += 4) {
        const x0 = v128.load(xk), x1 = v128.load(xk, 16), x2 = v128.load(xk, 32), x3 = v128.load(xk, 48);
        const e0 = f32x4.splat(load<f32>(b0 + k)), e1 = f32x4.splat(load<f32>(b1 + k));
        const e2 = f32x4.splat(load<f32>(b2 + k)), e3 = f32x4.splat(load<f32>(b3 + k));
        c00 = f32x4.add(c00, f32x4.mul(e0, x0)); c01 = f32x4.add(c01, f32x4.mul(e0, x1));
        c02 = f32x4.add(c02, f32x4.mul(e0, x2)); c03 = f32x4.add(c03, f32x4.mul(e0, x3));
        c10 = f32x4.add(c10, f32x4.mul(e1, x0)); c11 = f32x4.add(c11, f32x4.mul(e1, x1));
        c12 = f32x4.add(c12, f32x4.mul(e1, x2)); c13 = f32x4.add(c13, f32x4.mul(e1, x3));
        c20 = f32x4.add(c20, f32x4.mul(e2, x0)); c21 = f32x4.add(c21, f32x4.mul(e2, x1));
        c22 = f32x4.add(c22, f32x4.mul(e2, x2)); c23 = f32x4.add(c23, f32x4.mul(e2, x3));
        c30 = f32x4.add(c30, f32x4.mul(e3, x0)); c31 = f32x4.add(c31, f32x4.mul(e3, x1));
        c32 = f32x4.add(c32, f32x4.mul(e3, x2)); c33 = f32x4.add(c33, f32x4.mul(e3, x3));
        xk += rowBytes;
      }
      const xr0 = x + <usize>i * rowBytes + t, xr1 = xr0 + rowBytes, xr2 = xr1 + rowBytes, xr3 = xr2 + rowBytes;
      const o0 = out + <usize>i * rowBytes + t, o1 = o0 + rowBytes, o2 = o1 + rowBytes, o3 = o2 + rowBytes;
      v128.store(o0, f32x4.add(f32x4.mul(va, v128.load(xr0)), c00)); v128.store(o0, f32x4.add(f32x4.mul(va, v128.load(xr0, 16)), c01), 16);
      v128.store(o0, f32x4.add(f32x4.mul(va, v128.load(xr0, 32)), c02), 32); v128.store(o0, f32x4.add(f32x4.mul(va, v128.load(xr0, 48)), c03), 48);
      v128.store(o1, f32x4.add(f32x4.mul(va, v128.load(xr1)), c10)); v128.store(o1, f32x4.add(f32x4.mul(va, v128.load(xr1, 16)), c11), 16);
      v128.store(o1, f32x4.add(f32x4.mul(va, v128.load(xr1, 32)), c12), 32); v128.store(o1, f32x4.add(f32x4.mul(va, v128.load(xr1, 48)), c13), 48);
      v128.store(o2, f32x4.add(f32x4.mul(va, v128.load(xr2)), c20)); v128.store(o2, f32x4.add(f32x4.mul(va, v128.load(xr2, 16)), c21), 16);
      v128.store(o2, f32x4.add(f32x4.mul(va, v128.load(xr2, 32)), c22), 32); v128.store(o2, f32x4.add(f32x4.mul(va, v128.load(xr2, 48)), c23), 48);
      v128.store(o3, f32x4.add(f32x4.mul(va, v128.load(xr3)), c30)); v128.store(o3, f32x4.add(f32x4.mul(va, v128.load(xr3, 16)), c31), 16);
      v128.store(o3, f32x4.add(f32x4.mul(va, v128.load(xr3, 32)), c32), 32); v128.store(o3, f32x4.add(f32x4.mul(va, v128.load(xr3, 48)), c33), 48);
    }
  }
  for (let t: usize = wide; t < rowBytes; t += 16) {
    for (let i = 0; i < rows; i += 4) {
      const b0 = bm + <usize>i * bRow, b1 = b0 + bRow, b2 = b1 + bRow, b3 = b2 + bRow;
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      let xk = x + t;
      for (let k: usize = 0; k < bRow; k += 4) {
        const x0 = v128.load(xk);
        c0 = f32x4.add(c0, f32x4.mul(f32x4.splat(load<f32>(b0 + k)), x0));
        c1 = f32x4.add(c1, f32x4.mul(f32x4.splat(load<f32>(b1 + k)), x0));
        c2 = f32x4.add(c2, f32x4.mul(f32x4.splat(load<f32>(b2 + k)), x0));
        c3 = f32x4.add(c3, f32x4.mul(f32x4.splat(load<f32>(b3 + k)), x0));
        xk += rowBytes;
      }
      const xr0 = x + <usize>i * rowBytes + t, xr1 = xr0 + rowBytes, xr2 = xr1 + rowBytes, xr3 = xr2 + rowBytes;
      const o0 = out + <usize>i * rowBytes + t, o1 = o0 + rowBytes, o2 = o1 + rowBytes, o3 = o2 + rowBytes;
      v128.store(o0, f32x4.add(f32x4.mul(va, v128.load(xr0)), c0));
      v128.store(o1, f32x4.add(f32x4.mul(va, v128.load(xr1)), c1));
      v128.store(o2, f32x4.add(f32x4.mul(va, v128.load(xr2)), c2));
      v128.store(o3, f32x4.add(f32x4.mul(va, v128.load(xr3)), c3));
    }
  }
}

/**
 * Muon's Newton-Schulz iteration on x (rows x cols, rows <= cols, padded as above):
 * `steps` times A = x x^T, B = b A + c A A, x <- a x + B x, ping-ponging between x and t;
 * aa and bm are rows x rows scratch. Scalars: a, b, c. Returns the address holding the
 * result (x after an even number of steps, t after an odd one).
 */
export function newtonSchulz(x: usize, t: usize, aa: usize, bm: usize, rows: i32, cols: i32, steps: i32, s: usize): usize {
  let from = x, to = t;
  for (let k = 0; k < steps; k++) {
    gram(from, rows, cols, aa);
    gram(aa, rows, rows, bm);
    nsPoly(aa, bm, rows * rows, s);
    nsApply(bm, from, rows, cols, to, s);
    const swap = from;
    from = to;
    to = swap;
  }
  return from;
}


