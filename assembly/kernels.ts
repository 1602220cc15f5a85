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
// The main loops are `do { } while`, not `for`: V8 (11.3, Node 20) keeps a kernel's
// splatted scalars in registers across a loop whose body runs unconditionally, but
// rebuilds them in every iteration of a `for` loop, whose body sits under a branch
// (measured: Adam's loop without its sqrt and division, 0.49 -> 0.30 ns/element).

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).

@inline function gradient(g: usize, p: usize, sign: v128, wd: v128, decay: bool): v128 {
  let gi = f32x4.mul(v128.load(g), sign);
  if (decay) gi = f32x4.add(gi, f32x4.mul(wd, v128.load(p)));
  return gi;
}

@inline function gradient1(g: usize, p: usize, sign: f32, wd: f32, decay: bool): f32 {
  let gi = load<f32>(g) * sign;
  if (decay) gi += wd * load<f32>(p);
  return gi;
}

export function sgd(p: usize, g: usize, n: i32, s: usize): void {
  const lr64 = load<f64>(s, 0);
  const sign64 = load<f64>(s, 8);
  const wd64 = load<f64>(s, 16);
  const lr = <f32>lr64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vlr = f32x4.splat(lr), vsign = f32x4.splat(sign), vwd = f32x4.splat(wd);
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, vsign, vwd, decay);
      v128.store(p + o, f32x4.sub(v128.load(p + o), f32x4.mul(vlr, gi)));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, vsign, vwd, decay);
        v128.store(p + q, f32x4.sub(v128.load(p + q), f32x4.mul(vlr, gi)));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, vsign, vwd, decay);
    v128.store(p + o, f32x4.sub(v128.load(p + o), f32x4.mul(vlr, gi)));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    store<f32>(p + o, load<f32>(p + o) - lr * gi);
  }
}

/** Momentum 'classic': v = mu v - lr g; p += v. */
export function momentumClassic(p: usize, g: usize, v: usize, n: i32, s: usize): void {
  const lr64 = load<f64>(s, 0);
  const mu64 = load<f64>(s, 8);
  const sign64 = load<f64>(s, 16);
  const wd64 = load<f64>(s, 24);
  const lr = <f32>lr64, mu = <f32>mu64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vlr = f32x4.splat(lr), vmu = f32x4.splat(mu), vsign = f32x4.splat(sign), vwd = f32x4.splat(wd);
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, vsign, vwd, decay);
      const vi = f32x4.sub(f32x4.mul(vmu, v128.load(v + o)), f32x4.mul(vlr, gi));
      v128.store(v + o, vi);
      v128.store(p + o, f32x4.add(v128.load(p + o), vi));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, vsign, vwd, decay);
        const vi = f32x4.sub(f32x4.mul(vmu, v128.load(v + q)), f32x4.mul(vlr, gi));
        v128.store(v + q, vi);
        v128.store(p + q, f32x4.add(v128.load(p + q), vi));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, vsign, vwd, decay);
    const vi = f32x4.sub(f32x4.mul(vmu, v128.load(v + o)), f32x4.mul(vlr, gi));
    v128.store(v + o, vi);
    v128.store(p + o, f32x4.add(v128.load(p + o), vi));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const vi = mu * load<f32>(v + o) - lr * gi;
    store<f32>(v + o, vi);
    store<f32>(p + o, load<f32>(p + o) + vi);
  }
}

/** Momentum 'pytorch': b = keep b + take g; p -= lr b. */
export function momentumPytorch(p: usize, g: usize, b: usize, n: i32, s: usize): void {
  const lr64 = load<f64>(s, 0);
  const keep64 = load<f64>(s, 8);
  const take64 = load<f64>(s, 16);
  const sign64 = load<f64>(s, 24);
  const wd64 = load<f64>(s, 32);
  const lr = <f32>lr64, keep = <f32>keep64, take = <f32>take64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vlr = f32x4.splat(lr), vkeep = f32x4.splat(keep), vtake = f32x4.splat(take), vsign = f32x4.splat(sign), vwd = f32x4.splat(wd);
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, vsign, vwd, decay);
      const bi = f32x4.add(f32x4.mul(vkeep, v128.load(b + o)), f32x4.mul(vtake, gi));
      v128.store(b + o, bi);
      v128.store(p + o, f32x4.sub(v128.load(p + o), f32x4.mul(vlr, bi)));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, vsign, vwd, decay);
        const bi = f32x4.add(f32x4.mul(vkeep, v128.load(b + q)), f32x4.mul(vtake, gi));
        v128.store(b + q, bi);
        v128.store(p + q, f32x4.sub(v128.load(p + q), f32x4.mul(vlr, bi)));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, vsign, vwd, decay);
    const bi = f32x4.add(f32x4.mul(vkeep, v128.load(b + o)), f32x4.mul(vtake, gi));
    v128.store(b + o, bi);
    v128.store(p + o, f32x4.sub(v128.load(p + o), f32x4.mul(vlr, bi)));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const bi = keep * load<f32>(b + o) + take * gi;
    store<f32>(b + o, bi);
    store<f32>(p + o, load<f32>(p + o) - lr * bi);
  }
}

