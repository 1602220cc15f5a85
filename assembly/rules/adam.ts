// Adam / AdamW (src/rules/adam.ts, src/rules/adamw.ts): the 'pytorch' and 'book' variants.

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).
import { gradient, gradient1, probe, verdict } from '../skeleton';
import {
  ADAM_NEGATIVE_STEP_SIZE, ADAM_BC2SQRT, ADAM_BETA1, ADAM_BETA2, ADAM_EPS, ADAM_AMSGRAD, ADAM_SHRINK, ADAM_SIGN, ADAM_WD,
  ADAM_BOOK_LR_T, ADAM_BOOK_BETA1, ADAM_BOOK_BETA2, ADAM_BOOK_EPS, ADAM_BOOK_SHRINK, ADAM_BOOK_SIGN, ADAM_BOOK_WD,
} from '../layout.generated';

/**
 * Adam / AdamW 'pytorch': m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
 * (amsgrad: v = max(vmax, v)); p = p * shrink + (negativeStepSize m) / (sqrt(v) / bc2sqrt + eps).
 * Computed as (negativeStepSize bc2sqrt m) / (sqrt(v) + eps bc2sqrt): the same quantity
 * with one division per element instead of two (a division costs as much as the whole
 * rest of the loop); float32 rounding differs by an ulp or so.
 */
export function adam(p: usize, g: usize, m: usize, v: usize, vmax: usize, n: i32, s: usize): i32 {
  const negativeStepSize64 = load<f64>(s, ADAM_NEGATIVE_STEP_SIZE);
  const bc2sqrt64 = load<f64>(s, ADAM_BC2SQRT);
  const beta164 = load<f64>(s, ADAM_BETA1);
  const beta264 = load<f64>(s, ADAM_BETA2);
  const eps64 = load<f64>(s, ADAM_EPS);
  const amsgrad = <i32>load<f64>(s, ADAM_AMSGRAD);
  const shrink64 = load<f64>(s, ADAM_SHRINK);
  const sign64 = load<f64>(s, ADAM_SIGN);
  const wd64 = load<f64>(s, ADAM_WD);
  const nss = <f32>(negativeStepSize64 * bc2sqrt64), beta1 = <f32>beta164, beta2 = <f32>beta264;
  const omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264), eps = <f32>(eps64 * bc2sqrt64), shrink = <f32>shrink64, decoupled = shrink64 != 1;
  const sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vnss = f32x4.splat(nss), vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2);
  const vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2), veps = f32x4.splat(eps), vshrink = f32x4.splat(shrink);
  const vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  return pairs();
}

@inline function adamVector(
  p: usize, g: usize, m: usize, v: usize, vmax: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128,
  vb1: v128, vomb1: v128, vb2: v128, vomb2: v128, amsgrad: i32, veps: v128, vnss: v128,
): v128 {
  const gi = gradient(g, p, negate, vwd, decay);
  let pi = v128.load(p);
  if (decoupled) pi = f32x4.mul(pi, vshrink);
  const mi = f32x4.add(f32x4.mul(v128.load(m), vb1), f32x4.mul(vomb1, gi));
  let vi = f32x4.add(f32x4.mul(v128.load(v), vb2), f32x4.mul(f32x4.mul(vomb2, gi), gi));
  v128.store(m, mi);
  v128.store(v, vi);
  // vmax >= v: when v is not finite, neither is vmax, so the probe needs only one.
  if (amsgrad) {
    vi = f32x4.max(v128.load(vmax), vi);
    v128.store(vmax, vi);
  }
  const d = f32x4.add(f32x4.sqrt(vi), veps);
  pi = f32x4.add(pi, f32x4.div(f32x4.mul(vnss, mi), d));
  v128.store(p, pi);
  return f32x4.add(f32x4.add(pi, mi), vi);
}

