/** RAdam as TF.js ops (see ops.ts): torch 1.13's _single_tensor_radam; the rho_t branch is per step (see radam.ts). */
import * as tf from '@tensorflow/tfjs-core';
import type { RAdamHyper } from '../../rules/radam.ts';
import { decayedParam, effectiveGradient, type RuleOps } from './ops.ts';

export const radamOps: RuleOps<RAdamHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const gi = effectiveGradient(h, p, g, true);
    const p0 = decayedParam(s.hyper, p, s.lr);
    const lr = s.lr;
    const t = s.step;
    const m = tf.add(tf.mul(buffers[0]!, h.beta1), tf.mul(gi, 1 - h.beta1));
    const v = tf.add(tf.mul(buffers[1]!, h.beta2), tf.mul(tf.square(gi), 1 - h.beta2));
    const bc1 = 1 - h.beta1 ** t;
    const bc2 = 1 - h.beta2 ** t;
    const rhoInf = 2 / (1 - h.beta2) - 1;
    const rhoT = rhoInf - (2 * t * h.beta2 ** t) / bc2;
    if (rhoT > 5) {
      const rect = Math.sqrt(((rhoT - 4) * (rhoT - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rhoT));
      const step = tf.div(tf.mul(m, (lr * rect * Math.sqrt(bc2)) / bc1), tf.add(tf.sqrt(v), h.eps));
      return [tf.sub(p0, step), m, v];
    }
    return [tf.sub(p0, tf.mul(m, lr / bc1)), m, v];
  },
};
