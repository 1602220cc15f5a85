/**
 * `nesterov/tfjs`: each optimizer of this library as a TensorFlow.js `tf.Optimizer`.
 *
 *     const opt = tfOptimizer(new AdamW({ lr: warmupCosineDecay({ ... }) }), { clipGradNorm: 1 });
 *     model.compile({ optimizer: opt, loss: 'categoricalCrossentropy' });
 *
 * This is the one module of the library that imports '@tensorflow/tfjs-core' (an optional
 * peer dependency): importing 'nesterov' alone never loads TF.js.
 *
 * Three paths run a step:
 * - 'kernel' (default on the cpu and wasm backends): the gradients are read into a float32
 *   ParamStore, our optimizer steps it with its WebAssembly kernels, and each variable is
 *   assigned its new value. The store mirrors the variables; a variable whose data changed
 *   since our last write (`model.setWeights`, `variable.assign`: TF.js then gives it a new
 *   data id) is read again before the step, so a stale copy never wins.
 * - 'ops' (default on every other backend): the same rule as TF.js ops inside `tf.tidy`
 *   (src/tfjs/rules/, one file per rule), the state in non-trainable variables, so the
 *   data stays on the GPU. On webgpu nothing is read synchronously (see flags.ts): a step
 *   with a non-finite gradient writes nothing (decided on the device), and its error
 *   (nonFinite 'error') or skip ('skip') is taken when its verdict has been read, by the
 *   next applyGradients or getWeights, before that call writes anything.
 * - 'webgpu' (what 'auto' takes on the webgpu backend for a rule with a GPU kernel, without
 *   wrappers or nonFinite 'skip'): the variables and gradients copied GPU to
 *   GPU into a GPUParamStore, one pass of the rule's fused WGSL kernel (src/webgpu), the
 *   variables assigned new tensors copied from it; the state in GPUBuffers.
 *
 * Rules with more than a step:
 * - Schedule-Free SGD / AdamW: the variables hold y while training; the adapter's `eval()`
 *   moves every variable it has updated to x (the average to evaluate or save) and
 *   `train()` back, as the core optimizer's `eval(params)` / `train(params)` do; a step in
 *   eval mode is refused. The mode is saved in the state (`trainMode`).
 * - LAMB: the trust ratio's norms are over each variable (each tf.Variable is one
 *   parameter tensor, as in optax).
 * - EMA, SWA, GradientAccumulation, Lookahead around an optimizer (wrappers.ts):
 *   `tfOptimizer(new EMA(new AdamW()))` runs on the kernel path on every backend. EMA's and
 *   SWA's averages: `averaged()`, and `swap()` exchanges the variables with them to
 *   evaluate or save the averaged model (and back). Their state is saved with the rest.
 * - Muon: each variable's [rows, cols] is its TF.js shape; a variable that is not 2-D is
 *   refused, naming it. Muon and another optimizer over one model (Muon's authors'
 *   recommendation) are two adapters, each given the gradients of its variables:
 *   `tfOptimizer(partition(assign, { muon: new Muon(), adamw: new AdamW() }))` is one
 *   tf.Optimizer for both (partition.ts).
 */
import type { Partition } from '../partition.ts';
import { TfOptimizer } from './adapter.ts';
import { TfPartition, type TfWrappedMembers } from './partition.ts';
import type { TfOptimizerOptions, TfWrappable } from './types.ts';
import type { TfWrapper } from './wrappers.ts';

export { STATE_WEIGHT_NAME, TfOptimizer, WRAPPERS_WEIGHT_NAME, type NamedTensor, type TfOptimizerOptions, type TfPath, type TfWrappable, type TfWrapper } from './adapter.ts';
export { PARTITION_WEIGHT_NAME, TfPartition, type TfMembers, type TfWrappedMembers } from './partition.ts';

/**
 * Wraps an optimizer of this library as a `tf.Optimizer`, for `model.compile({ optimizer })`,
 * `optimizer.minimize(...)` and `optimizer.applyGradients(...)`; a `partition(...)` of them
 * as one (each variable stepped by the optimizer its name is assigned to).
 */
export function tfOptimizer<O extends TfWrappable | TfWrapper>(optimizer: O, options?: TfOptimizerOptions): TfOptimizer<O>;
export function tfOptimizer<M extends TfWrappedMembers>(optimizer: Partition<M>, options?: TfOptimizerOptions): TfPartition<M>;
export function tfOptimizer(optimizer: TfWrappable | TfWrapper | Partition<TfWrappedMembers>, options: TfOptimizerOptions = {}): TfOptimizer<TfWrappable | TfWrapper> | TfPartition<TfWrappedMembers> {
  if (isPartition(optimizer)) return new TfPartition(optimizer, options);
  return new TfOptimizer(optimizer, options);
}

function isPartition(value: unknown): value is Partition<TfWrappedMembers> {
  const candidate = value as { members?: unknown; memberOf?: unknown } | null;
  return candidate !== null && typeof candidate === 'object' && typeof candidate.memberOf === 'function' && candidate.members !== null && typeof candidate.members === 'object';
}
