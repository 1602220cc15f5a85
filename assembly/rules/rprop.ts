// Rprop (src/rules/rprop.ts).

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { gradient, gradient1, param, param1, probe, verdict } from '../skeleton';
import { RPROP_ETA_MINUS, RPROP_ETA_PLUS, RPROP_STEP_SIZE_MIN, RPROP_STEP_SIZE_MAX, RPROP_SIGN, RPROP_WD, RPROP_SHRINK } from '../layout.generated';

/**
 * Rprop: with q = g * prev, each step size is multiplied by etaPlus (q > 0), etaMinus
 * (q < 0) or 1, then clamped to [stepSizeMin, stepSizeMax]; where q < 0, g counts as 0;
 * p -= sign(g) stepSize; prev = g. (The step sizes start at lr: src/rules/rprop.ts fills them
 * before the first step.)
 */
export function rprop(p: usize, g: usize, prev: usize, stepSize: usize, n: i32, s: usize): i32 {
  const etaMinus64 = load<f64>(s, RPROP_ETA_MINUS);
  const etaPlus64 = load<f64>(s, RPROP_ETA_PLUS);
  const min64 = load<f64>(s, RPROP_STEP_SIZE_MIN);
  const max64 = load<f64>(s, RPROP_STEP_SIZE_MAX);
  const sign64 = load<f64>(s, RPROP_SIGN);
  const wd64 = load<f64>(s, RPROP_WD);
  const shrink64 = load<f64>(s, RPROP_SHRINK);
  const etaMinus = <f32>etaMinus64, etaPlus = <f32>etaPlus64, lo = <f32>min64, hi = <f32>max64, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vminus = f32x4.splat(etaMinus), vplus = f32x4.splat(etaPlus), vlo = f32x4.splat(lo), vhi = f32x4.splat(hi), vwd = f32x4.splat(wd);
  const shrink = <f32>shrink64, decoupled = shrink64 != 1, vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return pairs();
}

@inline function rpropVector(
  p: usize, g: usize, prev: usize, stepSize: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128,
  vminus: v128, vplus: v128, vlo: v128, vhi: v128,
): v128 {
  const zero = f32x4.splat(0);
  const gi = gradient(g, p, negate, vwd, decay);
  const q = f32x4.mul(gi, v128.load(prev));
  const up = f32x4.gt(q, zero);
  const down = f32x4.lt(q, zero);
  const factor = v128.bitselect(vplus, v128.bitselect(vminus, f32x4.splat(1), down), up);
  const si = f32x4.min(f32x4.max(f32x4.mul(v128.load(stepSize), factor), vlo), vhi);
  v128.store(stepSize, si);
  const gz = v128.andnot(gi, down); // g where q >= 0, +0 where q < 0
  // sign(g) stepSize, exactly: stepSize where g > 0, -stepSize where g < 0, +0 elsewhere.
  const step = v128.or(v128.and(si, f32x4.gt(gz, zero)), v128.and(f32x4.neg(si), f32x4.lt(gz, zero)));
  const pi = f32x4.sub(param(p, decoupled, vshrink), step);
  v128.store(p, pi);
  v128.store(prev, gz);
  return f32x4.add(f32x4.add(pi, si), gz);
}

@inline function rpropScalar(
  p: usize, g: usize, prev: usize, stepSize: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32,
  etaMinus: f32, etaPlus: f32, lo: f32, hi: f32,
): f32 {
  let gi = gradient1(g, p, sign, wd, decay);
  const q = gi * load<f32>(prev);
  const factor: f32 = q > 0 ? etaPlus : q < 0 ? etaMinus : 1;
  const si = min<f32>(max<f32>(load<f32>(stepSize) * factor, lo), hi);
  store<f32>(stepSize, si);
  if (q < 0) gi = 0;
  const p0 = param1(p, decoupled, shrink);
  const pi = gi > 0 ? p0 - si : gi < 0 ? p0 + si : p0;
  store<f32>(p, pi);
  store<f32>(prev, gi);
  return pi + si + gi;
}
