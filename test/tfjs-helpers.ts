/**
 * Shared by the tfjs*.test.ts files: TF.js on its cpu and wasm backends (the wasm
 * backend loads its .wasm files from node_modules), a small fixed model and fixed data.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { ParamStore, clipGradNorm, type Partition } from 'nesterov';
import { tfOptimizer, type TfMembers, type TfOptimizer, type TfOptimizerOptions, type TfPartition, type TfWrappable } from 'nesterov/tfjs';

export { tf };

export const BACKENDS = ['cpu', 'wasm'] as const;
export type BackendName = (typeof BACKENDS)[number];

export async function useBackend(name: BackendName): Promise<void> {
  if (tf.getBackend() !== name) {
    const ok = await tf.setBackend(name);
    if (!ok) throw new Error(`tf.setBackend('${name}') failed`);
  }
  await tf.ready();
}

/** Deterministic numbers in [-1, 1) (mulberry32). */
export function numbers(count: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

export const INPUTS = 6;
export const HIDDEN = 8;
export const OUTPUTS = 3;
export const BATCH = 8;

/** The small model: 6 -> 8 (tanh) -> 3, its weights fixed by `seed`; without biases, its variables are the two matrices. */
export function smallModel(seed = 1, useBias = true): tf.Sequential {
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [INPUTS], units: HIDDEN, activation: 'tanh', useBias }), tf.layers.dense({ units: OUTPUTS, useBias })],
  });
  const shapes = useBias ? [[INPUTS, HIDDEN], [HIDDEN], [HIDDEN, OUTPUTS], [OUTPUTS]] : [[INPUTS, HIDDEN], [HIDDEN, OUTPUTS]];
  const weights = shapes.map((shape, i) => tf.tensor(numbers(shape.reduce((a, b) => a * b, 1), seed * 100 + i).map((x) => x * 0.5), shape));
  model.setWeights(weights);
  tf.dispose(weights);
  return model;
}

/** `steps` fixed batches: inputs in [-1, 1), targets a fixed function of them. */
export function batches(steps: number): { xs: tf.Tensor2D; ys: tf.Tensor2D } {
  const x = numbers(steps * BATCH * INPUTS, 7);
  const y = new Float32Array(steps * BATCH * OUTPUTS);
  for (let r = 0; r < steps * BATCH; r++) {
    for (let o = 0; o < OUTPUTS; o++) y[r * OUTPUTS + o] = Math.sin(x[r * INPUTS + o]! * 2 + x[r * INPUTS + o + 3]!);
  }
  return { xs: tf.tensor2d(x, [steps * BATCH, INPUTS]), ys: tf.tensor2d(y, [steps * BATCH, OUTPUTS]) };
}

/** Trains the small model with `optimizer` by model.fit over `steps` batches (shuffle off); returns its weights. */
export async function fitSmall(optimizer: tf.Optimizer, steps: number): Promise<Float32Array[]> {
  const model = smallModel();
  model.compile({ optimizer, loss: 'meanSquaredError' });
  const { xs, ys } = batches(steps);
  await model.fit(xs, ys, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
  const weights = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
  tf.dispose([xs, ys]);
  model.dispose();
  return weights;
}

/** The largest |a - b| / (1 + |b|) over all weights. */
export function maxRelativeDifference(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let worst = 0;
  a.forEach((array, k) => array.forEach((x, i) => {
    const y = b[k]![i]!;
    worst = Math.max(worst, Math.abs(x - y) / (1 + Math.abs(y)));
  }));
  return worst;
}

/** The number of elements whose bits differ. */
export function bitDifferences(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let count = 0;
  a.forEach((array, k) => {
    const x = new Uint32Array(array.buffer, array.byteOffset, array.length);
    const y = new Uint32Array(b[k]!.buffer, b[k]!.byteOffset, b[k]!.length);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) count++;
  });
  return count;
}

/** The model's variables as copies, in model order. */
export function weightsOf(model: tf.LayersModel): Float32Array[] {
  return model.trainableWeights.map((w) => w.read().dataSync().slice() as Float32Array);
}

/** The mean squared error of the small model on batch `step` of `batches`. */
export function lossFn(model: tf.Sequential, xs: tf.Tensor2D, ys: tf.Tensor2D, step: number): () => tf.Scalar {
  return () => {
    const x = xs.slice([step * BATCH, 0], [BATCH, -1]);
    const y = ys.slice([step * BATCH, 0], [BATCH, -1]);
    return tf.losses.meanSquaredError(y, model.predict(x) as tf.Tensor) as tf.Scalar;
  };
}

