/**
 * TF.js's own optimizer for a bench rule, as the CPU bench (bench/run.ts) and the WebGPU
 * bench (bench/webgpu/page.ts) both time it. No Node import: the WebGPU page bundles it.
 */
import * as tf from '@tensorflow/tfjs';
import type { BenchRule } from './rules.ts';

/**
 * TF.js's optimizer for a rule whose `peers` name one, with our row's hyperparameters (the
 * rule's defaults) where TF.js takes them. TF.js has no weight decay in these and adds its
 * backend's epsilon where it has none of its own (AdaGrad): the same work per element.
 */
export function tfjsOptimizer(rule: BenchRule): tf.Optimizer | undefined {
  // The fields read below, of whichever rule's defaults this is (each case reads its own).
  const h = rule.make('js', 'ignore').defaults as { [K in 'lr' | 'momentum' | 'beta1' | 'beta2' | 'eps' | 'initialAccumulatorValue' | 'rho' | 'alpha']: number } & {
    centered: boolean;
  };
  switch (rule.id) {
    case 'nesterov':
      return tf.train.momentum(h.lr, h.momentum, true);
    case 'momentum':
      return tf.train.momentum(h.lr, h.momentum);
    case 'sgd':
      return tf.train.sgd(h.lr);
    case 'adam':
      return tf.train.adam(h.lr, h.beta1, h.beta2, h.eps);
    case 'adagrad':
      return tf.train.adagrad(h.lr, h.initialAccumulatorValue);
    case 'adadelta':
      return tf.train.adadelta(h.lr, h.rho, h.eps);
    case 'adamax':
      return tf.train.adamax(h.lr, h.beta1, h.beta2, h.eps, 0);
    case 'rmsprop':
      return tf.train.rmsprop(h.lr, h.alpha, h.momentum, h.eps, h.centered);
    default:
      return undefined;
  }
}