/** Nesterov 'nag': p += mu^2 v_old - (1 + mu) lr g; v = mu v_old - lr g. */
export function nesterovNag(p: usize, g: usize, v: usize, n: i32, s: usize): void {
  const lr64 = load<f64>(s, 0);
  const mu64 = load<f64>(s, 8);
  const sign64 = load<f64>(s, 16);
  const wd64 = load<f64>(s, 24);
  const lr = <f32>lr64, mu = <f32>mu64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const muSquared = <f32>(mu64 * mu64), gradScale = <f32>((1 + mu64) * lr64);
  const vlr = f32x4.splat(lr), vmu = f32x4.splat(mu), vmm = f32x4.splat(muSquared), vscale = f32x4.splat(gradScale);
  const vsign = f32x4.splat(sign), vwd = f32x4.splat(wd);
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, vsign, vwd, decay);
      const vOld = v128.load(v + o);
      v128.store(v + o, f32x4.sub(f32x4.mul(vmu, vOld), f32x4.mul(vlr, gi)));
      v128.store(p + o, f32x4.add(v128.load(p + o), f32x4.sub(f32x4.mul(vmm, vOld), f32x4.mul(vscale, gi))));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, vsign, vwd, decay);
        const vOld = v128.load(v + q);
        v128.store(v + q, f32x4.sub(f32x4.mul(vmu, vOld), f32x4.mul(vlr, gi)));
        v128.store(p + q, f32x4.add(v128.load(p + q), f32x4.sub(f32x4.mul(vmm, vOld), f32x4.mul(vscale, gi))));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, vsign, vwd, decay);
    const vOld = v128.load(v + o);
    v128.store(v + o, f32x4.sub(f32x4.mul(vmu, vOld), f32x4.mul(vlr, gi)));
    v128.store(p + o, f32x4.add(v128.load(p + o), f32x4.sub(f32x4.mul(vmm, vOld), f32x4.mul(vscale, gi))));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const vOld = load<f32>(v + o);
    store<f32>(v + o, mu * vOld - lr * gi);
    store<f32>(p + o, load<f32>(p + o) + (muSquared * vOld - gradScale * gi));
  }
}

/** Nesterov 'book': v = mu v - lr g; p += mu^2 v; p -= (1 + mu) lr g. */
export function nesterovBook(p: usize, g: usize, v: usize, n: i32, s: usize): void {
  const lr64 = load<f64>(s, 0);
  const mu64 = load<f64>(s, 8);
  const sign64 = load<f64>(s, 16);
  const wd64 = load<f64>(s, 24);
  const lr = <f32>lr64, mu = <f32>mu64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const muSquared = <f32>(mu64 * mu64), gradScale = <f32>((1 + mu64) * lr64);
  const vlr = f32x4.splat(lr), vmu = f32x4.splat(mu), vmm = f32x4.splat(muSquared), vscale = f32x4.splat(gradScale);
  const vsign = f32x4.splat(sign), vwd = f32x4.splat(wd);
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, vsign, vwd, decay);
      const vNew = f32x4.sub(f32x4.mul(vmu, v128.load(v + o)), f32x4.mul(vlr, gi));
      v128.store(v + o, vNew);
      const halfway = f32x4.add(v128.load(p + o), f32x4.mul(vmm, vNew));
      v128.store(p + o, f32x4.sub(halfway, f32x4.mul(vscale, gi)));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, vsign, vwd, decay);
        const vNew = f32x4.sub(f32x4.mul(vmu, v128.load(v + q)), f32x4.mul(vlr, gi));
        v128.store(v + q, vNew);
        const halfway = f32x4.add(v128.load(p + q), f32x4.mul(vmm, vNew));
        v128.store(p + q, f32x4.sub(halfway, f32x4.mul(vscale, gi)));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, vsign, vwd, decay);
    const vNew = f32x4.sub(f32x4.mul(vmu, v128.load(v + o)), f32x4.mul(vlr, gi));
    v128.store(v + o, vNew);
    const halfway = f32x4.add(v128.load(p + o), f32x4.mul(vmm, vNew));
    v128.store(p + o, f32x4.sub(halfway, f32x4.mul(vscale, gi)));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const vNew = mu * load<f32>(v + o) - lr * gi;
    store<f32>(v + o, vNew);
    const halfway = load<f32>(p + o) + muSquared * vNew;
    store<f32>(p + o, halfway - gradScale * gi);
  }
}

