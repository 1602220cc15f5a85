// QHM (src/rules/qhm.ts): b = beta b + (1 - beta) d; p -= lr nu b + lr (1 - nu) d, d = g (+ wd p).

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { gradient, gradient1, param, param1, probe, verdict } from '../skeleton';
import { QHM_LR, QHM_BETA, QHM_NU, QHM_SIGN, QHM_WD, QHM_SHRINK } from '../layout.generated';

export function qhm(p: usize, g: usize, b: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, QHM_LR);
  const beta64 = load<f64>(s, QHM_BETA);
  const nu64 = load<f64>(s, QHM_NU);
  const sign64 = load<f64>(s, QHM_SIGN);
  const wd64 = load<f64>(s, QHM_WD);
  const shrink64 = load<f64>(s, QHM_SHRINK);
  // The factors in double, rounded once: lr nu and lr (1 - nu) as the JS kernel forms them.
  const beta = <f32>beta64, omb = <f32>(1 - beta64), onB = <f32>(lr64 * nu64), onD = <f32>(lr64 * (1 - nu64));
  const sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vbeta = f32x4.splat(beta), vomb = f32x4.splat(omb), vonB = f32x4.splat(onB), vonD = f32x4.splat(onD), vwd = f32x4.splat(wd);
  const shrink = <f32>shrink64, decoupled = shrink64 != 1, vshrink = f32x4.splat(shrink);
  const negate = sign64 < 0;
  return pairs();
}

@inline function qhmVector(p: usize, g: usize, b: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128, vbeta: v128, vomb: v128, vonB: v128, vonD: v128): v128 {
  const pOld = param(p, decoupled, vshrink);
  const d = gradient(g, p, negate, vwd, decay);
  const bi = f32x4.add(f32x4.mul(vbeta, v128.load(b)), f32x4.mul(vomb, d));
  v128.store(b, bi);
  const pi = f32x4.sub(f32x4.sub(pOld, f32x4.mul(vonB, bi)), f32x4.mul(vonD, d));
  v128.store(p, pi);
  return f32x4.add(pi, bi);
}

@inline function qhmScalar(p: usize, g: usize, b: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32, beta: f32, omb: f32, onB: f32, onD: f32): f32 {
  const d = gradient1(g, p, sign, wd, decay);
  const bi = beta * load<f32>(b) + omb * d;
  store<f32>(b, bi);
  const pi = param1(p, decoupled, shrink) - onB * bi - onD * d;
  store<f32>(p, pi);
  return pi + bi;
}
