/**
 * The page of test/webgpu-browser.test.ts (bundled by esbuild): for each case, 100 steps
 * of a GPUOptimizer over a GPUParamStore against the same optimizer's WebAssembly
 * kernels over a float32 ParamStore, the same gradients fed to both; then the state dict
 * round trip GPU -> CPU -> GPU and a resume from it on each side. It reports, per case,
 * the largest difference over its bound (see the test for the bound) and whether the
 * round trip returned the state bit for bit. Opened as /?fixtures it runs the CPU fixture
 * suite's cases instead (test/webgpu-fixtures.test.ts).
 */
import { loadKernels, ParamStore, registered, type OptimizerLike } from 'nesterov';
import { GPUOptimizer, GPUParamStore } from 'nesterov/webgpu';
import type { AnyOptimizer, OptimizerStateDict } from 'nesterov';
import { GPU_CASES, PLANTED, PLANTED_CASES, SKIP_CASES, type GpuCase } from './webgpu-cases.ts';
import { caseOptions, type FixtureConfig } from './fixture-options.ts';


/** Float32 machine epsilon. */
const EPS = 2 ** -23;
const STEPS = 100;
const RESUME_AT = 50;
/** Lengths not multiples of the 64-element alignment: runs span the gaps. */
const SHAPES = { w: [7, 13], b: 5, c: 300 } as const;
type Name = keyof typeof SHAPES;
const NAMES = Object.keys(SHAPES) as Name[];
const LENGTH: Record<Name, number> = { w: 91, b: 5, c: 300 };

/** Deterministic numbers in [-1, 1) (mulberry32). */
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

const initial = (name: Name): Float32Array => numbers(LENGTH[name], 1000 + NAMES.indexOf(name));
/** Gradients of step t: of every scale, so the second moments are not all alike. */
const gradient = (name: Name, t: number): Float32Array => {
  const scale = name === 'b' ? 10 : name === 'c' ? 0.01 : 1;
  return numbers(LENGTH[name], 7919 * (t + 1) + NAMES.indexOf(name)).map((x) => x * scale);
};

/**
 * A case's gradients: `gradient`, plus `drift` times a direction fixed per parameter
 * (GpuCase.drift), so that the parameters keep moving one way and a global rule's d grows.
 */
function gradientsOf(c: GpuCase): (name: Name, t: number) => Float32Array {
  const drift = c.drift;
  if (drift === undefined) return gradient;
  const direction = Object.fromEntries(NAMES.map((name, k) => [name, numbers(LENGTH[name], 4242 + k)])) as Record<Name, Float32Array>;
  return (name, t) => gradient(name, t).map((x, i) => x + drift * direction[name][i]!);
}

/**
 * A global rule's estimate on the CPU, step by step, and the error budget of the GPU's
 * (test/webgpu-browser.test.ts derives it): R, the numerator r's sum of absolute terms
 * (the same recursion as r with |term| for term), and after each step that moved d the
 * budget grows by 2 (L + 14) EPS (coef R / (S d') + 1), S = sum |s|, d' the new d, L the
 * depth of the GPU's tree over the store's `names` (globalDepth).
 */
class EstimateBudget<N extends string> {
  readonly key: string;
  readonly names: readonly N[];
  /** Float32 roundings per step in d's new value, relative to the sums' absolute terms (the test derives it): L for the tree, 6 per term, 6 in the reduce, 2 storing d and r, doubled for the numerator's terms. */
  readonly ulps: number;
  absNumerator = 0;
  /** The relative error the GPU's d may have now (first order). */
  relative = 0;

  constructor(key: string, names: readonly N[], depth: number) {
    this.key = key;
    this.names = names;
    this.ulps = 2 * (depth + 14);
  }

  /** Before the CPU's step: the sum of |dlr g term| over every element (x0 - x for Prodigy, s / (sqrt(v) + eps) for D-Adapt). */
  before(opt: AnyOptimizer, store: { readonly params: Readonly<Record<N, Float32Array>> }, grads: (name: N) => Float32Array): { absSum: number; d: number } {
    const d = opt.stateDict().scalars!.estimLr!;
    const step = opt.stepCount;
    let absSum = 0;
    for (const name of this.names) {
      const h = opt.hyperparameters(name, step) as unknown as { lr: number | ((t: number) => number); beta1: number; beta2: number; eps: number };
      const lr = typeof h.lr === 'number' ? h.lr : h.lr(step);
      const state = opt.stateOf(name) as unknown as { step: number; params0: Float32Array; gradSum: Float32Array; expAvgSq: Float32Array } | undefined;
      const t = (state?.step ?? 0) + 1;
      const bc = Math.sqrt(1 - h.beta2 ** t) / (1 - h.beta1 ** t);
      const dlr = d * lr * bc;
      const g = grads(name);
      const p = store.params[name];
      let sum = 0;
      for (let i = 0; i < g.length; i++) {
        if (state === undefined) continue; // x0 = x and s = 0 at the first step: every term is 0
        sum += this.key === 'prodigy' ? Math.abs(g[i]! * (state.params0[i]! - p[i]!)) : Math.abs(g[i]! * (state.gradSum[i]! / (Math.sqrt(state.expAvgSq[i]!) + h.eps)));
      }
      absSum += dlr * sum;
    }
    return { absSum, d };
  }

  /** After the CPU's step. */
  after(opt: AnyOptimizer, { absSum, d }: { absSum: number; d: number }): void {
    const h = opt.defaults as unknown as { beta2: number; beta3: number; estimLr0: number; estimLrCoef: number };
    const b = Math.sqrt(h.beta2);
    this.absNumerator = this.key === 'prodigy' ? h.beta3 * this.absNumerator + (d / h.estimLr0) * absSum : b * this.absNumerator + (1 - b) * absSum;
    const dNew = opt.stateDict().scalars!.estimLr!;
    if (dNew === d) return;
    let l1 = 0;
    for (const name of this.names) for (const x of (opt.stateOf(name) as unknown as { gradSum: Float32Array }).gradSum) l1 += Math.abs(x);
    const coef = this.key === 'prodigy' ? h.estimLrCoef : 1 / (1 - b);
    this.relative += this.ulps * EPS * ((coef * this.absNumerator) / (l1 * dNew) + 1);
  }
}


function make(c: GpuCase): AnyOptimizer {
  const entry = registered(c.key);
  if (entry === undefined) throw new Error(`no rule ${c.key}`);
  return entry.make(c.options) as unknown as AnyOptimizer;
}

/** The CPU side: the wasm kernels over a float32 ParamStore, with the bound's running sums. */
class CpuRun {
  readonly store: ParamStore<Name>;
  readonly opt: OptimizerLike;
  /** Per element: the sum of |p_t - p_(t-1)| and the largest |p_t| seen. */
  readonly moved: Record<Name, Float64Array>;
  readonly largest: Record<Name, Float64Array>;
  /** A global rule: the error budget of its estimate d (null for the others). */
  readonly budget: EstimateBudget<Name> | null;

  constructor(opt: OptimizerLike, params: (name: Name) => Float32Array) {
    this.opt = opt;
    const rule = (opt as unknown as AnyOptimizer).rule;
    this.budget = rule.global === undefined ? null : new EstimateBudget(rule.key, NAMES, GLOBAL_DEPTH);
    this.store = new ParamStore(SHAPES, { stateBuffers: [opt] });
    this.moved = Object.fromEntries(NAMES.map((n) => [n, new Float64Array(LENGTH[n])])) as Record<Name, Float64Array>;
    this.largest = Object.fromEntries(NAMES.map((n) => [n, new Float64Array(LENGTH[n])])) as Record<Name, Float64Array>;
    for (const name of NAMES) {
      this.store.params[name].set(params(name));
      this.largest[name].set(this.store.params[name].map(Math.abs));
    }
  }

