// AdaGrad (src/rules/adagrad.ts), both variants in one kernel.

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { gradient, gradient1, param, param1, probe, verdict } from '../skeleton';
import { ADAGRAD_NEGATIVE_STEP, ADAGRAD_EPS, ADAGRAD_SIGN, ADAGRAD_WD, ADAGRAD_SHRINK } from '../layout.generated';

/**
 * AdaGrad: h += g^2; 'pytorch': p += (negativeStep g) / (sqrt(h) + eps); 'book':
 * p -= (lr g) / (sqrt(h) + eps). 'book' passes -lr as negativeStep: p - (lr g) / d
 * equals p + (-lr g) / d exactly, so the kernel does not read its `book` flag.
 */
export function adagrad(p: usize, g: usize, h: usize, n: i32, s: usize): i32 {
  const negativeStep64 = load<f64>(s, ADAGRAD_NEGATIVE_STEP);
  const eps64 = load<f64>(s, ADAGRAD_EPS);
  const sign64 = load<f64>(s, ADAGRAD_SIGN);
  const wd64 = load<f64>(s, ADAGRAD_WD);
  const shrink64 = load<f64>(s, ADAGRAD_SHRINK);
  const step = <f32>negativeStep64, eps = <f32>eps64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vstep = f32x4.splat(step), veps = f32x4.splat(eps), vwd = f32x4.splat(wd);
  const shrink = <f32>shrink64, decoupled = shrink64 != 1, vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return pairs();
}

@inline function adagradVector(p: usize, g: usize, h: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128, vstep: v128, veps: v128): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  const s = f32x4.add(v128.load(h), f32x4.mul(gi, gi));
  v128.store(h, s);
  const pi = f32x4.add(param(p, decoupled, vshrink), f32x4.div(f32x4.mul(vstep, gi), f32x4.add(f32x4.sqrt(s), veps)));
  v128.store(p, pi);
  return f32x4.add(pi, s);
}

@inline function adagradScalar(p: usize, g: usize, h: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32, step: f32, eps: f32): f32 {
  const gi = gradient1(g, p, sign, wd, decay);
  const s = load<f32>(h) + gi * gi;
  store<f32>(h, s);
  const pi = param1(p, decoupled, shrink) + (step * gi) / (sqrt<f32>(s) + eps);
  store<f32>(p, pi);
  return pi + s;
}
