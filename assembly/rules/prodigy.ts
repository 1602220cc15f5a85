// Prodigy (src/rules/prodigy.ts): two elementwise kernels around the estimate of d,
// whose sums src/rules/prodigy.ts takes in JS between them (a sum does not split across
// threads bit-identically; these two do). Both read the same scalar block.

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { probe, verdict } from '../skeleton';
import {
  PRODIGY_MOMENTS_SIGN, PRODIGY_MOMENTS_D, PRODIGY_MOMENTS_BETA1, PRODIGY_MOMENTS_BETA2, PRODIGY_MOMENTS_BETA3, PRODIGY_MOMENTS_S_SCALE,
  PRODIGY_APPLY_DLR, PRODIGY_APPLY_WD, PRODIGY_APPLY_EPS_D,
} from '../layout.generated';

/** Pass 1: dg = d g; m = beta1 m + (1 - beta1) dg; v = beta2 v + (1 - beta2) dg^2; s = beta3 s + sScale dg (as s + (sScale dg - (1 - beta3) s)). */
export function prodigyMoments(g: usize, m: usize, v: usize, sum: usize, n: i32, s: usize): i32 {
  const sign64 = load<f64>(s, PRODIGY_MOMENTS_SIGN);
  const d64 = load<f64>(s, PRODIGY_MOMENTS_D);
  const beta164 = load<f64>(s, PRODIGY_MOMENTS_BETA1);
  const beta264 = load<f64>(s, PRODIGY_MOMENTS_BETA2);
  const beta364 = load<f64>(s, PRODIGY_MOMENTS_BETA3);
  const sScale64 = load<f64>(s, PRODIGY_MOMENTS_S_SCALE);
  const sign = <f32>sign64, d = <f32>d64, beta1 = <f32>beta164, beta2 = <f32>beta264, sScale = <f32>sScale64;
  // s is a sum over about 1 / (1 - beta3) steps with cancellations: it is updated as
  // s + (sScale dg - (1 - beta3) s), so that beta3's rounding to f32 (a relative 3e-8,
  // compounding once per step in beta3 s) stays out of it.
  const omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264), omb3 = <f32>(1 - beta364);
  const vd = f32x4.splat(d), vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2), vomb3 = f32x4.splat(omb3), vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2), vss = f32x4.splat(sScale);
  const negate = sign64 < 0;
  return pairs();
}

@inline function prodigyMomentsVector(g: usize, m: usize, v: usize, sum: usize, negate: bool, vd: v128, vb1: v128, vb2: v128, vomb3: v128, vomb1: v128, vomb2: v128, vss: v128): v128 {
  let gi = v128.load(g);
  if (negate) gi = f32x4.neg(gi);
  const dg = f32x4.mul(vd, gi);
  const mi = f32x4.add(f32x4.mul(vb1, v128.load(m)), f32x4.mul(vomb1, dg));
  const vi = f32x4.add(f32x4.mul(vb2, v128.load(v)), f32x4.mul(f32x4.mul(vomb2, dg), dg));
  const sOld = v128.load(sum);
  const si = f32x4.add(sOld, f32x4.sub(f32x4.mul(vss, dg), f32x4.mul(vomb3, sOld)));
  v128.store(m, mi);
  v128.store(v, vi);
  v128.store(sum, si);
  return f32x4.add(f32x4.add(mi, vi), si);
}

@inline function prodigyMomentsScalar(g: usize, m: usize, v: usize, sum: usize, sign: f32, d: f32, beta1: f32, beta2: f32, omb3: f32, omb1: f32, omb2: f32, sScale: f32): f32 {
  const dg = d * (load<f32>(g) * sign);
  const mi = beta1 * load<f32>(m) + omb1 * dg;
  const vi = beta2 * load<f32>(v) + omb2 * dg * dg;
  const sOld = load<f32>(sum);
  const si = sOld + (sScale * dg - omb3 * sOld);
  store<f32>(m, mi);
  store<f32>(v, vi);
  store<f32>(sum, si);
  return mi + vi + si;
}

/** Pass 2: p += -wd dlr p - dlr m / (sqrt(v) + d' eps). */
export function prodigyApply(p: usize, m: usize, v: usize, n: i32, s: usize): i32 {
  const dlr64 = load<f64>(s, PRODIGY_APPLY_DLR);
  const wd64 = load<f64>(s, PRODIGY_APPLY_WD);
  const epsD64 = load<f64>(s, PRODIGY_APPLY_EPS_D);
  const dlr = <f32>dlr64, negativeDecay = <f32>(-wd64 * dlr64), epsD = <f32>epsD64;
  const vdlr = f32x4.splat(dlr), vdecay = f32x4.splat(negativeDecay), veps = f32x4.splat(epsD);
  return pairs();
}

@inline function prodigyApplyVector(p: usize, m: usize, v: usize, vdlr: v128, vdecay: v128, veps: v128): v128 {
  const pi = v128.load(p);
  const step = f32x4.div(f32x4.mul(vdlr, v128.load(m)), f32x4.add(f32x4.sqrt(v128.load(v)), veps));
  const pn = f32x4.add(pi, f32x4.sub(f32x4.mul(vdecay, pi), step));
  v128.store(p, pn);
  return pn;
}

@inline function prodigyApplyScalar(p: usize, m: usize, v: usize, dlr: f32, negativeDecay: f32, epsD: f32): f32 {
  const pi = load<f32>(p);
  const pn = pi + (negativeDecay * pi - (dlr * load<f32>(m)) / (sqrt<f32>(load<f32>(v)) + epsD));
  store<f32>(p, pn);
  return pn;
}
