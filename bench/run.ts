/**
 * `npm run bench`: one optimizer step, in ns per float32 element, for Nesterov, Adam,
 * Lion and Schedule-Free AdamW (any elementwise rule of bench/rules.ts with --rules) at
 * 1e3, 1e5, 1e6 and 1.6e7 elements, side by side with what a user would pick instead,
 * and the machine's streaming bound for each rule's traffic measured in the same run;
 * then Muon's step on a 784x100 and a 1024x1024 matrix (bench/muon.ts).
 *
 *   npm run bench                    full table (ten minutes or so)
 *   npm run bench -- --quick         1e3, 1e5, 1e6 only, shorter samples
 *   npm run bench -- --json out.json also write the results as JSON
 *   npm run bench -- --sizes 1e5,1.6e7  only these sizes
 *   npm run bench -- --rules lion,adam  only these rules (bench/rules.ts ids, or all)
 *   npm run bench -- --no-extras        without the many-small-tensors, heap and layout rows
 *   npm run bench -- --no-muon          without Muon's rows (alone: npm run bench:muon)
 *   npm run bench -- --no-torch / --no-tfjs  without those peers
 *
 * Method: inputs are built outside the timed region; each cell is warmed up, then
 * timed as the median of repeated samples of several steps each (the machine is noisy:
 * medians and ratios carry, absolute times less so); our rows, the book's and the
 * streaming bound of one rule and size are sampled in interleaved rounds, so they see
 * the same noise; the parameters are read after the samples, so the work cannot be
 * skipped. "ratio" is the row's time over our best row for that rule and size.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { Adam, Nesterov, ParamStore } from 'nesterov';
import { startThreads, type ThreadPool } from '../src/node/threads.ts';
import { bookAdamStep, bookNesterovStep } from './book.ts';
import { layoutSection, type LayoutRow } from './layout.ts';
import { muonSection, type MuonRow } from './muon.ts';
import { benchKernels, writeScalars } from './kernels.ts';
import { ADAM_KERNELS } from '../src/rules/adam.ts';
import { LION } from '../src/rules/lion.ts';
import { NESTEROV_KERNELS } from '../src/rules/nesterov.ts';
import { SCHEDULE_FREE_ADAMW_KERNELS } from '../src/rules/schedulefree-adamw.ts';
import { boundKernelFor, bytesPerElement, parseBenchArgs, trafficLabel, type BenchRule } from './rules.ts';

const { values: args } = parseArgs({
  options: {
    json: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'no-torch': { type: 'boolean', default: false },
    'no-tfjs': { type: 'boolean', default: false },
    sizes: { type: 'string' },
    rules: { type: 'string' },
    'no-extras': { type: 'boolean', default: false },
    'no-muon': { type: 'boolean', default: false },
  },
});
let selected: ReturnType<typeof parseBenchArgs>;
try {
  selected = parseBenchArgs({ sizes: args.sizes, rules: args.rules, quick: args.quick });
} catch (error) {
  process.stderr.write(`error: ${(error as Error).message}\n`);
  process.exit(2);
}
const SIZES = selected.sizes;
const RULES = selected.rules;
const BUDGET_SECONDS = args.quick ? 0.4 : 1.2;
const here = dirname(fileURLToPath(import.meta.url));

/** A rule's id in the rows (bench/rules.ts). */
type Rule = string;
interface Row {
  rule: Rule;
  size: number;
  impl: string;
  nsPerElement: number | null;
  note?: string;
}
const rows: Row[] = [];

/**
 * Median ns per element of each step, sampled in rounds for about `budget` seconds per
 * step: every round times every step once, in turn. On this shared machine the clock's
 * noise comes in spells of seconds (a loop runs at 5 ns/element, then for a while at 9);
 * interleaved, the rows compared in a ratio live through the same spells, so the ratios
 * hold even when the absolute times move.
 */
