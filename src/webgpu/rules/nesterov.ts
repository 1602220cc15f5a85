/** Nesterov on the GPU: assembly/rules/nesterov.ts, its three variants. */
import { GRADIENT, PARAM, type GpuRuleKernels } from '../kernel.ts';

export const nesterovGpu: GpuRuleKernels = {
  /** 'nag': v = mu v - lr g; p += mu v_new - lr g (the wasm kernel's form of mu^2 v - (1 + mu) lr g). */
  nesterovNag: {
    uniforms: { lr: (s) => s.lr!, mu: (s) => s.mu!, sign: (s) => s.sign!, wd: (s) => s.wd!, shrink: (s) => s.shrink! },
    body: `${GRADIENT}
  let lrg = s.lr * gi;
  let vi = s.mu * v[i] - lrg;
  v[i] = vi;
  ${PARAM}
  p[i] = p0 + (s.mu * vi - lrg);`,
  },
  /** 'book': v = mu v - lr g; p += mu^2 v; p -= (1 + mu) lr g (mu^2 and (1 + mu) lr in float64, as wasm). */
  nesterovBook: {
    uniforms: {
      lr: (s) => s.lr!,
      mu: (s) => s.mu!,
      muSquared: (s) => s.mu! * s.mu!,
      gradScale: (s) => (1 + s.mu!) * s.lr!,
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
      shrink: (s) => s.shrink!,
    },
    body: `${GRADIENT}
  let vNew = s.mu * v[i] - s.lr * gi;
  v[i] = vNew;
  ${PARAM}
  let halfway = p0 + s.muSquared * vNew;
  p[i] = halfway - s.gradScale * gi;`,
  },
  /** 'pytorch': b = keep b + take g; p -= lr (g + mu b). */
  nesterovPytorch: {
    uniforms: { lr: (s) => s.lr!, mu: (s) => s.mu!, keep: (s) => s.keep!, take: (s) => s.take!, sign: (s) => s.sign!, wd: (s) => s.wd!, shrink: (s) => s.shrink! },
    body: `${GRADIENT}
  let bi = s.keep * b[i] + s.take * gi;
  b[i] = bi;
  ${PARAM}
  p[i] = p0 - s.lr * (gi + s.mu * bi);`,
  },
};