@inline function adamScalar(
  p: usize, g: usize, m: usize, v: usize, vmax: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32,
  beta1: f32, omb1: f32, beta2: f32, omb2: f32, amsgrad: i32, eps: f32, nss: f32,
): f32 {
  const gi = gradient1(g, p, sign, wd, decay);
  let pi = load<f32>(p);
  if (decoupled) pi *= shrink;
  const mi = load<f32>(m) * beta1 + omb1 * gi;
  let vi = load<f32>(v) * beta2 + omb2 * gi * gi;
  store<f32>(m, mi);
  store<f32>(v, vi);
  if (amsgrad) {
    vi = max<f32>(load<f32>(vmax), vi);
    store<f32>(vmax, vi);
  }
  pi = pi + (nss * mi) / (sqrt<f32>(vi) + eps);
  store<f32>(p, pi);
  return pi + mi + vi;
}

/** Adam / AdamW 'book': m += (1 - beta1)(g - m); v += (1 - beta2)(g^2 - v); p = p * shrink - (lrT m) / (sqrt(v) + eps). */
export function adamBook(p: usize, g: usize, m: usize, v: usize, n: i32, s: usize): i32 {
  const lrT64 = load<f64>(s, ADAM_BOOK_LR_T);
  const beta164 = load<f64>(s, ADAM_BOOK_BETA1);
  const beta264 = load<f64>(s, ADAM_BOOK_BETA2);
  const eps64 = load<f64>(s, ADAM_BOOK_EPS);
  const shrink64 = load<f64>(s, ADAM_BOOK_SHRINK);
  const sign64 = load<f64>(s, ADAM_BOOK_SIGN);
  const wd64 = load<f64>(s, ADAM_BOOK_WD);
  const lrT = <f32>lrT64, omb1 = <f32>(1 - beta164), omb2 = <f32>(1 - beta264), eps = <f32>eps64;
  const shrink = <f32>shrink64, decoupled = shrink64 != 1, sign = <f32>sign64, wd = <f32>wd64, decay = wd != 0;
  const vlrT = f32x4.splat(lrT), vomb1 = f32x4.splat(omb1), vomb2 = f32x4.splat(omb2), veps = f32x4.splat(eps), vshrink = f32x4.splat(shrink);
  const vwd = f32x4.splat(wd);
  const negate = sign64 < 0;
  return pairs();
}

@inline function adamBookVector(
  p: usize, g: usize, m: usize, v: usize, negate: bool, vwd: v128, decay: bool, decoupled: bool, vshrink: v128,
  vomb1: v128, vomb2: v128, vlrT: v128, veps: v128,
): v128 {
  // p before the gradient: loaded after it, the two loads of p merge and the weight
  // decay's branch becomes a select that computes wd p on every vector.
  let pi = v128.load(p);
  const gi = gradient(g, p, negate, vwd, decay);
  if (decoupled) pi = f32x4.mul(pi, vshrink);
  const mOld = v128.load(m);
  const vOld = v128.load(v);
  const mi = f32x4.add(mOld, f32x4.mul(vomb1, f32x4.sub(gi, mOld)));
  const vi = f32x4.add(vOld, f32x4.mul(vomb2, f32x4.sub(f32x4.mul(gi, gi), vOld)));
  v128.store(m, mi);
  v128.store(v, vi);
  pi = f32x4.sub(pi, f32x4.div(f32x4.mul(vlrT, mi), f32x4.add(f32x4.sqrt(vi), veps)));
  v128.store(p, pi);
  return f32x4.add(f32x4.add(pi, mi), vi);
}

@inline function adamBookScalar(
  p: usize, g: usize, m: usize, v: usize, sign: f32, wd: f32, decay: bool, decoupled: bool, shrink: f32,
  omb1: f32, omb2: f32, lrT: f32, eps: f32,
): f32 {
  const gi = gradient1(g, p, sign, wd, decay);
  let pi = load<f32>(p);
  if (decoupled) pi *= shrink;
  const mOld = load<f32>(m);
  const vOld = load<f32>(v);
  const mi = mOld + omb1 * (gi - mOld);
  const vi = vOld + omb2 * (gi * gi - vOld);
  store<f32>(m, mi);
  store<f32>(v, vi);
  pi = pi - (lrT * mi) / (sqrt<f32>(vi) + eps);
  store<f32>(p, pi);
  return pi + mi + vi;
}
