/**
 * The page of test/tfjs-webgpu.test.ts (bundled by esbuild): tfOptimizer on TF.js's
 * webgpu backend (the 'webgpu' path: our GPU kernels on the variables' buffers) against
 * the cpu backend's kernel path (our WebAssembly kernels). It reports, per optimizer,
 * 20 steps of applyGradients with the same gradients on both backends (with the sums the
 * bound of docs/webgpu.md needs), 20 steps of model.fit on both, 10 + 10 steps through
 * getWeights / setWeights into a fresh optimizer, the tensor count over model.fit, what
 * a NaN gradient does, and which path each kind of optimizer takes on webgpu.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { Adafactor, Adam, DAdaptAdamW, EMA, LAMB, loadKernels, Nesterov, partition, Prodigy, ScheduleFreeAdamW, type AnyOptimizer } from 'nesterov';
import { STATE_WEIGHT_NAME, tfOptimizer, type TfOptimizer } from 'nesterov/tfjs';

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

const STEPS = 20;
const BATCH = 8;
const MAKERS: Record<string, () => AnyOptimizer> = {
  adam: () => new Adam({ lr: 1e-2 }),
  nesterov: () => new Nesterov({ lr: 0.05, momentum: 0.9 }),
  // The global rules: one estimate d over every variable of a step, reduced on the device.
  prodigy: () => new Prodigy({ weightDecay: 0.01, estimLrCoef: 10 }) as unknown as AnyOptimizer,
  dadapt: () => new DAdaptAdamW({ weightDecay: 0.01 }) as unknown as AnyOptimizer,
  // The model's two matrices (6 x 8, 8 x 3) factored: getWeights / setWeights carry vRow and vCol.
  adafactor: () => new Adafactor({ lr: 1e-2, minDimSizeToFactor: 3 }),
};

/** applyGradients only: Schedule-Free's eval() moves the variables on the GPU too; clipGradNorm (0.5: it scales every step here). */
const APPLIED: Record<string, () => AnyOptimizer> = {
  ...MAKERS,
  schedulefree: () => new ScheduleFreeAdamW({ lr: 1e-2, warmupSteps: 5 }),
  'adam clipGradNorm': () => new Adam({ lr: 1e-2 }),
  // Its norms summed on the device between its passes (src/webgpu/rules/lamb.ts).
  lamb: () => new LAMB({ lr: 1e-2, weightDecay: 0.01 }),
  // No TF.js ops: the kernel path on cpu, its GPU program on webgpu; w (7 x 13) factored.
  adafactor: () => new Adafactor({ lr: 1e-2, minDimSizeToFactor: 4, momentum: 0.9 }),
};
const CLIP: Record<string, number> = { 'adam clipGradNorm': 0.5 };
/** The global rules' gradients drift one way (a direction fixed per variable, times this): their estimate d then grows. */
const DRIFT: Record<string, number> = { prodigy: 0.5, dadapt: 0.5 };

/** Variables of lengths not multiples of the store's 64-element alignment. */
const SHAPES: Record<string, number[]> = { w: [7, 13], b: [5], c: [300] };

export interface AppliedRun {
  path: string | undefined;
  /** Per variable, its values after 20 steps. */
  params: number[][];
  /** Per variable and element: sum over the steps of |p_t - p_(t-1)|, and max_t |p_t| (the bound's terms). */
  moved: number[][];
  largest: number[][];
  /** tf.memory().numTensors after the first step and after the last. */
  tensors: [number, number];
  /** Schedule-Free: the values after eval(), then after train(). */
  evaluated?: number[][];
  trained?: number[][];
  /** A global rule: its optimizer-level scalars after 20 steps (getWeights' state). */
  scalars?: Record<string, number>;
}