function measureInterleaved(steps: (() => void)[], n: number, budget = BUDGET_SECONDS): number[] {
  const perSample: number[] = [];
  let roundSeconds = 0;
  for (const step of steps) {
    step();
    const start = process.hrtime.bigint();
    step();
    const once = Math.max(Number(process.hrtime.bigint() - start) / 1e9, 1e-7);
    const count = Math.max(1, Math.floor(0.005 / once));
    perSample.push(count);
    roundSeconds += once * count;
    for (let i = 0; i < 2; i++) step();
  }
  const rounds = Math.max(5, Math.min(31, Math.floor((budget * steps.length) / roundSeconds)));
  const times: number[][] = steps.map(() => []);
  for (let r = 0; r < rounds; r++) {
    steps.forEach((step, k) => {
      const count = perSample[k]!;
      // Between two steps interleaved with others, one untimed step first: on this VM
      // the first pass over memory left untouched for a second or so runs 2-3x slower
      // (measured: Adam at 1.6e7, 1.0-1.7 ns/element for that step, 0.6 for the next),
      // which a training loop, stepping back to back, never sees.
      if (steps.length > 1) step();
      const start = process.hrtime.bigint();
      for (let i = 0; i < count; i++) step();
      times[k]!.push(Number(process.hrtime.bigint() - start) / count);
    });
  }
  return times.map((t) => {
    t.sort((x, y) => x - y);
    return t[Math.floor(t.length / 2)]! / n;
  });
}

/** Median ns per element of one step, sampled for about `budget` seconds. */
function measure(step: () => void, n: number, budget = BUDGET_SECONDS): number {
  return measureInterleaved([step], n, budget)[0]!;
}

let sink = 0;
function consume(array: ArrayLike<number>): void {
  sink += array[0]! + array[array.length - 1]!;
}

function record(rule: Rule, size: number, impl: string, nsPerElement: number | null, note?: string): void {
  rows.push({ rule, size, impl, nsPerElement, ...(note === undefined ? {} : { note }) });
  const shown = nsPerElement === null ? 'skipped' : `${nsPerElement.toFixed(3)} ns/el`;
  process.stderr.write(`  ${rule} ${size.toExponential(1)} ${impl}: ${shown}${note ? ` (${note})` : ''}\n`);
}

function gradientsFor(n: number): Float32Array {
  const g = new Float32Array(n);
  for (let i = 0; i < n; i++) g[i] = Math.sin(i) * 1e-3;
  return g;
}

// ---------------------------------------------------------------------------------
// Ours and the book's transliteration

/** The row labels of Nesterov's floors (benchOurs): bytes moved with no arithmetic. */
const FLOOR = {
  reads: 'floor: the reads alone (p, g, v; no store)',
  checkedTraffic: "floor: a checked step's traffic alone (gradient scan, then the bound's four-quarters loop)",
  checkedReads: "floor: a checked step's reads alone (gradient scan, then the reads of p, g, v)",
} as const;

/** One row of benchOurs: a step, and what reads its result afterwards. */
interface Candidate {
  impl: string;
  step: () => void;
  consume: () => void;
  release?: () => void;
}

/** The streaming bound's row label for a rule's traffic. */
function boundLabel(rule: BenchRule): string {
  return `streaming bound (read ${rule.reads.length}, write ${rule.writes.length}: ${bytesPerElement(rule)} B/el)`;
}