  step(t: number, grads: (name: Name, t: number) => Float32Array = gradient): void {
    const previous = NAMES.map((name) => this.store.params[name].slice());
    for (const name of NAMES) this.store.grads[name].set(grads(name, t));
    const opt = this.opt as unknown as AnyOptimizer;
    // A step the CPU skips (nonFinite 'skip') changes nothing, nor the budget.
    const finite = NAMES.every((name) => this.store.grads[name].every(Number.isFinite));
    const before = finite ? this.budget?.before(opt, this.store, (name) => this.store.grads[name]) : undefined;
    this.opt.update(this.store.params, this.store.grads);
    if (before !== undefined) this.budget!.after(opt, before);
    NAMES.forEach((name, k) => {
      const p = this.store.params[name];
      for (let i = 0; i < p.length; i++) {
        this.moved[name][i]! += Math.abs(p[i]! - previous[k]![i]!);
        this.largest[name][i] = Math.max(this.largest[name][i]!, Math.abs(p[i]!));
      }
    });
  }
}

/** The depth of the GPU's float32 tree over n values (src/webgpu/reduce.ts: 12 per level of 4096). */
const depthOf = (n: number): number => 12 * Math.max(1, Math.ceil(Math.log(n) / Math.log(4096)));
/** That of the page's longest parameter (c, 300 elements): 12. */
const DEPTH = depthOf(Math.max(...Object.values(LENGTH)));
/**
 * The depth L of a global rule's tree over a store of parameters of these lengths
 * (src/webgpu/global-wgsl.ts): 12 over each parameter's workgroups of 4096 elements, then
 * depthOf over their partials (one per 4096 elements of each parameter).
 */
const globalDepth = (lengths: readonly number[]): number => 12 + depthOf(lengths.reduce((sum, n) => sum + Math.ceil(n / 4096), 0));
/** That of the page's store (3 partials): 24. */
const GLOBAL_DEPTH = globalDepth(Object.values(LENGTH));

/**
 * The bound on |p_gpu - p_cpu| after T steps (test/webgpu-browser.test.ts says why):
 * EPS ((16 + r D + 6 T) sum_t |dp_t| + T max_t |p_t|), r the sums over a parameter the
 * step reads (`sums`: 0 for the elementwise rules), D their tree's depth; and for a global
 * rule 3 rho sum_t |dp_t| besides, rho the relative error its d may have (`relative`: the
 * reference's budget).
 */
function worstRatio(gpu: Record<Name, Float32Array>, cpu: CpuRun, steps: number, sums = 0, relative = cpu.budget?.relative ?? 0): number {
  let worst = 0;
  for (const name of NAMES) {
    const p = cpu.store.params[name];
    for (let i = 0; i < p.length; i++) {
      const bound = (EPS * (16 + sums * DEPTH + 6 * steps) + 3 * relative) * cpu.moved[name][i]! + EPS * steps * cpu.largest[name][i]!;
      const error = Math.abs(gpu[name][i]! - p[i]!);
      const ratio = error === 0 ? 0 : error / bound;
      if (Number.isNaN(ratio)) return NaN;
      worst = Math.max(worst, ratio);
    }
  }
  return worst;
}

async function readAll(store: GPUParamStore<Name>): Promise<Record<Name, Float32Array>> {
  const out = {} as Record<Name, Float32Array>;
  for (const name of NAMES) out[name] = await store.read(name);
  return out;
}

/**
 * The first difference between two state dicts, bit for bit, or null; with `relative`,
 * buffer values may differ by that much of the buffer's largest value (a state that sums
 * feed: Adafactor's momentum, an average of signed updates, is as exact as its largest
 * terms, not as its smallest averages).
 */
function difference(a: OptimizerStateDict, b: OptimizerStateDict, relative = 0): string | null {
  for (const key of ['optimizer', 'variant', 'stepCount', 'skippedSteps'] as const) {
    if (a[key] !== b[key]) return `${key}: ${String(a[key])} vs ${String(b[key])}`;
  }
  // A global rule's optimizer-level scalars (Prodigy's d and r), bit for bit.
  const scalarNames = Object.keys(a.scalars ?? {});
  if (scalarNames.join() !== Object.keys(b.scalars ?? {}).join()) return `scalars ${scalarNames.join()} vs ${Object.keys(b.scalars ?? {}).join()}`;
  for (const key of scalarNames) if (!Object.is(a.scalars![key], b.scalars![key])) return `scalars.${key}: ${a.scalars![key]} vs ${b.scalars![key]}`;
  const names = Object.keys(a.params).sort();
  if (names.join() !== Object.keys(b.params).sort().join()) return `params ${names.join()} vs ${Object.keys(b.params).join()}`;
  for (const name of names) {
    const x = a.params[name]!;
    const y = b.params[name]!;
    if (x.step !== y.step || x.length !== y.length || x.dtype !== y.dtype) return `${name}: step/length/dtype`;
    for (const key of Object.keys(x.scalars)) if (!Object.is(x.scalars[key], y.scalars[key])) return `${name}.${key}`;
    const keys = Object.keys(x.buffers).sort();
    if (keys.join() !== Object.keys(y.buffers).sort().join()) return `${name}: buffers ${keys.join()} vs ${Object.keys(y.buffers).join()}`;
    for (const key of keys) {
      const u = x.buffers[key]!;
      const v = y.buffers[key]!;
      let largest = 0;
      for (let i = 0; i < u.length; i++) largest = Math.max(largest, Math.abs(u[i]!), Math.abs(v[i]!));
      for (let i = 0; i < u.length; i++) {
        const [x, y] = [Math.fround(u[i]!), Math.fround(v[i]!)];
        if (!Object.is(x, y) && !(Math.abs(x - y) <= relative * largest)) return `${name}.${key}[${i}]: ${u[i]} vs ${v[i]}`;
      }
    }
  }
  return null;
}

export interface CaseReport {
  name: string;
  failed?: string;
  /** Largest |p_gpu - p_cpu| over its bound after 100 steps. */
  parity: number;
  /** The same for a run resumed at step 50 on the CPU from the GPU's state dict, and on the GPU from that CPU's dict. */
  resumedOnCpu: number;
  resumedOnGpu: number;
  /** The GPU's dict at step 50, loaded into the CPU, its dict loaded into a new GPU optimizer, read back: the first difference, or null. */
  roundTrip: string | null;
  stepCount: number;
  /**
   * A global rule (null for the others): its optimizer-level scalars after 100 steps on the
   * GPU and on the CPU, |d_gpu - d_cpu| over its bound, and d_cpu / d0 (that d moved).
   */
  scalars: { gpu: Record<string, number>; cpu: Record<string, number>; estimateParity: number; estimateGrowth: number } | null;
  /** A global rule: its state at step 50 moved (moveTo) to a larger store: the dict there against the saved one (null: bit for bit), the params after 50 more steps over the bound. */
  moved: { roundTrip: string | null; parity: number } | null;
  /** Schedule-Free: the params after eval() and after train() against the CPU's, over the bound; update's refusal in eval mode; the mode after train(). */
  modes: { evalParity: number; trainParity: number; refused: string | null; mode: string } | null;
}

