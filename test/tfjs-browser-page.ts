/**
 * The page of test/tfjs-browser.test.ts (bundled by esbuild): nesterov/tfjs on TF.js's
 * cpu, webgl and webgpu backends in Chromium. For each backend it reports the weights
 * after model.fit with tfOptimizer(new Adam({ lr: 1e-2 })), the tensor count over many
 * steps, and what a NaN gradient does (nonFinite 'error' and 'skip').
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { Adam } from 'nesterov';
import { tfOptimizer, type TfOptimizer } from 'nesterov/tfjs';

/** Deterministic numbers in [-1, 1) (mulberry32, as test/tfjs-helpers.ts). */
function numbers(count: number, seed: number): Float32Array {
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

const STEPS = 12;
const BATCH = 8;

function smallModel(): tf.Sequential {
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [6], units: 8, activation: 'tanh' }), tf.layers.dense({ units: 3 })] });
  const shapes = [[6, 8], [8], [8, 3], [3]];
  const weights = shapes.map((shape, i) => tf.tensor(numbers(shape.reduce((a, b) => a * b, 1), 100 + i).map((x) => x * 0.5), shape));
  model.setWeights(weights);
  tf.dispose(weights);
  return model;
}

async function fit(): Promise<number[][]> {
  const model = smallModel();
  const opt = tfOptimizer(new Adam({ lr: 1e-2 }));
  model.compile({ optimizer: opt, loss: 'meanSquaredError' });
  const x = numbers(STEPS * BATCH * 6, 7);
  const y = new Float32Array(STEPS * BATCH * 3);
  for (let r = 0; r < STEPS * BATCH; r++) for (let o = 0; o < 3; o++) y[r * 3 + o] = Math.sin(x[r * 6 + o]! * 2 + x[r * 6 + o + 3]!);
  const xs = tf.tensor2d(x, [STEPS * BATCH, 6]);
  const ys = tf.tensor2d(y, [STEPS * BATCH, 3]);
  await model.fit(xs, ys, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
  const weights: number[][] = [];
  for (const w of model.getWeights()) weights.push(Array.from(await w.data()));
  await opt.getWeights(); // every verdict read: none refused
  tf.dispose([xs, ys]);
  opt.dispose();
  model.dispose();
  return weights;
}

/** numTensors after the first step and after 200 (with the verdicts read), and after dispose. */
async function leak(backend: string): Promise<number[]> {
  const v = tf.variable(tf.zeros([4, 3]), true, `leak_${backend}`);
  const g = tf.fill([4, 3], 0.01);
  const baseline = tf.memory().numTensors;
  const opt = tfOptimizer(new Adam({ lr: 1e-3 }), { clipGradNorm: 10 });
  opt.applyGradients({ [v.name]: g });
  await opt.getWeights();
  const first = tf.memory().numTensors;
  for (let i = 1; i < 200; i++) {
    opt.applyGradients({ [v.name]: g });
    if (i % 20 === 0) await tf.nextFrame();
  }
  await opt.getWeights();
  const last = tf.memory().numTensors;
  opt.dispose();
  const after = tf.memory().numTensors - baseline;
  tf.dispose([v, g]);
  return [first, last, after];
}

/** A NaN gradient after one finite step: what is thrown (now or at the next read), and what changed. */
async function nan(backend: string, nonFinite: 'error' | 'skip'): Promise<{ error: string | null; changed: boolean; stepCount: number; skippedSteps: number; next: boolean }> {
  const v = tf.variable(tf.tensor([1, 2, 3]), true, `nan_${backend}_${nonFinite}`);
  const opt: TfOptimizer = tfOptimizer(new Adam({ lr: 0.1, nonFinite }));
  const g = tf.tensor([0.5, -0.5, 1]);
  const bad = tf.tensor([0.5, NaN, 1]);
  opt.applyGradients({ [v.name]: g });
  const before = Array.from(await v.data());
  let error: string | null = null;
  try {
    opt.applyGradients({ [v.name]: bad });
    await opt.getWeights(); // where the verdict is read later, its error comes here
  } catch (e) {
    error = (e as Error).message;
  }
  const after = Array.from(await v.data());
  const result = { error, changed: after.some((x, i) => x !== before[i]), stepCount: opt.stepCount, skippedSteps: opt.skippedSteps, next: false };
  // The next finite step proceeds.
  opt.applyGradients({ [v.name]: g });
  await opt.getWeights();
  result.next = opt.stepCount === 2;
  opt.dispose();
  tf.dispose([v, g, bad]);
  return result;
}

const report: Record<string, unknown> = {};
for (const backend of ['cpu', 'webgl', 'webgpu']) {
  try {
    if (!(await tf.setBackend(backend))) throw new Error(`tf.setBackend('${backend}') returned false`);
    await tf.ready();
    report[backend] = { weights: await fit(), leak: await leak(backend), nanError: await nan(backend, 'error'), nanSkip: await nan(backend, 'skip'), backend: tf.getBackend() };
  } catch (error) {
    report[backend] = { failed: String((error as Error).stack ?? error) };
  }
}
console.log('result ' + JSON.stringify(report));