function benchOurs(rule: BenchRule, n: number, threads: ThreadPool | null): void {
  const make = (backend: 'js' | 'wasm', nonFinite: 'error' | 'ignore') => rule.make(backend, nonFinite);
  const candidates: Candidate[] = [];

  // The book's code, transliterated statement by statement (one pass and one temporary
  // per numpy expression), on a plain dict of Float32Arrays: Nesterov and Adam only (the
  // book has no other rule of this table).
  if (rule.id === 'nesterov' || rule.id === 'adam') {
    const params = { w: new Float32Array(n) };
    const grads = { w: gradientsFor(n) };
    const state = { v: new Float32Array(n), m: new Float32Array(n), iter: 0 };
    const step = rule.id === 'nesterov' ? () => bookNesterovStep(params, grads, state, 0.01, 0.9) : () => bookAdamStep(params, grads, state, 0.001, 0.9, 0.999);
    candidates.push({ impl: "book's code, transliterated", step, consume: () => consume(params.w) });
  }
  // Our JS kernel on a plain dict (the per-parameter path). The float64 row runs in the
  // same process as the float32 rows: each array type has its own copy of the loop
  // (src/kernel.ts), so neither slows the other down.
  {
    const params = { w: new Float64Array(n) };
    const grads = { w: Float64Array.from(gradientsFor(n)) };
    const opt = make('js', 'ignore');
    candidates.push({ impl: 'ours, JS, unchecked, Float64Array', step: () => opt.update(params, grads), consume: () => consume(params.w) });
  }
  for (const nonFinite of ['error', 'ignore'] as const) {
    const params = { w: new Float32Array(n) };
    const grads = { w: gradientsFor(n) };
    const opt = make('js', nonFinite);
    candidates.push({ impl: `ours, JS${nonFinite === 'ignore' ? ', unchecked' : ''}`, step: () => opt.update(params, grads), consume: () => consume(params.w) });
  }
  // Our WebAssembly kernel on a ParamStore.
  for (const nonFinite of ['error', 'ignore'] as const) {
    const store = new ParamStore({ w: n });
    (store.grads.w as Float32Array).set(gradientsFor(n));
    const opt = make('wasm', nonFinite);
    candidates.push({ impl: `ours, wasm${nonFinite === 'ignore' ? ', unchecked' : ''}`, step: () => opt.update(store.params, store.grads), consume: () => consume(store.params.w!) });
  }
  // The same on two threads over shared memory.
  if (threads !== null) {
    const store = new ParamStore({ w: n }, { shared: true });
    (store.grads.w as Float32Array).set(gradientsFor(n));
    threads.attach(store);
    const opt = make('wasm', 'ignore');
    candidates.push({
      impl: `ours, wasm, unchecked, ${threads.size} threads`,
      step: () => opt.update(store.params, store.grads),
      consume: () => consume(store.params.w!),
      release: () => threads.detach(store),
    });
  }
  // Nesterov's and Adam's kernels alone (no scan, no bookkeeping), with their overflow
  // detection (what every step runs) and without it (a build of the same loop for the
  // benchmark only): the detection's cost. And the gradient scan of nonFinite: 'error' alone.
  if (rule.id === 'nesterov' || rule.id === 'adam') {
    for (const detect of [true, false]) {
      const store = new ParamStore({ w: n }, { stateBuffers: 3 });
      (store.grads.w as Float32Array).set(gradientsFor(n));
      const kernels = store.kernels!;
      const k = kernels.exports;
      const [p, g, b0, b1, b2] = [0, 1, 2, 3, 4].map((region) => store.byteOffset(region, 0)) as [number, number, number, number, number];
      const at = kernels.address;
      let step: () => void;
      if (rule.id === 'nesterov') {
        writeScalars(kernels, NESTEROV_KERNELS.nag, { lr: 0.01, mu: 0.9, sign: 1, wd: 0 });
        const unchecked = benchKernels(store.memory as WebAssembly.Memory);
        step = detect ? () => k.nesterovNag(p, g, b0, n, at) : () => unchecked.nesterovNagUnchecked(p, g, b0, n, at);
      } else {
        // The scalars of Adam's first step, lr 0.001 (see adam.ts writeScalars).
        writeScalars(kernels, ADAM_KERNELS.pytorch, { negativeStepSize: -0.001 / (1 - 0.9), bc2sqrt: Math.sqrt(1 - 0.999), beta1: 0.9, beta2: 0.999, eps: 1e-8, amsgrad: 0, shrink: 1, sign: 1, wd: 0 });
        const unchecked = benchKernels(store.memory as WebAssembly.Memory);
        step = detect ? () => k.adam(p, g, b0, b1, b2, n, at) : () => unchecked.adamUnchecked(p, g, b0, b1, b2, n, at);
      }
      candidates.push({ impl: `kernel alone, wasm, ${detect ? 'with' : 'without'} overflow detection`, step, consume: () => consume(store.params.w!) });
    }
  }
  // Lion's and Schedule-Free AdamW's kernels alone (their overflow detection has no
  // unchecked build): the step less this is the bookkeeping around the kernel.
  if (rule.id === 'lion' || rule.id === 'schedulefree-adamw') {
    const store = new ParamStore({ w: n }, { stateBuffers: 2 });
    (store.grads.w as Float32Array).set(gradientsFor(n));
    const kernels = store.kernels!;
    const k = kernels.exports;
    const [p, g, b0, b1] = [0, 1, 2, 3].map((region) => store.byteOffset(region, 0)) as [number, number, number, number];
    const at = kernels.address;
    let step: () => void;
    if (rule.id === 'lion') {
      writeScalars(kernels, LION, { lr: 1e-4, beta1: 0.9, beta2: 0.99, sign: 1, decay: 1 });
      step = () => k.lion(p, g, b0, n, at);
    } else {
      // A step after the first (z is read).
      writeScalars(kernels, SCHEDULE_FREE_ADAMW_KERNELS.step, {
        c: 0.5, yStep: -0.0025 * (1 - 0.9 * 0.5), zStep: -0.0025, wd: 0, sign: 1, first: 0, beta2: 0.999, bc2: 1 - 0.999 ** 2, eps: 1e-8,
      });
      step = () => k.scheduleFreeAdamw(p, g, b0, b1, n, at);
    }
    candidates.push({ impl: 'kernel alone, wasm, with overflow detection', step, consume: () => consume(store.params.w!) });
  }
  {
    const store = new ParamStore({ w: n });
    (store.grads.w as Float32Array).set(gradientsFor(n));
    const k = store.kernels!.exports;
    const g = store.byteOffset(1, 0);
    candidates.push({ impl: 'gradient scan alone, wasm (anyNonFinite)', step: () => k.anyNonFinite(g, n), consume: () => undefined });
  }
  // The streaming bound: the bytes the rule moves (bench/rules.ts, from its kernel's
  // arrays) moved by the fastest loop we have (wasm SIMD, no arithmetic), on a store
  // laid out as the rule's (regions one after another). Two loops move them: one
  // position per iteration, and one vector in each quarter of the arrays per iteration
  // (the order of the kernels that run in quarters: more streams in flight). The bound
  // is the faster of the two in this run, so no kernel is held to a slower loop than
  // the fastest we can write.
  const bound = boundKernelFor(rule);
  const boundLoops: number[] = [];
  if (bound !== undefined) {
    const store = new ParamStore({ w: n }, { stateBuffers: 2 });
    const k = store.kernels!.exports;
    const bench = benchKernels(store.memory as WebAssembly.Memory);
    const a = store.byteOffset(0, 0);
    const b = store.byteOffset(1, 0);
    const c = store.byteOffset(2, 0);
    const d = store.byteOffset(3, 0);
    // Non-zero data, as a step's: this Xeon (like Intel cores since Ice Lake) drops a
    // store of zeros over a line already all zeros ("hardware store elimination"), so a
    // loop moving the zeros of a fresh store writes almost nothing back and measured a
    // bound 1.3-1.4x too fast (0.47 instead of 0.69 ns/element at 1.6e7).
    const values = gradientsFor(n);
    for (const offset of [a, b, c, d]) new Float32Array(store.buffer, offset, n).set(values);
    const loops = bound === 'stream3to2'
      ? [() => bench.stream3to2(a, b, c, n), () => bench.stream3to2Quarters(a, b, c, n)]
      : [() => bench.stream4to3(a, b, c, d, n), () => bench.stream4to3Quarters(a, b, c, d, n)];
    for (const step of loops) {
      boundLoops.push(candidates.length);
      candidates.push({ impl: boundLabel(rule), step, consume: () => undefined });
    }
    // Nesterov's floors (issue 10, item 21): the same store's bytes moved with no
    // arithmetic, (1) its reads alone, no store: how much of the bound the reads take;
    // (2) the checked step's traffic alone: the gradient scan, then the bound's loop;
    // (3) the checked step's reads alone: the scan, then the reads of p, g and v. (2)
    // is the traffic every checked step must move, in that order, with no arithmetic:
    // the floor a checked step is compared with.
    if (rule.id === 'nesterov') {
      candidates.push({ impl: FLOOR.reads, step: () => bench.read3Quarters(a, b, c, n), consume: () => undefined });
      candidates.push({ impl: FLOOR.checkedTraffic, step: () => (k.anyNonFinite(b, n), bench.stream3to2Quarters(a, b, c, n)), consume: () => undefined });
      candidates.push({ impl: FLOOR.checkedReads, step: () => (k.anyNonFinite(b, n), bench.read3Quarters(a, b, c, n)), consume: () => undefined });
    }
  }
  const results = measureInterleaved(candidates.map((c) => c.step), n);
  candidates.forEach((c, k) => {
    c.consume();
    c.release?.();
    if (!boundLoops.includes(k)) record(rule.id, n, c.impl, results[k]!);
  });
  if (bound !== undefined) {
    const [single, quarters] = boundLoops.map((k) => results[k]!) as [number, number];
    record(rule.id, n, boundLabel(rule), Math.min(single, quarters), `the faster of one position per iteration, ${single.toFixed(3)}, and four quarters, ${quarters.toFixed(3)} ns/el`);
  }
  if (bound === undefined) record(rule.id, n, `streaming bound (read ${rule.reads.length}, write ${rule.writes.length}: ${bytesPerElement(rule)} B/el)`, null, 'no streaming kernel for this traffic');
}

