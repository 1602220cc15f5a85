/** AdaGrad on the GPU: assembly/rules/adagrad.ts, h += g^2; p += (negativeStep g) / (sqrt(h) + eps). */
import { GRADIENT, PARAM, type GpuRuleKernels } from '../kernel.ts';

export const adagradGpu: GpuRuleKernels = {
  adagrad: {
    uniforms: { negativeStep: (s) => s.negativeStep!, eps: (s) => s.eps!, sign: (s) => s.sign!, wd: (s) => s.wd!, shrink: (s) => s.shrink! },
    ignores: { book: "the variant is already in negativeStep and eps (the wasm kernel does not read it)" },
    body: `${GRADIENT}
  let si = h[i] + gi * gi;
  h[i] = si;
  ${PARAM}
  p[i] = p0 + (s.negativeStep * gi) / (sqrt(si) + s.eps);`,
  },
};
