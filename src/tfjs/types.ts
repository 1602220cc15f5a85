/** The types the modules of nesterov/tfjs share. */
import type * as tf from '@tensorflow/tfjs-core';
import type { AnyOptimizer } from '../optimizer.ts';
import type { Muon } from '../rules/muon.ts';

/** Which path runs the steps: see index.ts. */
export type TfPath = 'auto' | 'kernel' | 'ops';

export interface TfOptimizerOptions {
  /** 'auto' (default): 'kernel' on the cpu and wasm backends, 'ops' on the others. */
  path?: TfPath;
  /**
   * Scale all gradients of a step together so that their global L2 norm is at most this
   * (PyTorch's `clip_grad_norm_`: scale maxNorm / (norm + 1e-6) when below 1), before the
   * step. A non-finite norm leaves the gradients as they are, for `nonFinite` to decide.
   */
  clipGradNorm?: number;
}

/**
 * What `tfOptimizer` wraps: an optimizer of one rule (`new Nesterov()`, `new Lion()`, ...)
 * or Muon (which is not an elementwise rule: it keeps its own state and matrix kernels).
 */
export type TfWrappable = AnyOptimizer | Muon;

/** TF.js's `{ name, tensor }` pair (tfjs-core does not export its type). */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

/** One gradient of a call, checked against its variable. */
export interface Entry {
  readonly name: string;
  readonly variable: tf.Variable;
  readonly gradient: tf.Tensor;
}

/** Schedule-Free's modes. */
export type Mode = 'train' | 'eval';
