// Schedule-Free AdamW (src/rules/schedulefree-adamw.ts).

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { probe, verdict } from '../skeleton';
import {
  SCHEDULE_FREE_ADAMW_C, SCHEDULE_FREE_ADAMW_Y_STEP, SCHEDULE_FREE_ADAMW_Z_STEP, SCHEDULE_FREE_ADAMW_WD, SCHEDULE_FREE_ADAMW_SIGN,
  SCHEDULE_FREE_ADAMW_FIRST, SCHEDULE_FREE_ADAMW_BETA2, SCHEDULE_FREE_ADAMW_BC2, SCHEDULE_FREE_ADAMW_EPS,
} from '../layout.generated';

/**
 * Schedule-Free AdamW: v = beta2 v + (1 - beta2) g^2; gn = g / (sqrt(v / bc2) + eps)
 * (+ wd y); then Schedule-Free SGD's y and z with gn. bc2 is 1 - beta2^t.
 * gn is computed as Adam's kernel does, (bc2sqrt g) / (sqrt(v) + eps bc2sqrt): the same
 * quantity, float32 rounding within ulps, with one division and one square root per
 * element instead of two divisions and a root (the divider bounds this loop in cache).
 * It runs in quarters; the common cases (not the first step, no maximize; with or
 * without weight decay) run copies of the loop with their flags constant.
 */
export function scheduleFreeAdamw(p: usize, g: usize, z: usize, v: usize, n: i32, s: usize): i32 {
  const c = <f32>load<f64>(s, SCHEDULE_FREE_ADAMW_C), yStep = <f32>load<f64>(s, SCHEDULE_FREE_ADAMW_Y_STEP), zStep = <f32>load<f64>(s, SCHEDULE_FREE_ADAMW_Z_STEP);
  const wd = <f32>load<f64>(s, SCHEDULE_FREE_ADAMW_WD), sign64 = load<f64>(s, SCHEDULE_FREE_ADAMW_SIGN), first = load<f64>(s, SCHEDULE_FREE_ADAMW_FIRST) == 1;
  const beta264 = load<f64>(s, SCHEDULE_FREE_ADAMW_BETA2);
  const bc2sqrt64 = sqrt<f64>(load<f64>(s, SCHEDULE_FREE_ADAMW_BC2));
  const beta2 = <f32>beta264, omb2 = <f32>(1 - beta264), gscale = <f32>bc2sqrt64, eps = <f32>(load<f64>(s, SCHEDULE_FREE_ADAMW_EPS) * bc2sqrt64);
  const sign = <f32>sign64, decay = wd != 0, negate = sign64 < 0;
  const vc = f32x4.splat(c), vy = f32x4.splat(yStep), vz = f32x4.splat(zStep), vwd = f32x4.splat(wd);
  const vb2 = f32x4.splat(beta2), vomb2 = f32x4.splat(omb2), vgscale = f32x4.splat(gscale), veps = f32x4.splat(eps);
  return quarters([
    ['first || negate', {}],
    ['decay', { negate: false, decay: true, first: false }],
    [null, { negate: false, decay: false, first: false }],
  ]);
}

@inline function scheduleFreeAdamwVector(
  p: usize, g: usize, z: usize, v: usize, negate: bool, vwd: v128, decay: bool, first: bool, vc: v128, vy: v128, vz: v128,
  vb2: v128, vomb2: v128, vgscale: v128, veps: v128,
): v128 {
  const yi = v128.load(p);
  const zi = first ? yi : v128.load(z);
  let gi = v128.load(g);
  if (negate) gi = f32x4.neg(gi);
  const vi = f32x4.add(f32x4.mul(v128.load(v), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
  v128.store(v, vi);
  let gn = f32x4.div(f32x4.mul(vgscale, gi), f32x4.add(f32x4.sqrt(vi), veps));
  if (decay) gn = f32x4.add(gn, f32x4.mul(vwd, yi));
  const pi = f32x4.add(f32x4.add(yi, f32x4.mul(vc, f32x4.sub(zi, yi))), f32x4.mul(vy, gn));
  const zn = f32x4.add(zi, f32x4.mul(vz, gn));
  v128.store(p, pi);
  v128.store(z, zn);
  return f32x4.add(f32x4.add(pi, zn), vi);
}

@inline function scheduleFreeAdamwScalar(
  p: usize, g: usize, z: usize, v: usize, sign: f32, wd: f32, decay: bool, first: bool, c: f32, yStep: f32, zStep: f32,
  beta2: f32, omb2: f32, gscale: f32, eps: f32,
): f32 {
  const yi = load<f32>(p);
  const zi = first ? yi : load<f32>(z);
  const gi = sign * load<f32>(g);
  const vi = load<f32>(v) * beta2 + omb2 * gi * gi;
  store<f32>(v, vi);
  let gn = (gscale * gi) / (sqrt<f32>(vi) + eps);
  if (decay) gn += wd * yi;
  const pi = yi + c * (zi - yi) + yStep * gn;
  const zn = zi + zStep * gn;
  store<f32>(p, pi);
  store<f32>(z, zn);
  return pi + zn + vi;
}
