// RAdam (src/rules/radam.ts).

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { gradient, gradient1, param, param1, probe, verdict } from '../skeleton';
import { RADAM_STEP, RADAM_BETA1, RADAM_BETA2, RADAM_EPS, RADAM_RECTIFIED, RADAM_SIGN, RADAM_WD, RADAM_SHRINK } from '../layout.generated';

/**
 * RAdam: m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2; rectified (rho_t > 5,
 * decided once per step): p += (step m) / (sqrt(v) + eps), else p += step m. step is
 * negative: -lr r sqrt(1 - beta2^t) / (1 - beta1^t), or -lr / (1 - beta1^t).
 */
export function radam(p: usize, g: usize, m: usize, v: usize, n: i32, s: usize): i32 {
  const step64 = load<f64>(s, RADAM_STEP);
  const beta164 = load<f64>(s, RADAM_BETA1);
  const beta264 = load<f64>(s, RADAM_BETA2);
  const eps64 = load<f64>(s, RADAM_EPS);
  const rectified = <i32>load<f64>(s, RADAM_RECTIFIED);
  const sign64 = load<f64>(s, RADAM_SIGN);
  const wd64 = load<f64>(s, RADAM_WD);
  const shrink64 = load<f64>(s, RADAM_SHRINK);
  const step = <f32>step64, beta1 = <f32>beta164, beta2 = <f32>beta264, omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264);
  const eps = <f32>eps64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vstep = f32x4.splat(step), vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2), vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2);
  const veps = f32x4.splat(eps), vwd = f32x4.splat(wd);
  const shrink = <f32>shrink64, decoupled = shrink64 != 1, vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return pairs();
}

@inline function radamVector(
  p: usize, g: usize, m: usize, v: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128,
  vstep: v128, vb1: v128, vb2: v128, vomb1: v128, vomb2: v128, veps: v128, rectified: i32,
): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  const mi = f32x4.add(f32x4.mul(v128.load(m), vb1), f32x4.mul(vomb1, gi));
  const vi = f32x4.add(f32x4.mul(v128.load(v), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
  v128.store(m, mi);
  v128.store(v, vi);
  const p0 = param(p, decoupled, vshrink);
  const pi = rectified
    ? f32x4.add(p0, f32x4.div(f32x4.mul(vstep, mi), f32x4.add(f32x4.sqrt(vi), veps)))
    : f32x4.add(p0, f32x4.mul(vstep, mi));
  v128.store(p, pi);
  return f32x4.add(f32x4.add(pi, mi), vi);
}

@inline function radamScalar(
  p: usize, g: usize, m: usize, v: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32,
  step: f32, beta1: f32, beta2: f32, omb1: f32, omb2: f32, eps: f32, rectified: i32,
): f32 {
  const gi = gradient1(g, p, sign, wd, decay);
  const mi = load<f32>(m) * beta1 + omb1 * gi;
  const vi = load<f32>(v) * beta2 + omb2 * gi * gi;
  store<f32>(m, mi);
  store<f32>(v, vi);
  const p0 = param1(p, decoupled, shrink);
  const pi = rectified ? p0 + (step * mi) / (sqrt<f32>(vi) + eps) : p0 + step * mi;
  store<f32>(p, pi);
  return pi + mi + vi;
}