/** Nesterov 'pytorch': b = keep b + take g; p -= lr (g + mu b). */
export function nesterovPytorch(p: usize, g: usize, b: usize, n: i32, s: usize): void {
  const lr64 = load<f64>(s, 0);
  const mu64 = load<f64>(s, 8);
  const keep64 = load<f64>(s, 16);
  const take64 = load<f64>(s, 24);
  const sign64 = load<f64>(s, 32);
  const wd64 = load<f64>(s, 40);
  const lr = <f32>lr64, mu = <f32>mu64, keep = <f32>keep64, take = <f32>take64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vlr = f32x4.splat(lr), vmu = f32x4.splat(mu), vkeep = f32x4.splat(keep), vtake = f32x4.splat(take);
  const vsign = f32x4.splat(sign), vwd = f32x4.splat(wd);
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, vsign, vwd, decay);
      const bi = f32x4.add(f32x4.mul(vkeep, v128.load(b + o)), f32x4.mul(vtake, gi));
      v128.store(b + o, bi);
      v128.store(p + o, f32x4.sub(v128.load(p + o), f32x4.mul(vlr, f32x4.add(gi, f32x4.mul(vmu, bi)))));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, vsign, vwd, decay);
        const bi = f32x4.add(f32x4.mul(vkeep, v128.load(b + q)), f32x4.mul(vtake, gi));
        v128.store(b + q, bi);
        v128.store(p + q, f32x4.sub(v128.load(p + q), f32x4.mul(vlr, f32x4.add(gi, f32x4.mul(vmu, bi)))));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, vsign, vwd, decay);
    const bi = f32x4.add(f32x4.mul(vkeep, v128.load(b + o)), f32x4.mul(vtake, gi));
    v128.store(b + o, bi);
    v128.store(p + o, f32x4.sub(v128.load(p + o), f32x4.mul(vlr, f32x4.add(gi, f32x4.mul(vmu, bi)))));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const bi = keep * load<f32>(b + o) + take * gi;
    store<f32>(b + o, bi);
    store<f32>(p + o, load<f32>(p + o) - lr * (gi + mu * bi));
  }
}

/** AdaGrad: h += g^2; 'pytorch': p += (negativeStep g) / (sqrt(h) + eps); 'book': p -= (lr g) / (sqrt(h) + eps). */
export function adagrad(p: usize, g: usize, h: usize, n: i32, s: usize): void {
  const negativeStep64 = load<f64>(s, 0);
  const eps64 = load<f64>(s, 8);
  const book = <i32>load<f64>(s, 16);
  const sign64 = load<f64>(s, 24);
  const wd64 = load<f64>(s, 32);
  // 'book' passes lr as negativeStep's magnitude: p - (lr g) / d equals p + (-lr g) / d exactly.
  const step = <f32>negativeStep64, eps = <f32>eps64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vstep = f32x4.splat(step), veps = f32x4.splat(eps), vsign = f32x4.splat(sign), vwd = f32x4.splat(wd);
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, vsign, vwd, decay);
      const s = f32x4.add(v128.load(h + o), f32x4.mul(gi, gi));
      v128.store(h + o, s);
      v128.store(p + o, f32x4.add(v128.load(p + o), f32x4.div(f32x4.mul(vstep, gi), f32x4.add(f32x4.sqrt(s), veps))));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, vsign, vwd, decay);
        const s = f32x4.add(v128.load(h + q), f32x4.mul(gi, gi));
        v128.store(h + q, s);
        v128.store(p + q, f32x4.add(v128.load(p + q), f32x4.div(f32x4.mul(vstep, gi), f32x4.add(f32x4.sqrt(s), veps))));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, vsign, vwd, decay);
    const s = f32x4.add(v128.load(h + o), f32x4.mul(gi, gi));
    v128.store(h + o, s);
    v128.store(p + o, f32x4.add(v128.load(p + o), f32x4.div(f32x4.mul(vstep, gi), f32x4.add(f32x4.sqrt(s), veps))));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const s = load<f32>(h + o) + gi * gi;
    store<f32>(h + o, s);
    store<f32>(p + o, load<f32>(p + o) + (step * gi) / (sqrt<f32>(s) + eps));
  }
}

