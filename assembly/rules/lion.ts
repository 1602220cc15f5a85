// Lion (src/rules/lion.ts).

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { probe, verdict } from '../skeleton';
import { LION_LR, LION_BETA1, LION_BETA2, LION_SIGN, LION_DECAY } from '../layout.generated';

/**
 * Lion: c = beta1 m + (1 - beta1) g; p = p decay - lr sign(c) (sign(0) = 0, sign(NaN) =
 * NaN); m = beta2 m + (1 - beta2) g. decay is 1 - lr wd, the decoupled weight decay (1:
 * off). It runs in quarters (more streams in flight: the kernel then keeps up with the
 * streaming bound at 1.6e7 elements, where two adjacent vectors per iteration did not);
 * the common cases (no maximize; with or without weight decay) run copies of the loop
 * with their flags constant.
 */
export function lion(p: usize, g: usize, m: usize, n: i32, s: usize): i32 {
  const lr64 = load<f64>(s, LION_LR);
  const beta164 = load<f64>(s, LION_BETA1);
  const beta264 = load<f64>(s, LION_BETA2);
  const sign64 = load<f64>(s, LION_SIGN);
  const decay64 = load<f64>(s, LION_DECAY);
  const lr = <f32>lr64, beta1 = <f32>beta164, beta2 = <f32>beta264, omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264);
  const sign = <f32>sign64, decay = <f32>decay64, decays = decay64 != 1;
  const vlr = f32x4.splat(lr), vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2), vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2);
  const vdecay = f32x4.splat(decay);
  const negate = sign64 < 0;
  return quarters([
    ['negate', { negate: true }],
    ['decays', { negate: false, decays: true }],
    [null, { negate: false, decays: false }],
  ]);
}

/** One vector of Lion; returns p + m as written, for the probe. */
@inline function lionVector(
  p: usize, g: usize, m: usize, negate: bool,
  vlr: v128, vb1: v128, vb2: v128, vomb1: v128, vomb2: v128, vdecay: v128, decays: bool,
): v128 {
  let gi = v128.load(g);
  if (negate) gi = f32x4.neg(gi);
  const mi = v128.load(m);
  const c = f32x4.add(f32x4.mul(vb1, mi), f32x4.mul(vomb1, gi));
  // lr sign(c) in bits: lr with c's sign bit where c != 0 (NaN included), +0 where c is
  // +-0; then a NaN c's own bits ORed in, which keeps the lane a NaN (exponent all ones,
  // mantissa non-zero). Seven operations, no negation or select.
  const signed = v128.and(v128.or(v128.and(c, v128.splat<i32>(0x80000000)), vlr), f32x4.ne(c, f32x4.splat(0)));
  const step = v128.or(signed, v128.and(c, f32x4.ne(c, c)));
  let pd = v128.load(p);
  if (decays) pd = f32x4.mul(pd, vdecay);
  const pi = f32x4.sub(pd, step);
  const mn = f32x4.add(f32x4.mul(vb2, mi), f32x4.mul(vomb2, gi));
  v128.store(p, pi);
  v128.store(m, mn);
  return f32x4.add(pi, mn);
}

@inline function lionScalar(
  p: usize, g: usize, m: usize, sign: f32, lr: f32, beta1: f32, beta2: f32, omb1: f32, omb2: f32, decay: f32, decays: bool,
): f32 {
  const gi = load<f32>(g) * sign;
  const mi = load<f32>(m);
  const c = beta1 * mi + omb1 * gi;
  const step: f32 = c > 0 ? lr : c < 0 ? -lr : c == 0 ? 0 : c; // c: NaN
  const pd = decays ? load<f32>(p) * decay : load<f32>(p);
  const pi = pd - step;
  const mn = beta2 * mi + omb2 * gi;
  store<f32>(p, pi);
  store<f32>(m, mn);
  return pi + mn;
}
