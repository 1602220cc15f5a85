/**
 * Our state in TF.js's weight format (what `getWeights` returns and `setWeights` takes,
 * what `model.save({ includeOptimizer })` stores): `iter`, then one float32 tensor per
 * state buffer named `<variable>/<buffer>` (e.g. `dense/kernel/velocity`), then
 * `nesterov/state`, a string tensor with the JSON of the rest (rule, variant, step
 * counts, per-parameter steps and scalars). Reading checks everything it reads and
 * throws, naming the weight and the value, before the caller changes anything.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describeValue } from '../errors.ts';
import { STATE_FORMAT, STATE_VERSION, type OptimizerStateDict } from '../state.ts';
import type { NamedTensor } from './types.ts';

/** The weight that holds everything of our state that is not a per-element buffer. */
export const STATE_WEIGHT_NAME = 'nesterov/state';

/** A variable's shape when it is registered with `length` elements, else [length]. */
export function shapeOf(name: string, length: number): number[] {
  const variable = tf.engine().registeredVariables[name];
  return variable !== undefined && variable.size === length ? variable.shape.slice() : [length];
}

/** The weights of a state dict and TF.js's iteration count (new tensors: the caller owns them). */
export function weightsOf(dict: OptimizerStateDict, iterations: number): NamedTensor[] {
  const weights: NamedTensor[] = [{ name: 'iter', tensor: tf.scalar(iterations, 'int32') }];
  const meta: { [key: string]: unknown } = {
    format: dict.format,
    version: dict.version,
    optimizer: dict.optimizer,
    variant: dict.variant,
    stepCount: dict.stepCount,
    skippedSteps: dict.skippedSteps,
    params: Object.entries(dict.params).map(([name, record]) => ({ name, length: record.length, step: record.step, scalars: record.scalars, buffers: Object.keys(record.buffers) })),
    // The optimizer's own scalars (Prodigy's and D-Adaptation's estimate), where it keeps some.
    ...(dict.scalars === undefined ? {} : { scalars: dict.scalars }),
  };
  if (dict.hyperparameters !== undefined) meta.hyperparameters = dict.hyperparameters;
  for (const [name, record] of Object.entries(dict.params)) {
    const shape = shapeOf(name, record.length);
    for (const [key, values] of Object.entries(record.buffers)) {
      // A shaped state's buffer (Adafactor's vRow, vCol) is not of the variable's shape: flat.
      const own = values.length === record.length ? shape : [values.length];
      weights.push({ name: `${name}/${key}`, tensor: tf.tensor(Float32Array.from(values), own, 'float32') });
    }
  }
  weights.push({ name: STATE_WEIGHT_NAME, tensor: tf.scalar(JSON.stringify(meta), 'string') });
  return weights;
}

/**
 * The state dict (unvalidated: the optimizer's loadStateDict checks it) and the iteration
 * count in weights that weightsOf made; a clear TypeError for anything else.
 */
export async function stateOfWeights(owner: string, weightValues: unknown, className: string): Promise<{ dict: unknown; iterations: number }> {
  const { byName, iter, metaTensor } = weightsByName(owner, weightValues, STATE_WEIGHT_NAME, className);
  const iterations = await readIter(owner, iter);
  const meta = await readMeta(owner, metaTensor, STATE_WEIGHT_NAME) as { [key: string]: unknown };
  // A field this reader does not know would be dropped without a word (a corrupted key
  // among them: '{ormat' for 'format', which then takes its default).
  refuseUnknown(owner, `'${STATE_WEIGHT_NAME}'`, meta, META_FIELDS);
  if (!Array.isArray(meta.params)) throw new TypeError(`${owner}: '${STATE_WEIGHT_NAME}' has no params list, got ${describeValue(meta.params)}`);
  const params = Object.create(null) as { [name: string]: unknown };
  for (const [i, value] of (meta.params as unknown[]).entries()) {
    const record = value as { name?: unknown; length?: unknown; step?: unknown; scalars?: unknown; buffers?: unknown } | null;
    if (record === null || typeof record !== 'object' || typeof record.name !== 'string' || !Array.isArray(record.buffers) || record.buffers.some((key) => typeof key !== 'string')) {
      throw new TypeError(`${owner}: '${STATE_WEIGHT_NAME}' params[${i}] must be { name, length, step, scalars, buffers: [names] }, got ${describeValue(value)}`);
    }
    refuseUnknown(owner, `'${STATE_WEIGHT_NAME}' params[${i}]`, record, RECORD_FIELDS);
    if (Object.hasOwn(params, record.name)) throw new TypeError(`${owner}: '${STATE_WEIGHT_NAME}' lists parameter '${record.name}' twice`);
    const buffers = Object.create(null) as { [key: string]: Float32Array };
    for (const key of record.buffers as string[]) {
      const name = `${record.name}/${key}`;
      const tensor = byName.get(name);
      if (tensor === undefined) throw new TypeError(`${owner}: the weights lack '${name}'`);
      buffers[key] = await readBuffer(owner, name, tensor);
    }
    params[record.name] = { dtype: 'float32', length: record.length, step: record.step, scalars: record.scalars, buffers };
  }
  const dict: { [key: string]: unknown } = { format: meta.format ?? STATE_FORMAT, version: meta.version ?? STATE_VERSION, optimizer: meta.optimizer, variant: meta.variant, stepCount: meta.stepCount, skippedSteps: meta.skippedSteps, params };
  // Hyperparameters set at run time, and a global-phase rule's scalars: each absent where
  // there are none (and in weights saved before they existed).
  if (meta.hyperparameters !== undefined) dict.hyperparameters = meta.hyperparameters;
  if (meta.scalars !== undefined) dict.scalars = meta.scalars;
  return { dict, iterations };
}

