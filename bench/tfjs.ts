/**
 * The TF.js section of `npm run bench` (or alone: `npm run bench:tfjs [-- --quick]`):
 * nesterov/tfjs against TF.js's own optimizers, on TF.js's cpu and wasm backends.
 *
 * 1. One `applyGradients` of a model of 1e6 float32 elements, as one tensor and as 100
 *    tensors of 1e4: TF.js's `momentum(0.01, 0.9, true)` and `adam(0.001)` against
 *    `tfOptimizer(new Nesterov({ variant: 'pytorch' }))` (TF.js's formula, see
 *    test/tfjs.test.ts) and `tfOptimizer(new Adam({ eps: 1e-7 }))`, kernel path. ns per
 *    element, median of interleaved samples (ours and theirs alternate, so they see the
 *    same noise), ratio = theirs / ours.
 *    Rules TF.js has no optimizer for (Lion, Schedule-Free AdamW): the same step, where
 *    "TF.js" is the rule written as TF.js ops (the adapter's 'ops' path, what a TF.js
 *    user would otherwise write), against the kernel path.
 * 2. One epoch of `model.fit` of the 784-100-10 network (relu, softmax) on the digits of
 *    the `mnist` package, batch 64, shuffle off, with each optimizer: median seconds, and
 *    the part of them spent inside `applyGradients` (the rest, forward and backward
 *    passes, is TF.js's either way and carries the machine's noise).
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { Adam, Lion, Nesterov, ScheduleFreeAdamW } from 'nesterov';
import { tfOptimizer } from 'nesterov/tfjs';
import { loadPackageDigits } from '../app/data.ts';

const ELEMENTS = 1e6;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

type RuleName = 'nesterov' | 'adam' | 'lion' | 'schedulefree-adamw';
/** Rules TF.js has no optimizer for: 'theirs' is the same rule as TF.js ops (our 'ops' path). */
const OURS_ONLY: readonly RuleName[] = ['lion', 'schedulefree-adamw'];
const lion = (): Lion => new Lion({ lr: 1e-4, weightDecay: 0.1 });
const scheduleFreeAdamW = (): ScheduleFreeAdamW => new ScheduleFreeAdamW({ lr: 0.0025, warmupSteps: 10 });
const theirs = (rule: RuleName): tf.Optimizer => {
  switch (rule) {
    case 'nesterov':
      return tf.train.momentum(0.01, 0.9, true);
    case 'adam':
      return tf.train.adam(0.001);
    case 'lion':
      return tfOptimizer(lion(), { path: 'ops' });
    case 'schedulefree-adamw':
      return tfOptimizer(scheduleFreeAdamW(), { path: 'ops' });
  }
};
const ours = (rule: RuleName): tf.Optimizer => {
  switch (rule) {
    case 'nesterov':
      return tfOptimizer(new Nesterov({ lr: 0.01, momentum: 0.9, variant: 'pytorch' }), { path: 'kernel' });
    case 'adam':
      return tfOptimizer(new Adam({ lr: 0.001, eps: 1e-7 }), { path: 'kernel' });
    case 'lion':
      return tfOptimizer(lion(), { path: 'kernel' });
    case 'schedulefree-adamw':
      return tfOptimizer(scheduleFreeAdamW(), { path: 'kernel' });
  }
};

export interface StepRow {
  backend: string;
  rule: RuleName;
  tensors: number;
  tfjsNsPerElement: number;
  oursNsPerElement: number;
  ratio: number;
}

async function useBackend(name: string): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') failed`);
  await tf.ready();
}

