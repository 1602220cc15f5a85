/**
 * Shared by the tfjs*.test.ts files: TF.js on its cpu and wasm backends (the wasm
 * backend loads its .wasm files from node_modules), a small fixed model and fixed data.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

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

/** The small model: 6 -> 8 (tanh) -> 3, its weights fixed by `seed`. */
export function smallModel(seed = 1): tf.Sequential {
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [INPUTS], units: HIDDEN, activation: 'tanh' }), tf.layers.dense({ units: OUTPUTS })],
  });
  const shapes = [[INPUTS, HIDDEN], [HIDDEN], [HIDDEN, OUTPUTS], [OUTPUTS]];
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
