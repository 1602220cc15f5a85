// SGD (src/rules/sgd.ts): p -= lr g.

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { gradient, gradient1, param, param1, probe, verdict } from '../skeleton';
import { SGD_LR, SGD_SIGN, SGD_WD, SGD_SHRINK } from '../layout.generated';

export function sgd(p: usize, g: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, SGD_LR);
  const sign64 = load<f64>(s, SGD_SIGN);
  const wd64 = load<f64>(s, SGD_WD);
  const shrink64 = load<f64>(s, SGD_SHRINK);
  const lr = <f32>lr64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0, shrink = <f32>shrink64, decoupled = shrink64 != 1;
  const vlr = f32x4.splat(lr), vwd = f32x4.splat(wd), vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return pairs();
}

@inline function sgdVector(p: usize, g: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128, vlr: v128): v128 {
  // p before the gradient: loaded after it, the two loads of p merge and the weight
  // decay's branch becomes a select that computes wd p on every vector.
  const pOld = param(p, decoupled, vshrink);
  const gi = gradient(g, p, negate, vwd, decay);
  const pi = f32x4.sub(pOld, f32x4.mul(vlr, gi));
  v128.store(p, pi);
  return pi;
}

@inline function sgdScalar(p: usize, g: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32, lr: f32): f32 {
  const gi = gradient1(g, p, sign, wd, decay);
  const pi = param1(p, decoupled, shrink) - lr * gi;
  store<f32>(p, pi);
  return pi;
}