/** One applyGradients of 1e6 elements in `tensors` tensors, theirs and ours interleaved. */
export async function stepRow(backend: string, rule: RuleName, tensors: number, samples: number): Promise<StepRow> {
  await useBackend(backend);
  const size = ELEMENTS / tensors;
  const make = (prefix: string) =>
    Array.from({ length: tensors }, (_, i) => tf.variable(tf.randomUniform([size], -1, 1, 'float32', 1 + i), true, `${prefix}_${backend}_${rule}_${tensors}_${i}`));
  const theirVars = make('theirs');
  const ourVars = make('ours');
  const gradients = Array.from({ length: tensors }, (_, i) => tf.randomUniform([size], -1e-3, 1e-3, 'float32', 1000 + i));
  const map = (vars: tf.Variable[]): tf.NamedTensorMap => Object.fromEntries(vars.map((v, i) => [v.name, gradients[i]!]));
  const theirMap = map(theirVars);
  const ourMap = map(ourVars);
  const a = theirs(rule);
  const b = ours(rule);
  const time = (opt: tf.Optimizer, grads: tf.NamedTensorMap): number => {
    const start = process.hrtime.bigint();
    opt.applyGradients(grads);
    return Number(process.hrtime.bigint() - start);
  };
  for (let i = 0; i < 3; i++) {
    time(a, theirMap);
    time(b, ourMap);
  }
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < samples; i++) {
    ta.push(time(a, theirMap));
    tb.push(time(b, ourMap));
  }
  a.dispose();
  b.dispose();
  tf.dispose([...theirVars, ...ourVars, ...gradients]);
  const tfjsNs = median(ta) / ELEMENTS;
  const oursNs = median(tb) / ELEMENTS;
  return { backend, rule, tensors, tfjsNsPerElement: tfjsNs, oursNsPerElement: oursNs, ratio: tfjsNs / oursNs };
}

export interface FitRow {
  backend: string;
  rule: RuleName;
  tfjsSeconds: number;
  oursSeconds: number;
  ratio: number;
  /** Seconds of the epoch spent inside applyGradients (median). */
  tfjsStepSeconds: number;
  oursStepSeconds: number;
}

function network(): tf.Sequential {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [784], units: 100, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  return model;
}

/** One epoch of model.fit on `count` digits with each optimizer, `repeats` times interleaved. */
async function fitRow(backend: string, rule: RuleName, count: number, repeats: number): Promise<FitRow> {
  await useBackend(backend);
  const digits = loadPackageDigits();
  // Every k-th digit, so that all ten classes are in the subset.
  const step = Math.max(1, Math.floor(digits.count / count));
  const rows = Array.from({ length: count }, (_, i) => (i * step) % digits.count);
  const x = new Float32Array(count * 784);
  rows.forEach((r, i) => x.set(digits.images.subarray(r * 784, (r + 1) * 784), i * 784));
  const xs = tf.tensor2d(x, [count, 784]);
  const ys = tf.oneHot(tf.tensor1d(rows.map((r) => digits.labels[r]!), 'int32'), 10).toFloat();
  /** [epoch seconds, seconds inside applyGradients] */
  const epoch = async (opt: tf.Optimizer): Promise<[number, number]> => {
    let inStep = 0n;
    const apply = opt.applyGradients.bind(opt);
    opt.applyGradients = (grads) => {
      const start = process.hrtime.bigint();
      apply(grads);
      inStep += process.hrtime.bigint() - start;
    };
    const model = network();
    model.compile({ optimizer: opt, loss: 'categoricalCrossentropy' });
    const start = process.hrtime.bigint();
    await model.fit(xs, ys, { batchSize: 64, epochs: 1, shuffle: false, verbose: 0 });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    model.dispose();
    opt.dispose();
    return [seconds, Number(inStep) / 1e9];
  };
  await epoch(theirs(rule)); // warm-up (kernels compiled, caches filled)
  await epoch(ours(rule));
  const ta: [number, number][] = [];
  const tb: [number, number][] = [];
  for (let i = 0; i < repeats; i++) {
    ta.push(await epoch(theirs(rule)));
    tb.push(await epoch(ours(rule)));
  }
  tf.dispose([xs, ys]);
  const tfjsSeconds = median(ta.map((t) => t[0]));
  const oursSeconds = median(tb.map((t) => t[0]));
  return {
    backend,
    rule,
    tfjsSeconds,
    oursSeconds,
    ratio: tfjsSeconds / oursSeconds,
    tfjsStepSeconds: median(ta.map((t) => t[1])),
    oursStepSeconds: median(tb.map((t) => t[1])),
  };
}

