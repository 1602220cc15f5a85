/** Adam (and AdamW, whose decay is decoupled: adamw.ts) as TF.js ops (see ops.ts). */
import * as tf from '@tensorflow/tfjs-core';
import type { AdamHyper } from '../../rules/adam.ts';
import { decayedParam, effectiveGradient, type RuleOps } from './ops.ts';

export const adamOps: RuleOps<AdamHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const gi = effectiveGradient(h, p, g, true);
    const lr = s.lr;
    const bc1 = 1 - h.beta1 ** s.step;
    const bc2 = 1 - h.beta2 ** s.step;
    const shrunk = decayedParam(h, p, lr);
    const [m0, v0, vMax0] = buffers;
    if (h.variant === 'book') {
      const m = tf.add(m0!, tf.mul(tf.sub(gi, m0!), 1 - h.beta1));
      const v = tf.add(v0!, tf.mul(tf.sub(tf.square(gi), v0!), 1 - h.beta2));
      const lrT = (lr * Math.sqrt(bc2)) / bc1;
      return [tf.sub(shrunk, tf.div(tf.mul(m, lrT), tf.add(tf.sqrt(v), h.eps))), m, v];
    }
    const m = tf.add(tf.mul(m0!, h.beta1), tf.mul(gi, 1 - h.beta1));
    const v = tf.add(tf.mul(v0!, h.beta2), tf.mul(tf.square(gi), 1 - h.beta2));
    const vMax = h.amsgrad ? tf.maximum(vMax0!, v) : undefined;
    const sqrtBc2 = Math.sqrt(bc2);
    // (-lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps), times sqrt(bc2) above and below (as the kernels).
    const update = tf.div(tf.mul(m, (-lr / bc1) * sqrtBc2), tf.add(tf.sqrt(vMax ?? v), h.eps * sqrtBc2));
    return vMax === undefined ? [tf.add(shrunk, update), m, v] : [tf.add(shrunk, update), m, v, vMax];
  },
};