// ---------------------------------------------------------------------------------
// TensorFlow.js (cpu and wasm backends)

function tfjsOptimizer(kind: NonNullable<BenchRule['tfjs']>): tf.Optimizer {
  switch (kind) {
    case 'momentum-nesterov':
      return tf.train.momentum(0.01, 0.9, true);
    case 'momentum':
      return tf.train.momentum(0.01, 0.9);
    case 'sgd':
      return tf.train.sgd(0.01);
    case 'adam':
      return tf.train.adam(0.001, 0.9, 0.999);
    case 'adagrad':
      return tf.train.adagrad(0.01);
    case 'adadelta':
      return tf.train.adadelta();
    case 'adamax':
      return tf.train.adamax();
    case 'rmsprop':
      return tf.train.rmsprop(0.01);
  }
}

async function benchTfjs(rule: BenchRule, n: number): Promise<void> {
  if (rule.tfjs === undefined) {
    record(rule.id, n, 'TF.js', null, `no TF.js peer: TF.js has no ${rule.label}`);
    return;
  }
  for (const backend of ['cpu', 'wasm']) {
    await tf.setBackend(backend);
    await tf.ready();
    const name = `${rule.id}-${backend}-${n}`;
    const variable = tf.variable(tf.zeros([n]), true, name);
    const grad = tf.tensor1d(gradientsFor(n));
    const optimizer = tfjsOptimizer(rule.tfjs);
    // The cpu backend takes ~0.1 us per element: fewer samples at the largest size.
    const budget = backend === 'cpu' && n > 1e6 ? 0.2 : BUDGET_SECONDS;
    const ns = measure(() => optimizer.applyGradients([{ name, tensor: grad }]), n, budget);
    consume(variable.dataSync() as Float32Array);
    record(rule.id, n, `TF.js ${backend} backend`, ns);
    optimizer.dispose();
    variable.dispose();
    grad.dispose();
  }
}

