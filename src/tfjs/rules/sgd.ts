/** SGD as TF.js ops (see ops.ts): p - lr g. */
import * as tf from '@tensorflow/tfjs-core';
import type { SGDHyper } from '../../rules/sgd.ts';
import { effectiveGradient, type RuleOps } from './ops.ts';

export const sgdOps: RuleOps<SGDHyper> = {
  step(s, p, g) {
    const gi = effectiveGradient(s.hyper, p, g, true);
    return [tf.sub(p, tf.mul(gi, s.lr))];
  },
};
