// Adamax (src/rules/adamax.ts).

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { gradient, gradient1, param, param1, probe, verdict } from '../skeleton';
import { ADAMAX_STEP, ADAMAX_BETA1, ADAMAX_BETA2, ADAMAX_EPS, ADAMAX_SIGN, ADAMAX_WD, ADAMAX_SHRINK } from '../layout.generated';

/**
 * Adamax: m = beta1 m + (1 - beta1) g; u = max(beta2 u, |g| + eps) (NaN-propagating, as
 * torch.amax); p += (step m) / u, step = -lr / (1 - beta1^t).
 */
export function adamax(p: usize, g: usize, m: usize, u: usize, n: i32, s: usize): i32 {
  const step64 = load<f64>(s, ADAMAX_STEP);
  const beta164 = load<f64>(s, ADAMAX_BETA1);
  const beta264 = load<f64>(s, ADAMAX_BETA2);
  const eps64 = load<f64>(s, ADAMAX_EPS);
  const sign64 = load<f64>(s, ADAMAX_SIGN);
  const wd64 = load<f64>(s, ADAMAX_WD);
  const shrink64 = load<f64>(s, ADAMAX_SHRINK);
  const step = <f32>step64, beta1 = <f32>beta164, beta2 = <f32>beta264, omb1 = <f32>(1 - beta164);
  const eps = <f32>eps64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vstep = f32x4.splat(step), vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2), vomb1 = f32x4.splat(omb1);
  const veps = f32x4.splat(eps), vwd = f32x4.splat(wd);
  const shrink = <f32>shrink64, decoupled = shrink64 != 1, vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return pairs();
}

@inline function adamaxVector(
  p: usize, g: usize, m: usize, u: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128,
  vstep: v128, vb1: v128, vb2: v128, vomb1: v128, veps: v128,
): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  const mi = f32x4.add(f32x4.mul(v128.load(m), vb1), f32x4.mul(vomb1, gi));
  const ui = f32x4.max(f32x4.mul(v128.load(u), vb2), f32x4.add(f32x4.abs(gi), veps));
  v128.store(m, mi);
  v128.store(u, ui);
  const pi = f32x4.add(param(p, decoupled, vshrink), f32x4.div(f32x4.mul(vstep, mi), ui));
  v128.store(p, pi);
  return f32x4.add(f32x4.add(pi, mi), ui);
}

@inline function adamaxScalar(
  p: usize, g: usize, m: usize, u: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32,
  step: f32, beta1: f32, beta2: f32, omb1: f32, eps: f32,
): f32 {
  const gi = gradient1(g, p, sign, wd, decay);
  const mi = load<f32>(m) * beta1 + omb1 * gi;
  const ui = max<f32>(load<f32>(u) * beta2, abs<f32>(gi) + eps);
  store<f32>(m, mi);
  store<f32>(u, ui);
  const pi = param1(p, decoupled, shrink) + (step * mi) / ui;
  store<f32>(p, pi);
  return pi + mi + ui;
}