export interface AgainstCore<A = TfOptimizer, C = TfWrappable> {
  /** The model's weights after the adapter's steps. */
  adapter: Float32Array[];
  /** The core optimizer's float32 ParamStore after the same steps on the same gradients. */
  core: Float32Array[];
  opt: A;
  core_: C;
}

export interface AgainstCoreOptions<A = TfOptimizer, C = TfWrappable> {
  /** Steps (default 12). */
  steps?: number;
  /** The gradients of this step are replaced by NaN. */
  nanAt?: number;
  /** The small model with biases (default) or without (Muon: matrices only). */
  useBias?: boolean;
  /** Called after each step with both optimizers, the model and the core's store (Schedule-Free's eval / train). */
  after?: (step: number, opt: A, core: C, model: tf.Sequential, store: ParamStore) => void;
}

/**
 * Trains the small model `steps` steps with the adapter over `make()` while the core
 * optimizer `make()` steps a float32 ParamStore with the same gradients (read out of
 * TF.js). Returns both weights.
 */
export function runAgainstCore(make: () => TfWrappable, options: TfOptimizerOptions, run?: AgainstCoreOptions): AgainstCore;
export function runAgainstCore(make: () => Partition<TfMembers>, options: TfOptimizerOptions, run?: AgainstCoreOptions<TfPartition, Partition<TfMembers>>): AgainstCore<TfPartition, Partition<TfMembers>>;
export function runAgainstCore(
  make: () => TfWrappable | Partition<TfMembers>,
  options: TfOptimizerOptions,
  run: AgainstCoreOptions<TfOptimizer & TfPartition, TfWrappable & Partition<TfMembers>> = {},
): AgainstCore<TfOptimizer | TfPartition, TfWrappable | Partition<TfMembers>> {
  const steps = run.steps ?? 12;
  const model = smallModel(1, run.useBias ?? true);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { xs, ys } = batches(steps);
  const opt = tfOptimizer(make() as TfWrappable, options) as TfOptimizer & TfPartition;
  const core = make() as TfWrappable & Partition<TfMembers>;
  const shapes: Record<string, number[]> = {};
  for (const v of variables) shapes[v.name] = v.shape;
  const store = new ParamStore(shapes, { stateBuffers: core.stateBuffersPerParam() });
  for (const v of variables) store.params[v.name]!.set(v.dataSync());
  for (let step = 0; step < steps; step++) {
    const { value, grads } = tf.variableGrads(lossFn(model, xs, ys, step), variables);
    value.dispose();
    if (step === run.nanAt) {
      const name = variables[1]!.name;
      grads[name]!.dispose();
      grads[name] = tf.fill(variables[1]!.shape, NaN);
    }
    for (const v of variables) store.grads[v.name]!.set(grads[v.name]!.dataSync());
    if (options.clipGradNorm !== undefined) clipGradNorm(store.grads, options.clipGradNorm, { nonFinite: 'return' });
    core.update(store.params, store.grads);
    opt.applyGradients(grads);
    tf.dispose(grads);
    run.after?.(step, opt, core, model, store);
  }
  const adapter = weightsOf(model);
  const coreWeights = variables.map((v) => store.params[v.name]!.slice());
  tf.dispose([xs, ys]);
  model.dispose();
  return { adapter, core: coreWeights, opt, core_: core };
}

/** The bits of every weight an optimizer exports (state included), by name. */
export async function exportedBits(opt: tf.Optimizer): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const w of await opt.getWeights()) {
    const data = await w.tensor.data();
    out.set(w.name, w.tensor.dtype === 'string' ? String(data[0]) : Buffer.from((data as Float32Array | Int32Array).buffer, (data as Float32Array).byteOffset, (data as Float32Array).byteLength).toString('hex'));
  }
  return out;
}

/** What `model.save` with its optimizer writes, in memory. */
export async function saveArtifacts(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (saved) => {
    artifacts = saved;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }), { includeOptimizer: true });
  return artifacts!;
}

/** `model.save` with its optimizer into memory, then `tf.loadLayersModel` of what was saved. */
export async function saveAndLoad(model: tf.LayersModel): Promise<tf.LayersModel> {
  return tf.loadLayersModel(tf.io.fromMemory(await saveArtifacts(model)));
}
