/** The types the modules of nesterov/tfjs share. */
import type * as tf from '@tensorflow/tfjs-core';
import type { AnyOptimizer } from '../optimizer.ts';
import type { OptimizerStateDict } from '../state.ts';
import type { Muon } from '../rules/muon.ts';

/** Which path runs the steps: see index.ts. */
export type TfPath = 'auto' | 'kernel' | 'ops';

export interface TfOptimizerOptions {
  /**
   * 'auto' (default): 'kernel' on the cpu and wasm backends; on webgpu the GPU kernels
   * where the rule has one (the adapter's `path` then reads 'webgpu', see webgpu-path.ts);
   * 'ops' on the others.
   */
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

/**
 * What runs the steps of a TfOptimizer: kernel-path.ts, ops-path.ts or webgpu-path.ts.
 * The adapter checks a call (gradients, mode, learning rates) and leaves the rest to it.
 */
export interface Runner {
  readonly path: 'kernel' | 'ops' | 'webgpu';
  readonly stepCount: number;
  readonly skippedSteps: number;
  readonly mode: Mode | undefined;
  /** The length of a parameter's state, undefined without state. */
  stateLength(name: string): number | undefined;
  /** The parameters with state. */
  stateNames(): string[];
  /** Takes the verdicts of earlier steps known since (a refused one throws here), before a call is checked. */
  settle(): void;
  /** The runner's own checks of a step, writing nothing (a TfPartition checks every member first). */
  check(entries: readonly Entry[]): unknown;
  /** One step; `lrs` are the entries' learning rates, checked by the adapter. */
  step(entries: readonly Entry[], lrs: readonly number[]): void;
  move(mode: Mode, names: readonly string[], variables: readonly tf.Variable[]): void;
  /** The whole state in the core's format; `base` is our optimizer's (its names, and its state where the runner keeps none). */
  stateDict(base: () => OptimizerStateDict): OptimizerStateDict | Promise<OptimizerStateDict>;
  /** Waits for the device's verdict on every step taken (a refused step's error is thrown here). */
  sync(): Promise<void>;
  /** After our optimizer loaded a state (`mode`: the Schedule-Free mode it holds): the runner takes it. */
  loaded(base: () => OptimizerStateDict, mode: Mode | undefined): void;
  dispose(): void;
}
