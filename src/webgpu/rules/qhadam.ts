/** QHAdam on the GPU: assembly/rules/qhadam.ts. */
import { GRADIENT, PARAM, type GpuRuleKernels } from '../kernel.ts';

export const qhadamGpu: GpuRuleKernels = {
  qhadam: {
    uniforms: {
      gradS: (s) => s.gradStep!,
      avgS: (s) => s.avgStep!,
      gq: (s) => s.gradSq!,
      aq: (s) => s.avgSq!,
      beta1: (s) => s.beta1!,
      beta2: (s) => s.beta2!,
      omb1: (s) => 1 - s.beta1!,
      omb2: (s) => 1 - s.beta2!,
      eps: (s) => s.eps!,
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
      shrink: (s) => s.shrink!,
    },
    body: `${GRADIENT}
  let mi = s.beta1 * m[i] + s.omb1 * gi;
  let vi = s.beta2 * v[i] + s.omb2 * gi * gi;
  m[i] = mi;
  v[i] = vi;
  let den = sqrt(s.gq * gi * gi + s.aq * vi) + s.eps;
  ${PARAM}
  p[i] = p0 + (s.gradS * gi + s.avgS * mi) / den;`,
  },
};