/** RMSProp, every option; 'book' is centered = momentum = 0 with its own eps. */
export function rmsprop(p: usize, g: usize, sq: usize, ga: usize, buf: usize, n: i32, s: usize): void {
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
  const vsign = f32x4.splat(sign), vwd = f32x4.splat(wd);
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, vsign, vwd, decay);
      const s = f32x4.add(f32x4.mul(v128.load(sq + o), valpha), f32x4.mul(f32x4.mul(v1a, gi), gi));
      v128.store(sq + o, s);
      let d: v128;
      if (centered) {
        const c = f32x4.add(f32x4.mul(v128.load(ga + o), valpha), f32x4.mul(v1a, gi));
        v128.store(ga + o, c);
        d = f32x4.add(f32x4.sqrt(f32x4.sub(s, f32x4.mul(c, c))), veps);
      } else {
        d = f32x4.add(f32x4.sqrt(s), veps);
      }
      if (useMomentum) {
        const b = f32x4.add(f32x4.mul(v128.load(buf + o), vmu), f32x4.div(gi, d));
        v128.store(buf + o, b);
        v128.store(p + o, f32x4.add(v128.load(p + o), f32x4.mul(vnlr, b)));
      } else {
        v128.store(p + o, f32x4.add(v128.load(p + o), f32x4.div(f32x4.mul(vnlr, gi), d)));
      }
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, vsign, vwd, decay);
        const s = f32x4.add(f32x4.mul(v128.load(sq + q), valpha), f32x4.mul(f32x4.mul(v1a, gi), gi));
        v128.store(sq + q, s);
        let d: v128;
        if (centered) {
          const c = f32x4.add(f32x4.mul(v128.load(ga + q), valpha), f32x4.mul(v1a, gi));
          v128.store(ga + q, c);
          d = f32x4.add(f32x4.sqrt(f32x4.sub(s, f32x4.mul(c, c))), veps);
        } else {
          d = f32x4.add(f32x4.sqrt(s), veps);
        }
        if (useMomentum) {
          const b = f32x4.add(f32x4.mul(v128.load(buf + q), vmu), f32x4.div(gi, d));
          v128.store(buf + q, b);
          v128.store(p + q, f32x4.add(v128.load(p + q), f32x4.mul(vnlr, b)));
        } else {
          v128.store(p + q, f32x4.add(v128.load(p + q), f32x4.div(f32x4.mul(vnlr, gi), d)));
        }
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, vsign, vwd, decay);
    const s = f32x4.add(f32x4.mul(v128.load(sq + o), valpha), f32x4.mul(f32x4.mul(v1a, gi), gi));
    v128.store(sq + o, s);
    let d: v128;
    if (centered) {
      const c = f32x4.add(f32x4.mul(v128.load(ga + o), valpha), f32x4.mul(v1a, gi));
      v128.store(ga + o, c);
      d = f32x4.add(f32x4.sqrt(f32x4.sub(s, f32x4.mul(c, c))), veps);
    } else {
      d = f32x4.add(f32x4.sqrt(s), veps);
    }
    if (useMomentum) {
      const b = f32x4.add(f32x4.mul(v128.load(buf + o), vmu), f32x4.div(gi, d));
      v128.store(buf + o, b);
      v128.store(p + o, f32x4.add(v128.load(p + o), f32x4.mul(vnlr, b)));
    } else {
      v128.store(p + o, f32x4.add(v128.load(p + o), f32x4.div(f32x4.mul(vnlr, gi), d)));
    }
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const s = load<f32>(sq + o) * alpha + oneMinusAlpha * gi * gi;
    store<f32>(sq + o, s);
    let d: f32;
    if (centered) {
      const c = load<f32>(ga + o) * alpha + oneMinusAlpha * gi;
      store<f32>(ga + o, c);
      d = sqrt<f32>(s - c * c) + eps;
    } else {
      d = sqrt<f32>(s) + eps;
    }
    if (useMomentum) {
      const b = load<f32>(buf + o) * mu + gi / d;
      store<f32>(buf + o, b);
      store<f32>(p + o, load<f32>(p + o) + -lr * b);
    } else {
      store<f32>(p + o, load<f32>(p + o) + (-lr * gi) / d);
    }
  }
}

