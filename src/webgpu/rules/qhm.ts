/** QHM on the GPU: assembly/rules/qhm.ts, b = beta b + (1 - beta) d; p -= lr nu b + lr (1 - nu) d. */
import { GRADIENT, PARAM, type GpuRuleKernels } from '../kernel.ts';

export const qhmGpu: GpuRuleKernels = {
  qhm: {
    uniforms: {
      beta: (s) => s.beta!,
      omb: (s) => 1 - s.beta!,
      onB: (s) => s.lr! * s.nu!,
      onD: (s) => s.lr! * (1 - s.nu!),
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
      shrink: (s) => s.shrink!,
    },
    body: `${GRADIENT}
  let bi = s.beta * b[i] + s.omb * gi;
  b[i] = bi;
  ${PARAM}
  p[i] = p0 - s.onB * bi - s.onD * gi;`,
  },
};
