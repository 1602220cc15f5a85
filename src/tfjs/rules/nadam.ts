/** NAdam as TF.js ops (see ops.ts); muProduct in double, as the kernels get it. */
import * as tf from '@tensorflow/tfjs-core';
import type { NAdamHyper } from '../../rules/nadam.ts';
import { decayedParam, effectiveGradient, type RuleOps } from './ops.ts';

export const nadamOps: RuleOps<NAdamHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const gi = effectiveGradient(h, p, g, true);
    const p0 = decayedParam(s.hyper, p, s.lr);
    const lr = s.lr;
    const t = s.step;
    const mu = h.beta1 * (1 - 0.5 * 0.96 ** (t * h.momentumDecay));
    const muNext = h.beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * h.momentumDecay));
    const muProduct = s.scalars.muProduct! * mu;
    s.scalars.muProduct = muProduct;
    const sqrtBc2 = Math.sqrt(1 - h.beta2 ** t);
    const gradScale = ((lr * (1 - mu)) / (1 - muProduct)) * -1 * sqrtBc2;
    const avgScale = ((lr * muNext) / (1 - muProduct * muNext)) * -1 * sqrtBc2;
    const m = tf.add(tf.mul(buffers[0]!, h.beta1), tf.mul(gi, 1 - h.beta1));
    const v = tf.add(tf.mul(buffers[1]!, h.beta2), tf.mul(tf.square(gi), 1 - h.beta2));
    const numerator = tf.add(tf.mul(gi, gradScale), tf.mul(m, avgScale));
    return [tf.add(p0, tf.div(numerator, tf.add(tf.sqrt(v), h.eps * sqrtBc2))), m, v];
  },
};