/**
 * Adam / AdamW 'pytorch': m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
 * (amsgrad: v = max(vmax, v)); p = p * shrink + (negativeStepSize m) / (sqrt(v) / bc2sqrt + eps).
 * Computed as (negativeStepSize bc2sqrt m) / (sqrt(v) + eps bc2sqrt): the same quantity
 * with one division per element instead of two (a division costs as much as the whole
 * rest of the loop); float32 rounding differs by an ulp or so.
 */
export function adam(p: usize, g: usize, m: usize, v: usize, vmax: usize, n: i32, s: usize): void {
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
  const vsign = f32x4.splat(sign), vwd = f32x4.splat(wd);
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, vsign, vwd, decay);
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
      v128.store(p + o, f32x4.add(pi, f32x4.div(f32x4.mul(vnss, mi), d)));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, vsign, vwd, decay);
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
        v128.store(p + q, f32x4.add(pi, f32x4.div(f32x4.mul(vnss, mi), d)));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, vsign, vwd, decay);
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
    v128.store(p + o, f32x4.add(pi, f32x4.div(f32x4.mul(vnss, mi), d)));
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
    store<f32>(p + o, pi + (nss * mi) / (sqrt<f32>(vi) + eps));
  }
}

/** Adam / AdamW 'book': m += (1 - beta1)(g - m); v += (1 - beta2)(g^2 - v); p = p * shrink - (lrT m) / (sqrt(v) + eps). */
export function adamBook(p: usize, g: usize, m: usize, v: usize, n: i32, s: usize): void {
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
  const vsign = f32x4.splat(sign), vwd = f32x4.splat(wd);
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, vsign, vwd, decay);
      let pi = v128.load(p + o);
      if (decoupled) pi = f32x4.mul(pi, vshrink);
      const mOld = v128.load(m + o);
      const vOld = v128.load(v + o);
      const mi = f32x4.add(mOld, f32x4.mul(vomb1, f32x4.sub(gi, mOld)));
      const vi = f32x4.add(vOld, f32x4.mul(vomb2, f32x4.sub(f32x4.mul(gi, gi), vOld)));
      v128.store(m + o, mi);
      v128.store(v + o, vi);
      v128.store(p + o, f32x4.sub(pi, f32x4.div(f32x4.mul(vlrT, mi), f32x4.add(f32x4.sqrt(vi), veps))));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, vsign, vwd, decay);
        let pi = v128.load(p + q);
        if (decoupled) pi = f32x4.mul(pi, vshrink);
        const mOld = v128.load(m + q);
        const vOld = v128.load(v + q);
        const mi = f32x4.add(mOld, f32x4.mul(vomb1, f32x4.sub(gi, mOld)));
        const vi = f32x4.add(vOld, f32x4.mul(vomb2, f32x4.sub(f32x4.mul(gi, gi), vOld)));
        v128.store(m + q, mi);
        v128.store(v + q, vi);
        v128.store(p + q, f32x4.sub(pi, f32x4.div(f32x4.mul(vlrT, mi), f32x4.add(f32x4.sqrt(vi), veps))));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, vsign, vwd, decay);
    let pi = v128.load(p + o);
    if (decoupled) pi = f32x4.mul(pi, vshrink);
    const mOld = v128.load(m + o);
    const vOld = v128.load(v + o);
    const mi = f32x4.add(mOld, f32x4.mul(vomb1, f32x4.sub(gi, mOld)));
    const vi = f32x4.add(vOld, f32x4.mul(vomb2, f32x4.sub(f32x4.mul(gi, gi), vOld)));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    v128.store(p + o, f32x4.sub(pi, f32x4.div(f32x4.mul(vlrT, mi), f32x4.add(f32x4.sqrt(vi), veps))));
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
    store<f32>(p + o, pi - (lrT * mi) / (sqrt<f32>(vi) + eps));
  }
}

