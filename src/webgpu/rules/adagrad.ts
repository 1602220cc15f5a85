/** AdaGrad on the GPU: assembly/rules/adagrad.ts, h += g^2; p += (negativeStep g) / (sqrt(h) + eps). */
import { GRADIENT, type GpuRuleKernels } from '../kernel.ts';

export const adagradGpu: GpuRuleKernels = {
  adagrad: {
    uniforms: { negativeStep: (s) => s.negativeStep!, eps: (s) => s.eps!, sign: (s) => s.sign!, wd: (s) => s.wd! },
    ignores: { book: "the variant is already in negativeStep and eps (the wasm kernel does not read it)" },
    body: `${GRADIENT}
  let si = h[i] + gi * gi;
  h[i] = si;
  p[i] = p[i] + (s.negativeStep * gi) / (sqrt(si) + s.eps);`,
  },
};