/** The optimizer-level scalars in getWeights' state weight (a global rule's estimate), or undefined. */
async function scalarsOf(opt: TfOptimizer): Promise<Record<string, number> | undefined> {
  const weight = (await opt.getWeights()).find((w) => w.name === STATE_WEIGHT_NAME)!;
  return (JSON.parse((await weight.tensor.data())[0] as unknown as string) as { scalars?: Record<string, number> }).scalars;
}

/** 20 steps of applyGradients, the same gradients on every backend (of every scale, as the GPU tests'). */
async function applied(make: () => AnyOptimizer, tag: string, clip: number | undefined, drift = 0): Promise<AppliedRun> {
  const names = Object.keys(SHAPES);
  const variables = names.map((name, k) => tf.variable(tf.tensor(numbers(SHAPES[name]!.reduce((a, b) => a * b, 1), 1000 + k), SHAPES[name]!), true, `${tag}_${name}`));
  const opt = tfOptimizer(make(), { clipGradNorm: clip });
  const tensors: [number, number] = [0, 0];
  let previous = await Promise.all(variables.map(async (v) => Float32Array.from(await v.data() as Float32Array)));
  const moved = previous.map((p) => new Array<number>(p.length).fill(0));
  const largest = previous.map((p) => Array.from(p, Math.abs));
  for (let t = 0; t < STEPS; t++) {
    const grads = variables.map((v, k) => {
      const direction = numbers(v.size, 500 + k);
      return tf.tensor(numbers(v.size, 7 * t + k).map((g, i) => g * 10 ** ((i % 5) - 2) + drift * direction[i]!), v.shape);
    });
    opt.applyGradients(Object.fromEntries(variables.map((v, k) => [v.name, grads[k]!])));
    tf.dispose(grads);
    if (t === 0 || t === STEPS - 1) tensors[t === 0 ? 0 : 1] = tf.memory().numTensors;
    const now = await Promise.all(variables.map(async (v) => Float32Array.from(await v.data() as Float32Array)));
    now.forEach((p, k) => p.forEach((x, i) => {
      moved[k]![i]! += Math.abs(x - previous[k]![i]!);
      largest[k]![i] = Math.max(largest[k]![i]!, Math.abs(x));
    }));
    previous = now;
  }
  await opt.sync();
  const path = opt.path;
  const run: AppliedRun = { path, params: previous.map((p) => Array.from(p)), moved, largest, tensors };
  const scalars = await scalarsOf(opt);
  if (scalars !== undefined) run.scalars = scalars;
  if (opt.mode !== undefined) {
    opt.eval();
    run.evaluated = await Promise.all(variables.map(async (v) => Array.from(await v.data())));
    opt.train();
    run.trained = await Promise.all(variables.map(async (v) => Array.from(await v.data())));
  }
  opt.dispose();
  tf.dispose(variables);
  return run;
}

function smallModel(): tf.Sequential {
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [6], units: 8, activation: 'tanh' }), tf.layers.dense({ units: 3 })] });
  const shapes = [[6, 8], [8], [8, 3], [3]];
  const weights = shapes.map((shape, i) => tf.tensor(numbers(shape.reduce((a, b) => a * b, 1), 100 + i).map((x) => x * 0.5), shape));
  model.setWeights(weights);
  tf.dispose(weights);
  return model;
}

/** Rows [from, to) of the data set, in batches of BATCH. */
function data(from: number, to: number): [tf.Tensor2D, tf.Tensor2D] {
  const x = numbers(STEPS * BATCH * 6, 7);
  const y = new Float32Array(STEPS * BATCH * 3);
  for (let r = 0; r < STEPS * BATCH; r++) for (let o = 0; o < 3; o++) y[r * 3 + o] = Math.sin(x[r * 6 + o]! * 2 + x[r * 6 + o + 3]!);
  return [tf.tensor2d(x.slice(from * BATCH * 6, to * BATCH * 6), [(to - from) * BATCH, 6]), tf.tensor2d(y.slice(from * BATCH * 3, to * BATCH * 3), [(to - from) * BATCH, 3])];
}

