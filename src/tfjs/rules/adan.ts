/**
 * Adan as TF.js ops (see ops.ts), optax's form: the difference is 0 on the first step,
 * the bias corrections folded as the kernels fold them, the weight decay decoupled.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AdanHyper } from '../../rules/adan.ts';
import { effectiveGradient, type RuleOps } from './ops.ts';

export const adanOps: RuleOps<AdanHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const gi = effectiveGradient(h, p, g, false); // its decay is decoupled
    const [m0, v0, n0, prev] = buffers;
    const bc1 = 1 - h.beta1 ** s.step;
    const bc2 = 1 - h.beta2 ** s.step;
    const bc3 = 1 - h.beta3 ** s.step;
    const bc3Sqrt = Math.sqrt(bc3);
    const delta = s.step === 1 ? tf.zerosLike(gi) : tf.sub(gi, prev!);
    const m = tf.add(tf.mul(m0!, h.beta1), tf.mul(gi, 1 - h.beta1));
    const v = tf.add(tf.mul(v0!, h.beta2), tf.mul(delta, 1 - h.beta2));
    const look = tf.add(gi, tf.mul(delta, 1 - h.beta2));
    const n = tf.add(tf.mul(n0!, h.beta3), tf.mul(tf.square(look), 1 - h.beta3));
    const numerator = tf.add(tf.mul(m, (-s.lr * bc3Sqrt) / bc1), tf.mul(v, (-s.lr * bc3Sqrt * (1 - h.beta2)) / bc2));
    const denominator = tf.add(tf.sqrt(tf.add(n, h.epsRoot * bc3)), h.eps * bc3Sqrt);
    const decayed = h.weightDecay !== 0 ? tf.mul(p, 1 - s.lr * h.weightDecay) : p;
    return [tf.add(decayed, tf.div(numerator, denominator)), m, v, n, gi];
  },
};
