/** SGD as TF.js ops (see ops.ts): p - lr g. */
import * as tf from '@tensorflow/tfjs-core';
import type { SGDHyper } from '../../rules/sgd.ts';
import { decayedParam, effectiveGradient, type RuleOps } from './ops.ts';

export const sgdOps: RuleOps<SGDHyper> = {
  step(s, p, g) {
    const gi = effectiveGradient(s.hyper, p, g, true);
    const p0 = decayedParam(s.hyper, p, s.lr);
    return [tf.sub(p0, tf.mul(gi, s.lr))];
  },
};
