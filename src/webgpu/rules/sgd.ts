/** SGD on the GPU: assembly/rules/sgd.ts `sgd`, p -= lr g. */
import { GRADIENT, type GpuRuleKernels } from '../kernel.ts';

export const sgdGpu: GpuRuleKernels = {
  sgd: {
    uniforms: { lr: (s) => s.lr!, sign: (s) => s.sign!, wd: (s) => s.wd! },
    body: `${GRADIENT}
  p[i] = p[i] - s.lr * gi;`,
  },
};
