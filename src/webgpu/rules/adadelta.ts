/** Adadelta on the GPU: assembly/rules/adadelta.ts. */
import { GRADIENT, type GpuRuleKernels } from '../kernel.ts';

export const adadeltaGpu: GpuRuleKernels = {
  adadelta: {
    uniforms: {
      stepSize: (s) => s.step!,
      rho: (s) => s.rho!,
      omr: (s) => 1 - s.rho!,
      eps: (s) => s.eps!,
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
    },
    body: `${GRADIENT}
  let si = sq[i] * s.rho + s.omr * gi * gi;
  sq[i] = si;
  let d = (sqrt(acc[i] + s.eps) / sqrt(si + s.eps)) * gi;
  let ai = acc[i] * s.rho + s.omr * d * d;
  acc[i] = ai;
  p[i] = p[i] + s.stepSize * d;`,
  },
};