/** Runs the section; returns its lines (a table and the targets) and the rows. */
export async function tfjsSection(options: { quick?: boolean } = {}): Promise<{ lines: string[]; steps: StepRow[]; fits: FitRow[] }> {
  const require = createRequire(import.meta.url);
  setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'))}/dist/`);
  tf.enableProdMode();
  const samples = options.quick ? 5 : 11;
  const steps: StepRow[] = [];
  for (const backend of ['cpu', 'wasm']) {
    for (const rule of ['nesterov', 'adam', ...OURS_ONLY] as const) {
      for (const tensors of [1, 100]) steps.push(await stepRow(backend, rule, tensors, samples));
    }
  }
  const fits: FitRow[] = [];
  for (const backend of ['cpu', 'wasm']) {
    for (const rule of ['nesterov', 'adam'] as const) fits.push(await fitRow(backend, rule, options.quick ? 2000 : 8000, options.quick ? 3 : 5));
  }
  const lines: string[] = [];
  lines.push('TF.js: one applyGradients of 1e6 float32 elements, ns/element (median), nesterov/tfjs kernel path vs TF.js');
  lines.push('| backend | rule | tensors | TF.js | ours | TF.js / ours |');
  lines.push('|---|---|---:|---:|---:|---:|');
  for (const r of steps) {
    if (!OURS_ONLY.includes(r.rule)) lines.push(`| ${r.backend} | ${r.rule} | ${r.tensors} | ${r.tfjsNsPerElement.toFixed(2)} | ${r.oursNsPerElement.toFixed(2)} | ${r.ratio.toFixed(1)}x |`);
  }
  lines.push('');
  lines.push("Rules TF.js has no optimizer for: the same applyGradients, ns/element (median), kernel path vs the rule as TF.js ops ('ops' path)");
  lines.push('| backend | rule | tensors | TF.js ops | ours (kernel) | ops / kernel |');
  lines.push('|---|---|---:|---:|---:|---:|');
  for (const r of steps) {
    if (OURS_ONLY.includes(r.rule)) lines.push(`| ${r.backend} | ${r.rule} | ${r.tensors} | ${r.tfjsNsPerElement.toFixed(2)} | ${r.oursNsPerElement.toFixed(2)} | ${r.ratio.toFixed(1)}x |`);
  }
  lines.push('');
  lines.push(`TF.js: one epoch of model.fit, 784-100-10, ${options.quick ? 2000 : 8000} digits, batch 64, seconds (median)`);
  lines.push('| backend | rule | TF.js | ours | TF.js / ours | of which in applyGradients: TF.js | ours |');
  lines.push('|---|---|---:|---:|---:|---:|---:|');
  for (const r of fits) {
    lines.push(`| ${r.backend} | ${r.rule} | ${r.tfjsSeconds.toFixed(3)} | ${r.oursSeconds.toFixed(3)} | ${r.ratio.toFixed(2)}x | ${r.tfjsStepSeconds.toFixed(3)} | ${r.oursStepSeconds.toFixed(3)} |`);
  }
  lines.push('');
  lines.push('TF.js targets:');
  for (const r of steps) {
    if (OURS_ONLY.includes(r.rule)) continue; // no TF.js optimizer to beat
    const need = r.backend === 'cpu' ? 10 : 1;
    lines.push(`- [${r.ratio >= need ? 'x' : ' '}] ${r.backend} ${r.rule}, ${r.tensors} tensor${r.tensors === 1 ? '' : 's'}: ours ${need === 1 ? 'faster than' : `>= ${need}x faster than`} TF.js's step: ${r.ratio.toFixed(1)}x`);
  }
  for (const r of fits) {
    // "No slower": within the noise of a median of a few epochs on a shared machine (5%).
    lines.push(`- [${r.ratio >= 0.95 ? 'x' : ' '}] ${r.backend} ${r.rule}: model.fit epoch no slower: ${r.ratio.toFixed(2)}x (time in applyGradients ${(r.tfjsStepSeconds / r.oursStepSeconds).toFixed(1)}x less)`);
  }
  return { lines, steps, fits };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const { lines } = await tfjsSection({ quick: values.quick });
  console.log(lines.join('\n'));
}
