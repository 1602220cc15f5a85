/** QHM on the GPU: assembly/rules/qhm.ts, b = beta b + (1 - beta) d; p -= lr nu b + lr (1 - nu) d. */
import { GRADIENT, type GpuRuleKernels } from '../kernel.ts';

export const qhmGpu: GpuRuleKernels = {
  qhm: {
    uniforms: {
      beta: (s) => s.beta!,
      omb: (s) => 1 - s.beta!,
      onB: (s) => s.lr! * s.nu!,
      onD: (s) => s.lr! * (1 - s.nu!),
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
    },
    body: `${GRADIENT}
  let bi = s.beta * b[i] + s.omb * gi;
  b[i] = bi;
  p[i] = p[i] - s.onB * bi - s.onD * gi;`,
  },
};
