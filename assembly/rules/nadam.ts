// NAdam (src/rules/nadam.ts).

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { gradient, gradient1, param, param1, probe, verdict } from '../skeleton';
import { NADAM_GRAD_STEP, NADAM_AVG_STEP, NADAM_BC2SQRT, NADAM_BETA1, NADAM_BETA2, NADAM_EPS, NADAM_SIGN, NADAM_WD, NADAM_SHRINK } from '../layout.generated';

/**
 * NAdam: m, v as Adam; p += (gradStep g) / d; p += (avgStep m) / d, d = sqrt(v) / bc2sqrt + eps.
 * Computed as p += (gradStep' g + avgStep' m) / (sqrt(v) + eps bc2sqrt) with both steps
 * multiplied by bc2sqrt: one division instead of three, float32 rounding within ulps.
 */
export function nadam(p: usize, g: usize, m: usize, v: usize, n: i32, s: usize): i32 {
  const gradStep64 = load<f64>(s, NADAM_GRAD_STEP);
  const avgStep64 = load<f64>(s, NADAM_AVG_STEP);
  const bc2sqrt64 = load<f64>(s, NADAM_BC2SQRT);
  const beta164 = load<f64>(s, NADAM_BETA1);
  const beta264 = load<f64>(s, NADAM_BETA2);
  const eps64 = load<f64>(s, NADAM_EPS);
  const sign64 = load<f64>(s, NADAM_SIGN);
  const wd64 = load<f64>(s, NADAM_WD);
  const shrink64 = load<f64>(s, NADAM_SHRINK);
  const gs = <f32>(gradStep64 * bc2sqrt64), as = <f32>(avgStep64 * bc2sqrt64), beta1 = <f32>beta164, beta2 = <f32>beta264;
  const omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264), eps = <f32>(eps64 * bc2sqrt64), sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vgs = f32x4.splat(gs), vas = f32x4.splat(as), vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2);
  const vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2), veps = f32x4.splat(eps), vwd = f32x4.splat(wd);
  const shrink = <f32>shrink64, decoupled = shrink64 != 1, vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return pairs();
}

@inline function nadamVector(
  p: usize, g: usize, m: usize, v: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128, vb1: v128, vomb1: v128, vb2: v128, vomb2: v128,
  veps: v128, vgs: v128, vas: v128,
): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  const mi = f32x4.add(f32x4.mul(v128.load(m), vb1), f32x4.mul(vomb1, gi));
  const vi = f32x4.add(f32x4.mul(v128.load(v), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
  v128.store(m, mi);
  v128.store(v, vi);
  const d = f32x4.add(f32x4.sqrt(vi), veps);
  const step = f32x4.add(f32x4.mul(vgs, gi), f32x4.mul(vas, mi));
  const pi = f32x4.add(param(p, decoupled, vshrink), f32x4.div(step, d));
  v128.store(p, pi);
  return f32x4.add(f32x4.add(pi, mi), vi);
}

@inline function nadamScalar(
  p: usize, g: usize, m: usize, v: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32, beta1: f32, omb1: f32, beta2: f32, omb2: f32,
  eps: f32, gs: f32, as: f32,
): f32 {
  const gi = gradient1(g, p, sign, wd, decay);
  const mi = load<f32>(m) * beta1 + omb1 * gi;
  const vi = load<f32>(v) * beta2 + omb2 * gi * gi;
  store<f32>(m, mi);
  store<f32>(v, vi);
  const d = sqrt<f32>(vi) + eps;
  const pi = param1(p, decoupled, shrink) + (gs * gi + as * mi) / d;
  store<f32>(p, pi);
  return pi + mi + vi;
}
