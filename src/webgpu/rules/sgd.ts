/** SGD on the GPU: assembly/rules/sgd.ts `sgd`, p -= lr g. */
import { GRADIENT, PARAM, type GpuRuleKernels } from '../kernel.ts';

export const sgdGpu: GpuRuleKernels = {
  sgd: {
    uniforms: { lr: (s) => s.lr!, sign: (s) => s.sign!, wd: (s) => s.wd!, shrink: (s) => s.shrink! },
    body: `${GRADIENT}
  ${PARAM}
  p[i] = p0 - s.lr * gi;`,
  },
};