/** The fields weightsOf writes in the JSON weight, and in each of its parameter records. */
const META_FIELDS = ['format', 'version', 'optimizer', 'variant', 'stepCount', 'skippedSteps', 'params', 'hyperparameters', 'scalars'] as const;
const RECORD_FIELDS = ['name', 'length', 'step', 'scalars', 'buffers'] as const;

function refuseUnknown(owner: string, where: string, value: object, known: readonly string[]): void {
  const unknown = Object.keys(value).find((key) => !known.includes(key));
  if (unknown !== undefined) throw new TypeError(`${owner}: ${where} has an unknown field ${describeValue(unknown)} (known: ${known.join(', ')})`);
}

/**
 * The weights setWeights was given, by name, with 'iter' and the JSON metadata tensor
 * `metaName` (a string tensor) that every saved set carries; a clear TypeError otherwise.
 */
export function weightsByName(
  owner: string, weightValues: unknown, metaName: string, className: string,
): { byName: Map<string, tf.Tensor>; iter: tf.Tensor; metaTensor: tf.Tensor } {
  if (!Array.isArray(weightValues)) throw new TypeError(`${owner}: expected an array of { name, tensor }, got ${describeValue(weightValues)}`);
  const byName = new Map<string, tf.Tensor>();
  for (const w of weightValues as unknown[]) {
    const weight = w as { name?: unknown; tensor?: unknown } | null;
    if (weight === null || typeof weight !== 'object' || typeof weight.name !== 'string' || !(weight.tensor instanceof tf.Tensor)) {
      throw new TypeError(`${owner}: every weight must be { name, tensor }, got ${describeValue(w)}`);
    }
    if (weight.tensor.isDisposed) throw new TypeError(`${owner}: weight '${weight.name}' is disposed`);
    byName.set(weight.name, weight.tensor);
  }
  const iter = byName.get('iter');
  const metaTensor = byName.get(metaName);
  if (iter === undefined || metaTensor === undefined || metaTensor.dtype !== 'string') {
    throw new TypeError(`${owner}: the weights lack 'iter' or '${metaName}' (they were not saved by a ${className})`);
  }
  return { byName, iter, metaTensor };
}

/** The value of the weight 'iter' (TF.js's count of applyGradients calls): one integer >= 0. */
export async function readIter(owner: string, iter: tf.Tensor): Promise<number> {
  if (iter.dtype !== 'int32' && iter.dtype !== 'float32') {
    const shown = iter.dtype === 'string' && iter.size === 1 ? ` (${describeValue((await iter.data())[0])})` : '';
    throw new TypeError(`${owner}: weight 'iter' must be an int32 or float32 scalar, got a ${iter.dtype} tensor${shown}`);
  }
  if (iter.size !== 1) throw new TypeError(`${owner}: weight 'iter' must hold one value, got shape [${iter.shape.join(', ')}]`);
  const value = (await iter.data())[0]!;
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`${owner}: weight 'iter' must be an integer >= 0, got ${describeValue(value)}`);
  return value;
}

/** The JSON object in the string weight `name`. */
export async function readMeta(owner: string, tensor: tf.Tensor, name: string): Promise<object> {
  if (tensor.size !== 1) throw new TypeError(`${owner}: weight '${name}' must hold one string, got shape [${tensor.shape.join(', ')}]`);
  let meta: unknown;
  try {
    meta = JSON.parse(String((await tensor.data())[0]));
  } catch (error) {
    throw new TypeError(`${owner}: '${name}' is not JSON: ${(error as Error).message}`);
  }
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw new TypeError(`${owner}: '${name}' must hold a JSON object, got ${describeValue(meta)}`);
  return meta;
}

/** A state buffer's values: the weight must be float32 (getWeights saves float32; another dtype is not ours). */
async function readBuffer(owner: string, name: string, tensor: tf.Tensor): Promise<Float32Array> {
  if (tensor.dtype !== 'float32') throw new TypeError(`${owner}: weight '${name}' must be float32, got ${tensor.dtype}`);
  return Float32Array.from(await tensor.data() as Float32Array);
}