// ---------------------------------------------------------------------------------
// PyTorch through Debian's python3-torch

function benchTorch(sizes: readonly number[], torchRules: readonly string[], extraEnv: Record<string, string> = {}): Record<string, number> | string {
  const python = '/usr/bin/python3';
  if (!existsSync(python)) return `${python} not found`;
  try {
    const out = execFileSync(python, [join(here, 'torch_bench.py'), sizes.join(','), String(BUDGET_SECONDS), torchRules.join(',')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, OMP_NUM_THREADS: '1', ...extraEnv },
    });
    return (JSON.parse(out) as { results: Record<string, number> }).results;
  } catch (error) {
    const message = (error as { stderr?: string }).stderr ?? String(error);
    return /No module named 'torch'/.test(message) ? 'python3-torch is not installed (apt-get install python3-torch)' : message.split('\n').slice(-2).join(' ');
  }
}

// ---------------------------------------------------------------------------------

const machine = `${process.platform} ${process.arch}, node ${process.version}, ${(await import('node:os')).cpus()[0]?.model ?? 'unknown cpu'}, ${(await import('node:os')).cpus().length} cores`;
process.stderr.write(`nesterov benchmark on ${machine}\n`);
const threads = await startThreads(2).catch((error: Error) => {
  process.stderr.write(`threads unavailable: ${error.message}\n`);
  return null;
});
if (!args['no-tfjs']) {
  const require = createRequire(import.meta.url);
  setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'))}/dist/`);
  tf.enableProdMode();
}

for (const rule of RULES) {
  for (const n of SIZES) {
    benchOurs(rule, n, threads);
    if (!args['no-tfjs']) await benchTfjs(rule, n);
  }
}
await threads?.close();

