/** AdaGrad as TF.js ops (see ops.ts); its sum starts at initialAccumulatorValue. */
import * as tf from '@tensorflow/tfjs-core';
import type { AdaGradHyper } from '../../rules/adagrad.ts';
import { decayedParam, effectiveGradient, type RuleOps } from './ops.ts';

export const adagradOps: RuleOps<AdaGradHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const gi = effectiveGradient(h, p, g, true);
    const p0 = decayedParam(s.hyper, p, s.lr);
    const stepSize = h.variant === 'book' ? s.lr : s.lr / (1 + (s.step - 1) * h.lrDecay);
    const sum = tf.add(buffers[0]!, tf.square(gi));
    return [tf.sub(p0, tf.div(tf.mul(gi, stepSize), tf.add(tf.sqrt(sum), h.eps))), sum];
  },
  initialFill: (hyper) => hyper.initialAccumulatorValue,
};
