/** Momentum on the GPU: assembly/rules/momentum.ts, both variants. */
import { GRADIENT, PARAM, type GpuRuleKernels } from '../kernel.ts';

export const momentumGpu: GpuRuleKernels = {
  /** 'classic': v = mu v - lr g; p += v. */
  momentumClassic: {
    uniforms: { lr: (s) => s.lr!, mu: (s) => s.mu!, sign: (s) => s.sign!, wd: (s) => s.wd!, shrink: (s) => s.shrink! },
    body: `${GRADIENT}
  let vi = s.mu * v[i] - s.lr * gi;
  v[i] = vi;
  ${PARAM}
  p[i] = p0 + vi;`,
  },
  /** 'pytorch': b = keep b + take g; p -= lr b. */
  momentumPytorch: {
    uniforms: { lr: (s) => s.lr!, keep: (s) => s.keep!, take: (s) => s.take!, sign: (s) => s.sign!, wd: (s) => s.wd!, shrink: (s) => s.shrink! },
    body: `${GRADIENT}
  let bi = s.keep * b[i] + s.take * gi;
  b[i] = bi;
  ${PARAM}
  p[i] = p0 - s.lr * bi;`,
  },
};