// PyTorch allocates temporaries every step; above 32 MB glibc's malloc takes them from
// mmap and returns them at once, so at 1.6e7 elements every step page-faults 64 MB
// arrays in afresh. That is PyTorch as installed; the second run keeps the memory
// (MALLOC_MMAP_THRESHOLD_), to show its kernels' own speed too.
const TUNED = { MALLOC_MMAP_THRESHOLD_: '4294967296', MALLOC_TRIM_THRESHOLD_: '4294967296' };
const torchRules = RULES.flatMap((rule) => ('rule' in rule.torch ? [rule.torch.rule] : []));
const torch = args['no-torch'] ? 'skipped (--no-torch)' : torchRules.length === 0 ? {} : benchTorch(SIZES, torchRules);
const largeSizes = SIZES.filter((n) => n * 4 > 32 * 1024 * 1024);
const torchTuned = args['no-torch'] || largeSizes.length === 0 || torchRules.length === 0 ? null : benchTorch(largeSizes, torchRules, TUNED);
for (const rule of RULES) {
  if ('none' in rule.torch) {
    for (const n of SIZES) record(rule.id, n, 'PyTorch 1.13', null, rule.torch.none);
    continue;
  }
  const torchRule = rule.torch.rule;
  for (const foreach of [true, false]) {
    const key = (n: number) => `${torchRule}/foreach=${foreach ? 'True' : 'False'}/${n}`;
    for (const n of SIZES) {
      const impl = `PyTorch 1.13, 1 thread, foreach=${foreach ? 'True' : 'False'}`;
      if (typeof torch === 'string') record(rule.id, n, impl, null, `missing: ${torch}`);
      else record(rule.id, n, impl, torch[key(n)] ?? null);
    }
    if (torchTuned !== null) {
      for (const n of largeSizes) {
        const impl = `PyTorch 1.13, 1 thread, foreach=${foreach ? 'True' : 'False'}, malloc keeps memory`;
        if (typeof torchTuned === 'string') record(rule.id, n, impl, null, `missing: ${torchTuned}`);
        else record(rule.id, n, impl, torchTuned[key(n)] ?? null);
      }
    }
  }
}

// Many small tensors against one flat tensor, and heap growth over 10,000 steps.
const extras: Record<string, number | string> = {};
if (!args['no-extras']) {
  const shapes = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`t${i}`, 1000]));
  const many = new ParamStore(shapes);
  const one = new ParamStore({ w: 1e6 });
  for (const store of [many, one] as ParamStore<string>[]) for (const name of store.names) (store.grads[name] as Float32Array).fill(1e-3);
  const a = new Nesterov({ backend: 'wasm', nonFinite: 'ignore' });
  const b = new Nesterov({ backend: 'wasm', nonFinite: 'ignore' });
  const [wasmMany, wasmOne] = measureInterleaved([() => a.update(many.params, many.grads), () => b.update(one.params, one.grads)], 1e6);
  extras['wasm: 1000 tensors of 1000, ns/el'] = wasmMany!;
  extras['wasm: one tensor of 1e6, ns/el'] = wasmOne!;
  const plainMany = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`t${i}`, new Float32Array(1000)]));
  const plainGrads = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`t${i}`, new Float32Array(1000).fill(1e-3)]));
  const plainOne = { w: new Float32Array(1e6) };
  const plainOneGrad = { w: new Float32Array(1e6).fill(1e-3) };
  const c = new Nesterov({ backend: 'js', nonFinite: 'ignore' });
  const d = new Nesterov({ backend: 'js', nonFinite: 'ignore' });
  const [jsMany, jsOne] = measureInterleaved([() => c.update(plainMany, plainGrads), () => d.update(plainOne, plainOneGrad)], 1e6);
  extras['JS: 1000 tensors of 1000, ns/el'] = jsMany!;
  extras['JS: one tensor of 1e6, ns/el'] = jsOne!;

  const gc = (globalThis as { gc?: () => void }).gc;
  for (const [label, opt, params, grads] of [
    ['wasm store', new Adam({ backend: 'wasm' }), one.params, one.grads],
    ['JS dict', new Adam({ backend: 'js' }), plainOne, plainOneGrad],
  ] as const) {
    // After 10,000 steps of warm-up (compiled code and feedback settle), the retained
    // heap over the next 10,000 steps: a per-step leak of even one byte shows.
    for (let i = 0; i < 10_000; i++) opt.update(params, grads);
    gc?.();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 10_000; i++) opt.update(params, grads);
    gc?.();
    extras[`heap growth over 10,000 Adam steps after 10,000 of warm-up (${label}), bytes`] = gc ? process.memoryUsage().heapUsed - before : 'run with --expose-gc';
  }
}

// ---------------------------------------------------------------------------------
// The table

