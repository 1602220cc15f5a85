/**
 * D-Adapt AdamW on the GPU (src/rules/dadapt-adamw.ts): its two wasm kernels' WGSL twins
 * (assembly/rules/dadapt-adamw.ts), with pass 1's sums, and its `reduce` (the new d).
 *
 * The scalar blocks are captured at d = 1 (src/webgpu/global.ts): `dlr` is per unit of
 * d and multiplied here by the device's d, `gl.now.estimLr` in pass 1 (the d the step
 * starts from) and `gl.before.estimLr` in pass 2 (the same d: the new one is used from
 * the next step on).
 */
import type { GpuGlobalPhase } from '../global.ts';
import type { GpuRuleKernels } from '../kernel.ts';

export const dadaptAdamwGpu: GpuRuleKernels = {
  /**
   * Pass 1: the dot <g, s / (sqrt(v) + eps)> from s and v as they were; m = beta1 m +
   * (1 - beta1) dlr g; v = beta2 v + (1 - beta2) g^2; s = s + ((1 - b) dlr g - (1 - b) s).
   * Its contributions: dlr times the dot, and |s|.
   */
  dadaptMoments: {
    uniforms: {
      sign: (s) => s.sign!,
      beta1: (s) => s.beta1!,
      beta2: (s) => s.beta2!,
      omb: (s) => 1 - s.sqrtBeta2!,
      momentScale: (s) => (1 - s.beta1!) * s.dlr!,
      omb2: (s) => 1 - s.beta2!,
      sumScale: (s) => (1 - s.sqrtBeta2!) * s.dlr!,
      eps: (s) => s.eps!,
      dlr: (s) => s.dlr!,
    },
    ignores: {
      wd: 'pass 2 reads it',
      dot: "the CPU's sums, which pass 1 computes here on the device",
      l1: "the CPU's sums, which pass 1 computes here on the device",
      bc: 'folded into dlr by the rule',
    },
    body: `let d = gl.now.estimLr;
    var gi = g[i];
    if (s.sign < 0.0) { gi = -gi; }
    let sOld = sum[i];
    let vOld = v[i];
    let dot = gi * (sOld / (sqrt(vOld) + s.eps));
    let mi = s.beta1 * m[i] + (s.momentScale * d) * gi;
    let vi = s.beta2 * vOld + s.omb2 * gi * gi;
    let si = sOld + ((s.sumScale * d) * gi - s.omb * sOld);
    m[i] = mi;
    v[i] = vi;
    sum[i] = si;`,
  },
  /** Pass 2: p += -wd dlr p - m / (sqrt(v) + eps). */
  dadaptApply: {
    uniforms: {
      decay: (s) => -s.wd! * s.dlr!,
      eps: (s) => s.eps!,
    },
    ignores: {
      sign: 'pass 1 reads it',
      beta1: 'pass 1 reads it',
      beta2: 'pass 1 reads it',
      sqrtBeta2: 'pass 1 reads it',
      dot: "the CPU's sums",
      l1: "the CPU's sums",
      bc: 'folded into dlr by the rule',
    },
    body: `let decay = s.decay * gl.before.estimLr;
  let pi = p[i];
  p[i] = pi + (decay * pi - m[i] / (sqrt(v[i]) + s.eps));`,
  },
};

/**
 * The estimate, as the CPU's `reduce`, b = sqrt(beta2): r = b r + (1 - b) sum dlr <g,
 * s / (sqrt(v) + eps)>; d = max(d, r / ((1 - b) sum |s|)), d kept while sum |s| is 0,
 * NaN passed on.
 */
export const dadaptAdamwGlobalGpu: GpuGlobalPhase = {
  totals: ['weightedDot', 'sumAbs'],
  contributions: { dadaptMoments: ['(s.dlr * d) * dot', 'abs(si)'] },
  reduceUniforms: {
    b: (h) => Math.sqrt((h as unknown as { beta2: number }).beta2),
    omb: (h) => 1 - Math.sqrt((h as unknown as { beta2: number }).beta2),
  },
  reduce: `let numerator = r.b * gl.now.numeratorWeighted + r.omb * gl.totals.weightedDot;
  gl.now.numeratorWeighted = numerator;
  let l1 = gl.totals.sumAbs;
  if (l1 == 0.0) { return; }
  let estimate = numerator / (r.omb * l1);
  let d = gl.now.estimLr;
  if (estimate > d || isNan(estimate)) { gl.now.estimLr = estimate; }`,
};
