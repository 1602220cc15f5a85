/**
 * `npm run bench`: one optimizer step, in ns per float32 element, ours side by side with
 * what a user would pick instead, and the machine's streaming bound for each rule's
 * traffic measured in the same rounds.
 *
 *   npm run bench                      the rows a user compares first, in about a minute:
 *                                      Nesterov, Adam, AdamW and Lion at 1e5 and 1.6e7
 *                                      elements; the streaming bound, ours (wasm, checked
 *                                      and unchecked), TF.js's wasm backend, PyTorch 1.13
 *                                      (foreach=True) and optax (jax.jit), where installed
 *   npm run bench -- --full            the whole matrix (ten minutes or more): 1e3 to
 *                                      1.6e7, the JS rows, the book's code, two threads,
 *                                      the kernels alone, Nesterov's floors, both TF.js
 *                                      backends, torch foreach on and off, many small
 *                                      tensors, heap growth, the store's layout table,
 *                                      Muon, and nesterov/tfjs against TF.js
 *   npm run bench -- --write-docs      also write bench/results.json and docs/benchmarks.md
 *   npm run bench -- --quick           shorter samples, sizes below 1e7 only
 *   npm run bench -- --json out.json   also write the results as JSON
 *   npm run bench -- --sizes 1e5,1.6e7 only these sizes
 *   npm run bench -- --rules lion,adam only these rules (bench/rules.ts ids, or all)
 *   npm run bench -- --no-extras / --no-muon  (--full) without those sections
 *   npm run bench -- --no-torch / --no-tfjs / --no-optax  without those peers
 *   npm run bench -- --optax-python /path/bin/python  the python with jax and optax
 *                                      (or NESTEROV_OPTAX_PYTHON; else a few usual places)
 *
 * Method: inputs are built outside the timed region; each cell is warmed up, then
 * timed as the median of repeated samples of several steps each (the machine is noisy:
 * medians and ratios carry, absolute times less so); our rows and the streaming bound
 * of one rule and size are sampled in interleaved rounds, so they see the same noise;
 * the parameters are read after the samples, so the work cannot be skipped. "ratio" is
 * the row's time over ours, wasm, checked (the library's default path) for that rule
 * and size. The one-step table runs every peer on one core: ours is one thread
 * (`threads: false`; except the rows that say otherwise), torch runs with
 * set_num_threads(1), XLA is pinned to one CPU (bench/optax_bench.py says how). The
 * defaults table runs each as its user gets it: ours with `new ParamStore(shapes)`
 * (threads: 'auto', every core for a large store), torch with its own thread count,
 * optax with XLA on every core; and beside them the same pinned to one core.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, homedir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { Adam, AUTO_MIN_ELEMENTS, Nesterov, ParamStore, SGD } from 'nesterov';
import { startThreads, type ThreadPool } from '../src/node/threads.ts';
import { bookAdamStep, bookNesterovStep } from './book.ts';
import { layoutSection, type LayoutRow } from './layout.ts';
import { muonSection, type MuonRow } from './muon.ts';
import { stateSizeLines } from './adafactor.ts';
import { benchKernels, writeScalars } from './kernels.ts';
import { ADAM_KERNELS } from '../src/rules/adam.ts';
import { LION } from '../src/rules/lion.ts';
import { NESTEROV_KERNELS } from '../src/rules/nesterov.ts';
import { SCHEDULE_FREE_ADAMW_KERNELS } from '../src/rules/schedulefree-adamw.ts';
import { boundKernelFor, bytesPerElement, parseBenchArgs, trafficLabel, type BenchRule } from './rules.ts';
import { tfjsOptimizer } from './tfjs-optimizers.ts';

const { values: args } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    'write-docs': { type: 'boolean', default: false },
    json: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'no-torch': { type: 'boolean', default: false },
    'no-tfjs': { type: 'boolean', default: false },
    'no-optax': { type: 'boolean', default: false },
    'optax-python': { type: 'string' },
    sizes: { type: 'string' },
    rules: { type: 'string' },
    'no-extras': { type: 'boolean', default: false },
    'no-muon': { type: 'boolean', default: false },
  },
});
let selected: ReturnType<typeof parseBenchArgs>;
try {
  selected = parseBenchArgs({ sizes: args.sizes, rules: args.rules, quick: args.quick, full: args.full });
} catch (error) {
  process.stderr.write(`error: ${(error as Error).message}\n`);
  process.exit(2);
}
const SIZES = selected.sizes;
const RULES = selected.rules;
const FULL = args.full;
// Seconds of samples per row and cell. The default's rows are few and its answer is
// wanted in a minute or so: shorter samples, still medians of at least five.
const BUDGET_SECONDS = FULL ? (args.quick ? 0.4 : 1.2) : args.quick ? 0.1 : 0.25;
const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const COMMAND = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const EXTRAS = FULL && !args['no-extras'];
const MUON = FULL && !args['no-muon'];

// ---------------------------------------------------------------------------------
// Progress on stderr: which part runs, how many are left, the time so far.

const started = process.hrtime.bigint();
let partsDone = 0;
let partsTotal = 0;
function progress(what: string): void {
  partsDone++;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stderr.write(`[${partsDone}/${partsTotal}, ${seconds.toFixed(0)} s] ${what} (${partsTotal - partsDone} left after this)\n`);
}

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

const gradientCache = new Map<number, Float32Array>();
/** A fresh copy of the gradients of size n (computed once per size: 1.6e7 sines take a second). */
function gradientsFor(n: number): Float32Array {
  let g = gradientCache.get(n);
  if (g === undefined) {
    g = new Float32Array(n);
    for (let i = 0; i < n; i++) g[i] = Math.sin(i) * 1e-3;
    gradientCache.set(n, g);
  }
  return g.slice();
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

/** The row of ours as a user gets it (the default options; threads: 'auto'). */
const OURS_DEFAULT = 'ours, default (threads: auto)';
/** The threads ours ran on by default, per size (1 below AUTO_MIN_ELEMENTS). */
const oursDefaultThreads = new Map<number, number>();

/**
 * Starts the default pool and waits for it, so that the default rows time threads from
 * their first sample (a training run gets them within its first steps).
 */
async function warmDefaultThreads(): Promise<void> {
  const store = new ParamStore({ w: AUTO_MIN_ELEMENTS }, { stateBuffers: 0 });
  const opt = new SGD({ lr: 0 });
  const deadline = Date.now() + 20_000;
  while (store.threads > 1 && opt.threadsUsed !== store.threads && Date.now() < deadline) {
    opt.update(store.params, store.grads);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function benchOurs(rule: BenchRule, n: number, threads: ThreadPool | null): void {
  const make = (backend: 'js' | 'wasm', nonFinite: 'error' | 'ignore') => rule.make(backend, nonFinite);
  const candidates: Candidate[] = [];

  // The book's code, transliterated statement by statement (one pass and one temporary
  // per numpy expression), on a plain dict of Float32Arrays: Nesterov and Adam only (the
  // book has no other rule of this table).
  if (FULL && (rule.id === 'nesterov' || rule.id === 'adam')) {
    const params = { w: new Float32Array(n) };
    const grads = { w: gradientsFor(n) };
    const state = { v: new Float32Array(n), m: new Float32Array(n), iter: 0 };
    const step = rule.id === 'nesterov' ? () => bookNesterovStep(params, grads, state, 0.01, 0.9) : () => bookAdamStep(params, grads, state, 0.001, 0.9, 0.999);
    candidates.push({ impl: "book's code, transliterated", step, consume: () => consume(params.w) });
  }
  // Our JS kernel on a plain dict (the per-parameter path). The float64 row runs in the
  // same process as the float32 rows: each array type has its own copy of the loop
  // (src/kernel.ts), so neither slows the other down.
  if (FULL) {
    const params = { w: new Float64Array(n) };
    const grads = { w: Float64Array.from(gradientsFor(n)) };
    const opt = make('js', 'ignore');
    candidates.push({ impl: 'ours, JS, unchecked, Float64Array', step: () => opt.update(params, grads), consume: () => consume(params.w) });
    for (const nonFinite of ['error', 'ignore'] as const) {
      const params = { w: new Float32Array(n) };
      const grads = { w: gradientsFor(n) };
      const opt = make('js', nonFinite);
      candidates.push({ impl: `ours, JS${nonFinite === 'ignore' ? ', unchecked' : ''}`, step: () => opt.update(params, grads), consume: () => consume(params.w) });
    }
  }
  // Ours as a user gets it: `new ParamStore(shapes)` and the rule's defaults (backend
  // 'auto', nonFinite 'error'), so threads: 'auto' (every core for a large store).
  {
    const opt = make('wasm', 'error');
    const store = new ParamStore({ w: n }, { stateBuffers: [opt] });
    (store.grads.w as Float32Array).set(gradientsFor(n));
    candidates.push({
      impl: OURS_DEFAULT,
      step: () => opt.update(store.params, store.grads),
      consume: () => {
        consume(store.params.w!);
        oursDefaultThreads.set(n, opt.threadsUsed ?? 1);
      },
    });
  }
  // Our WebAssembly kernel on a ParamStore, on one thread.
  for (const nonFinite of ['error', 'ignore'] as const) {
    const opt = make('wasm', nonFinite);
    const store = new ParamStore({ w: n }, { threads: false, stateBuffers: [opt] });
    (store.grads.w as Float32Array).set(gradientsFor(n));
    candidates.push({ impl: `ours, wasm${nonFinite === 'ignore' ? ', unchecked' : ''}`, step: () => opt.update(store.params, store.grads), consume: () => consume(store.params.w!) });
  }
  // The same on two threads over shared memory.
  if (threads !== null) {
    const opt = make('wasm', 'ignore');
    const store = new ParamStore({ w: n }, { shared: true, threads: false, stateBuffers: [opt] });
    (store.grads.w as Float32Array).set(gradientsFor(n));
    threads.attach(store);
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
  if (FULL && (rule.id === 'nesterov' || rule.id === 'adam')) {
    for (const detect of [true, false]) {
      const store = new ParamStore({ w: n }, { threads: false, stateBuffers: 3 });
      (store.grads.w as Float32Array).set(gradientsFor(n));
      const kernels = store.kernels!;
      const k = kernels.exports;
      const [p, g, b0, b1, b2] = [0, 1, 2, 3, 4].map((region) => store.byteOffset(region, 0)) as [number, number, number, number, number];
      const at = kernels.address;
      let step: () => void;
      if (rule.id === 'nesterov') {
        writeScalars(kernels, NESTEROV_KERNELS.nag, { lr: 0.01, mu: 0.9, sign: 1, wd: 0, shrink: 1 });
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
  if (FULL && (rule.id === 'lion' || rule.id === 'schedulefree-adamw')) {
    const store = new ParamStore({ w: n }, { threads: false, stateBuffers: 2 });
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
  if (FULL) {
    const store = new ParamStore({ w: n }, { threads: false });
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
    const store = new ParamStore({ w: n }, { threads: false, stateBuffers: Math.max(2, rule.reads.length - 2) });
    const k = store.kernels!.exports;
    const bench = benchKernels(store.memory as WebAssembly.Memory);
    const [a, b, c, d, e, f] = rule.reads.map((_, region) => store.byteOffset(region, 0)) as [number, number, number, number?, number?, number?];
    // Non-zero data, as a step's: this Xeon (like Intel cores since Ice Lake) drops a
    // store of zeros over a line already all zeros ("hardware store elimination"), so a
    // loop moving the zeros of a fresh store writes almost nothing back and measured a
    // bound 1.3-1.4x too fast (0.47 instead of 0.69 ns/element at 1.6e7).
    const values = gradientsFor(n);
    for (let region = 0; region < rule.reads.length; region++) new Float32Array(store.buffer, store.byteOffset(region, 0), n).set(values);
    const loops = bound === 'stream3to2'
      ? [() => bench.stream3to2(a, b, c, n), () => bench.stream3to2Quarters(a, b, c, n)]
      : bound === 'stream4to3'
        ? [() => bench.stream4to3(a, b, c, d!, n), () => bench.stream4to3Quarters(a, b, c, d!, n)]
        : [() => bench.stream6to5(a, b, c, d!, e!, f!, n), () => bench.stream6to5Quarters(a, b, c, d!, e!, f!, n)];
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
  // Nesterov's floors are --full's rows (they come after the bound's loops: the indices
  // in boundLoops stay right).
  if (!FULL) candidates.splice(0, candidates.length, ...candidates.filter((c) => !(Object.values(FLOOR) as string[]).includes(c.impl)));
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
  if (bound === undefined) record(rule.id, n, `streaming bound (read ${rule.reads.length}, write ${rule.writes.length}: ${bytesPerElement(rule)} B/el)`, null, rule.onePass ? 'no streaming kernel for this traffic' : 'two passes per step: no one-pass bound');
}

// ---------------------------------------------------------------------------------
// TensorFlow.js (its wasm backend; --full: the cpu backend too)

const TFJS_BACKENDS = FULL ? ['cpu', 'wasm'] : ['wasm'];

async function benchTfjs(rule: BenchRule, n: number): Promise<void> {
  if (rule.peers.tfjs === undefined) {
    record(rule.id, n, 'TF.js', null, `TF.js has no ${rule.label}`);
    return;
  }
  for (const backend of TFJS_BACKENDS) {
    await tf.setBackend(backend);
    await tf.ready();
    const optimizer = tfjsOptimizer(rule);
    if (optimizer === undefined) {
      record(rule.id, n, `TF.js ${backend} backend`, null, `${rule.peers.tfjs} is not mapped in bench/run.ts tfjsOptimizer`);
      continue;
    }
    const name = `${rule.id}-${backend}-${n}`;
    const variable = tf.variable(tf.zeros([n]), true, name);
    const grad = tf.tensor1d(gradientsFor(n));
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
// PyTorch through Debian's python3-torch; optax through the python that has it

interface PythonPeer {
  results: Record<string, number>;
  errors: Record<string, string>;
  versions: Record<string, string>;
}

/** Runs a python peer script; its JSON, or why there is none. */
function runPython(python: string, script: string, argv: string[], input: string | undefined, env: Record<string, string>, missingModule: string): PythonPeer | string {
  try {
    const out = execFileSync(python, [join(here, script), ...argv], {
      encoding: 'utf8',
      input,
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
      maxBuffer: 1 << 24,
    });
    const parsed = JSON.parse(out) as { results: Record<string, number>; errors?: Record<string, string> } & Record<string, unknown>;
    const versions = Object.fromEntries(Object.entries(parsed).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
    return { results: parsed.results, errors: parsed.errors ?? {}, versions };
  } catch (error) {
    const message = (error as { stderr?: string }).stderr ?? String(error);
    return new RegExp(`No module named '${missingModule}'`).test(message) ? `${missingModule} is not installed for ${python}` : message.trim().split('\n').slice(-2).join(' ');
  }
}

function benchTorch(sizes: readonly number[], rules: readonly BenchRule[], foreach: readonly boolean[], extraEnv: Record<string, string> = {}): PythonPeer | string {
  const python = '/usr/bin/python3';
  if (!existsSync(python)) return `${python} not found (Debian: apt-get install python3-torch)`;
  const argv = [sizes.join(','), String(BUDGET_SECONDS), rules.map((rule) => rule.id).join(','), foreach.map((f) => (f ? 'True' : 'False')).join(',')];
  // As installed (NESTEROV_TORCH_THREADS=default), torch sizes its pool itself.
  const env = extraEnv.NESTEROV_TORCH_THREADS === 'default' ? extraEnv : { OMP_NUM_THREADS: '1', ...extraEnv };
  const result = runPython(python, 'torch_bench.py', argv, undefined, env, 'torch');
  return typeof result === 'string' && result.startsWith('torch is not installed') ? 'python3-torch is not installed (apt-get install python3-torch)' : result;
}

const OPTAX_HOW = 'to add its rows: python3 -m venv /opt/optax-venv && /opt/optax-venv/bin/pip install jax optax, or NESTEROV_OPTAX_PYTHON=/path/to/bin/python npm run bench';

/**
 * The python that has jax and optax: --optax-python, else NESTEROV_OPTAX_PYTHON, else the
 * first of a few usual places that imports both. A path that was named and does not work
 * is an error in its row, not a silent skip.
 */
function findOptaxPython(): { python: string } | { missing: string } {
  const named = args['optax-python'] ?? process.env.NESTEROV_OPTAX_PYTHON;
  const imports = (python: string) => {
    try {
      // find_spec looks without importing (importing jax takes seconds).
      execFileSync(python, ['-c', "import importlib.util as u, sys; sys.exit(not (u.find_spec('jax') and u.find_spec('optax')))"], { stdio: 'ignore', timeout: 60_000 });
      return true;
    } catch {
      return false;
    }
  };
  if (named !== undefined && named !== '') {
    const source = args['optax-python'] !== undefined ? '--optax-python' : 'NESTEROV_OPTAX_PYTHON';
    if (!existsSync(named)) return { missing: `${source} '${named}' does not exist` };
    return imports(named) ? { python: named } : { missing: `${source} '${named}' cannot import jax and optax` };
  }
  const candidates = [join(root, '.venv/bin/python'), '/opt/optax-venv/bin/python', join(homedir(), '.venv/bin/python'), '/usr/bin/python3'];
  for (const python of candidates) if (existsSync(python) && imports(python)) return { python };
  return { missing: `no python with jax and optax found (tried ${candidates.join(', ')})` };
}

function benchOptax(python: string, sizes: readonly number[], rules: readonly BenchRule[], env: Record<string, string> = {}): PythonPeer | string {
  const job = { sizes, budget: BUDGET_SECONDS, rules: rules.map((rule) => ({ key: rule.id, hyper: rule.make('js', 'ignore').defaults })) };
  return runPython(python, 'optax_bench.py', [], JSON.stringify(job), env, 'optax');
}

// ---------------------------------------------------------------------------------
// The run

const machine = {
  cpu: cpus()[0]?.model ?? 'unknown cpu',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  platform: `${process.platform} ${process.arch}`,
  node: process.version,
  tfjs: tf.version.tfjs,
} as { cpu: string; cores: number; memoryGiB: number; platform: string; node: string; tfjs: string; [peer: string]: string | number };
const machineLine = () => `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.platform}`;
process.stderr.write(`nesterov benchmark (${FULL ? 'the whole matrix' : 'the rows a user compares first; --full for the whole matrix'}) on ${machineLine()}\n`);
process.stderr.write(`rules: ${RULES.map((rule) => rule.label).join(', ')}; sizes: ${SIZES.map((n) => n.toExponential(1)).join(', ')}\n`);

const TFJS = !args['no-tfjs'];
const TORCH_RULES = args['no-torch'] ? [] : RULES.filter((rule) => rule.peers.torch !== undefined);
const OPTAX_RULES = args['no-optax'] ? [] : RULES.filter((rule) => rule.peers.optax !== undefined);
const optaxPython = OPTAX_RULES.length === 0 ? null : findOptaxPython();
if (optaxPython !== null && 'missing' in optaxPython) process.stderr.write(`optax: skipped: ${optaxPython.missing}; ${OPTAX_HOW}\n`);
// PyTorch allocates temporaries every step; above 32 MB glibc's malloc takes them from
// mmap and returns them at once, so at 1.6e7 elements every step page-faults 64 MB
// arrays in afresh. That is PyTorch as installed; --full's second run keeps the memory
// (MALLOC_MMAP_THRESHOLD_), to show its kernels' own speed too.
const TUNED = { MALLOC_MMAP_THRESHOLD_: '4294967296', MALLOC_TRIM_THRESHOLD_: '4294967296' };
const largeSizes = SIZES.filter((n) => n * 4 > 32 * 1024 * 1024);
const torchTunedRun = FULL && TORCH_RULES.length > 0 && largeSizes.length > 0;
partsTotal =
  RULES.length * SIZES.length * (TFJS ? 2 : 1) +
  (TORCH_RULES.length > 0 ? 2 : 0) +
  (torchTunedRun ? 1 : 0) +
  (optaxPython !== null && 'python' in optaxPython ? 2 : 0) +
  (EXTRAS ? 3 : 0) +
  (MUON ? 1 : 0) +
  (FULL && TFJS ? 1 : 0);

const threads = FULL
  ? await startThreads(2).catch((error: Error) => {
      process.stderr.write(`threads unavailable: ${error.message}\n`);
      return null;
    })
  : null;
if (TFJS) {
  const require = createRequire(import.meta.url);
  setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'))}/dist/`);
  tf.enableProdMode();
}

if (SIZES.some((n) => n >= AUTO_MIN_ELEMENTS)) await warmDefaultThreads();
for (const rule of RULES) {
  for (const n of SIZES) {
    progress(`${rule.label} ${n.toExponential(1)}: ours and the streaming bound`);
    benchOurs(rule, n, threads);
    if (TFJS) {
      progress(`${rule.label} ${n.toExponential(1)}: TF.js`);
      await benchTfjs(rule, n);
    }
  }
}
await threads?.close();

const TORCH_FOREACH = FULL ? [true, false] : [true];
const TORCH_DEFAULT_LABEL = () => `PyTorch ${machine.torch ?? '1.13'}, default threads, foreach=True`;
const torchLabel = (foreach: boolean, tuned: boolean) => `PyTorch ${machine.torch ?? '1.13'}, 1 thread, foreach=${foreach ? 'True' : 'False'}${tuned ? ', malloc keeps memory' : ''}`;
let torch: PythonPeer | string = 'skipped (--no-torch)';
let torchTuned: PythonPeer | string | null = null;
let torchDefault: PythonPeer | string = 'skipped (--no-torch)';
if (TORCH_RULES.length > 0) {
  progress(`PyTorch: ${TORCH_RULES.map((rule) => rule.label).join(', ')}`);
  torch = benchTorch(SIZES, TORCH_RULES, TORCH_FOREACH);
  progress(`PyTorch as installed (its default threads): ${TORCH_RULES.map((rule) => rule.label).join(', ')}`);
  torchDefault = benchTorch(SIZES, TORCH_RULES, [true], { NESTEROV_TORCH_THREADS: 'default' });
  if (typeof torch !== 'string' && torch.versions.torch !== undefined) machine.torch = torch.versions.torch.replace(/\+.*$/, '');
  if (torchTunedRun) {
    progress(`PyTorch, malloc keeps memory: ${TORCH_RULES.map((rule) => rule.label).join(', ')}`);
    torchTuned = benchTorch(largeSizes, TORCH_RULES, TORCH_FOREACH, TUNED);
  }
}
for (const rule of RULES) {
  if (args['no-torch']) break;
  if (rule.peers.torch === undefined) {
    for (const n of SIZES) record(rule.id, n, `PyTorch ${machine.torch ?? '1.13'}`, null, `torch has no ${rule.label}`);
    continue;
  }
  for (const foreach of TORCH_FOREACH) {
    const key = (n: number) => `${rule.id}/foreach=${foreach ? 'True' : 'False'}/${n}`;
    const cell = (result: PythonPeer | string, n: number, impl: string) => {
      if (typeof result === 'string') record(rule.id, n, impl, null, `missing: ${result}`);
      else record(rule.id, n, impl, result.results[key(n)] ?? null, result.errors[key(n)]);
    };
    for (const n of SIZES) cell(torch, n, torchLabel(foreach, false));
    if (foreach) for (const n of SIZES) cell(torchDefault, n, TORCH_DEFAULT_LABEL());
    if (torchTuned !== null) for (const n of largeSizes) cell(torchTuned, n, torchLabel(foreach, true));
  }
}

const OPTAX_LABEL = 'optax, jax.jit, donated buffers, 1 core';
const OPTAX_DEFAULT_LABEL = 'optax, jax.jit, donated buffers, every core (its default)';
if (optaxPython !== null) {
  let optax: PythonPeer | string;
  let optaxDefault: PythonPeer | string = 'not run';
  if ('missing' in optaxPython) optax = optaxDefault = `not installed: ${optaxPython.missing}`;
  else {
    progress(`optax: ${OPTAX_RULES.map((rule) => rule.label).join(', ')}`);
    optax = benchOptax(optaxPython.python, SIZES, OPTAX_RULES);
    progress(`optax as installed (every core): ${OPTAX_RULES.map((rule) => rule.label).join(', ')}`);
    optaxDefault = benchOptax(optaxPython.python, SIZES, OPTAX_RULES, { NESTEROV_OPTAX_CORES: 'all' });
    if (typeof optax !== 'string') {
      if (optax.versions.jax !== undefined) machine.jax = optax.versions.jax;
      if (optax.versions.optax !== undefined) machine.optax = optax.versions.optax;
    }
  }
  for (const rule of RULES) {
    for (const n of SIZES) {
      if (rule.peers.optax === undefined) record(rule.id, n, OPTAX_LABEL, null, `optax has no ${rule.label}`);
      else if (typeof optax === 'string') record(rule.id, n, OPTAX_LABEL, null, optax);
      else record(rule.id, n, OPTAX_LABEL, optax.results[`${rule.id}/${n}`] ?? null, optax.errors[rule.id] === undefined ? undefined : `${rule.peers.optax}: ${optax.errors[rule.id]}`);
      if (rule.peers.optax !== undefined) {
        if (typeof optaxDefault === 'string') record(rule.id, n, OPTAX_DEFAULT_LABEL, null, optaxDefault);
        else record(rule.id, n, OPTAX_DEFAULT_LABEL, optaxDefault.results[`${rule.id}/${n}`] ?? null, optaxDefault.errors[rule.id]);
      }
    }
  }
} else if (!args['no-optax']) {
  for (const rule of RULES) for (const n of SIZES) record(rule.id, n, OPTAX_LABEL, null, `optax has no ${rule.label}`);
}

// Many small tensors against one flat tensor, and heap growth over 10,000 steps.
const extras: Record<string, number | string> = {};
if (EXTRAS) {
  progress('many small tensors against one');
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

  progress('heap growth over 10,000 steps');
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
  Object.assign(extras, stateSizeLines());
}

// ---------------------------------------------------------------------------------
// The tables: the sections of the console's report and of docs/benchmarks.md

interface Section {
  title: string;
  lines: string[];
}
const sections: Section[] = [];
const ns = (rule: Rule, n: number, impl: string) => rows.find((r) => r.rule === rule && r.size === n && r.impl === impl)?.nsPerElement ?? null;
const fmtNs = (value: number) => (value < 10 ? value.toFixed(3) : value.toFixed(1));
const sizeLabel = (n: number) => n.toExponential(1).replace('e+', 'e');
{
  const lines: string[] = [];
  lines.push(`Medians, ns per float32 element of one step; ratio = time / ours, wasm (checked) of the same rule and size.`);
  lines.push('');
  lines.push(`| rule | implementation | ${SIZES.map((n) => `${sizeLabel(n)} ns/el (ratio)`).join(' | ')} |`);
  lines.push(`|---|---|${SIZES.map(() => '---:').join('|')}|`);
  for (const rule of RULES) {
    const impls = [...new Set(rows.filter((r) => r.rule === rule.id).map((r) => r.impl))];
    for (const impl of impls) {
      const cells = SIZES.map((n) => {
        const row = rows.find((r) => r.rule === rule.id && r.size === n && r.impl === impl);
        if (row === undefined) return '';
        if (row.nsPerElement === null) return row.note ?? 'n/a';
        const ours = ns(rule.id, n, 'ours, wasm');
        return `${fmtNs(row.nsPerElement)}${ours === null ? '' : ` (${(row.nsPerElement / ours).toFixed(2)})`}`;
      });
      lines.push(`| ${rule.label} | ${impl} | ${cells.join(' | ')} |`);
    }
  }
  lines.push('');
  lines.push(
    "ours, wasm: a ParamStore's step with the default nonFinite 'error' (the gradients are scanned first; a NaN or an Infinity throws before anything is written). " +
      "Unchecked: nonFinite 'ignore'. The streaming bound: the same bytes moved by a wasm SIMD loop with no arithmetic.",
  );
  lines.push('');
  lines.push('Bytes per element of one step (the arrays each wasm kernel reads and writes, float32):');
  for (const rule of RULES) lines.push(`- ${rule.label}: ${trafficLabel(rule)}${boundKernelFor(rule) === undefined ? ' (no streaming kernel for this traffic: no bound row)' : ''}`);
  sections.push({ title: 'One step', lines });
}
{
  // Each library as its user gets it, then each pinned to one core: both stories.
  const lines: string[] = [];
  const torchDefault = TORCH_DEFAULT_LABEL();
  const torchOne = torchLabel(true, false);
  const impls: [string, string][] = [
    [OURS_DEFAULT, 'ours, default (`new ParamStore(shapes)`, threads: auto)'],
    [OPTAX_DEFAULT_LABEL, 'optax, default (XLA on every core)'],
    [torchDefault, 'PyTorch, default (its own thread count), foreach=True'],
    ['ours, wasm', 'ours, one core (`threads: false`)'],
    [OPTAX_LABEL, 'optax, one core (pinned)'],
    [torchOne, 'PyTorch, one core (`set_num_threads(1)`), foreach=True'],
  ];
  lines.push(`Medians, ns per float32 element of one step (checked: nonFinite 'error'); ratio = time / ours, default, of the same rule and size. ${machine.cores} cores.`);
  lines.push('');
  lines.push(`| rule | implementation | ${SIZES.map((n) => `${sizeLabel(n)} ns/el (ratio)`).join(' | ')} |`);
  lines.push(`|---|---|${SIZES.map(() => '---:').join('|')}|`);
  for (const rule of RULES) {
    for (const [impl, label] of impls) {
      const present = SIZES.map((n) => rows.find((r) => r.rule === rule.id && r.size === n && r.impl === impl));
      if (present.every((row) => row === undefined || row.nsPerElement === null)) continue;
      const cells = present.map((row, i) => {
        if (row === undefined || row.nsPerElement === null) return row?.note ?? 'n/a';
        const ours = ns(rule.id, SIZES[i]!, OURS_DEFAULT);
        const threadsNote = impl === OURS_DEFAULT ? `, ${oursDefaultThreads.get(SIZES[i]!) ?? 1} thread(s)` : '';
        return `${fmtNs(row.nsPerElement)}${ours === null ? '' : ` (${(row.nsPerElement / ours).toFixed(2)}${threadsNote})`}`;
      });
      lines.push(`| ${rule.label} | ${label} | ${cells.join(' | ')} |`);
    }
  }
  lines.push('');
  lines.push(
    `Ours by default steps a float32 ParamStore of ${AUTO_MIN_ELEMENTS} elements or more on every core (at most 8), smaller ones on one; ` +
      'optax (XLA) and PyTorch use every core by default. The one-core rows pin each to one core: ours with threads: false, ' +
      'optax by CPU affinity (bench/optax_bench.py), PyTorch with set_num_threads(1).',
  );
  sections.push({ title: 'Defaults against defaults', lines });
}
if (FULL) {
  // The default path (nonFinite: 'error': gradient scan, then the step with its overflow
  // detection) and the detection's own cost, as ratios to the streaming bound of the run.
  const lines: string[] = [];
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
  sections.push({ title: 'Checked against unchecked, as ratios to the streaming bound measured in the same rounds', lines });
}
if (EXTRAS) {
  const lines = Object.entries(extras).map(([key, value]) => `- ${key}: ${typeof value === 'number' ? (Number.isInteger(value) ? value : value.toFixed(3)) : value}`);
  sections.push({ title: 'Many small tensors, and heap growth', lines });
}
// The ParamStore's region skew against the old, 4K-aliased layout (bench/layout.ts).
let layoutRows: LayoutRow[] = [];
if (EXTRAS) {
  progress('the ParamStore layout table');
  const layout = layoutSection(16_000_000, args.quick ? 5 : 11);
  layoutRows = layout.rows;
  sections.push({ title: 'ParamStore layout', lines: layout.lines });
}

// The targets of the speed issues, checked on this run (the console's report only).
const targets: string[] = [];
const check = (label: string, ok: boolean | null, detail: string) => targets.push(`- [${ok === null ? '?' : ok ? 'x' : ' '}] ${label}: ${detail}`);
const largest = SIZES[SIZES.length - 1]!;
for (const rule of RULES) {
  const name = rule.label;
  const wasm = (n: number) => ns(rule.id, n, 'ours, wasm, unchecked');
  const bound = ns(rule.id, largest, boundLabel(rule));
  if (bound !== null) {
    check(`${name} wasm within 1.3x of the streaming bound at ${largest.toExponential(1)}`, wasm(largest)! <= 1.3 * bound, `${(wasm(largest)! / bound).toFixed(2)}x`);
  }
  if (FULL && rule.id === 'nesterov') {
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
  if (rule.peers.torch === undefined || args['no-torch']) continue;
  for (const n of [...new Set([1e5, largest])].filter((size) => SIZES.includes(size))) {
    const torchNs = ns(rule.id, n, torchLabel(true, FULL && n === largest && largeSizes.includes(n)));
    check(`${name} wasm faster than PyTorch foreach=True at ${n.toExponential(1)}`, torchNs === null ? null : wasm(n)! < torchNs, torchNs === null ? 'PyTorch missing' : `${(torchNs / wasm(n)!).toFixed(2)}x`);
  }
}
if (EXTRAS) {
  const manyRatio = (extras['wasm: 1000 tensors of 1000, ns/el'] as number) / (extras['wasm: one tensor of 1e6, ns/el'] as number);
  check('1000 tensors of 1000 within 1.5x of one tensor of 1e6 (wasm store)', manyRatio <= 1.5, `${manyRatio.toFixed(2)}x`);
}

// Muon: one step of a matrix (bench/muon.ts), after the elementwise rules.
let muonRows: MuonRow[] = [];
if (MUON) {
  progress('Muon');
  const muon = muonSection({ torch: !args['no-torch'], quick: args.quick, log: (line) => process.stderr.write(`${line}\n`) });
  muonRows = muon.rows;
  sections.push({ title: 'Muon', lines: muon.lines });
  targets.push(...muon.targets);
}

// nesterov/tfjs against TF.js's own optimizers (bench/tfjs.ts; `npm run bench:tfjs` alone).
let tfjsRows: { steps: unknown[]; fits: unknown[] } | null = null;
if (FULL && TFJS) {
  progress('nesterov/tfjs against TF.js (bench/tfjs.ts)');
  const section = await (await import('./tfjs.ts')).tfjsSection({ quick: args.quick });
  tfjsRows = { steps: section.steps, fits: section.fits };
  const cut = section.lines.indexOf('TF.js targets:');
  sections.push({ title: 'nesterov/tfjs against TF.js', lines: cut < 0 ? section.lines : section.lines.slice(0, cut) });
  if (cut >= 0) targets.push(...section.lines.slice(cut + 1));
}

const date = new Date();
const software = [`node ${machine.node}`, `TF.js ${machine.tfjs}`, ...(['torch', 'jax', 'optax'] as const).flatMap((peer) => (machine[peer] === undefined ? [] : [`${peer} ${machine[peer]}`]))].join(', ');
const report = [
  `Machine: ${machineLine()}. ${software}. Command: ${COMMAND}.`,
  FULL ? '' : `Rules: ${RULES.map((rule) => rule.label).join(', ')} (the ones a user compares first; --rules all, or --full for the whole matrix).`,
  ...sections.flatMap((section) => ['', `${section.title}:`, '', ...section.lines]),
  '',
  'Targets:',
  ...targets,
].filter((line, i) => i !== 1 || line !== '');
console.log(report.join('\n'));

const results = {
  date: date.toISOString(),
  command: COMMAND,
  machine,
  sizes: SIZES,
  rules: Object.fromEntries(RULES.map((rule) => [rule.id, { label: rule.label, reads: rule.reads, writes: rule.writes, bytesPerElement: bytesPerElement(rule), peers: rule.peers }])),
  rows,
  extras,
  layout: layoutRows,
  muon: muonRows,
  tfjs: tfjsRows,
  targets,
  sink,
};
if (args.json) writeFileSync(args.json, `${JSON.stringify(results, null, 2)}\n`);
if (args['write-docs']) {
  writeFileSync(join(here, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  mkdirSync(join(root, 'docs'), { recursive: true });
  writeFileSync(join(root, 'docs/benchmarks.md'), benchmarksPage());
  process.stderr.write('wrote bench/results.json and docs/benchmarks.md\n');
}

/** docs/benchmarks.md: the machine, the date, the command, then this run's tables. */
function benchmarksPage(): string {
  const page = [
    '# Benchmarks',
    '',
    '<!-- Written by `npm run bench -- --write-docs` (bench/run.ts) from the run it ends; the raw results are in bench/results.json. Do not edit: rerun. -->',
    '',
    `This page is written by the bench itself, \`npm run bench -- --write-docs\` (add \`--full\` for the whole matrix), from the results of that run; the raw results are in [bench/results.json](../bench/results.json).`,
    '',
    `- Date: ${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    `- Command: \`${COMMAND}\``,
    `- Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB of memory, ${machine.platform}`,
    `- Software: ${software}`,
    '',
    '## How the numbers are taken',
    '',
    '- One optimizer step on one float32 tensor of each size, in ns per element: the median of repeated samples of several steps each, after a warm-up. Inputs are built outside the timed region.',
    "- Ours and the streaming bound of one rule and size are sampled in interleaved rounds, so they see the same moments of the machine; a ratio is the row's time over ours, wasm (checked), the library's default path.",
    '- The one-step table runs every row on one core: ours is one thread (`threads: false`; except a row that says otherwise); PyTorch runs with `torch.set_num_threads(1)`; optax is `jax.jit` of its update with the params and state donated, its process pinned to one CPU (bench/optax_bench.py).',
    "- The defaults table runs each library as its user gets it: ours `new ParamStore(shapes)` with the rule's defaults (threads: 'auto': every core, at most 8, for a store of 2^20 elements or more), PyTorch with its own thread count, optax with XLA on every core; beside them, each pinned to one core.",
    "- Every row runs the rule's default hyperparameters, in the peer's names for them. Before timing optax, bench/optax_bench.py checks on random data that optax's step computes our rule (against our formula written out in numpy); where it does not, the row says why and is not timed.",
    `- Rules: ${RULES.map((rule) => rule.label).join(', ')}.${FULL ? '' : ' The rows a user compares first; `npm run bench -- --full` runs the whole matrix.'}`,
    ...sections.flatMap((section) => ['', `## ${section.title}`, '', ...section.lines]),
    '',
  ];
  return page.join('\n');
}
