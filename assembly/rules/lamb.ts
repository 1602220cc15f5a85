// LAMB (src/rules/lamb.ts): two elementwise kernels around the per-parameter norms,
// which src/rules/lamb.ts sums in JS between them (a sum does not split across threads
// bit-identically; these two do). Both read the same scalar block.

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { probe, verdict } from '../skeleton';
import {
  LAMB_MOMENTS_BETA1, LAMB_MOMENTS_BETA2, LAMB_MOMENTS_SIGN,
  LAMB_APPLY_BIAS1, LAMB_APPLY_BIAS2, LAMB_APPLY_EPS, LAMB_APPLY_WD, LAMB_APPLY_STEP,
} from '../layout.generated';

/** LAMB pass 1: m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2. */
export function lambMoments(g: usize, m: usize, v: usize, n: i32, s: usize): i32 {
  const beta164 = load<f64>(s, LAMB_MOMENTS_BETA1);
  const beta264 = load<f64>(s, LAMB_MOMENTS_BETA2);
  const sign64 = load<f64>(s, LAMB_MOMENTS_SIGN);
  const beta1 = <f32>beta164, beta2 = <f32>beta264, omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264), sign = <f32>sign64;
  const vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2), vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2);
  const negate = sign64 < 0;
  return pairs();
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

@inline function lambMomentsScalar(g: usize, m: usize, v: usize, sign: f32, beta1: f32, beta2: f32, omb1: f32, omb2: f32): f32 {
  const gi = load<f32>(g) * sign;
  const mi = load<f32>(m) * beta1 + omb1 * gi;
  const vi = load<f32>(v) * beta2 + omb2 * gi * gi;
  store<f32>(m, mi);
  store<f32>(v, vi);
  return mi + vi;
}

/** LAMB pass 2: u = (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps) + wd p; p += step u (step: -lr * trust ratio). */
export function lambApply(p: usize, m: usize, v: usize, n: i32, s: usize): i32 {
  const bias164 = load<f64>(s, LAMB_APPLY_BIAS1);
  const bias264 = load<f64>(s, LAMB_APPLY_BIAS2);
  const eps64 = load<f64>(s, LAMB_APPLY_EPS);
  const wd64 = load<f64>(s, LAMB_APPLY_WD);
  const step64 = load<f64>(s, LAMB_APPLY_STEP);
  const bias1 = <f32>bias164, bias2 = <f32>bias264, eps = <f32>eps64, wd = <f32>wd64, step = <f32>step64, decay = wd != 0;
  const vbias1 = f32x4.splat(bias1), vbias2 = f32x4.splat(bias2), veps = f32x4.splat(eps), vwd = f32x4.splat(wd), vstep = f32x4.splat(step);
  return pairs();
}

@inline function lambApplyVector(p: usize, m: usize, v: usize, vbias1: v128, vbias2: v128, veps: v128, vwd: v128, decay: bool, vstep: v128): v128 {
  const pi = v128.load(p);
  let u = f32x4.div(f32x4.div(v128.load(m), vbias1), f32x4.add(f32x4.sqrt(f32x4.div(v128.load(v), vbias2)), veps));
  if (decay) u = f32x4.add(u, f32x4.mul(vwd, pi));
  const pn = f32x4.add(pi, f32x4.mul(vstep, u));
  v128.store(p, pn);
  return pn;
}

@inline function lambApplyScalar(p: usize, m: usize, v: usize, bias1: f32, bias2: f32, eps: f32, wd: f32, decay: bool, step: f32): f32 {
  const pi = load<f32>(p);
  let u = load<f32>(m) / bias1 / (sqrt<f32>(load<f32>(v) / bias2) + eps);
  if (decay) u += wd * pi;
  const pn = pi + step * u;
  store<f32>(p, pn);
  return pn;
}
