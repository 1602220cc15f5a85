// D-Adaptation AdamW (src/rules/dadapt-adamw.ts): two elementwise kernels around the
// estimate of d, whose sums src/rules/dadapt-adamw.ts takes in JS around them (a sum does
// not split across threads bit-identically; these two do). Both read the same scalar block.

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { probe, verdict } from '../skeleton';
import {
  DADAPT_MOMENTS_SIGN, DADAPT_MOMENTS_BETA1, DADAPT_MOMENTS_BETA2, DADAPT_MOMENTS_SQRT_BETA2, DADAPT_MOMENTS_DLR,
  DADAPT_APPLY_DLR, DADAPT_APPLY_EPS, DADAPT_APPLY_WD,
} from '../layout.generated';

/** Pass 1: m = beta1 m + (1 - beta1) dlr g; v = beta2 v + (1 - beta2) g^2; s = b s + (1 - b) dlr g (b = sqrt(beta2)). */
export function dadaptMoments(g: usize, m: usize, v: usize, sum: usize, n: i32, s: usize): i32 {
  const sign64 = load<f64>(s, DADAPT_MOMENTS_SIGN);
  const beta164 = load<f64>(s, DADAPT_MOMENTS_BETA1);
  const beta264 = load<f64>(s, DADAPT_MOMENTS_BETA2);
  const b64 = load<f64>(s, DADAPT_MOMENTS_SQRT_BETA2);
  const dlr64 = load<f64>(s, DADAPT_MOMENTS_DLR);
  // The factors in double, rounded once, as the JS kernel forms them.
  // s is a sum over about 1 / (1 - b) steps with cancellations: it is updated as
  // s + ((1 - b) dlr g - (1 - b) s), so that b's rounding to f32 (a relative 2e-8,
  // compounding once per step in b s) stays out of it.
  const sign = <f32>sign64, beta1 = <f32>beta164, beta2 = <f32>beta264, omb = <f32>(1 - b64);
  const momentScale = <f32>((1 - beta164) * dlr64), omb2 = <f32>(1 - beta264), sumScale = <f32>((1 - b64) * dlr64);
  const vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2), vomb = f32x4.splat(omb), vms = f32x4.splat(momentScale), vomb2 = f32x4.splat(omb2), vss = f32x4.splat(sumScale);
  const negate = sign64 < 0;
  return pairs();
}

@inline function dadaptMomentsVector(g: usize, m: usize, v: usize, sum: usize, negate: bool, vb1: v128, vb2: v128, vomb: v128, vms: v128, vomb2: v128, vss: v128): v128 {
  let gi = v128.load(g);
  if (negate) gi = f32x4.neg(gi);
  const mi = f32x4.add(f32x4.mul(vb1, v128.load(m)), f32x4.mul(vms, gi));
  const vi = f32x4.add(f32x4.mul(vb2, v128.load(v)), f32x4.mul(f32x4.mul(vomb2, gi), gi));
  const sOld = v128.load(sum);
  const si = f32x4.add(sOld, f32x4.sub(f32x4.mul(vss, gi), f32x4.mul(vomb, sOld)));
  v128.store(m, mi);
  v128.store(v, vi);
  v128.store(sum, si);
  return f32x4.add(f32x4.add(mi, vi), si);
}

@inline function dadaptMomentsScalar(g: usize, m: usize, v: usize, sum: usize, sign: f32, beta1: f32, beta2: f32, omb: f32, momentScale: f32, omb2: f32, sumScale: f32): f32 {
  const gi = load<f32>(g) * sign;
  const mi = beta1 * load<f32>(m) + momentScale * gi;
  const vi = beta2 * load<f32>(v) + omb2 * gi * gi;
  const sOld = load<f32>(sum);
  const si = sOld + (sumScale * gi - omb * sOld);
  store<f32>(m, mi);
  store<f32>(v, vi);
  store<f32>(sum, si);
  return mi + vi + si;
}

/** Pass 2: p += -wd dlr p - m / (sqrt(v) + eps). */
export function dadaptApply(p: usize, m: usize, v: usize, n: i32, s: usize): i32 {
  const dlr64 = load<f64>(s, DADAPT_APPLY_DLR);
  const eps64 = load<f64>(s, DADAPT_APPLY_EPS);
  const wd64 = load<f64>(s, DADAPT_APPLY_WD);
  const negativeDecay = <f32>(-wd64 * dlr64), eps = <f32>eps64;
  const vdecay = f32x4.splat(negativeDecay), veps = f32x4.splat(eps);
  return pairs();
}

@inline function dadaptApplyVector(p: usize, m: usize, v: usize, vdecay: v128, veps: v128): v128 {
  const pi = v128.load(p);
  const step = f32x4.div(v128.load(m), f32x4.add(f32x4.sqrt(v128.load(v)), veps));
  const pn = f32x4.add(pi, f32x4.sub(f32x4.mul(vdecay, pi), step));
  v128.store(p, pn);
  return pn;
}

@inline function dadaptApplyScalar(p: usize, m: usize, v: usize, negativeDecay: f32, eps: f32): f32 {
  const pi = load<f32>(p);
  const pn = pi + (negativeDecay * pi - load<f32>(m) / (sqrt<f32>(load<f32>(v)) + eps));
  store<f32>(p, pn);
  return pn;
}
