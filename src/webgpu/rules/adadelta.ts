/** Adadelta on the GPU: assembly/rules/adadelta.ts. */
import { GRADIENT, PARAM, type GpuRuleKernels } from '../kernel.ts';

export const adadeltaGpu: GpuRuleKernels = {
  adadelta: {
    uniforms: {
      stepSize: (s) => s.step!,
      rho: (s) => s.rho!,
      omr: (s) => 1 - s.rho!,
      eps: (s) => s.eps!,
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
      shrink: (s) => s.shrink!,
    },
    body: `${GRADIENT}
  let si = sq[i] * s.rho + s.omr * gi * gi;
  sq[i] = si;
  let d = (sqrt(acc[i] + s.eps) / sqrt(si + s.eps)) * gi;
  let ai = acc[i] * s.rho + s.omr * d * d;
  acc[i] = ai;
  ${PARAM}
  p[i] = p0 + s.stepSize * d;`,
  },
};