const best = new Map<string, number>();
for (const row of rows) {
  if (!row.impl.startsWith('ours') || row.nsPerElement === null) continue;
  const key = `${row.rule}/${row.size}`;
  best.set(key, Math.min(best.get(key) ?? Infinity, row.nsPerElement));
}
const lines: string[] = [];
lines.push(`Machine: ${machine}. Command: npm run bench${args.quick ? ' -- --quick' : ''}. Medians; ratio = time / our best.`);
lines.push('');
lines.push(`| rule | implementation | ${SIZES.map((n) => `${n.toExponential(1).replace('e+', 'e')} ns/el (ratio)`).join(' | ')} |`);
lines.push(`|---|---|${SIZES.map(() => '---:').join('|')}|`);
for (const rule of RULES) {
  const impls = [...new Set(rows.filter((r) => r.rule === rule.id).map((r) => r.impl))];
  for (const impl of impls) {
    const cells = SIZES.map((n) => {
      const row = rows.find((r) => r.rule === rule.id && r.size === n && r.impl === impl);
      if (row === undefined || row.nsPerElement === null) return row?.note ?? 'n/a';
      const ratio = row.nsPerElement / best.get(`${rule.id}/${n}`)!;
      return `${row.nsPerElement < 10 ? row.nsPerElement.toFixed(3) : row.nsPerElement.toFixed(1)} (${ratio.toFixed(2)})`;
    });
    lines.push(`| ${rule.label} | ${impl} | ${cells.join(' | ')} |`);
  }
}
lines.push('');
lines.push('Bytes per element of one step (the arrays each wasm kernel reads and writes, float32):');
for (const rule of RULES) lines.push(`- ${rule.label}: ${trafficLabel(rule)}${boundKernelFor(rule) === undefined ? ' (no streaming kernel for this traffic: no bound row)' : ''}`);
lines.push('');
for (const [key, value] of Object.entries(extras)) lines.push(`- ${key}: ${typeof value === 'number' ? (Number.isInteger(value) ? value : value.toFixed(3)) : value}`);
// The ParamStore's region skew against the old, 4K-aliased layout (bench/layout.ts).
let layoutRows: LayoutRow[] = [];
if (!args['no-extras']) {
  const layout = layoutSection(16_000_000, args.quick ? 5 : 11);
  layoutRows = layout.rows;
  lines.push('', ...layout.lines);
}

