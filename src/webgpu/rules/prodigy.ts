/**
 * Prodigy on the GPU (src/rules/prodigy.ts): its two wasm kernels' WGSL twins
 * (assembly/rules/prodigy.ts), with pass 1's sums, and its `reduce` (the new estimate d).
 *
 * The scalar blocks are captured at d = 1 (src/webgpu/global.ts): `d`, `sScale` and
 * `dlr` are per unit of d and multiplied here by the device's d, `gl.now.estimLr` in
 * pass 1 (the d the step starts from) and `gl.before.estimLr` in pass 2, which reads the
 * new d as `gl.now.estimLr` (in eps d').
 */
import type { GpuGlobalPhase } from '../global.ts';
import type { GpuRuleKernels } from '../kernel.ts';

export const prodigyGpu: GpuRuleKernels = {
  /**
   * Pass 1: dg = d g; m = beta1 m + (1 - beta1) dg; v = beta2 v + (1 - beta2) dg^2;
   * s = s + (sScale dg - (1 - beta3) s). Its contributions: dlr <g, x0 - x> (the
   * parameter's dlr = d lr bc weighs its dot, as the CPU's accumulate does) and |s|.
   */
  prodigyMoments: {
    uniforms: {
      sign: (s) => s.sign!,
      d: (s) => s.d!,
      beta1: (s) => s.beta1!,
      beta2: (s) => s.beta2!,
      omb1: (s) => 1 - s.beta1!,
      omb2: (s) => 1 - s.beta2!,
      omb3: (s) => 1 - s.beta3!,
      sScale: (s) => s.sScale!,
      lrBc: (s) => s.lr! * s.bc!,
    },
    ignores: {
      dlr: 'pass 2 reads it (pass 1 weighs its sums by lr bc, from the same step)',
      wd: 'pass 2 reads it',
      epsD: 'pass 2 reads it',
      dot: "the CPU's sums, which pass 1 computes here on the device",
      l1: "the CPU's sums, which pass 1 computes here on the device",
    },
    body: `let d = s.d * gl.now.estimLr;
    var gi = g[i];
    if (s.sign < 0.0) { gi = -gi; }
    let dot = gi * (p0[i] - p[i]);
    let dg = d * gi;
    let mi = s.beta1 * m[i] + s.omb1 * dg;
    let vi = s.beta2 * v[i] + s.omb2 * dg * dg;
    let sOld = sum[i];
    let si = sOld + ((s.sScale * d) * dg - s.omb3 * sOld);
    m[i] = mi;
    v[i] = vi;
    sum[i] = si;`,
  },
  /** Pass 2: p += -wd dlr p - dlr m / (sqrt(v) + d' eps), dlr from the d pass 1 read. */
  prodigyApply: {
    uniforms: {
      dlr: (s) => s.dlr!,
      decay: (s) => -s.wd! * s.dlr!,
      epsD: (s) => s.epsD!,
    },
    ignores: {
      sign: 'pass 1 reads it',
      d: 'pass 1 reads it',
      beta1: 'pass 1 reads it',
      beta2: 'pass 1 reads it',
      beta3: 'pass 1 reads it',
      sScale: 'pass 1 reads it',
      dot: "the CPU's sums",
      l1: "the CPU's sums",
      bc: 'folded into dlr by the rule',
    },
    body: `let d = gl.before.estimLr;
  let dlr = s.dlr * d;
  let decay = s.decay * d;
  let epsD = s.epsD * gl.now.estimLr;
  let pi = p[i];
  p[i] = pi + (decay * pi - (dlr * m[i]) / (sqrt(v[i]) + epsD));`,
  },
};

/**
 * The estimate, as the CPU's `reduce`: r = beta3 r + (d / d0) sum dlr <g, x0 - x>;
 * d = max(d, coef r / sum |s|), d kept while sum |s| is 0, NaN passed on.
 */
export const prodigyGlobalGpu: GpuGlobalPhase = {
  totals: ['weightedDot', 'sumAbs'],
  contributions: { prodigyMoments: ['(s.lrBc * d) * dot', 'abs(si)'] },
  // Pass 1 then binds 8 storage buffers (g, m, v, s, p, x0, the refusal flag, the global
  // scalars): WebGPU's least maxStorageBuffersPerShaderStage, which every device has.
  extraArrays: { prodigyMoments: { p: 'params', p0: { state: 'params0' } } },
  firstStepCopy: { prodigyMoments: { into: 'p0', from: 'p' } },
  reduceUniforms: {
    beta3: (h) => (h as unknown as { beta3: number }).beta3,
    estimLr0: (h) => (h as unknown as { estimLr0: number }).estimLr0,
    estimLrCoef: (h) => (h as unknown as { estimLrCoef: number }).estimLrCoef,
  },
  reduce: `let d = gl.now.estimLr;
  let numerator = r.beta3 * gl.now.numeratorWeighted + (d / r.estimLr0) * gl.totals.weightedDot;
  gl.now.numeratorWeighted = numerator;
  let denominator = gl.totals.sumAbs;
  if (denominator == 0.0) { return; }
  let estimate = (r.estimLrCoef * numerator) / denominator;
  if (estimate > d || isNan(estimate)) { gl.now.estimLr = estimate; }`,
};