async function fitSteps(model: tf.Sequential, from: number, to: number): Promise<void> {
  const [xs, ys] = data(from, to);
  await model.fit(xs, ys, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
  tf.dispose([xs, ys]);
}

async function weightsOf(model: tf.Sequential): Promise<number[][]> {
  const out: number[][] = [];
  for (const w of model.getWeights()) out.push(Array.from(await w.data()));
  return out;
}

export interface FitRun {
  path: string | undefined;
  /** The weights after 20 steps of model.fit. */
  straight: number[][];
  /** After 10 steps, getWeights, setWeights into a fresh optimizer, 10 more. */
  resumed: number[][];
  /** tf.memory().numTensors before the first fit, after its 20 steps, after 20 more. */
  tensors: [number, number, number];
}

async function fits(make: () => AnyOptimizer): Promise<FitRun> {
  const model = smallModel();
  const opt = tfOptimizer(make());
  model.compile({ optimizer: opt, loss: 'meanSquaredError' });
  const before = tf.memory().numTensors;
  await fitSteps(model, 0, STEPS);
  await opt.sync();
  const afterFirst = tf.memory().numTensors;
  const straight = await weightsOf(model);
  await fitSteps(model, 0, STEPS);
  await opt.sync();
  const afterSecond = tf.memory().numTensors;
  const path = opt.path;
  opt.dispose();
  model.dispose();

  const second = smallModel();
  const first = tfOptimizer(make());
  second.compile({ optimizer: first, loss: 'meanSquaredError' });
  await fitSteps(second, 0, STEPS / 2);
  const saved = await first.getWeights();
  const fresh = tfOptimizer(make());
  await fresh.setWeights(saved);
  first.dispose();
  second.compile({ optimizer: fresh, loss: 'meanSquaredError' });
  await fitSteps(second, STEPS / 2, STEPS);
  await fresh.sync();
  const resumed = await weightsOf(second);
  fresh.dispose();
  second.dispose();
  return { path, straight, resumed, tensors: [before, afterFirst, afterSecond] };
}

export interface NanRun {
  path: string | undefined;
  /** Thrown by `await sync()` after the NaN step. */
  syncError: string | null;
  /** Whether the refused step changed the variable or the state (getWeights). */
  changed: boolean;
  stepCount: number;
  /** The finite step after the error: taken (stepCount 2). */
  nextStepCount: number;
  /** A second NaN step, the device's verdict awaited: thrown by the next applyGradients, which writes nothing. */
  applyError: string | null;
  applyChanged: boolean;
  applyStepCount: number;
  /** With clipGradNorm: the error of a NaN gradient, at `await sync()` (the scan sees the gradient as given). */
  clipError: string | null;
  /** A partition of two Adams, a NaN in the second's gradient: its members' paths and the error at `await sync()`. */
  partitionPaths: (string | undefined)[];
  partitionError: string | null;
}

async function valuesOf(opt: TfOptimizer, v: tf.Variable): Promise<string> {
  const weights = await opt.getWeights();
  const state: number[][] = [];
  // 'iter' is TF.js's count of applyGradients calls (refused ones too); the rest is the state.
  for (const w of weights) if (w.tensor.dtype !== 'string' && w.name !== 'iter') state.push(Array.from(await w.tensor.data()));
  return JSON.stringify([Array.from(await v.data()), state]);
}

async function nan(): Promise<NanRun> {
  const v = tf.variable(tf.tensor([1, 2, 3]), true, 'nan_gpu');
  const opt: TfOptimizer = tfOptimizer(new Adam({ lr: 0.1 }));
  const g = tf.tensor([0.5, -0.5, 1]);
  const bad = tf.tensor([0.5, NaN, 1]);
  opt.applyGradients({ [v.name]: g });
  const before = await valuesOf(opt, v);
  opt.applyGradients({ [v.name]: bad });
  let syncError: string | null = null;
  try {
    await opt.sync();
  } catch (e) {
    syncError = `${(e as Error).name}: ${(e as Error).message}`;
  }
  const changed = (await valuesOf(opt, v)) !== before;
  const stepCount = opt.stepCount;
  opt.applyGradients({ [v.name]: g });
  await opt.sync();
  const nextStepCount = opt.stepCount;
  const beforeApply = await valuesOf(opt, v);
  opt.applyGradients({ [v.name]: bad });
  await new Promise((resolve) => setTimeout(resolve, 200)); // the device reports the refusal
  let applyError: string | null = null;
  try {
    opt.applyGradients({ [v.name]: g });
  } catch (e) {
    applyError = `${(e as Error).name}: ${(e as Error).message}`;
  }
  const applyChanged = (await valuesOf(opt, v)) !== beforeApply;
  const applyStepCount = opt.stepCount;
  const path = opt.path;
  opt.dispose();
  const clipped = tfOptimizer(new Adam({ lr: 0.1 }), { clipGradNorm: 0.1 });
  clipped.applyGradients({ [v.name]: g });
  clipped.applyGradients({ [v.name]: bad });
  let clipError: string | null = null;
  try {
    await clipped.sync();
  } catch (e) {
    clipError = `${(e as Error).name}: ${(e as Error).message}`;
  }
  clipped.dispose();
  const [pa, pb] = ['part_a', 'part_b'].map((name) => tf.variable(tf.tensor([1, 2, 3]), true, name));
  const parted = tfOptimizer(partition((name) => (name === 'part_a' ? 'one' : 'two'), { one: new Adam({ lr: 0.1 }), two: new Adam({ lr: 0.1 }) }));
  let partitionError: string | null = null;
  try {
    parted.applyGradients({ part_a: g, part_b: bad });
    await parted.sync();
  } catch (e) {
    partitionError = `${(e as Error).name}: ${(e as Error).message}`;
  }
  const partitionPaths = [parted.members.one.path, parted.members.two.path];
  parted.dispose();
  tf.dispose([v, g, bad, pa!, pb!]);
  return { path, syncError, changed, stepCount, nextStepCount, applyError, applyChanged, applyStepCount, clipError, partitionPaths, partitionError };
}

/** The path each kind of optimizer takes on the current backend (resolved by a first step). */
async function paths(): Promise<Record<string, string | undefined>> {
  const cases: Record<string, () => TfOptimizer<never>> = {
    adam: () => tfOptimizer(new Adam()) as TfOptimizer<never>,
    'adam skip': () => tfOptimizer(new Adam({ nonFinite: 'skip' })) as TfOptimizer<never>,
    'adam clipGradNorm': () => tfOptimizer(new Adam(), { clipGradNorm: 1 }) as TfOptimizer<never>,
    lamb: () => tfOptimizer(new LAMB()) as TfOptimizer<never>,
    adafactor: () => tfOptimizer(new Adafactor()) as TfOptimizer<never>,
    'adafactor skip': () => tfOptimizer(new Adafactor({ nonFinite: 'skip' })) as TfOptimizer<never>,
    'ema(adam)': () => tfOptimizer(new EMA(new Adam())) as TfOptimizer<never>,
    prodigy: () => tfOptimizer(new Prodigy()) as TfOptimizer<never>,
    'dadapt-adamw': () => tfOptimizer(new DAdaptAdamW()) as TfOptimizer<never>,
    'prodigy skip': () => tfOptimizer(new Prodigy({ nonFinite: 'skip' })) as TfOptimizer<never>,
  };
  const out: Record<string, string | undefined> = {};
  for (const [name, make] of Object.entries(cases)) {
    const v = tf.variable(tf.zeros([2, 2]), true, `path_${name}`);
    const g = tf.ones([2, 2]);
    const opt = make();
    opt.applyGradients({ [v.name]: g });
    await opt.sync();
    out[name] = opt.path;
    opt.dispose();
    tf.dispose([v, g]);
  }
  return out;
}

export interface GrowingRun {
  path: string | undefined;
  /** a, b, c after: 3 steps of a; 3 of a and b (b new: the GPU state moves to a larger store); 2 of b. */
  values: number[][];
  stepCount: number;
  /** A NaN gradient of a, then at once a step with a new variable c (the state moves before the device has answered): the error at await sync(). */
  error: string | null;
  /** Whether the refused step and the one after it changed any variable; the step count then. */
  changed: boolean;
  afterStepCount: number;
}

/** Steps over a growing set of variables (the webgpu path's store grows with them), then a refusal carried across a growth. */
async function growing(tag: string): Promise<GrowingRun> {
  const [a, b, c] = [[3, 5], [7], [4]].map((shape, k) => tf.variable(tf.tensor(numbers(shape.reduce((x, y) => x * y, 1), 50 + k), shape), true, `${tag}_grow_${'abc'[k]}`));
  const opt = tfOptimizer(new Adam({ lr: 1e-2 }));
  const step = (variables: tf.Variable[], t: number, bad = false): void => {
    const grads = variables.map((v, k) => {
      const values = numbers(v.size, 300 + 10 * t + k);
      if (bad) values[1] = NaN;
      return tf.tensor(values, v.shape);
    });
    try {
      opt.applyGradients(Object.fromEntries(variables.map((v, k) => [v.name, grads[k]!])));
    } finally {
      tf.dispose(grads);
    }
  };
  for (let t = 0; t < 3; t++) step([a!], t);
  for (let t = 3; t < 6; t++) step([a!, b!], t);
  for (let t = 6; t < 8; t++) step([b!], t);
  await opt.sync();
  const read = (): Promise<number[][]> => Promise.all([a!, b!, c!].map(async (v) => Array.from(await v.data())));
  const values = await read();
  const stepCount = opt.stepCount;
  let error: string | null = null;
  try {
    step([a!], 8, true); // the kernel path throws here, the webgpu path at sync()
    step([a!, c!], 9);
    await opt.sync();
  } catch (e) {
    error = `${(e as Error).name}: ${(e as Error).message}`;
  }
  const changed = JSON.stringify(await read()) !== JSON.stringify(values);
  const path = opt.path;
  const afterStepCount = opt.stepCount;
  opt.dispose();
  tf.dispose([a!, b!, c!]);
  return { path, values, stepCount, error, changed, afterStepCount };
}

export interface BackendReport {
  growing?: GrowingRun;
  backend: string;
  applied: Record<string, AppliedRun>;
  fits: Record<string, FitRun>;
  nan?: NanRun;
  paths?: Record<string, string | undefined>;
}

async function main(): Promise<Record<string, BackendReport | { failed: string }>> {
  await loadKernels(); // the cpu backend's kernel path runs our WebAssembly kernels
  const report: Record<string, BackendReport | { failed: string }> = {};
  for (const backend of ['cpu', 'webgpu']) {
    try {
      if (!(await tf.setBackend(backend))) throw new Error(`tf.setBackend('${backend}') returned false`);
      await tf.ready();
      const r: BackendReport = { backend: tf.getBackend(), applied: {}, fits: {} };
      for (const [name, make] of Object.entries(APPLIED)) r.applied[name] = await applied(make, `${backend}_${name}`, CLIP[name], DRIFT[name]);
      for (const [name, make] of Object.entries(MAKERS)) r.fits[name] = await fits(make);
      r.growing = await growing(backend);
      if (backend === 'webgpu') {
        r.nan = await nan();
        r.paths = await paths();
      }
      report[backend] = r;
    } catch (error) {
      report[backend] = { failed: String((error as Error).stack ?? error) };
    }
  }
  return report;
}

main().then(
  (report) => console.log('result ' + JSON.stringify(report)),
  (error: unknown) => console.log('result ' + JSON.stringify({ failed: String((error as Error).stack ?? error) })),
);
