// Adan (src/rules/adan.ts), optax's form: delta = g - prev (0 on the first step);
// m, v, n their averages; p = p shrink + (mStep m + vStep v) / (sqrt(n + rootEps) + eps).

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { probe, verdict } from '../skeleton';
import {
  ADAN_M_STEP, ADAN_V_STEP, ADAN_ROOT_EPS, ADAN_EPS, ADAN_BETA1, ADAN_BETA2, ADAN_BETA3, ADAN_FIRST, ADAN_SHRINK, ADAN_SIGN,
} from '../layout.generated';

/**
 * The bias corrections arrive folded into mStep, vStep, rootEps and eps (see
 * writeScalars). The first step's difference is 0 by a mask (an AND with all-zero
 * bits), not by a multiply: as optax's where, a non-finite g leaves it 0. The squared
 * look-ahead is formed as ((1 - beta3) l) l, as Adam's v, so that it overflows where
 * the JS kernel's stored value does, not at l l.
 */
export function adan(p: usize, g: usize, m: usize, v: usize, sq: usize, prev: usize, n: i32, s: usize): i32 {
  const mStep64 = load<f64>(s, ADAN_M_STEP);
  const vStep64 = load<f64>(s, ADAN_V_STEP);
  const rootEps64 = load<f64>(s, ADAN_ROOT_EPS);
  const eps64 = load<f64>(s, ADAN_EPS);
  const beta164 = load<f64>(s, ADAN_BETA1);
  const beta264 = load<f64>(s, ADAN_BETA2);
  const beta364 = load<f64>(s, ADAN_BETA3);
  const first = load<f64>(s, ADAN_FIRST) == 1;
  const shrink64 = load<f64>(s, ADAN_SHRINK);
  const sign64 = load<f64>(s, ADAN_SIGN);
  const ms = <f32>mStep64, vs = <f32>vStep64, rootEps = <f32>rootEps64, eps = <f32>eps64;
  const beta1 = <f32>beta164, beta2 = <f32>beta264, beta3 = <f32>beta364;
  const omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264), omb3 = <f32>(1 - beta364);
  const shrink = <f32>shrink64, decoupled = shrink64 != 1, sign = <f32>sign64;
  const vms = f32x4.splat(ms), vvs = f32x4.splat(vs), vrootEps = f32x4.splat(rootEps), veps = f32x4.splat(eps);
  const vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2), vb3 = f32x4.splat(beta3);
  const vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2), vomb3 = f32x4.splat(omb3), vshrink = f32x4.splat(shrink);
  const vkeep = i32x4.splat(first ? 0 : -1);
  const negate = sign64 < 0;
  return pairs();
}

@inline function adanVector(
  p: usize, g: usize, m: usize, v: usize, sq: usize, prev: usize, negate: bool, vkeep: v128, decoupled: bool, vshrink: v128,
  vb1: v128, vomb1: v128, vb2: v128, vomb2: v128, vb3: v128, vomb3: v128, vms: v128, vvs: v128, vrootEps: v128, veps: v128,
): v128 {
  let gi = v128.load(g);
  if (negate) gi = f32x4.neg(gi);
  let pi = v128.load(p);
  if (decoupled) pi = f32x4.mul(pi, vshrink);
  const delta = v128.and(f32x4.sub(gi, v128.load(prev)), vkeep);
  const mi = f32x4.add(f32x4.mul(vb1, v128.load(m)), f32x4.mul(vomb1, gi));
  const vi = f32x4.add(f32x4.mul(vb2, v128.load(v)), f32x4.mul(vomb2, delta));
  const look = f32x4.add(gi, f32x4.mul(vomb2, delta));
  const ni = f32x4.add(f32x4.mul(vb3, v128.load(sq)), f32x4.mul(f32x4.mul(vomb3, look), look));
  v128.store(m, mi);
  v128.store(v, vi);
  v128.store(sq, ni);
  v128.store(prev, gi);
  const den = f32x4.add(f32x4.sqrt(f32x4.add(ni, vrootEps)), veps);
  pi = f32x4.add(pi, f32x4.div(f32x4.add(f32x4.mul(vms, mi), f32x4.mul(vvs, vi)), den));
  v128.store(p, pi);
  return f32x4.add(f32x4.add(f32x4.add(pi, mi), f32x4.add(vi, ni)), gi);
}

@inline function adanScalar(
  p: usize, g: usize, m: usize, v: usize, sq: usize, prev: usize, sign: f32, first: bool, decoupled: bool, shrink: f32,
  beta1: f32, omb1: f32, beta2: f32, omb2: f32, beta3: f32, omb3: f32, ms: f32, vs: f32, rootEps: f32, eps: f32,
): f32 {
  const gi = load<f32>(g) * sign;
  let pi = load<f32>(p);
  if (decoupled) pi *= shrink;
  const delta: f32 = first ? 0 : gi - load<f32>(prev);
  const mi = beta1 * load<f32>(m) + omb1 * gi;
  const vi = beta2 * load<f32>(v) + omb2 * delta;
  const look = gi + omb2 * delta;
  const ni = beta3 * load<f32>(sq) + omb3 * look * look;
  store<f32>(m, mi);
  store<f32>(v, vi);
  store<f32>(sq, ni);
  store<f32>(prev, gi);
  pi = pi + (ms * mi + vs * vi) / (sqrt<f32>(ni + rootEps) + eps);
  store<f32>(p, pi);
  return pi + mi + vi + ni + gi;
}