// The targets of the speed issues, checked on this run.
const ns = (rule: Rule, n: number, impl: string) => rows.find((r) => r.rule === rule && r.size === n && r.impl === impl)?.nsPerElement ?? null;
const targets: string[] = [];
const check = (label: string, ok: boolean | null, detail: string) => targets.push(`- [${ok === null ? '?' : ok ? 'x' : ' '}] ${label}: ${detail}`);
const largest = SIZES[SIZES.length - 1]!;
// The default path (nonFinite: 'error': gradient scan, then the step with its overflow
// detection) and the detection's own cost, as ratios to the streaming bound of the run.
lines.push('');
lines.push('Checked against unchecked, as ratios to the streaming bound measured in the same rounds:');
for (const rule of RULES) {
  for (const n of SIZES) {
    const bound = ns(rule.id, n, boundLabel(rule));
    if (bound === null) continue;
    const x = (impl: string) => {
      const value = ns(rule.id, n, impl);
      return value === null ? 'n/a' : `${value.toFixed(3)} ns/el = ${(value / bound).toFixed(2)}x`;
    };
    const withDetection = ns(rule.id, n, 'kernel alone, wasm, with overflow detection');
    const withoutDetection = ns(rule.id, n, 'kernel alone, wasm, without overflow detection');
    const cost = withDetection === null || withoutDetection === null ? '' : ` (detection: ${((withDetection / withoutDetection - 1) * 100).toFixed(1)}%)`;
    const kernelAlone =
      withDetection === null
        ? ''
        : `kernel alone with overflow detection ${x('kernel alone, wasm, with overflow detection')}` +
          `${withoutDetection === null ? '' : `, without ${x('kernel alone, wasm, without overflow detection')}`}${cost}; `;
    lines.push(
      `- ${rule.label} ${n.toExponential(1)}: bound ${bound.toFixed(3)} ns/el; wasm step checked ${x('ours, wasm')}, unchecked ${x('ours, wasm, unchecked')}; ` +
        `${kernelAlone}gradient scan alone ${x('gradient scan alone, wasm (anyNonFinite)')}; JS checked ${x('ours, JS')}, unchecked ${x('ours, JS, unchecked')}` +
        (ns(rule.id, n, FLOOR.checkedTraffic) === null
          ? ''
          : `; floors (no arithmetic): reads alone ${x(FLOOR.reads)}, scan then the bound's loop ${x(FLOOR.checkedTraffic)}, scan then the reads alone ${x(FLOOR.checkedReads)}`),
    );
  }
}
for (const rule of RULES) {
  const name = rule.label;
  const wasm = (n: number) => ns(rule.id, n, 'ours, wasm, unchecked');
  const bound = ns(rule.id, largest, boundLabel(rule));
  if (bound !== null) {
    check(`${name} wasm within 1.3x of the streaming bound at ${largest.toExponential(1)}`, wasm(largest)! <= 1.3 * bound, `${(wasm(largest)! / bound).toFixed(2)}x`);
  }
  if (rule.id === 'nesterov') {
    const checked = ns(rule.id, largest, 'ours, wasm');
    const ratio = (impl: string) => {
      const value = ns(rule.id, largest, impl);
      return value === null || bound === null ? 'n/a' : `${(value / bound).toFixed(2)}x`;
    };
    check(
      `${name} wasm CHECKED (nonFinite 'error': scan + step + overflow detection) within 1.25x of the streaming bound at ${largest.toExponential(1)}`,
      bound === null || checked === null ? null : checked <= 1.25 * bound,
      bound === null || checked === null
        ? 'n/a'
        : `${(checked / bound).toFixed(2)}x; this machine's floor for any checked step: the scan then the bound's loop ${ratio(FLOOR.checkedTraffic)}, ` +
            `the scan then the reads alone ${ratio(FLOOR.checkedReads)} (the reads alone ${ratio(FLOOR.reads)}: reads set the pace)`,
    );
  }
  for (const n of SIZES) {
    const book = ns(rule.id, n, "book's code, transliterated");
    if (book === null) continue;
    const need = n === 1e5 || n === 1e6 ? 10 : 5;
    check(`${name} wasm >= ${need}x faster than the book's transliteration at ${n.toExponential(0)}`, book / wasm(n)! >= need, `${(book / wasm(n)!).toFixed(1)}x`);
    const js = ns(rule.id, n, 'ours, JS, unchecked')!;
    check(`${name} JS kernel >= 2x faster than the book's transliteration at ${n.toExponential(0)}`, book / js >= 2, `${(book / js).toFixed(1)}x`);
  }
  if (!('rule' in rule.torch)) continue;
  for (const n of [...new Set([1e5, largest])].filter((size) => SIZES.includes(size))) {
    const torchNs = ns(rule.id, n, `PyTorch 1.13, 1 thread, foreach=True${n === largest && largeSizes.includes(n) ? ', malloc keeps memory' : ''}`);
    check(`${name} wasm faster than PyTorch foreach=True at ${n.toExponential(1)}`, torchNs === null ? null : wasm(n)! < torchNs, torchNs === null ? 'PyTorch missing' : `${(torchNs / wasm(n)!).toFixed(2)}x`);
  }
}
if (!args['no-extras']) {
  const manyRatio = (extras['wasm: 1000 tensors of 1000, ns/el'] as number) / (extras['wasm: one tensor of 1e6, ns/el'] as number);
  check('1000 tensors of 1000 within 1.5x of one tensor of 1e6 (wasm store)', manyRatio <= 1.5, `${manyRatio.toFixed(2)}x`);
}

// Muon: one step of a matrix (bench/muon.ts), after the elementwise rules.
let muonRows: MuonRow[] = [];
if (!args['no-muon']) {
  const muon = muonSection({ torch: !args['no-torch'], quick: args.quick, log: (line) => process.stderr.write(`${line}\n`) });
  muonRows = muon.rows;
  lines.push('');
  lines.push(...muon.lines);
  targets.push(...muon.targets);
}
lines.push('');
lines.push('Targets:');
lines.push(...targets);

const table = lines.join('\n');
console.log(table);
if (args.json) {
  const traffic = Object.fromEntries(RULES.map((rule) => [rule.id, { reads: rule.reads, writes: rule.writes, bytesPerElement: bytesPerElement(rule) }]));
  writeFileSync(args.json, JSON.stringify({ machine, command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`, traffic, rows, extras, layout: layoutRows, muon: muonRows, targets, sink }, null, 2));
}

// nesterov/tfjs against TF.js's own optimizers (bench/tfjs.ts; `npm run bench:tfjs` alone).
if (!args['no-tfjs']) console.log(`\n${(await (await import('./tfjs.ts')).tfjsSection({ quick: args.quick })).lines.join('\n')}`);
