/** Momentum on the GPU: assembly/rules/momentum.ts, both variants. */
import { GRADIENT, type GpuRuleKernels } from '../kernel.ts';

export const momentumGpu: GpuRuleKernels = {
  /** 'classic': v = mu v - lr g; p += v. */
  momentumClassic: {
    uniforms: { lr: (s) => s.lr!, mu: (s) => s.mu!, sign: (s) => s.sign!, wd: (s) => s.wd! },
    body: `${GRADIENT}
  let vi = s.mu * v[i] - s.lr * gi;
  v[i] = vi;
  p[i] = p[i] + vi;`,
  },
  /** 'pytorch': b = keep b + take g; p -= lr b. */
  momentumPytorch: {
    uniforms: { lr: (s) => s.lr!, keep: (s) => s.keep!, take: (s) => s.take!, sign: (s) => s.sign!, wd: (s) => s.wd! },
    body: `${GRADIENT}
  let bi = s.keep * b[i] + s.take * gi;
  b[i] = bi;
  p[i] = p[i] - s.lr * bi;`,
  },
};
