// Nesterov (src/rules/nesterov.ts), its three variants.

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { gradient, gradient1, param, param1, probe, verdict } from '../skeleton';
import {
  NESTEROV_NAG_LR, NESTEROV_NAG_MU, NESTEROV_NAG_SIGN, NESTEROV_NAG_WD, NESTEROV_NAG_SHRINK,
  NESTEROV_BOOK_LR, NESTEROV_BOOK_MU, NESTEROV_BOOK_SIGN, NESTEROV_BOOK_WD, NESTEROV_BOOK_SHRINK,
  NESTEROV_PYTORCH_LR, NESTEROV_PYTORCH_MU, NESTEROV_PYTORCH_KEEP, NESTEROV_PYTORCH_TAKE, NESTEROV_PYTORCH_SIGN, NESTEROV_PYTORCH_WD, NESTEROV_PYTORCH_SHRINK,
} from '../layout.generated';

/**
 * Nesterov 'nag': v = mu v_old - lr g; p += mu^2 v_old - (1 + mu) lr g, computed as
 * p += mu v - lr g (see nesterovNagVector). The kernel the benchmark holds to the
 * streaming bound: it runs in quarters, and the common case (no maximize, no weight
 * decay of either kind) runs a copy of the loop without their per-vector branches.
 */
export function nesterovNag(p: usize, g: usize, v: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, NESTEROV_NAG_LR);
  const mu64 = load<f64>(s, NESTEROV_NAG_MU);
  const sign64 = load<f64>(s, NESTEROV_NAG_SIGN);
  const wd64 = load<f64>(s, NESTEROV_NAG_WD);
  const shrink64 = load<f64>(s, NESTEROV_NAG_SHRINK);
  const lr = <f32>lr64, mu = <f32>mu64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0, shrink = <f32>shrink64, decoupled = shrink64 != 1;
  const vlr = f32x4.splat(lr), vmu = f32x4.splat(mu), vwd = f32x4.splat(wd), vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return quarters([['!negate && !decay && !decoupled', { negate: false, decay: false, decoupled: false }], [null, {}]]);
}

/**
 * One vector of Nesterov 'nag': every load before the first store. The regions of a
 * ParamStore can lie a multiple of 4096 bytes apart, and on Intel cores a load whose
 * address matches a pending store's in its low 12 bits waits for that store ("4K
 * aliasing"): loading p after storing v did exactly that. V8 does not move wasm loads
 * across stores, so the source order is the machine order.
 *
 * p += mu^2 v_old - (1 + mu) lr g is computed as p += mu v_new - lr g, the same quantity
 * (mu v_new - lr g = mu^2 v_old - mu lr g - lr g) with lr g computed once: six operations
 * instead of seven, which matters in cache, where the loop is bound by its arithmetic;
 * float32 results move by a few ulps. Returns p as written, for the probe: whenever v_new
 * is NaN or +-Infinity, so is p (mu v_new is, and a sum with a non-finite term is).
 */
@inline function nesterovNagVector(
  p: usize, g: usize, v: usize, vlr: v128, vmu: v128, vwd: v128, negate: bool, decay: bool, decoupled: bool, vshrink: v128,
): v128 {
  let gi = v128.load(g);
  const vOld = v128.load(v);
  let pOld = v128.load(p);
  if (negate) gi = f32x4.neg(gi);
  if (decay) gi = f32x4.add(gi, f32x4.mul(vwd, pOld));
  if (decoupled) pOld = f32x4.mul(pOld, vshrink); // as skeleton's param(), on the p already loaded
  const lrg = f32x4.mul(vlr, gi);
  const vi = f32x4.sub(f32x4.mul(vmu, vOld), lrg);
  const pi = f32x4.add(pOld, f32x4.sub(f32x4.mul(vmu, vi), lrg));
  v128.store(v, vi);
  v128.store(p, pi);
  return pi;
}

@inline function nesterovNagScalar(
  p: usize, g: usize, v: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32, lr: f32, mu: f32,
): f32 {
  const gi = gradient1(g, p, sign, wd, decay);
  const lrg = lr * gi;
  const vi = mu * load<f32>(v) - lrg;
  store<f32>(v, vi);
  const pi = param1(p, decoupled, shrink) + (mu * vi - lrg);
  store<f32>(p, pi);
  return pi;
}

