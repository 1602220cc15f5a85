// Adadelta (src/rules/adadelta.ts).

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { gradient, gradient1, param, param1, probe, verdict } from '../skeleton';
import { ADADELTA_STEP, ADADELTA_RHO, ADADELTA_EPS, ADADELTA_SIGN, ADADELTA_WD, ADADELTA_SHRINK } from '../layout.generated';

/**
 * Adadelta: s = rho s + (1 - rho) g^2; d = sqrt(a + eps) / sqrt(s + eps) * g;
 * a = rho a + (1 - rho) d^2; p += step d, step = -lr.
 */
export function adadelta(p: usize, g: usize, sq: usize, acc: usize, n: i32, s: usize): i32 {
  const step64 = load<f64>(s, ADADELTA_STEP);
  const rho64 = load<f64>(s, ADADELTA_RHO);
  const eps64 = load<f64>(s, ADADELTA_EPS);
  const sign64 = load<f64>(s, ADADELTA_SIGN);
  const wd64 = load<f64>(s, ADADELTA_WD);
  const shrink64 = load<f64>(s, ADADELTA_SHRINK);
  const step = <f32>step64, rho = <f32>rho64, omr = <f32>(1 - rho64), eps = <f32>eps64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vstep = f32x4.splat(step), vrho = f32x4.splat(rho), vomr = f32x4.splat(omr), veps = f32x4.splat(eps), vwd = f32x4.splat(wd);
  const shrink = <f32>shrink64, decoupled = shrink64 != 1, vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return pairs();
}

@inline function adadeltaVector(
  p: usize, g: usize, sq: usize, acc: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128,
  vstep: v128, vrho: v128, vomr: v128, veps: v128,
): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  const si = f32x4.add(f32x4.mul(v128.load(sq), vrho), f32x4.mul(f32x4.mul(vomr, gi), gi));
  v128.store(sq, si);
  const aOld = v128.load(acc);
  const d = f32x4.mul(f32x4.div(f32x4.sqrt(f32x4.add(aOld, veps)), f32x4.sqrt(f32x4.add(si, veps))), gi);
  const ai = f32x4.add(f32x4.mul(aOld, vrho), f32x4.mul(f32x4.mul(vomr, d), d));
  v128.store(acc, ai);
  const pi = f32x4.add(param(p, decoupled, vshrink), f32x4.mul(vstep, d));
  v128.store(p, pi);
  return f32x4.add(f32x4.add(pi, si), ai);
}

@inline function adadeltaScalar(
  p: usize, g: usize, sq: usize, acc: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32,
  step: f32, rho: f32, omr: f32, eps: f32,
): f32 {
  const gi = gradient1(g, p, sign, wd, decay);
  const si = load<f32>(sq) * rho + omr * gi * gi;
  store<f32>(sq, si);
  const d = (sqrt<f32>(load<f32>(acc) + eps) / sqrt<f32>(si + eps)) * gi;
  const ai = load<f32>(acc) * rho + omr * d * d;
  store<f32>(acc, ai);
  const pi = param1(p, decoupled, shrink) + step * d;
  store<f32>(p, pi);
  return pi + si + ai;
}
