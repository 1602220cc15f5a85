// Momentum (src/rules/momentum.ts), both variants.

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { gradient, gradient1, param, param1, probe, verdict } from '../skeleton';
import {
  MOMENTUM_CLASSIC_LR, MOMENTUM_CLASSIC_MU, MOMENTUM_CLASSIC_SIGN, MOMENTUM_CLASSIC_WD, MOMENTUM_CLASSIC_SHRINK,
  MOMENTUM_PYTORCH_LR, MOMENTUM_PYTORCH_KEEP, MOMENTUM_PYTORCH_TAKE, MOMENTUM_PYTORCH_SIGN, MOMENTUM_PYTORCH_WD, MOMENTUM_PYTORCH_SHRINK,
} from '../layout.generated';

/** Momentum 'classic': v = mu v - lr g; p += v. */
export function momentumClassic(p: usize, g: usize, v: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, MOMENTUM_CLASSIC_LR);
  const mu64 = load<f64>(s, MOMENTUM_CLASSIC_MU);
  const sign64 = load<f64>(s, MOMENTUM_CLASSIC_SIGN);
  const wd64 = load<f64>(s, MOMENTUM_CLASSIC_WD);
  const shrink64 = load<f64>(s, MOMENTUM_CLASSIC_SHRINK);
  const lr = <f32>lr64, mu = <f32>mu64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0, shrink = <f32>shrink64, decoupled = shrink64 != 1;
  const vlr = f32x4.splat(lr), vmu = f32x4.splat(mu), vwd = f32x4.splat(wd), vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return pairs();
}

@inline function momentumClassicVector(
  p: usize, g: usize, v: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128, vlr: v128, vmu: v128,
): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  const vi = f32x4.sub(f32x4.mul(vmu, v128.load(v)), f32x4.mul(vlr, gi));
  v128.store(v, vi);
  const pi = f32x4.add(param(p, decoupled, vshrink), vi);
  v128.store(p, pi);
  return f32x4.add(pi, vi);
}

@inline function momentumClassicScalar(
  p: usize, g: usize, v: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32, lr: f32, mu: f32,
): f32 {
  const gi = gradient1(g, p, sign, wd, decay);
  const vi = mu * load<f32>(v) - lr * gi;
  store<f32>(v, vi);
  const pi = param1(p, decoupled, shrink) + vi;
  store<f32>(p, pi);
  return pi + vi;
}

/** Momentum 'pytorch': b = keep b + take g; p -= lr b. */
export function momentumPytorch(p: usize, g: usize, b: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, MOMENTUM_PYTORCH_LR);
  const keep64 = load<f64>(s, MOMENTUM_PYTORCH_KEEP);
  const take64 = load<f64>(s, MOMENTUM_PYTORCH_TAKE);
  const sign64 = load<f64>(s, MOMENTUM_PYTORCH_SIGN);
  const wd64 = load<f64>(s, MOMENTUM_PYTORCH_WD);
  const shrink64 = load<f64>(s, MOMENTUM_PYTORCH_SHRINK);
  const lr = <f32>lr64, keep = <f32>keep64, take = <f32>take64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const shrink = <f32>shrink64, decoupled = shrink64 != 1;
  const vlr = f32x4.splat(lr), vkeep = f32x4.splat(keep), vtake = f32x4.splat(take), vwd = f32x4.splat(wd), vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return pairs();
}

@inline function momentumPytorchVector(
  p: usize, g: usize, b: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128, vlr: v128, vkeep: v128, vtake: v128,
): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  const bi = f32x4.add(f32x4.mul(vkeep, v128.load(b)), f32x4.mul(vtake, gi));
  v128.store(b, bi);
  const pi = f32x4.sub(param(p, decoupled, vshrink), f32x4.mul(vlr, bi));
  v128.store(p, pi);
  return f32x4.add(pi, bi);
}

@inline function momentumPytorchScalar(
  p: usize, g: usize, b: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32, lr: f32, keep: f32, take: f32,
): f32 {
  const gi = gradient1(g, p, sign, wd, decay);
  const bi = keep * load<f32>(b) + take * gi;
  store<f32>(b, bi);
  const pi = param1(p, decoupled, shrink) - lr * bi;
  store<f32>(p, pi);
  return pi + bi;
}