/**
 * NAdam: m, v as Adam; p += (gradStep g) / d; p += (avgStep m) / d, d = sqrt(v) / bc2sqrt + eps.
 * Computed as p += (gradStep' g + avgStep' m) / (sqrt(v) + eps bc2sqrt) with both steps
 * multiplied by bc2sqrt: one division instead of three, float32 rounding within ulps.
 */
export function nadam(p: usize, g: usize, m: usize, v: usize, n: i32, s: usize): void {
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
  const vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2), veps = f32x4.splat(eps), vsign = f32x4.splat(sign), vwd = f32x4.splat(wd);
  const end = <usize>(n & ~3) << 2;
  // Two vectors per iteration (half the loop overhead), then one, then scalars.
  const end2 = end & ~(<usize>31);
  if (end2 != 0) {
    let o: usize = 0;
    do {
      const gi = gradient(g + o, p + o, vsign, vwd, decay);
      const mi = f32x4.add(f32x4.mul(v128.load(m + o), vb1), f32x4.mul(vomb1, gi));
      const vi = f32x4.add(f32x4.mul(v128.load(v + o), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
      v128.store(m + o, mi);
      v128.store(v + o, vi);
      const d = f32x4.add(f32x4.sqrt(vi), veps);
      const step = f32x4.add(f32x4.mul(vgs, gi), f32x4.mul(vas, mi));
      v128.store(p + o, f32x4.add(v128.load(p + o), f32x4.div(step, d)));
      {
        const q = o + 16;
        const gi = gradient(g + q, p + q, vsign, vwd, decay);
        const mi = f32x4.add(f32x4.mul(v128.load(m + q), vb1), f32x4.mul(vomb1, gi));
        const vi = f32x4.add(f32x4.mul(v128.load(v + q), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
        v128.store(m + q, mi);
        v128.store(v + q, vi);
        const d = f32x4.add(f32x4.sqrt(vi), veps);
        const step = f32x4.add(f32x4.mul(vgs, gi), f32x4.mul(vas, mi));
        v128.store(p + q, f32x4.add(v128.load(p + q), f32x4.div(step, d)));
      }
      o += 32;
    } while (o < end2);
  }
  for (let o = end2; o < end; o += 16) {
    const gi = gradient(g + o, p + o, vsign, vwd, decay);
    const mi = f32x4.add(f32x4.mul(v128.load(m + o), vb1), f32x4.mul(vomb1, gi));
    const vi = f32x4.add(f32x4.mul(v128.load(v + o), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    const d = f32x4.add(f32x4.sqrt(vi), veps);
    const step = f32x4.add(f32x4.mul(vgs, gi), f32x4.mul(vas, mi));
    v128.store(p + o, f32x4.add(v128.load(p + o), f32x4.div(step, d)));
  }
  for (let o = end; o < (<usize>n << 2); o += 4) {
    const gi = gradient1(g + o, p + o, sign, wd, decay);
    const mi = load<f32>(m + o) * beta1 + omb1 * gi;
    const vi = load<f32>(v + o) * beta2 + omb2 * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    const d = sqrt<f32>(vi) + eps;
    store<f32>(p + o, load<f32>(p + o) + (gs * gi + as * mi) / d);
  }
}

/** Index of the first NaN or +-Infinity in n floats at x, or -1. */
export function firstNonFinite(x: usize, n: i32): i32 {
  const BLOCK: i32 = 1024;
  for (let start: i32 = 0; start < n; start += BLOCK) {
    const stop = min<i32>(start + BLOCK, n);
    let acc = f32x4.splat(0);
    const end = <usize>(start + ((stop - start) & ~3)) << 2;
    for (let o = <usize>start << 2; o < end; o += 16) {
      const xi = v128.load(x + o);
      acc = f32x4.add(acc, f32x4.sub(xi, xi)); // x - x: 0 if finite, NaN if not
    }
    let bad = v128.any_true(f32x4.ne(acc, acc));
    for (let o = end; o < (<usize>stop << 2); o += 4) {
      const xi = load<f32>(x + o);
      if (xi - xi != 0) bad = true;
    }
    if (bad) {
      for (let i = start; i < stop; i++) {
        const xi = load<f32>(x + (<usize>i << 2));
        if (xi - xi != 0) return i;
      }
    }
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
