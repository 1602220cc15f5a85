/** Nesterov as TF.js ops (see ops.ts): 'pytorch' in TF.js's own useNesterov order, 'nag' and 'book'. */
import * as tf from '@tensorflow/tfjs-core';
import type { NesterovHyper } from '../../rules/nesterov.ts';
import { decayedParam, effectiveGradient, type RuleOps } from './ops.ts';

export const nesterovOps: RuleOps<NesterovHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const gi = effectiveGradient(h, p, g, true);
    const p0 = decayedParam(s.hyper, p, s.lr);
    const lr = s.lr;
    const mu = h.momentum;
    const v = buffers[0]!;
    if (h.variant === 'pytorch') {
      const next = s.step === 1 ? gi : tf.add(tf.mul(v, mu), tf.mul(gi, 1 - h.dampening));
      // TF.js's own useNesterov order: p + (-lr) * (g + b * mu).
      return [tf.add(tf.mul(tf.add(gi, tf.mul(next, mu)), -lr), p0), next];
    }
    const vNew = tf.sub(tf.mul(v, mu), tf.mul(gi, lr));
    const carried = h.variant === 'nag' ? v : vNew; // 'book' applies mu^2 to the new velocity
    return [tf.sub(tf.add(p0, tf.mul(carried, mu * mu)), tf.mul(gi, (1 + mu) * lr)), vNew];
  },
};