async function runCase(device: GPUDevice, c: GpuCase): Promise<CaseReport> {
  // The uninterrupted CPU reference, and the GPU run beside it.
  const grads = gradientsOf(c);
  const reference = new CpuRun(make(c), initial);
  const gpuStore = new GPUParamStore(device, SHAPES);
  for (const name of NAMES) gpuStore.write(name, initial(name));
  const gpu = new GPUOptimizer(make(c), gpuStore);
  let atResume: Record<Name, Float32Array> | undefined;
  let saved: OptimizerStateDict | undefined;
  for (let t = 0; t < STEPS; t++) {
    if (t === 30 && c.setAt30 !== undefined) {
      (reference.opt as unknown as AnyOptimizer).setHyperparameters(c.setAt30);
      gpu.setHyperparameters(c.setAt30);
    }
    if (t === RESUME_AT) {
      atResume = await readAll(gpuStore);
      saved = await gpu.stateDict();
    }
    reference.step(t, grads);
    for (const name of NAMES) gpuStore.writeGrad(name, grads(name, t));
    gpu.update();
  }
  const sums = c.sums ?? 0;
  const parity = worstRatio(await readAll(gpuStore), reference, STEPS, sums);
  const gpuScalars = (await gpu.stateDict()).scalars;
  const cpuScalars = (reference.opt.stateDict() as OptimizerStateDict).scalars;
  // d within rho + EPS of the CPU's (EPS: d kept in float32 on the device).
  const scalars = gpuScalars === undefined || cpuScalars === undefined ? null : {
    gpu: gpuScalars,
    cpu: cpuScalars,
    estimateParity: Math.abs(gpuScalars.estimLr! - cpuScalars.estimLr!) / (cpuScalars.estimLr! * (reference.budget!.relative + EPS)),
    estimateGrowth: cpuScalars.estimLr! / (reference.opt as unknown as { defaults: { estimLr0: number } }).defaults.estimLr0,
  };

  // GPU -> CPU: the GPU's dict at step 50 resumes on the wasm kernels.
  const onCpu = new CpuRun(make(c), (name) => atResume![name]);
  onCpu.opt.loadStateDict(saved);
  const cpuDict = onCpu.opt.stateDict() as OptimizerStateDict;
  for (let t = RESUME_AT; t < STEPS; t++) onCpu.step(t, grads);
  // CPU -> GPU: that CPU optimizer's dict resumes on a new GPU optimizer.
  const resumedStore = new GPUParamStore(device, SHAPES);
  for (const name of NAMES) resumedStore.write(name, atResume![name]);
  const resumed = new GPUOptimizer(make(c), resumedStore);
  resumed.loadStateDict(cpuDict);
  const roundTrip = difference(saved!, await resumed.stateDict());
  for (let t = RESUME_AT; t < STEPS; t++) {
    for (const name of NAMES) resumedStore.writeGrad(name, grads(name, t));
    resumed.update();
  }
  // A global rule: the state at step 50 moved GPU to GPU (moveTo) into a store with one
  // more parameter, its dict bit for bit the GPU's there (d and r included), 50 more steps.
  let moved: CaseReport['moved'] = null;
  if (saved!.scalars !== undefined) {
    const source = new GPUParamStore(device, SHAPES);
    for (const name of NAMES) source.write(name, atResume![name]);
    const from = new GPUOptimizer(make(c), source);
    from.loadStateDict(saved);
    const target = new GPUParamStore(device, { extra: 3, ...SHAPES });
    for (const name of NAMES) target.write(name, atResume![name]);
    const to = from.moveTo(target);
    const trip = difference(saved!, await to.stateDict());
    for (let t = RESUME_AT; t < STEPS; t++) {
      for (const name of NAMES) target.writeGrad(name, grads(name, t));
      to.update(NAMES);
    }
    const values = {} as Record<Name, Float32Array>;
    for (const name of NAMES) values[name] = await target.read(name);
    moved = { roundTrip: trip, parity: worstRatio(values, reference, STEPS) };
    from.destroy();
    to.destroy();
    source.destroy();
    target.destroy();
  }
  const report: CaseReport = {
    name: c.name,
    parity,
    resumedOnCpu: worstRatio(reference.store.params, onCpu, STEPS, sums, reference.budget?.relative),
    resumedOnGpu: worstRatio(await readAll(resumedStore), reference, STEPS, sums),
    roundTrip,
    stepCount: resumed.stepCount,
    scalars,
    moved,
    modes: null,
  };
  // Schedule-Free: eval() moves the params to x and train() back to y, on both sides.
  if (gpu.mode === 'train' && 'eval' in reference.opt) {
    const cpu = reference.opt as unknown as { eval(params: unknown): void; train(params: unknown): void };
    cpu.eval(reference.store.params);
    gpu.eval();
    const evalParity = worstRatio(await readAll(gpuStore), reference, STEPS);
    let refused: string | null = null;
    try {
      gpu.update();
    } catch (error) {
      refused = (error as Error).message;
    }
    cpu.train(reference.store.params);
    gpu.train();
    report.modes = { evalParity, trainParity: worstRatio(await readAll(gpuStore), reference, STEPS), refused, mode: gpu.mode };
  }
  gpu.destroy();
  resumed.destroy();
  gpuStore.destroy();
  resumedStore.destroy();
  return report;
}

export interface NonFiniteReport {
  /** The errors of the refused step: the CPU's (wasm kernels) and the GPU's, raised at the read back. */
  cpuError: string;
  gpuError: string;
  gpuParam: string;
  gpuIndex: number | undefined;
  /** After the error: params and state dict as after the last applied step, bit for bit (null) or the first difference. */
  paramsKept: string | null;
  stateKept: string | null;
  stepCount: number;
  /** A finite step after the error, against the CPU's (over the bound). */
  nextParity: number;
  /** A -Infinity alone: its error. */
  infinityError: string;
  /** nonFinite 'ignore': whether the NaN reached the parameter. */
  ignoredIsNaN: boolean;
  /** A refused step, then a finite one before the read: the read's error and the step count after. */
  laterError: string;
  laterStepCount: number;
  /** A refused step, the device's word awaited, then update(): its error and the step count after. */
  updateError: string;
  updateStepCount: number;
}

function firstDifference(a: Record<Name, Float32Array>, b: Record<Name, Float32Array>): string | null {
  for (const name of NAMES) for (let i = 0; i < LENGTH[name]; i++) if (!Object.is(a[name][i], b[name][i])) return `${name}[${i}]: ${a[name][i]} vs ${b[name][i]}`;
  return null;
}

