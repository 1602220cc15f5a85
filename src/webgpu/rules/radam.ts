/** RAdam on the GPU: assembly/rules/radam.ts, the rectified step or the plain momentum step as `rectified` says. */
import { GRADIENT, PARAM, type GpuRuleKernels } from '../kernel.ts';

export const radamGpu: GpuRuleKernels = {
  radam: {
    uniforms: {
      stepSize: (s) => s.step!,
      beta1: (s) => s.beta1!,
      beta2: (s) => s.beta2!,
      omb1: (s) => 1 - s.beta1!,
      omb2: (s) => 1 - s.beta2!,
      eps: (s) => s.eps!,
      rectified: (s) => s.rectified!,
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
      shrink: (s) => s.shrink!,
    },
    body: `${GRADIENT}
  let mi = m[i] * s.beta1 + s.omb1 * gi;
  let vi = v[i] * s.beta2 + s.omb2 * gi * gi;
  m[i] = mi;
  v[i] = vi;
  ${PARAM}
  if (s.rectified != 0.0) {
    p[i] = p0 + (s.stepSize * mi) / (sqrt(vi) + s.eps);
  } else {
    p[i] = p0 + s.stepSize * mi;
  }`,
  },
};
