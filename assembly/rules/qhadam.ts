// QHAdam (src/rules/qhadam.ts): m, v as Adam's; p += (gradStep d + avgStep m) / (sqrt(gradSq d^2 + avgSq v) + eps).

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { gradient, gradient1, param, param1, probe, verdict } from '../skeleton';
import {
  QHADAM_GRAD_STEP, QHADAM_AVG_STEP, QHADAM_GRAD_SQ, QHADAM_AVG_SQ, QHADAM_BETA1, QHADAM_BETA2, QHADAM_EPS, QHADAM_SIGN, QHADAM_WD, QHADAM_SHRINK,
} from '../layout.generated';

/**
 * The bias corrections arrive folded into avgStep and avgSq (see writeScalars). d^2 is
 * formed as (c d) d, c the factor in front of it, as Adam's v: with nu2 = 1 the
 * denominator's (1 - nu2) d^2 is then 0 d d = 0, not 0 * Infinity = NaN for a |d| past
 * 1.84e19 (where d d alone overflows float32).
 */
export function qhadam(p: usize, g: usize, m: usize, v: usize, n: i32, s: usize): i32 {
  const gradStep64 = load<f64>(s, QHADAM_GRAD_STEP);
  const avgStep64 = load<f64>(s, QHADAM_AVG_STEP);
  const gradSq64 = load<f64>(s, QHADAM_GRAD_SQ);
  const avgSq64 = load<f64>(s, QHADAM_AVG_SQ);
  const beta164 = load<f64>(s, QHADAM_BETA1);
  const beta264 = load<f64>(s, QHADAM_BETA2);
  const eps64 = load<f64>(s, QHADAM_EPS);
  const sign64 = load<f64>(s, QHADAM_SIGN);
  const wd64 = load<f64>(s, QHADAM_WD);
  const shrink64 = load<f64>(s, QHADAM_SHRINK);
  const gs = <f32>gradStep64, as = <f32>avgStep64, gq = <f32>gradSq64, aq = <f32>avgSq64;
  const beta1 = <f32>beta164, beta2 = <f32>beta264, omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264), eps = <f32>eps64;
  const sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vgs = f32x4.splat(gs), vas = f32x4.splat(as), vgq = f32x4.splat(gq), vaq = f32x4.splat(aq);
  const vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2), vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2), veps = f32x4.splat(eps);
  const vwd = f32x4.splat(wd);
  const shrink = <f32>shrink64, decoupled = shrink64 != 1, vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return pairs();
}

@inline function qhadamVector(
  p: usize, g: usize, m: usize, v: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128, vb1: v128, vomb1: v128, vb2: v128, vomb2: v128,
  vgs: v128, vas: v128, vgq: v128, vaq: v128, veps: v128,
): v128 {
  const pOld = param(p, decoupled, vshrink);
  const d = gradient(g, p, negate, vwd, decay);
  const mi = f32x4.add(f32x4.mul(vb1, v128.load(m)), f32x4.mul(vomb1, d));
  const vi = f32x4.add(f32x4.mul(vb2, v128.load(v)), f32x4.mul(f32x4.mul(vomb2, d), d));
  v128.store(m, mi);
  v128.store(v, vi);
  const den = f32x4.add(f32x4.sqrt(f32x4.add(f32x4.mul(f32x4.mul(vgq, d), d), f32x4.mul(vaq, vi))), veps);
  const pi = f32x4.add(pOld, f32x4.div(f32x4.add(f32x4.mul(vgs, d), f32x4.mul(vas, mi)), den));
  v128.store(p, pi);
  return f32x4.add(f32x4.add(pi, mi), vi);
}

@inline function qhadamScalar(
  p: usize, g: usize, m: usize, v: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32, beta1: f32, omb1: f32, beta2: f32, omb2: f32,
  gs: f32, as: f32, gq: f32, aq: f32, eps: f32,
): f32 {
  const d = gradient1(g, p, sign, wd, decay);
  const mi = beta1 * load<f32>(m) + omb1 * d;
  const vi = beta2 * load<f32>(v) + omb2 * d * d;
  store<f32>(m, mi);
  store<f32>(v, vi);
  const den = sqrt<f32>(gq * d * d + aq * vi) + eps;
  const pi = param1(p, decoupled, shrink) + (gs * d + as * mi) / den;
  store<f32>(p, pi);
  return pi + mi + vi;
}