async function message(run: () => unknown): Promise<string> {
  try {
    await run();
    return 'no error';
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

/** The non-finite contract: Adam with nonFinite 'error' (the default), a NaN at b[1] and an Infinity at c[7] in step 4. */
async function nonFinite(device: GPUDevice): Promise<NonFiniteReport> {
  const c: GpuCase = { name: 'adam', key: 'adam', options: { lr: 0.01 } };
  const bad = (name: Name, t: number): Float32Array => {
    const g = gradient(name, t);
    if (name === 'b') g[1] = NaN;
    if (name === 'c') g[7] = Infinity;
    return g;
  };
  const cpu = new CpuRun(make(c), initial);
  const store = new GPUParamStore(device, SHAPES);
  for (const name of NAMES) store.write(name, initial(name));
  const gpu = new GPUOptimizer(make(c), store);
  const feed = (t: number, grads: (name: Name, t: number) => Float32Array): void => {
    for (const name of NAMES) store.writeGrad(name, grads(name, t));
    gpu.update();
  };
  for (let t = 0; t < 3; t++) {
    cpu.step(t);
    feed(t, gradient);
  }
  const params3 = await readAll(store);
  const state3 = await gpu.stateDict();
  for (const name of NAMES) cpu.store.grads[name].set(bad(name, 3));
  const cpuError = await message(() => cpu.opt.update(cpu.store.params, cpu.store.grads));
  feed(3, bad);
  let gpuError = 'no error';
  let gpuParam = '';
  let gpuIndex: number | undefined;
  try {
    await store.read('w');
  } catch (error) {
    gpuError = `${(error as Error).name}: ${(error as Error).message}`;
    gpuParam = (error as { param?: string }).param ?? '';
    gpuIndex = (error as { index?: number }).index;
  }
  const paramsKept = firstDifference(params3, await readAll(store));
  const stateKept = difference(state3, await gpu.stateDict());
  const stepCount = gpu.stepCount;
  // The refused step taken again, finite: as the CPU's step 4.
  cpu.step(3);
  feed(3, gradient);
  const nextParity = worstRatio(await readAll(store), cpu, 4);

  // A refused step, then a finite one submitted before anything is read: both refused,
  // the error is the first one's, and the state is as before it.
  feed(4, (name, t) => {
    const g = gradient(name, t);
    if (name === 'c') g[7] = -Infinity;
    return g;
  });
  feed(5, gradient);
  const infinityError = await message(() => gpu.sync());
  const laterError = infinityError;
  const laterStepCount = gpu.stepCount;

  // Once the device has reported a refused step, the next update() raises it.
  feed(4, bad);
  await device.queue.onSubmittedWorkDone();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const updateError = await message(() => gpu.update());
  const updateStepCount = gpu.stepCount;

  const ignoring = new GPUOptimizer(make({ ...c, options: { ...c.options, nonFinite: 'ignore' } }), store);
  for (const name of NAMES) store.writeGrad(name, bad(name, 0));
  ignoring.update();
  const ignoredIsNaN = Number.isNaN((await store.read('b'))[1]);
  gpu.destroy();
  ignoring.destroy();
  store.destroy();
  return { cpuError, gpuError, gpuParam, gpuIndex, paramsKept, stateKept, stepCount, nextParity, infinityError, ignoredIsNaN, laterError, laterStepCount, updateError, updateStepCount };
}

export interface PlantedReport {
  /** The case the refused step ran in (PLANTED_CASES). */
  rule: string;
  where: string;
  param: string;
  index: number;
  value: number;
  /** The CPU's error (the wasm kernels, the same gradients) and the GPU's, raised at the read back, with its param and index. */
  cpuError: string;
  gpuError: string;
  gpuParam: string | undefined;
  gpuIndex: number | undefined;
  /** Params and state dict after the refused step against before it, bit for bit (null) or the first difference. */
  paramsKept: string | null;
  stateKept: string | null;
  stepCount: number;
  /** A global rule: whether the step, with finite gradients, moves d on the CPU (so that d kept says something); null for the others. */
  estimateWouldMove: boolean | null;
}

/**
 * The refused step with one non-finite gradient at `planted`: Adam (nonFinite 'error',
 * the default) over the three parameters, two finite steps, then the bad one on both
 * sides; the GPU's error comes at the next read back.
 */
async function plantedRun(device: GPUDevice, c: GpuCase, planted: (typeof PLANTED)[number]): Promise<PlantedReport> {
  const gradient = gradientsOf(c);
  const bad = (name: Name, t: number): Float32Array => {
    const g = gradient(name, t);
    if (name === planted.param) g[planted.index] = planted.value;
    return g;
  };
  const cpu = new CpuRun(make(c), initial);
  const store = new GPUParamStore(device, SHAPES);
  for (const name of NAMES) store.write(name, initial(name));
  const gpu = new GPUOptimizer(make(c), store);
  for (let t = 0; t < 2; t++) {
    cpu.step(t, gradient);
    for (const name of NAMES) store.writeGrad(name, gradient(name, t));
    gpu.update();
  }
  const params = await readAll(store);
  const state = await gpu.stateDict();
  let estimateWouldMove: boolean | null = null;
  if (state.scalars !== undefined) {
    // The same step with finite gradients, on a copy of the CPU's: it moves d.
    const copy = new CpuRun(make(c), (name) => cpu.store.params[name].slice());
    copy.opt.loadStateDict(cpu.opt.stateDict());
    const before = (copy.opt.stateDict() as OptimizerStateDict).scalars!.estimLr;
    copy.step(2, gradient);
    estimateWouldMove = (copy.opt.stateDict() as OptimizerStateDict).scalars!.estimLr !== before;
  }
  for (const name of NAMES) cpu.store.grads[name].set(bad(name, 2));
  const cpuError = await message(() => cpu.opt.update(cpu.store.params, cpu.store.grads));
  for (const name of NAMES) store.writeGrad(name, bad(name, 2));
  gpu.update();
  let gpuError = 'no error';
  let gpuParam: string | undefined;
  let gpuIndex: number | undefined;
  try {
    await store.read('b');
  } catch (error) {
    gpuError = `${(error as Error).name}: ${(error as Error).message}`;
    gpuParam = (error as { param?: string }).param;
    gpuIndex = (error as { index?: number }).index;
  }
  const report: PlantedReport = {
    rule: c.name,
    ...planted,
    cpuError,
    gpuError,
    gpuParam,
    gpuIndex,
    paramsKept: firstDifference(params, await readAll(store)),
    stateKept: difference(state, await gpu.stateDict()),
    stepCount: gpu.stepCount,
    estimateWouldMove,
  };
  gpu.destroy();
  store.destroy();
  return report;
}

async function plantedAll(device: GPUDevice): Promise<PlantedReport[] | { failed: string }> {
  device.pushErrorScope('validation');
  const reports: PlantedReport[] = [];
  try {
    for (const c of PLANTED_CASES) for (const planted of PLANTED) reports.push(await plantedRun(device, c, planted));
  } catch (error) {
    await device.popErrorScope();
    return { failed: String((error as Error).stack ?? error) };
  }
  const invalid = await device.popErrorScope();
  return invalid === null ? reports : { failed: `GPU validation: ${invalid.message}` };
}

export interface SkipReport {
  /** The CPU's and the GPU's counters after the run: stepCount, skippedSteps, and each parameter's step. */
  cpu: string;
  gpu: string;
  /** The GPU's params against the CPU's, over the bound. */
  parity: number;
  /** Whether the GPU's state dict equals the CPU's bit for bit (null) or the first difference. */
  state: string | null;
  /** update() of another set of parameters while steps are in flight: its error. */
  otherNames: string;
  /** A global rule: |d_gpu - d_cpu| over its bound, and d_cpu / d0. */
  estimateParity?: number;
  estimateGrowth?: number;
}

/** nonFinite 'skip' with the rules of SKIP_CASES (programs of passes, global rules): the same run as Adam's. */
async function otherSkips(device: GPUDevice): Promise<SkipReport[] | { failed: string }> {
  device.pushErrorScope('validation');
  const reports: SkipReport[] = [];
  try {
    for (const c of SKIP_CASES) reports.push(await skip(device, c));
  } catch (error) {
    await device.popErrorScope();
    return { failed: String((error as Error).stack ?? error) };
  }
  const invalid = await device.popErrorScope();
  return invalid === null ? reports : { failed: `GPU validation: ${invalid.message}` };
}

/**
 * nonFinite 'skip': Adam under an lr schedule (both depend on the step count), 12 steps of
 * which 3 have a non-finite gradient, submitted without waiting for the device but once.
 */
async function skip(device: GPUDevice, c: GpuCase = { name: 'adam skip', key: 'adam', options: { lr: (t: number) => 0.01 * (1 + t / 10), nonFinite: 'skip' } }): Promise<SkipReport> {
  // The rules beside Adam skip their first step too (a global rule's candidates then differ in whether x0 is taken).
  const badAt = new Set(c.key === 'adam' ? [3, 4, 9] : [0, 3, 4, 9]);
  const gradient = gradientsOf(c);
  const grads = (name: Name, t: number): Float32Array => {
    const g = gradient(name, t);
    if (badAt.has(t) && name === (t === 9 ? 'w' : 'c')) g[2] = t === 4 ? -Infinity : NaN;
    return g;
  };
  const cpu = new CpuRun(make(c), initial);
  const store = new GPUParamStore(device, SHAPES);
  for (const name of NAMES) store.write(name, initial(name));
  const gpu = new GPUOptimizer(make(c), store);
  let otherNames = 'no error';
  for (let t = 0; t < 12; t++) {
    cpu.step(t, grads);
    for (const name of NAMES) store.writeGrad(name, grads(name, t));
    gpu.update();
    if (t === 1) otherNames = await message(() => gpu.update(['w']));
    // Once, the device's word mid-way: the steps before are confirmed, those after in flight.
    if (t === 5) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const counters = (dict: OptimizerStateDict): string =>
    `${dict.stepCount} ${dict.skippedSteps} ${NAMES.map((name) => `${name}:${dict.params[name]?.step}`).join(' ')}`;
  const gpuDict = await gpu.stateDict();
  const cpuDict = cpu.opt.stateDict() as OptimizerStateDict;
  // The elementwise rules' state does not depend on sums: bit for bit. Adafactor's m
  // averages its updates, each within the bound's per-step term of the CPU's, relative.
  const stateBound = c.key === 'adafactor' ? EPS * (16 + (c.sums ?? 0) * DEPTH + 6 * 12) : 0;
  const report: SkipReport = { cpu: counters(cpuDict), gpu: counters(gpuDict), parity: worstRatio(await readAll(store), cpu, 12, c.sums ?? 0), state: difference(cpuDict, gpuDict, stateBound), otherNames };
  if (cpuDict.scalars !== undefined) {
    report.estimateParity = Math.abs(gpuDict.scalars!.estimLr! - cpuDict.scalars.estimLr!) / (cpuDict.scalars.estimLr! * (cpu.budget!.relative + EPS));
    report.estimateGrowth = cpuDict.scalars.estimLr! / (cpu.opt as unknown as { defaults: { estimLr0: number } }).defaults.estimLr0;
  }
  gpu.destroy();
  store.destroy();
  return report;
}

export interface LargeReport {
  /** Elements of the one parameter: more than one dispatch row holds (65535 workgroups of 64). */
  length: number;
  /** The first element where one SGD step differs from p - lr g worked in float32, or null. */
  difference: string | null;
}

/** One SGD step over 4.2e6 + 1000 elements: the dispatch's second row of workgroups is used. */
async function large(device: GPUDevice): Promise<LargeReport> {
  const length = 65535 * 64 + 1000;
  const store = new GPUParamStore(device, { big: length });
  const p = numbers(length, 5);
  const g = numbers(length, 6);
  store.write('big', p);
  store.writeGrad('big', g);
  const opt = new GPUOptimizer(make({ name: 'sgd', key: 'sgd', options: { lr: 0.1 } }), store);
  opt.update();
  const after = await store.read('big');
  const lr = Math.fround(0.1);
  let difference: string | null = null;
  for (let i = 0; i < length && difference === null; i++) {
    const expected = Math.fround(p[i]! - Math.fround(lr * g[i]!));
    if (!Object.is(after[i], expected)) difference = `big[${i}]: ${after[i]} vs ${expected}`;
  }
  opt.destroy();
  store.destroy();
  return { length, difference };
}

export interface ErrorsReport {
  /** Each refused call's error, and whether it left params, state and counters as they were (null) or what changed. */
  refusals: { call: string; error: string; changed: string | null }[];
  /** update(['c']) alone: the dict's params and steps; then reset('c'). */
  subset: { params: string[]; stepCount: number; afterReset: string[] };
  /** Prodigy: refused calls that would change its estimate (each changing nothing, d included); its scalars after reset(). */
  global: { refusals: { call: string; error: string; changed: string | null }[]; afterReset: Record<string, number> | undefined };
}

/** Bad calls on a GPUOptimizer: each throws naming the parameter or value, and changes nothing. */
async function errorTable(device: GPUDevice): Promise<ErrorsReport> {
  const store = new GPUParamStore(device, SHAPES);
  for (const name of NAMES) store.write(name, initial(name));
  const gpu = new GPUOptimizer(make({ name: 'adam', key: 'adam', options: { lr: (t: number) => (t < 2 ? 0.01 : NaN) } }), store);
  for (let t = 0; t < 2; t++) {
    for (const name of NAMES) store.writeGrad(name, gradient(name, t));
    gpu.update();
  }
  const sgdDict = new CpuRun(make({ name: 'sgd', key: 'sgd', options: {} }), initial);
  sgdDict.step(0);
  const dict = await gpu.stateDict();
  const longer = structuredClone(dict);
  longer.params.b!.length = 6;
  longer.params.b!.buffers.expAvg = new Float32Array(6);
  longer.params.b!.buffers.expAvgSq = new Float32Array(6);
  const stranger = structuredClone(dict);
  stranger.params.z = stranger.params.b!;
  const calls: [string, () => unknown][] = [
    ['update(["nope"])', () => gpu.update(['nope' as Name])],
    ['update(["w", "w"])', () => gpu.update(['w', 'w'])],
    ['update() with the lr schedule NaN at step 2', () => gpu.update()],
    ["loadStateDict(SGD's dict)", () => gpu.loadStateDict(sgdDict.opt.stateDict())],
    ['loadStateDict(b of length 6)', () => gpu.loadStateDict(longer)],
    ['loadStateDict(a parameter z)', () => gpu.loadStateDict(stranger)],
    ['write("b", 4 values)', () => store.write('b', new Float32Array(4))],
    ['new GPUParamStore(device, { w: -1 })', () => new GPUParamStore(device, { w: -1 })],
  ];
  const refusals: ErrorsReport['refusals'] = [];
  for (const [call, run] of calls) {
    const before = await readAll(store);
    const error = await message(run);
    const changed = firstDifference(before, await readAll(store)) ?? difference(dict, await gpu.stateDict());
    refusals.push({ call, error, changed });
  }
  gpu.destroy();

  const subsetOpt = new GPUOptimizer(make({ name: 'adam', key: 'adam', options: { lr: 0.01 } }), store);
  subsetOpt.update(['c']);
  const subsetDict = await subsetOpt.stateDict();
  subsetOpt.reset('c');
  const afterReset = Object.keys((await subsetOpt.stateDict()).params);
  subsetOpt.destroy();

  // A global rule: its scalars are checked before anything changes, and kept by a refusal.
  const prodigyCase: GpuCase = { name: 'Prodigy', key: 'prodigy', options: { estimLr0: 1e-3, estimLrCoef: 100, lr: (t: number) => (t < 3 ? 1 : NaN) }, drift: 0.5 };
  const drifting = gradientsOf(prodigyCase);
  for (const name of NAMES) store.write(name, initial(name));
  const prodigy = new GPUOptimizer(make(prodigyCase), store);
  for (let t = 0; t < 3; t++) {
    for (const name of NAMES) store.writeGrad(name, drifting(name, t));
    prodigy.update();
  }
  const saved = await prodigy.stateDict();
  const globalCalls: [string, () => unknown][] = [
    ['loadStateDict(estimLr -1)', () => prodigy.loadStateDict({ ...saved, scalars: { estimLr: -1, numeratorWeighted: 0 } })],
    ['loadStateDict(no scalars)', () => prodigy.loadStateDict({ ...saved, scalars: undefined })],
    ['loadStateDict(an unknown scalar)', () => prodigy.loadStateDict({ ...saved, scalars: { ...saved.scalars, growth: 1 } })],
    ['update() with the lr schedule NaN at step 3', () => prodigy.update()],
  ];
  const globalRefusals: ErrorsReport['refusals'] = [];
  for (const [call, run] of globalCalls) {
    const before = await readAll(store);
    const error = await message(run);
    const changed = firstDifference(before, await readAll(store)) ?? difference(saved, await prodigy.stateDict());
    globalRefusals.push({ call, error, changed });
  }
  prodigy.reset();
  const afterGlobalReset = (await prodigy.stateDict()).scalars;
  prodigy.destroy();
  store.destroy();
  return {
    refusals,
    subset: { params: Object.entries(subsetDict.params).map(([name, record]) => `${name}:${record.step}`), stepCount: subsetDict.stepCount, afterReset },
    global: { refusals: globalRefusals, afterReset: afterGlobalReset },
  };
}

export interface ProgramsReport {
  /** Per run at scale (two tree levels, more segments than one dispatch takes): the largest |p_gpu - p_cpu| over the bound. */
  scale: { name: string; length: number; depth: number; parity: number }[];
  /** Adafactor (factored) moved to a larger store after 5 steps, 5 more there: the first difference from 10 steps on one store, bit for bit, or null. */
  moved: string | null;
  /** A dict saved for w as a 7 x 13 matrix loaded where w is a vector of 91: the error, and what it changed (null: nothing). */
  refusal: string;
  refusalChanged: string | null;
  /** update() of a tensor of rank 3 Adafactor would factor: the error, and the step count and parameters with state after it. */
  rank3: { error: string; stepCount: number; params: string[] };
}

/**
 * `steps` steps of a rule with sums over its parameters, on the GPU and on the CPU (the
 * wasm kernels or Adafactor's JS, a float32 ParamStore), the same gradients: the largest
 * difference over the bound (16 + r D + 6 T), D the tree's depth over the longest tensor.
 */
async function scaleRun(device: GPUDevice, key: string, options: Record<string, unknown>, shapes: Record<string, number[]>, steps: number, sums: number): Promise<ProgramsReport['scale'][number]> {
  const names = Object.keys(shapes);
  const lengths = names.map((name) => shapes[name]!.reduce((a, b) => a * b, 1));
  const cpuOpt = make({ name: key, key, options });
  const cpu = new ParamStore(shapes, { stateBuffers: [cpuOpt] });
  const store = new GPUParamStore(device, shapes);
  const gpu = new GPUOptimizer(make({ name: key, key, options }), store);
  const moved = lengths.map((n) => new Float64Array(n));
  const largest = lengths.map((n) => new Float64Array(n));
  names.forEach((name, k) => {
    const p = numbers(lengths[k]!, 300 + k);
    cpu.params[name]!.set(p);
    store.write(name, p);
    largest[k]!.set(p.map(Math.abs));
  });
  for (let t = 0; t < steps; t++) {
    names.forEach((name, k) => {
      const g = numbers(lengths[k]!, 1000 * t + k).map((x, i) => x * 10 ** ((i % 3) - 1));
      cpu.grads[name]!.set(g);
      store.writeGrad(name, g);
    });
    const before = names.map((name) => cpu.params[name]!.slice());
    cpuOpt.update(cpu.params, cpu.grads);
    gpu.update();
    names.forEach((name, k) => {
      const p = cpu.params[name]!;
      for (let i = 0; i < p.length; i++) {
        moved[k]![i]! += Math.abs(p[i]! - before[k]![i]!);
        largest[k]![i] = Math.max(largest[k]![i]!, Math.abs(p[i]!));
      }
    });
  }
  const depth = depthOf(Math.max(...lengths));
  let worst = 0;
  for (const [k, name] of names.entries()) {
    const values = await store.read(name);
    const p = cpu.params[name]!;
    for (let i = 0; i < p.length; i++) {
      const error = Math.abs(values[i]! - p[i]!);
      const bound = EPS * ((16 + sums * depth + 6 * steps) * moved[k]![i]! + steps * largest[k]![i]!);
      worst = Math.max(worst, error === 0 ? 0 : error / bound);
      if (Number.isNaN(error)) worst = NaN;
    }
  }
  gpu.destroy();
  store.destroy();
  return { name: `${key} ${JSON.stringify(shapes)}`, length: Math.max(...lengths), depth, parity: worst };
}

/** The GPU programs (LAMB, Adafactor) at scale, Adafactor's state moved to another store, and a load its shapes refuse. */
async function programs(device: GPUDevice): Promise<ProgramsReport> {
  const scale = [
    // Two levels of the tree (70000 > 4096), and a tensor of 3 beside it.
    await scaleRun(device, 'lamb', { lr: 0.01, weightDecay: 0.01 }, { big: [70000], small: [3] }, 10, 2),
    // Row sums of 260 and column sums of 300 (one level each), u^2 over 78000 (two).
    await scaleRun(device, 'adafactor', { lr: 0.01, momentum: 0.9 }, { m: [300, 260] }, 10, 5),
    // 70000 columns: more segments than one dispatch takes (65535); rows of 70000 (two levels).
    await scaleRun(device, 'adafactor', { lr: 0.01, minDimSizeToFactor: 2 }, { wide: [2, 70000] }, 5, 5),
  ];

  const options = { lr: 0.01, minDimSizeToFactor: 4, momentum: 0.9 };
  const c: GpuCase = { name: 'adafactor', key: 'adafactor', options };
  const straightStore = new GPUParamStore(device, SHAPES);
  const straight = new GPUOptimizer(make(c), straightStore);
  const small = new GPUParamStore(device, { b: 5, w: [7, 13] });
  const first = new GPUOptimizer(make(c), small);
  for (const name of NAMES) straightStore.write(name, initial(name));
  for (const name of ['b', 'w'] as const) small.write(name, initial(name));
  for (let t = 0; t < 5; t++) {
    for (const name of NAMES) straightStore.writeGrad(name, gradient(name, t));
    straight.update(['w', 'b']);
    for (const name of ['b', 'w'] as const) small.writeGrad(name, gradient(name, t));
    first.update();
  }
  // The larger store lays w and b out at other offsets (SHAPES: w first).
  const large = new GPUParamStore(device, SHAPES);
  for (const name of ['b', 'w'] as const) large.write(name, await small.read(name));
  const moved = first.moveTo(large);
  for (let t = 5; t < 10; t++) {
    for (const name of NAMES) {
      straightStore.writeGrad(name, gradient(name, t));
      large.writeGrad(name, gradient(name, t));
    }
    straight.update(['w', 'b']);
    moved.update(['w', 'b']);
  }
  let movedDifference: string | null = null;
  for (const name of ['w', 'b'] as const) {
    const [a, b] = [await straightStore.read(name), await large.read(name)];
    const i = a.findIndex((x, k) => !Object.is(x, b[k]));
    if (movedDifference === null && i >= 0) movedDifference = `${name}[${i}]: ${a[i]} vs ${b[i]}`;
  }
  movedDifference ??= difference(await straight.stateDict(), await moved.stateDict());

  // w saved as a 7 x 13 matrix (factored), loaded where w is a vector of 91.
  const saved = await straight.stateDict();
  const flat = new GPUParamStore(device, { w: 91, b: 5, c: 300 });
  for (const name of NAMES) flat.write(name, initial(name));
  const other = new GPUOptimizer(make(c), flat);
  for (const name of NAMES) flat.writeGrad(name, gradient(name, 0));
  other.update();
  const paramsBefore: Record<string, Float32Array> = {};
  for (const name of NAMES) paramsBefore[name] = await flat.read(name);
  const dictBefore = await other.stateDict();
  const refusal = await message(() => other.loadStateDict(saved));
  let refusalChanged = difference(dictBefore, await other.stateDict());
  for (const name of NAMES) {
    const now = await flat.read(name);
    if (refusalChanged === null && now.some((x, i) => !Object.is(x, paramsBefore[name]![i]))) refusalChanged = `params of ${name}`;
  }
  // A tensor of rank 3 whose two largest dimensions reach minDimSizeToFactor: refused before anything is written.
  const cube = new GPUParamStore(device, { x: [4, 5, 6], y: 3 });
  const cubed = new GPUOptimizer(make({ ...c, options: { lr: 0.01, minDimSizeToFactor: 2 } }), cube);
  const error = await message(() => cubed.update());
  const rank3 = { error, stepCount: cubed.stepCount, params: Object.keys((await cubed.stateDict()).params) };
  for (const opt of [straight, first, moved, other, cubed]) opt.destroy();
  for (const store of [straightStore, small, large, flat, cube]) store.destroy();
  return { scale, moved: movedDifference, refusal, refusalChanged, rank3 };
}

export interface TreeReport {
  /**
   * Per rule: the store's partial sums in pass 1 (one per 4096 elements of each parameter)
   * and the depth L of its tree (12 + 12 per level over the partials); d and r after the
   * steps on the GPU and on the CPU, |d_gpu - d_cpu| / d_cpu, its bound rho + EPS (rho: the
   * EstimateBudget at depth L), the one over the other, the params' largest difference
   * over their bound, and d_cpu / d0.
   */
  runs: { name: string; partials: number; depth: number; gpu: Record<string, number>; cpu: Record<string, number>; relative: number; bound: number; estimateParity: number; parity: number; estimateGrowth: number }[];
}

/** The tree's store: 4100 parameters of one element, then one of 9000 (three partials), the last partials past the first 4096. */
const TREE_SMALL = 4100;
const TREE_LARGE = 9000;
const TREE_STEPS = 3;

/**
 * A global rule over more than 4096 partials: pass 1's partials are summed in two levels
 * (4103 partials: 2 workgroups, then 1), not one. TREE_STEPS steps on the GPU and on the CPU
 * (the wasm kernels over a float32 ParamStore), the same drifting gradients, so that d
 * moves; the params' bound is worstRatio's with rho from the estimate's budget at depth L.
 */
async function treeRun(device: GPUDevice, c: GpuCase): Promise<TreeReport['runs'][number]> {
  const shapes: Record<string, number[]> = {};
  for (let k = 0; k < TREE_SMALL; k++) shapes[`p${k}`] = [1];
  shapes['big'] = [TREE_LARGE];
  const names = Object.keys(shapes);
  const lengths = names.map((name) => shapes[name]![0]!);
  const cpuOpt = make(c);
  const cpu = new ParamStore(shapes, { stateBuffers: [cpuOpt] });
  const store = new GPUParamStore(device, shapes);
  const gpu = new GPUOptimizer(make(c), store);
  // The tree's shape from the GPU store's own lengths.
  const storeLengths = store.names.map((name) => store.lengths[name]!);
  const partials = storeLengths.reduce((sum, n) => sum + Math.ceil(n / 4096), 0);
  const depth = globalDepth(storeLengths);
  const budget = new EstimateBudget(c.key, names, depth);
  const moved = lengths.map((n) => new Float64Array(n));
  const largest = lengths.map((n) => new Float64Array(n));
  // As the page's gradients (gradient, gradientsOf): noise of several scales (0.01 to 1,
  // below the drift, so that D-Adapt's d moves within a few steps) plus a drift fixed per parameter.
  const drift = c.drift ?? 0;
  const direction = lengths.map((n, k) => numbers(n, 4242 + k));
  names.forEach((name, k) => {
    const p = numbers(lengths[k]!, 1000 + k);
    cpu.params[name]!.set(p);
    store.write(name, p);
    largest[k]!.set(p.map(Math.abs));
  });
  for (let t = 0; t < TREE_STEPS; t++) {
    names.forEach((name, k) => {
      const scale = name === 'big' ? 0.01 : 10 ** ((k % 3) - 2);
      const g = numbers(lengths[k]!, 7919 * (t + 1) + k).map((x, i) => x * scale + drift * direction[k]![i]!);
      cpu.grads[name]!.set(g);
      store.writeGrad(name, g);
    });
    const previous = names.map((name) => cpu.params[name]!.slice());
    const before = budget.before(cpuOpt, cpu, (name) => cpu.grads[name]!);
    cpuOpt.update(cpu.params, cpu.grads);
    budget.after(cpuOpt, before);
    gpu.update();
    names.forEach((name, k) => {
      const p = cpu.params[name]!;
      for (let i = 0; i < p.length; i++) {
        moved[k]![i]! += Math.abs(p[i]! - previous[k]![i]!);
        largest[k]![i] = Math.max(largest[k]![i]!, Math.abs(p[i]!));
      }
    });
  }
  // One read back of the whole params buffer (store.read per parameter would wait on the device 4101 times), after store.read has settled the steps.
  await store.read('big');
  const staging = device.createBuffer({ size: store.regionLength * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(store.params, 0, staging, 0, store.regionLength * 4);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const all = new Float32Array(staging.getMappedRange().slice(0));
  staging.destroy();
  let parity = 0;
  for (const [k, name] of names.entries()) {
    const values = all.subarray(store.offsets[name]!, store.offsets[name]! + lengths[k]!);
    const p = cpu.params[name]!;
    for (let i = 0; i < p.length; i++) {
      const error = Math.abs(values[i]! - p[i]!);
      const bound = (EPS * (16 + 6 * TREE_STEPS) + 3 * budget.relative) * moved[k]![i]! + EPS * TREE_STEPS * largest[k]![i]!;
      parity = Number.isNaN(error) || Number.isNaN(parity) ? NaN : Math.max(parity, error === 0 ? 0 : error / bound);
    }
  }
  const gpuScalars = (await gpu.stateDict()).scalars!;
  const cpuScalars = cpuOpt.stateDict().scalars!;
  const relative = Math.abs(gpuScalars.estimLr! - cpuScalars.estimLr!) / cpuScalars.estimLr!;
  const bound = budget.relative + EPS;
  gpu.destroy();
  store.destroy();
  return {
    name: c.name,
    partials,
    depth,
    gpu: gpuScalars,
    cpu: cpuScalars,
    relative,
    bound,
    estimateParity: relative / bound,
    parity,
    estimateGrowth: cpuScalars.estimLr! / (cpuOpt as unknown as { defaults: { estimLr0: number } }).defaults.estimLr0,
  };
}

/** Prodigy and D-Adapt AdamW over the tree's store. */
async function tree(device: GPUDevice): Promise<TreeReport> {
  return {
    runs: [
      await treeRun(device, { name: 'Prodigy', key: 'prodigy', options: { estimLr0: 1e-3, estimLrCoef: 100 }, drift: 0.5 }),
      await treeRun(device, { name: 'DAdaptAdamW', key: 'dadapt-adamw', options: { estimLr0: 1e-6 }, drift: 0.5 }),
    ],
  };
}

/** The tree's report, or how it failed (a GPU validation error among them). */
async function treeOf(device: GPUDevice): Promise<TreeReport | { failed: string }> {
  device.pushErrorScope('validation');
  let report: TreeReport | { failed: string };
  try {
    report = await tree(device);
  } catch (error) {
    report = { failed: String((error as Error).stack ?? error) };
  }
  const invalid = await device.popErrorScope();
  return invalid === null ? report : { failed: `GPU validation: ${invalid.message}` };
}

async function main(cases: readonly GpuCase[]): Promise<{ cases: CaseReport[]; nonFinite: NonFiniteReport | { failed: string }; errors: ErrorsReport | { failed: string }; large: LargeReport | { failed: string }; skip: SkipReport | { failed: string }; moreSkips: SkipReport[] | { failed: string }; planted: PlantedReport[] | { failed: string }; programs: ProgramsReport | { failed: string }; tree: TreeReport | { failed: string } } | { failed: string }> {
  await loadKernels();
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) return { failed: `no WebGPU adapter (navigator.gpu ${navigator.gpu === undefined ? 'undefined' : 'present'})` };
  const device = await adapter.requestDevice();
  const reports: CaseReport[] = [];
  for (const c of cases) {
    device.pushErrorScope('validation');
    let report: CaseReport;
    try {
      report = await runCase(device, c);
    } catch (error) {
      report = { name: c.name, failed: String((error as Error).stack ?? error), parity: NaN, resumedOnCpu: NaN, resumedOnGpu: NaN, roundTrip: 'not run', stepCount: 0, scalars: null, moved: null, modes: null };
    }
    const invalid = await device.popErrorScope();
    if (invalid !== null) report.failed = `${report.failed ?? ''} GPU validation: ${invalid.message}`;
    reports.push(report);
  }
  device.pushErrorScope('validation');
  let contract: NonFiniteReport | { failed: string };
  try {
    contract = await nonFinite(device);
  } catch (error) {
    contract = { failed: String((error as Error).stack ?? error) };
  }
  const invalid = await device.popErrorScope();
  if (invalid !== null) contract = { failed: `GPU validation: ${invalid.message}` };
  let table: ErrorsReport | { failed: string };
  try {
    table = await errorTable(device);
  } catch (error) {
    table = { failed: String((error as Error).stack ?? error) };
  }
  let big: LargeReport | { failed: string };
  try {
    big = await large(device);
  } catch (error) {
    big = { failed: String((error as Error).stack ?? error) };
  }
  let skipped: SkipReport | { failed: string };
  try {
    skipped = await skip(device);
  } catch (error) {
    skipped = { failed: String((error as Error).stack ?? error) };
  }
  const planted = await plantedAll(device);
  const moreSkips = await otherSkips(device);
  device.pushErrorScope('validation');
  let programsReport: ProgramsReport | { failed: string };
  try {
    programsReport = await programs(device);
  } catch (error) {
    programsReport = { failed: String((error as Error).stack ?? error) };
  }
  const invalidPrograms = await device.popErrorScope();
  if (invalidPrograms !== null) programsReport = { failed: `GPU validation: ${invalidPrograms.message}` };
  const treeReport = await treeOf(device);
  return { cases: reports, nonFinite: contract, errors: table, large: big, skip: skipped, moreSkips, planted, programs: programsReport, tree: treeReport };
}

/**
 * A fixture file (test/fixtures/*.json, test/fixtures/rules/*.json) as
 * test/webgpu-fixtures.test.ts hands it over: its problem, and its float32 cases with the
 * option sets whose rule has a GPU kernel.
 */
export interface FixtureInput {
  file: string;
  problem: { sizes: Record<string, number>; shapes?: Record<string, number[]>; coupling: number; steps: number; x0: Record<string, number[]>; c: Record<string, number[]> };
  /** The lr an 'inverse-time' schedule scales where a case leaves lr to the rule's default, as the file's CPU test passes it to caseOptions. */
  defaultLr?: number;
  cases: {
    id: string;
    negateGrad: boolean;
    schedule: 'inverse-time' | null;
    /** The steps after which the fixture holds the params. */
    checkpoints: number[];
    /** Whether the fixture holds x, the params after eval() (Schedule-Free). */
    eval: boolean;
    ours: FixtureConfig[];
  }[];
}

/** Params read back, and the bound of docs/webgpu.md on their distance from the CPU's kernels, per element. */
export type BoundedValues = Record<string, { values: number[]; bound: number[] }>;

export interface FixtureRun {
  file: string;
  id: string;
  optimizer: string;
  /** The option set's index in the case's `ours`. */
  config: number;
  failed?: string;
  /** The GPU's params at each checkpoint of the fixture. */
  checkpoints: Record<string, BoundedValues>;
  /** The GPU's state dict after the last step, buffers as plain arrays, and the optimizer's own scalars. */
  state: Record<string, { step: number | null; scalars: Record<string, number>; buffers: Record<string, number[]> }>;
  scalars: Record<string, number>;
  /** The params after eval() following the last step, where the case asks for it; else null. */
  x: BoundedValues | null;
}

/**
 * The fixtures' problem (test/helpers.ts doubleWellGradient, in float32): the gradient of
 * sum (x^4/4 - c x^2/2) + coupling x_i (x_(i+1) + x_(i-1)) / 2 over a ring, each operation
 * rounded to float32 as the CPU fixture suite computes it on a float32 store.
 */
function doubleWellGradient(x: Float32Array, c: Float32Array, coupling: number, out: Float32Array): void {
  const round = Math.fround;
  const s = round(coupling);
  const n = x.length;
  for (let i = 0; i < n; i++) {
    const xi = x[i]!;
    const next = x[(i + 1) % n]!;
    const previous = x[(i - 1 + n) % n]!;
    const cubic = round(xi * round(round(xi * xi) - c[i]!));
    out[i] = round(cubic + round(s * round(next + previous)));
  }
}

/**
 * One option set of a fixture case on the GPU: the problem's params in a GPUParamStore
 * (with the problem's matrix shapes, where it has them), each step's gradient computed
 * on the CPU from the params read back (as the CPU suite computes it from its store),
 * written with writeGrad, one update; the params and the bound's running sums kept at the
 * fixture's checkpoints; the state dict after the last step, then x after eval() where
 * the case holds it.
 */
async function fixtureRun(device: GPUDevice, input: FixtureInput, item: FixtureInput['cases'][number], index: number): Promise<FixtureRun> {
  const { problem } = input;
  const config = item.ours[index]!;
  const names = Object.keys(problem.sizes);
  const entry = registered(config.optimizer);
  if (entry === undefined) throw new Error(`no rule ${config.optimizer}`);
  const store = new GPUParamStore(device, { ...problem.sizes, ...problem.shapes });
  const gpu = new GPUOptimizer(entry.make(caseOptions(config, item.schedule, {}, input.defaultLr)) as unknown as AnyOptimizer, store);
  const params: Record<string, Float32Array> = {};
  const moved: Record<string, Float64Array> = {};
  const largest: Record<string, Float64Array> = {};
  for (const name of names) {
    params[name] = Float32Array.from(problem.x0[name]!);
    store.write(name, params[name]);
    moved[name] = new Float64Array(params[name].length);
    largest[name] = Float64Array.from(params[name], Math.abs);
  }
  // EPS ((16 + 6 t) sum_t |dp_t| + t max_t |p_t|) after t steps, per element.
  const bounded = (t: number, values: Record<string, Float32Array>): BoundedValues => Object.fromEntries(names.map((name) => [name, {
    values: Array.from(values[name]!),
    bound: Array.from(moved[name]!, (sum, i) => EPS * ((16 + 6 * t) * sum + t * largest[name]![i]!)),
  }]));
  const constants = Object.fromEntries(names.map((name) => [name, Float32Array.from(problem.c[name]!)]));
  const wanted = new Set(item.checkpoints);
  const checkpoints: FixtureRun['checkpoints'] = {};
  for (let t = 1; t <= problem.steps; t++) {
    for (const name of names) {
      const g = new Float32Array(params[name]!.length);
      doubleWellGradient(params[name]!, constants[name]!, problem.coupling, g);
      if (item.negateGrad) for (let i = 0; i < g.length; i++) g[i] = -g[i]!;
      store.writeGrad(name, g);
    }
    gpu.update();
    for (const name of names) {
      const next = await store.read(name);
      const before = params[name]!;
      for (let i = 0; i < next.length; i++) {
        moved[name]![i]! += Math.abs(next[i]! - before[i]!);
        largest[name]![i] = Math.max(largest[name]![i]!, Math.abs(next[i]!));
      }
      params[name] = next;
    }
    if (wanted.has(t)) checkpoints[String(t)] = bounded(t, params);
  }
  const dict = await gpu.stateDict();
  const state: FixtureRun['state'] = {};
  for (const [name, record] of Object.entries(dict.params)) {
    state[name] = { step: record.step ?? null, scalars: { ...record.scalars }, buffers: Object.fromEntries(Object.entries(record.buffers).map(([key, values]) => [key, Array.from(values)])) };
  }
  let x: BoundedValues | null = null;
  if (item.eval) {
    // x as the CPU tests take it: eval() after the last step. Its bound is the params',
    // as test/webgpu-browser.test.ts bounds eval() against the CPU's.
    gpu.eval();
    const after: Record<string, Float32Array> = {};
    for (const name of names) after[name] = await store.read(name);
    x = bounded(problem.steps, after);
  }
  gpu.destroy();
  store.destroy();
  return { file: input.file, id: item.id, optimizer: config.optimizer, config: index, checkpoints, state, scalars: { ...dict.scalars }, x };
}

async function fixtures(): Promise<{ runs: FixtureRun[] } | { failed: string }> {
  await loadKernels();
  const inputs = (await (await fetch('/fixtures.json')).json()) as FixtureInput[];
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) return { failed: `no WebGPU adapter (navigator.gpu ${navigator.gpu === undefined ? 'undefined' : 'present'})` };
  const device = await adapter.requestDevice();
  const runs: FixtureRun[] = [];
  for (const input of inputs) {
    for (const item of input.cases) {
      for (let index = 0; index < item.ours.length; index++) {
        device.pushErrorScope('validation');
        let run: FixtureRun;
        try {
          run = await fixtureRun(device, input, item, index);
        } catch (error) {
          run = { file: input.file, id: item.id, optimizer: item.ours[index]!.optimizer, config: index, failed: String((error as Error).stack ?? error), checkpoints: {}, state: {}, scalars: {}, x: null };
        }
        const invalid = await device.popErrorScope();
        if (invalid !== null) run.failed = `${run.failed ?? ''} GPU validation: ${invalid.message}`;
        runs.push(run);
      }
    }
  }
  return { runs };
}

async function programsOnly(): Promise<{ programs: ProgramsReport }> {
  await loadKernels();
  const adapter = await navigator.gpu.requestAdapter();
  return { programs: await programs(await adapter!.requestDevice()) };
}

async function treeOnly(): Promise<{ tree: TreeReport | { failed: string } }> {
  await loadKernels();
  const adapter = await navigator.gpu.requestAdapter();
  return { tree: await treeOf(await adapter!.requestDevice()) };
}

// The fixture suite (test/webgpu-fixtures.test.ts) opens this page as /?fixtures; while
// working on a rule, `?cases=a,b` runs those rules' cases alone, `?programs` only the
// programs' report, `?tree` only the global rules over more than 4096 partials.
const only = new URLSearchParams(location.search).get('cases')?.split(',');
const page: Promise<unknown> =
  location.search === '?fixtures' ? fixtures() : location.search === '?programs' ? programsOnly() : location.search === '?tree' ? treeOnly() : main(only === undefined ? GPU_CASES : GPU_CASES.filter((c) => only.includes(c.key)));
page.then(
  (result) => console.log(`result ${JSON.stringify(result)}`),
  (error: unknown) => console.log(`result ${JSON.stringify({ failed: String(error) })}`),
);
