/** Lion on the GPU: assembly/rules/lion.ts, p = p decay - lr sign(beta1 m + (1 - beta1) g); m = beta2 m + (1 - beta2) g. */
import type { GpuRuleKernels } from '../kernel.ts';

export const lionGpu: GpuRuleKernels = {
  lion: {
    uniforms: {
      lr: (s) => s.lr!,
      beta1: (s) => s.beta1!,
      beta2: (s) => s.beta2!,
      omb1: (s) => 1 - s.beta1!,
      omb2: (s) => 1 - s.beta2!,
      sign: (s) => s.sign!,
      decay: (s) => s.decay!,
    },
    body: `let gi = g[i] * s.sign;
  let mi = m[i];
  let c = s.beta1 * mi + s.omb1 * gi;
  // sign(c) times lr, and a NaN c through as itself.
  var stepped = c;
  if (c > 0.0) { stepped = s.lr; } else if (c < 0.0) { stepped = -s.lr; } else if (c == 0.0) { stepped = 0.0; }
  var pd = p[i];
  if (s.decay != 1.0) { pd = pd * s.decay; }
  p[i] = pd - stepped;
  m[i] = s.beta2 * mi + s.omb2 * gi;`,
  },
};
