// Schedule-Free SGD (src/rules/schedulefree-sgd.ts), and the eval/train switch both
// Schedule-Free rules share.

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { gradient, gradient1, probe, verdict } from '../skeleton';
import {
  SCHEDULE_FREE_SGD_C, SCHEDULE_FREE_SGD_Y_STEP, SCHEDULE_FREE_SGD_Z_STEP, SCHEDULE_FREE_SGD_WD, SCHEDULE_FREE_SGD_SIGN,
  SCHEDULE_FREE_SGD_FIRST, SCHEDULE_FREE_LERP_W,
} from '../layout.generated';

/**
 * Schedule-Free SGD: g = sign g (+ wd y); z0 = first ? y : z; y = y + c (z0 - y) + yStep g;
 * z = z0 + zStep g. yStep is lr (beta (1 - c) - 1), zStep -lr.
 */
export function scheduleFreeSgd(p: usize, g: usize, z: usize, n: i32, s: usize): i32 {
  const c = <f32>load<f64>(s, SCHEDULE_FREE_SGD_C), yStep = <f32>load<f64>(s, SCHEDULE_FREE_SGD_Y_STEP), zStep = <f32>load<f64>(s, SCHEDULE_FREE_SGD_Z_STEP);
  const wd = <f32>load<f64>(s, SCHEDULE_FREE_SGD_WD), sign64 = load<f64>(s, SCHEDULE_FREE_SGD_SIGN), first = load<f64>(s, SCHEDULE_FREE_SGD_FIRST) == 1;
  const sign = <f32>sign64, decay = wd != 0, negate = sign64 < 0;
  const vc = f32x4.splat(c), vy = f32x4.splat(yStep), vz = f32x4.splat(zStep), vwd = f32x4.splat(wd);
  return pairs();
}

@inline function scheduleFreeSgdVector(
  p: usize, g: usize, z: usize, negate: bool, vwd: v128, decay: bool, first: bool, vc: v128, vy: v128, vz: v128,
): v128 {
  const yi = v128.load(p);
  const zi = first ? yi : v128.load(z);
  const gi = gradient(g, p, negate, vwd, decay);
  const pi = f32x4.add(f32x4.add(yi, f32x4.mul(vc, f32x4.sub(zi, yi))), f32x4.mul(vy, gi));
  const zn = f32x4.add(zi, f32x4.mul(vz, gi));
  v128.store(p, pi);
  v128.store(z, zn);
  return f32x4.add(pi, zn);
}

@inline function scheduleFreeSgdScalar(
  p: usize, g: usize, z: usize, sign: f32, wd: f32, decay: bool, first: bool, c: f32, yStep: f32, zStep: f32,
): f32 {
  const yi = load<f32>(p);
  const zi = first ? yi : load<f32>(z);
  const gi = gradient1(g, p, sign, wd, decay);
  const pi = yi + c * (zi - yi) + yStep * gi;
  const zn = zi + zStep * gi;
  store<f32>(p, pi);
  store<f32>(z, zn);
  return pi + zn;
}

/** Schedule-Free's eval/train switch: p = p + w (z - p). */
export function scheduleFreeLerp(p: usize, z: usize, n: i32, s: usize): i32 {
  const w = <f32>load<f64>(s, SCHEDULE_FREE_LERP_W);
  const vw = f32x4.splat(w);
  return pairs();
}

@inline function scheduleFreeLerpVector(p: usize, z: usize, vw: v128): v128 {
  const pi = v128.load(p);
  const pn = f32x4.add(pi, f32x4.mul(vw, f32x4.sub(v128.load(z), pi)));
  v128.store(p, pn);
  return pn;
}

@inline function scheduleFreeLerpScalar(p: usize, z: usize, w: f32): f32 {
  const pi = load<f32>(p);
  const pn = pi + w * (load<f32>(z) - pi);
  store<f32>(p, pn);
  return pn;
}