/** Nesterov 'book': v = mu v - lr g; p += mu^2 v; p -= (1 + mu) lr g. */
export function nesterovBook(p: usize, g: usize, v: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, NESTEROV_BOOK_LR);
  const mu64 = load<f64>(s, NESTEROV_BOOK_MU);
  const sign64 = load<f64>(s, NESTEROV_BOOK_SIGN);
  const wd64 = load<f64>(s, NESTEROV_BOOK_WD);
  const shrink64 = load<f64>(s, NESTEROV_BOOK_SHRINK);
  const lr = <f32>lr64, mu = <f32>mu64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0, shrink = <f32>shrink64, decoupled = shrink64 != 1;
  const muSquared = <f32>(mu64 * mu64), gradScale = <f32>((1 + mu64) * lr64);
  const vlr = f32x4.splat(lr), vmu = f32x4.splat(mu), vmm = f32x4.splat(muSquared), vscale = f32x4.splat(gradScale);
  const vwd = f32x4.splat(wd), vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return pairs();
}

@inline function nesterovBookVector(
  p: usize, g: usize, v: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128, vlr: v128, vmu: v128, vmm: v128, vscale: v128,
): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  const vNew = f32x4.sub(f32x4.mul(vmu, v128.load(v)), f32x4.mul(vlr, gi));
  v128.store(v, vNew);
  const halfway = f32x4.add(param(p, decoupled, vshrink), f32x4.mul(vmm, vNew));
  const pi = f32x4.sub(halfway, f32x4.mul(vscale, gi));
  v128.store(p, pi);
  return f32x4.add(pi, vNew);
}

@inline function nesterovBookScalar(
  p: usize, g: usize, v: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32, lr: f32, mu: f32, muSquared: f32, gradScale: f32,
): f32 {
  const gi = gradient1(g, p, sign, wd, decay);
  const vNew = mu * load<f32>(v) - lr * gi;
  store<f32>(v, vNew);
  const halfway = param1(p, decoupled, shrink) + muSquared * vNew;
  const pi = halfway - gradScale * gi;
  store<f32>(p, pi);
  return pi + vNew;
}

/** Nesterov 'pytorch': b = keep b + take g; p -= lr (g + mu b). */
export function nesterovPytorch(p: usize, g: usize, b: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, NESTEROV_PYTORCH_LR);
  const mu64 = load<f64>(s, NESTEROV_PYTORCH_MU);
  const keep64 = load<f64>(s, NESTEROV_PYTORCH_KEEP);
  const take64 = load<f64>(s, NESTEROV_PYTORCH_TAKE);
  const sign64 = load<f64>(s, NESTEROV_PYTORCH_SIGN);
  const wd64 = load<f64>(s, NESTEROV_PYTORCH_WD);
  const shrink64 = load<f64>(s, NESTEROV_PYTORCH_SHRINK);
  const lr = <f32>lr64, mu = <f32>mu64, keep = <f32>keep64, take = <f32>take64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const shrink = <f32>shrink64, decoupled = shrink64 != 1;
  const vlr = f32x4.splat(lr), vmu = f32x4.splat(mu), vkeep = f32x4.splat(keep), vtake = f32x4.splat(take);
  const vwd = f32x4.splat(wd), vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return pairs();
}

@inline function nesterovPytorchVector(
  p: usize, g: usize, b: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128, vlr: v128, vmu: v128, vkeep: v128, vtake: v128,
): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  const bi = f32x4.add(f32x4.mul(vkeep, v128.load(b)), f32x4.mul(vtake, gi));
  v128.store(b, bi);
  const pi = f32x4.sub(param(p, decoupled, vshrink), f32x4.mul(vlr, f32x4.add(gi, f32x4.mul(vmu, bi))));
  v128.store(p, pi);
  return f32x4.add(pi, bi);
}

@inline function nesterovPytorchScalar(
  p: usize, g: usize, b: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32, lr: f32, mu: f32, keep: f32, take: f32,
): f32 {
  const gi = gradient1(g, p, sign, wd, decay);
  const bi = keep * load<f32>(b) + take * gi;
  store<f32>(b, bi);
  const pi = param1(p, decoupled, shrink) - lr * (gi + mu * bi);
  store<f32>(p, pi);
  return pi + bi;
}
