/**
 * Schedule-Free SGD and AdamW as TF.js ops (see ops.ts): schedulefree-sgd.ts /
 * -adamw.ts, the averaging's scalars in double, as the kernels get them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { writeScheduleFreeScalars, type ScheduleFreeSGDHyper } from '../../rules/schedulefree-sgd.ts';
import type { ScheduleFreeAdamWHyper } from '../../rules/schedulefree-adamw.ts';
import { effectiveGradient, type OpsStep, type RuleOps } from './ops.ts';

/** Where writeScheduleFreeScalars puts the scalars of the step (c, -lr_k, ...): the kernels' layout, read at once. */
const scalars = new Float64Array(16);

/** One step; `v` is AdamW's second moment (undefined for SGD). */
function scheduleFreeStep(s: OpsStep<ScheduleFreeSGDHyper | ScheduleFreeAdamWHyper>, beta: number, p: tf.Tensor, g: tf.Tensor, buffers: readonly tf.Tensor[], adamw: ScheduleFreeAdamWHyper | undefined): tf.Tensor[] {
  const h = s.hyper;
  const gi = effectiveGradient(h, p, g, false); // the decay is inside the update
  const state = { step: s.step - 1, lrMax: s.scalars.lrMax!, weightSum: s.scalars.weightSum!, trainMode: 1, z: new Float32Array(0) };
  writeScheduleFreeScalars(scalars, state, h, { lr: s.lr });
  s.scalars.lrMax = state.lrMax;
  s.scalars.weightSum = state.weightSum;
  const c = scalars[0]!;
  const zStep = scalars[2]!; // -lr_k
  const yStep = zStep * (1 - beta * (1 - c));
  const z = s.step === 1 ? p : buffers[0]!; // z starts as the parameter
  let direction: tf.Tensor;
  const out: tf.Tensor[] = [];
  if (adamw === undefined) {
    direction = h.weightDecay !== 0 ? tf.add(gi, tf.mul(p, h.weightDecay)) : gi;
  } else {
    const v = tf.add(tf.mul(buffers[1]!, adamw.beta2), tf.mul(tf.square(gi), 1 - adamw.beta2));
    out.push(v);
    direction = tf.div(gi, tf.add(tf.sqrt(tf.div(v, 1 - adamw.beta2 ** s.step)), adamw.eps));
    if (h.weightDecay !== 0) direction = tf.add(direction, tf.mul(p, h.weightDecay));
  }
  const y = tf.add(tf.add(p, tf.mul(tf.sub(z, p), c)), tf.mul(direction, yStep));
  return [y, tf.add(z, tf.mul(direction, zStep)), ...out];
}

export const scheduleFreeSgdOps: RuleOps<ScheduleFreeSGDHyper> = {
  step: (s, p, g, buffers) => scheduleFreeStep(s, s.hyper.momentum, p, g, buffers, undefined),
  averagingBeta: (hyper) => hyper.momentum,
};

export const scheduleFreeAdamwOps: RuleOps<ScheduleFreeAdamWHyper> = {
  step: (s, p, g, buffers) => scheduleFreeStep(s, s.hyper.beta1, p, g, buffers, s.hyper),
  averagingBeta: (hyper) => hyper.beta1,
};
