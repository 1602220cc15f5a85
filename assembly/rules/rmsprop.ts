// RMSProp (src/rules/rmsprop.ts), every option in one kernel.

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { gradient, gradient1, param, param1, probe, verdict } from '../skeleton';
import {
  RMSPROP_LR, RMSPROP_ALPHA, RMSPROP_EPS, RMSPROP_MU, RMSPROP_CENTERED, RMSPROP_USE_MOMENTUM, RMSPROP_SIGN, RMSPROP_WD, RMSPROP_SHRINK,
} from '../layout.generated';

/**
 * RMSProp, every option; 'book' is centered = momentum = 0 with its own eps. Centered:
 * the variance s - c^2, >= 0 in exact arithmetic, is clamped at 0 (max, which keeps a
 * NaN): rounding makes it slightly negative under a steady gradient (a NaN in PyTorch).
 */
export function rmsprop(p: usize, g: usize, sq: usize, ga: usize, buf: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, RMSPROP_LR);
  const alpha64 = load<f64>(s, RMSPROP_ALPHA);
  const eps64 = load<f64>(s, RMSPROP_EPS);
  const mu64 = load<f64>(s, RMSPROP_MU);
  const centered = <i32>load<f64>(s, RMSPROP_CENTERED);
  const useMomentum = <i32>load<f64>(s, RMSPROP_USE_MOMENTUM);
  const sign64 = load<f64>(s, RMSPROP_SIGN);
  const wd64 = load<f64>(s, RMSPROP_WD);
  const shrink64 = load<f64>(s, RMSPROP_SHRINK);
  const lr = <f32>lr64, alpha = <f32>alpha64, oneMinusAlpha = <f32>(1 - alpha64), eps = <f32>eps64, mu = <f32>mu64;
  const sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vnlr = f32x4.splat(-lr), valpha = f32x4.splat(alpha), v1a = f32x4.splat(oneMinusAlpha), veps = f32x4.splat(eps), vmu = f32x4.splat(mu);
  const vwd = f32x4.splat(wd);
  const shrink = <f32>shrink64, decoupled = shrink64 != 1, vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return pairs();
}

/** One vector of `rmsprop`; returns the sum of the vectors it wrote (for the finiteness probe). */
@inline function rmspropVector(
  p: usize, g: usize, sq: usize, ga: usize, buf: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128,
  valpha: v128, v1a: v128, veps: v128, vmu: v128, vnlr: v128, centered: i32, useMomentum: i32,
): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  const s = f32x4.add(f32x4.mul(v128.load(sq), valpha), f32x4.mul(f32x4.mul(v1a, gi), gi));
  v128.store(sq, s);
  let written = s;
  let d: v128;
  if (centered) {
    const c = f32x4.add(f32x4.mul(v128.load(ga), valpha), f32x4.mul(v1a, gi));
    v128.store(ga, c);
    written = f32x4.add(written, c);
    d = f32x4.add(f32x4.sqrt(f32x4.max(f32x4.sub(s, f32x4.mul(c, c)), f32x4.splat(0))), veps);
  } else {
    d = f32x4.add(f32x4.sqrt(s), veps);
  }
  let pi: v128;
  if (useMomentum) {
    const b = f32x4.add(f32x4.mul(v128.load(buf), vmu), f32x4.div(gi, d));
    v128.store(buf, b);
    written = f32x4.add(written, b);
    pi = f32x4.add(param(p, decoupled, vshrink), f32x4.mul(vnlr, b));
  } else {
    pi = f32x4.add(param(p, decoupled, vshrink), f32x4.div(f32x4.mul(vnlr, gi), d));
  }
  v128.store(p, pi);
  return f32x4.add(written, pi);
}

@inline function rmspropScalar(
  p: usize, g: usize, sq: usize, ga: usize, buf: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32,
  alpha: f32, oneMinusAlpha: f32, eps: f32, mu: f32, lr: f32, centered: i32, useMomentum: i32,
): f32 {
  const gi = gradient1(g, p, sign, wd, decay);
  const s = load<f32>(sq) * alpha + oneMinusAlpha * gi * gi;
  store<f32>(sq, s);
  let written = s;
  let d: f32;
  if (centered) {
    const c = load<f32>(ga) * alpha + oneMinusAlpha * gi;
    store<f32>(ga, c);
    written += c;
    d = sqrt<f32>(max<f32>(s - c * c, 0)) + eps;
  } else {
    d = sqrt<f32>(s) + eps;
  }
  let pi: f32;
  if (useMomentum) {
    const b = load<f32>(buf) * mu + gi / d;
    store<f32>(buf, b);
    written += b;
    pi = param1(p, decoupled, shrink) + -lr * b;
  } else {
    pi = param1(p, decoupled, shrink) + (-lr * gi) / d;
  }
  store<f32>(p, pi);
  return written + pi;
}
