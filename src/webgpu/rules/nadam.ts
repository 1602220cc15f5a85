/** NAdam on the GPU: assembly/rules/nadam.ts, p += (gs g + as m) / (sqrt(v) + eps bc2sqrt). */
import { GRADIENT, PARAM, type GpuRuleKernels } from '../kernel.ts';

export const nadamGpu: GpuRuleKernels = {
  nadam: {
    uniforms: {
      gradS: (s) => s.gradStep! * s.bc2sqrt!,
      avgS: (s) => s.avgStep! * s.bc2sqrt!,
      beta1: (s) => s.beta1!,
      beta2: (s) => s.beta2!,
      omb1: (s) => 1 - s.beta1!,
      omb2: (s) => 1 - s.beta2!,
      eps: (s) => s.eps! * s.bc2sqrt!,
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
      shrink: (s) => s.shrink!,
    },
    body: `${GRADIENT}
  let mi = m[i] * s.beta1 + s.omb1 * gi;
  let vi = v[i] * s.beta2 + s.omb2 * gi * gi;
  m[i] = mi;
  v[i] = vi;
  let d = sqrt(vi) + s.eps;
  ${PARAM}
  p[i] = p0 + (s.gradS * gi + s.avgS * mi) / d;`,
  },
};
