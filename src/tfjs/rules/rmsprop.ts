/** RMSProp as TF.js ops (see ops.ts): plain, centered, with momentum. */
import * as tf from '@tensorflow/tfjs-core';
import type { RMSPropHyper } from '../../rules/rmsprop.ts';
import { decayedParam, effectiveGradient, type RuleOps } from './ops.ts';

export const rmspropOps: RuleOps<RMSPropHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const gi = effectiveGradient(h, p, g, true);
    const p0 = decayedParam(s.hyper, p, s.lr);
    const lr = s.lr;
    let k = 0;
    const sq = tf.add(tf.mul(buffers[k++]!, h.alpha), tf.mul(tf.square(gi), 1 - h.alpha));
    const out: tf.Tensor[] = [sq];
    let denominator: tf.Tensor;
    if (h.centered) {
      const c = tf.add(tf.mul(buffers[k++]!, h.alpha), tf.mul(gi, 1 - h.alpha));
      out.push(c);
      denominator = tf.add(tf.sqrt(tf.sub(sq, tf.square(c))), h.eps);
    } else {
      denominator = tf.add(tf.sqrt(sq), h.eps);
    }
    if (h.momentum > 0) {
      const b = tf.add(tf.mul(buffers[k++]!, h.momentum), tf.div(gi, denominator));
      out.push(b);
      return [tf.sub(p0, tf.mul(b, lr)), ...out];
    }
    return [tf.sub(p0, tf.div(tf.mul(gi, lr), denominator)), ...out];
  },
};
