/**
 * An optimizer of this library stepping a GPUParamStore: every step one compute pass,
 * one dispatch per run of parameters (consecutive parameters with the same
 * hyperparameters and counters, as on a CPU ParamStore), nothing read back.
 *
 *     const opt = new GPUOptimizer(new AdamW({ lr: cosineDecay(...), overrides: [...] }), store);
 *     opt.update();                         // every parameter of the store
 *     const saved = await opt.stateDict();  // the CPU's format: loads into `new AdamW(...)`
 *
 * The optimizer given is the CPU one, and it stays the authority on everything but the
 * arithmetic over the elements: its options, schedules and overrides (read through its
 * `hyperparameters(name, step)`), `setHyperparameters`, the state's names and the state
 * dict's checks (a loaded dict goes through its `loadStateDict`). The rule's own
 * `writeScalars` computes each step's scalars in float64 (scalars.ts); only the loop over
 * the elements is the GPU's (src/webgpu/rules/<key>.ts).
 */
import { StateError, UpdateError, describeValue, optionError } from '../errors.ts';
import { Optimizer, type AnyOptimizer } from '../optimizer.ts';
import { variantOf } from '../optimizer/state-dict.ts';
import type { CommonHyper, RuleState } from '../rule.ts';
import type { AnyUpdateRule } from '../rules/index.ts';
import { STATE_FORMAT, STATE_VERSION, checkStateDict, type OptimizerStateDict, type ParamStateRecord } from '../state.ts';
import type { FloatArray } from '../types.ts';
import { checkGpuKernel, grid, NONE, SCAN_SHADER, shaderSource, SKIP_SCAN_SHADER, UNIFORM_SLOT, uniformWords, writeScanUniforms, writeUniforms, type ArrayRole, type FlagUse, type GpuKernel } from './kernel.ts';
import { nonFiniteGradientError } from '../optimizer/finite.ts';
import { GPU_KERNELS, GPU_MISSING, GPU_MODES } from './rules/index.ts';
import { captureStep, newTwin, scalarRecord } from './scalars.ts';
import { readRanges, type GPUParamStore } from './store.ts';

const COMPUTE = 0x4; // GPUShaderStage.COMPUTE
const UNIFORM_USAGE = 0x40 /* UNIFORM */ | 0x08; /* COPY_DST */
const STORAGE_USAGE = 0x80 /* STORAGE */ | 0x08; /* COPY_DST */
const FLAG_USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */
const CLEAR = new Uint32Array([NONE, 0, 0, 0]);
/** nonFinite 'skip': steps that may be in flight unchecked (each is encoded once per number of skips before it). */
const MAX_IN_FLIGHT = 16;

/** The twins before one step, to go back to when the device refused that step. */
interface Snapshot {
  readonly step: number;
  readonly twins: ReadonlyMap<string, RuleState>;
}

/** One parameter's step and scalars (its buffers are on the GPU). */
interface GpuSlot {
  readonly name: string;
  readonly index: number;
  twin: RuleState;
}

/** A run of one step, before its scalars are taken. */
interface PlannedRun {
  readonly slots: GpuSlot[];
  readonly hyper: CommonHyper;
  readonly lr: number;
}

interface Pipeline {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly kernel: GpuKernel;
  readonly arrays: readonly string[];
  readonly roles: readonly ArrayRole[];
  /** How it reads the refusal flag. */
  readonly flag: FlagUse;
}

function sameHyper(a: CommonHyper, b: CommonHyper): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((key) => (a as unknown as Record<string, unknown>)[key] === (b as unknown as Record<string, unknown>)[key]);
}

function sameCounters(rule: AnyUpdateRule, a: RuleState, b: RuleState): boolean {
  if (a.step !== b.step) return false;
  return rule.scalarNames.every((key) => (a as unknown as Record<string, number>)[key] === (b as unknown as Record<string, number>)[key]);
}

function copyCounters(rule: AnyUpdateRule, from: RuleState, to: RuleState): void {
  to.step = from.step;
  for (const key of rule.scalarNames) (to as unknown as Record<string, number>)[key] = (from as unknown as Record<string, number>)[key]!;
}

function roleKey(role: ArrayRole): string {
  return typeof role === 'string' ? role : `state:${role.state}`;
}

/** Whether `new GPUOptimizer(optimizer, store)` takes this optimizer: one of an elementwise rule with a GPU kernel for each of its kernels. */
export function runsOnGpu(optimizer: unknown): optimizer is AnyOptimizer {
  if (!(optimizer instanceof Optimizer)) return false;
  const rule = optimizer.rule as unknown as AnyUpdateRule;
  const kernels = GPU_KERNELS[rule.key];
  if (kernels === undefined || rule.stepWasm === undefined || rule.perParameter === true) return false;
  return Object.values(rule.kernels ?? {}).every((layout) => kernels[layout.entry] !== undefined);
}

export class GPUOptimizer<K extends string = string> {
  /** The CPU optimizer whose options, schedules, overrides and state format this one follows. */
  readonly optimizer: AnyOptimizer;
  readonly store: GPUParamStore<K>;
  readonly #rule: AnyUpdateRule;
  readonly #owner: string;
  readonly #kernels: { readonly [entry: string]: GpuKernel };
  readonly #slots = new Map<string, GpuSlot>();
  readonly #state = new Map<string, GPUBuffer>();
  readonly #pipelines = new Map<string, Pipeline>();
  readonly #bindGroups = new Map<string, GPUBindGroup>();
  readonly #dummies: GPUBuffer[] = [];
  #uniforms: GPUBuffer | undefined;
  #uniformSlots = 0;
  #stepCount = 0;
  #skippedSteps = 0;
  #training = true;
  // The non-finite contract ('error'): the refusal flag on the device, its asynchronous
  // reads, and the twins before each step not yet known to be applied.
  readonly #checked: boolean;
  // nonFinite 'skip': the state as of the last flag read (base), and per parameter its
  // twins after 0, 1, 2, ... applied steps past the base (chain), one per number of
  // skips the steps in flight may have had.
  readonly #skipping: boolean;
  #issued = 0;
  #baseIssued = 0;
  #baseApplied = 0;
  /** The flag's count of skipped steps at the base (word 2; 0 after a clear). */
  #baseFlagSkips = 0;
  readonly #chains = new Map<string, RuleState[]>();
  #pendingNames = '';
  #flag: GPUBuffer | undefined;
  #flagStaging: GPUBuffer | undefined;
  #flagRead: Promise<void> | undefined;
  /** Steps below this are known applied (the last flag read covered them). */
  #known = 0;
  #history: Snapshot[] = [];
  #refused: { readonly packed: number; readonly step: number } | undefined;
  /** Bumped by reset and loadStateDict: a flag read begun before is of no account after. */
  #epoch = 0;
  #scan: { readonly pipeline: GPUComputePipeline; readonly layout: GPUBindGroupLayout } | undefined;
  readonly #settle = (): Promise<void> => this.sync();

  constructor(optimizer: AnyOptimizer, store: GPUParamStore<K>) {
    if (!(optimizer instanceof Optimizer)) {
      throw optionError('GPUOptimizer', 'optimizer', optimizer, "an optimizer of one of this library's elementwise rules (new Adam(...), new Nesterov(...))");
    }
    const rule = optimizer.rule as unknown as AnyUpdateRule;
    const kernels = GPU_KERNELS[rule.key];
    if (kernels === undefined || rule.stepWasm === undefined || rule.perParameter === true) {
      const why = GPU_MISSING[rule.key] ?? 'it has no GPU kernel';
      throw optionError('GPUOptimizer', 'optimizer', `${rule.name}`, `an optimizer with a GPU kernel (${rule.name}: ${why})`);
    }
    for (const layout of Object.values(rule.kernels ?? {})) {
      if (kernels[layout.entry] === undefined) throw optionError('GPUOptimizer', 'optimizer', rule.name, `an optimizer with a GPU kernel (${rule.name} has none for its kernel '${layout.entry}')`);
    }
    this.optimizer = optimizer;
    this.store = store;
    this.#rule = rule;
    this.#owner = `${rule.name}.update`;
    this.#kernels = kernels;
    this.#checked = optimizer.nonFinite === 'error';
    this.#skipping = optimizer.nonFinite === 'skip';
    if (this.#checked || this.#skipping) store.addCheck(this.#settle);
  }

  /** Updates applied so far; the step number a schedule sees next. */
  get stepCount(): number {
    return this.#stepCount;
  }

  /** Updates skipped (`nonFinite: 'skip'`). */
  get skippedSteps(): number {
    return this.#skippedSteps;
  }

  /** New values for the defaults' hyperparameters, from the next step (the CPU optimizer's `setHyperparameters`). */
  setHyperparameters(values: Parameters<AnyOptimizer['setHyperparameters']>[0]): void {
    this.optimizer.setHyperparameters(values);
  }

  /**
   * One step of every parameter of the store (or of `names`): one compute pass, one
   * dispatch per run, submitted to the device's queue. Throws before submitting anything
   * when the call is not valid (an unknown name, a schedule's bad value).
   */
  update(names: readonly K[] = this.store.names): void {
    const store = this.store;
    const rule = this.#rule;
    const step = this.#stepCount;
    // A step the device refused since: its error now, the state as before it.
    if (this.#refused !== undefined) this.#raiseRefusal();
    if (!this.#training) {
      throw new UpdateError(`${this.#owner}: the optimizer is in eval mode (the parameters hold the average x, not y): call train() before update`, '');
    }
    if (!Array.isArray(names)) throw optionError(this.#owner, 'names', names, 'an array of parameter names of the store');
    const indices = names.map((name) => {
      const index = (store.names as readonly string[]).indexOf(name);
      if (index < 0) throw new UpdateError(`${this.#owner}: '${String(name)}' is not a parameter of the store (${store.names.join(', ')})`, String(name));
      return index;
    });
    if (new Set(indices).size !== indices.length) throw optionError(this.#owner, 'names', names, 'names without repeats');
    if (this.#skipping) {
      this.#updateSkipping(names, indices);
      return;
    }
    // Every check first: a schedule may refuse a value, and nothing may change then.
    const hypers: CommonHyper[] = [];
    const lrs: number[] = [];
    for (const name of names) {
      const hyper = this.optimizer.hyperparameters(name, step);
      const lr = typeof hyper.lr === 'number' ? hyper.lr : hyper.lr(step);
      if (typeof lr !== 'number' || !(lr >= 0) || lr === Infinity) {
        throw new UpdateError(`${this.#owner}: the lr schedule of parameter '${name}' returned ${describeValue(lr)} at step ${step} (expected a finite number >= 0)`, name);
      }
      hypers.push(hyper);
      lrs.push(lr);
    }

    if (this.#checked) this.#history.push({ step, twins: new Map([...this.#slots].map(([name, slot]) => [name, { ...slot.twin }])) });

    // New parameters: their initial state, uploaded at their offsets.
    const order = names.map((name, k) => ({ name, index: indices[k]!, hyper: hypers[k]!, lr: lrs[k]! })).sort((a, b) => a.index - b.index);
    for (const { name, index, hyper } of order) {
      for (const key of rule.bufferNames(hyper as never)) this.#stateBuffer(key);
      if (this.#slots.has(name)) continue;
      const length = store.lengths[name as K];
      const initial = rule.init(length, 'float32', hyper as never);
      rule.buffersOf(initial as never, hyper as never).forEach((array, k) => {
        this.#upload(this.#stateBuffer(rule.bufferNames(hyper as never)[k]!), store.offsets[name as K], array);
      });
      this.#slots.set(name, { name, index, twin: newTwin(rule, hyper) });
    }

    // Runs: consecutive parameters of the store with equal hyperparameters and counters.
    const runs: PlannedRun[] = [];
    for (const { name, index, hyper, lr } of order) {
      const slot = this.#slots.get(name)!;
      const last = runs.at(-1);
      const previous = last?.slots.at(-1);
      if (last !== undefined && previous!.index === index - 1 && last.lr === lr && sameHyper(last.hyper, hyper) && sameCounters(rule, previous!.twin, slot.twin)) {
        last.slots.push(slot);
      } else {
        runs.push({ slots: [slot], hyper, lr });
      }
    }

    const checked = this.#checked;
    const uniforms = this.#uniformBuffer(checked ? 2 * runs.length : runs.length);
    const block = new ArrayBuffer((checked ? 2 : 1) * runs.length * UNIFORM_SLOT);
    const device = store.device;
    const encoder = device.createCommandEncoder({ label: this.#owner });
    const pass = encoder.beginComputePass();
    if (checked) {
      // Every run's gradients scanned before any run steps: a refusal writes nothing.
      const scan = this.#scanPipeline();
      runs.forEach((run, r) => {
        const base = store.offsets[run.slots[0]!.name as K];
        const last = run.slots.at(-1)!;
        const n = store.offsets[last.name as K] + store.lengths[last.name as K] - base;
        const { x, y, stride } = grid(n);
        const slot = runs.length + r;
        writeScanUniforms(block, (slot * UNIFORM_SLOT) / 4, base, n, stride, step);
        pass.setPipeline(scan.pipeline);
        pass.setBindGroup(0, this.#scanBindGroup(scan.layout, slot, uniforms));
        if (n > 0) pass.dispatchWorkgroups(x, y);
      });
    }
    runs.forEach((run, r) => {
      const first = run.slots[0]!;
      const lastSlot = run.slots.at(-1)!;
      const twin = first.twin;
      const captured = captureStep(rule, twin, run.hyper, run.lr, (entry) => this.#layoutOf(entry).arrays.length);
      for (let k = 1; k < run.slots.length; k++) copyCounters(rule, twin, run.slots[k]!.twin);
      if (captured.calls.length !== 1) throw new Error(`${this.#owner}: the rule made ${captured.calls.length} kernel calls in a step; the GPU path runs one`);
      const call = captured.calls[0]!;
      const pipeline = this.#pipeline(call.entry, call.roles);
      const layout = this.#layoutOf(call.entry);
      const base = store.offsets[first.name as K];
      const n = store.offsets[lastSlot.name as K] + store.lengths[lastSlot.name as K] - base;
      const { x, y, stride } = grid(n);
      writeUniforms(block, (r * UNIFORM_SLOT) / 4, pipeline.kernel, base, n, stride, scalarRecord(captured.scalars, layout.scalars));
      pass.setPipeline(pipeline.pipeline);
      pass.setBindGroup(0, this.#bindGroup(pipeline, call.entry, r, uniforms));
      if (n > 0) pass.dispatchWorkgroups(x, y);
    });
    pass.end();
    const readFlag = checked && this.#flagRead === undefined;
    if (readFlag) encoder.copyBufferToBuffer(this.#flagBuffer(), 0, this.#flagStagingBuffer(), 0, 16);
    device.queue.writeBuffer(uniforms, 0, block);
    device.queue.submit([encoder.finish()]);
    this.#stepCount += 1;
    if (readFlag) this.#readFlag(this.#stepCount);
  }

  /**
   * nonFinite 'skip': the step, encoded once per number j of steps the device may have
   * skipped among those in flight (0..U), each dispatch with the scalars of the step as
   * it is after U - j applied steps; the step kernels run the one whose j the flag's
   * count of skips matches, and none when this step's own scan found a non-finite
   * gradient. The CPU learns which happened at the next flag read (rebase).
   */
  #updateSkipping(names: readonly K[], indices: readonly number[]): void {
    const store = this.store;
    const rule = this.#rule;
    const inFlight = this.#issued - this.#baseIssued;
    const key = [...indices].sort((a, b) => a - b).join(',');
    if (inFlight > 0 && key !== this.#pendingNames) {
      throw new UpdateError(`${this.#owner}: with nonFinite 'skip', a step of other parameters than the ${inFlight} step(s) still unchecked on the device: await sync() first`, '');
    }
    if (inFlight >= MAX_IN_FLIGHT) {
      throw new UpdateError(`${this.#owner}: with nonFinite 'skip', ${inFlight} steps are unchecked on the device: await sync() (or read anything back) at least every ${MAX_IN_FLIGHT} steps`, '');
    }
    // Every candidate's hyperparameters, checked before anything changes.
    const hypers: CommonHyper[][] = [];
    const lrs: number[][] = [];
    names.forEach((name) => {
      const h: CommonHyper[] = [];
      const l: number[] = [];
      for (let k = 0; k <= inFlight; k++) {
        const count = this.#baseApplied + k;
        const hyper = this.optimizer.hyperparameters(name, count);
        const lr = typeof hyper.lr === 'number' ? hyper.lr : hyper.lr(count);
        if (typeof lr !== 'number' || !(lr >= 0) || lr === Infinity) {
          throw new UpdateError(`${this.#owner}: the lr schedule of parameter '${name}' returned ${describeValue(lr)} at step ${count} (expected a finite number >= 0)`, name);
        }
        h.push(hyper);
        l.push(lr);
      }
      hypers.push(h);
      lrs.push(l);
    });
    const order = names.map((name, k) => ({ name, index: indices[k]!, hypers: hypers[k]!, lrs: lrs[k]! })).sort((a, b) => a.index - b.index);
    for (const { name, index, hypers: h } of order) {
      for (const bufferName of rule.bufferNames(h[0] as never)) this.#stateBuffer(bufferName);
      if (this.#slots.has(name)) continue;
      const initial = rule.init(store.lengths[name as K], 'float32', h[0] as never);
      rule.buffersOf(initial as never, h[0] as never).forEach((array, b) => {
        this.#upload(this.#stateBuffer(rule.bufferNames(h[0] as never)[b]!), store.offsets[name as K], array);
      });
      const twin = newTwin(rule, h[0]!);
      this.#slots.set(name, { name, index, twin });
      this.#chains.set(name, [twin]);
    }
    // Runs: consecutive parameters equal in every candidate.
    type Run = { slots: GpuSlot[]; hypers: CommonHyper[]; lrs: number[] };
    const runs: Run[] = [];
    for (const { name, index, hypers: h, lrs: l } of order) {
      const slot = this.#slots.get(name)!;
      const last = runs.at(-1);
      const previous = last?.slots.at(-1);
      if (last !== undefined && previous!.index === index - 1 && l.every((lr, k) => lr === last.lrs[k] && sameHyper(h[k]!, last.hypers[k]!)) && sameCounters(rule, previous!.twin, slot.twin)) {
        last.slots.push(slot);
      } else {
        runs.push({ slots: [slot], hypers: h, lrs: l });
      }
    }
    const candidates = inFlight + 1;
    const slots = runs.length * (candidates + 1);
    const uniforms = this.#uniformBuffer(slots);
    const block = new ArrayBuffer(slots * UNIFORM_SLOT);
    const device = store.device;
    const encoder = device.createCommandEncoder({ label: this.#owner });
    const pass = encoder.beginComputePass();
    const issue = this.#issued;
    const scan = this.#scanPipeline();
    const extent = (run: Run): { base: number; n: number } => {
      const base = store.offsets[run.slots[0]!.name as K];
      const last = run.slots.at(-1)!;
      return { base, n: store.offsets[last.name as K] + store.lengths[last.name as K] - base };
    };
    runs.forEach((run, r) => {
      const { base, n } = extent(run);
      const { x, y, stride } = grid(n);
      const slot = runs.length * candidates + r;
      writeScanUniforms(block, (slot * UNIFORM_SLOT) / 4, base, n, stride, issue);
      pass.setPipeline(scan.pipeline);
      pass.setBindGroup(0, this.#scanBindGroup(scan.layout, slot, uniforms));
      if (n > 0) pass.dispatchWorkgroups(x, y);
    });
    runs.forEach((run, r) => {
      const { base, n } = extent(run);
      const { x, y, stride } = grid(n);
      const chain = this.#chains.get(run.slots[0]!.name)!;
      for (let k = 0; k < candidates; k++) {
        const twin = { ...chain[k]! };
        const captured = captureStep(rule, twin, run.hypers[k]!, run.lrs[k]!, (entry) => this.#layoutOf(entry).arrays.length);
        if (captured.calls.length !== 1) throw new Error(`${this.#owner}: the rule made ${captured.calls.length} kernel calls in a step; the GPU path runs one`);
        if (k === inFlight) {
          // The newest candidate (no skip in flight) extends every chain of the run.
          for (const member of run.slots) {
            const own = this.#chains.get(member.name)!;
            const next = { ...own[k]! };
            copyCounters(rule, twin, next);
            own.push(next);
          }
        }
        const call = captured.calls[0]!;
        const pipeline = this.#pipeline(call.entry, call.roles);
        const slot = r * candidates + k;
        const candidate = { issue, cand: inFlight - k, known: this.#baseFlagSkips };
        writeUniforms(block, (slot * UNIFORM_SLOT) / 4, pipeline.kernel, base, n, stride, scalarRecord(captured.scalars, this.#layoutOf(call.entry).scalars), candidate);
        pass.setPipeline(pipeline.pipeline);
        pass.setBindGroup(0, this.#bindGroup(pipeline, call.entry, slot, uniforms));
        if (n > 0) pass.dispatchWorkgroups(x, y);
      }
    });
    pass.end();
    const readFlag = this.#flagRead === undefined;
    if (readFlag) encoder.copyBufferToBuffer(this.#flagBuffer(), 0, this.#flagStagingBuffer(), 0, 16);
    device.queue.writeBuffer(uniforms, 0, block);
    device.queue.submit([encoder.finish()]);
    this.#issued += 1;
    this.#stepCount += 1;
    this.#pendingNames = key;
    if (readFlag) this.#readFlag(this.#issued);
  }

  /** nonFinite 'skip': the device has run the steps below issue `covered`, `flagSkips` of them skipped since the flag was cleared. */
  #rebase(covered: number, flagSkips: number): void {
    if (covered <= this.#baseIssued) return;
    const skipped = flagSkips - this.#baseFlagSkips;
    const applied = covered - this.#baseIssued - skipped;
    // A chain of the steps in flight keeps the twins of the counts still possible; one of
    // a parameter outside them (length 1) stays as it is.
    const possible = this.#issued - covered + 1;
    for (const [name, chain] of this.#chains) {
      if (chain.length === 1) continue;
      const rest = chain.slice(applied, applied + possible);
      this.#chains.set(name, rest);
      const slot = this.#slots.get(name);
      if (slot !== undefined) slot.twin = rest[0]!;
    }
    this.#baseIssued = covered;
    this.#baseApplied += applied;
    this.#baseFlagSkips = flagSkips;
    this.#skippedSteps += skipped;
    this.#stepCount = this.#baseApplied + (this.#issued - covered);
    if (covered === this.#issued) this.#pendingNames = '';
  }

  /**
   * Resolves once every step submitted so far has been checked on the device; rejects
   * with the UpdateError of a refused step (`nonFinite: 'error'`: a non-finite gradient),
   * the params and state then as before that step. Reading params back
   * (`store.read`) and `stateDict()` call it first.
   */
  async sync(): Promise<void> {
    while (this.#skipping ? this.#baseIssued < this.#issued : this.#checked && this.#refused === undefined && this.#known < this.#stepCount) {
      if (this.#flagRead === undefined) {
        const encoder = this.store.device.createCommandEncoder();
        encoder.copyBufferToBuffer(this.#flagBuffer(), 0, this.#flagStagingBuffer(), 0, 16);
        this.store.device.queue.submit([encoder.finish()]);
        this.#readFlag(this.#skipping ? this.#issued : this.#stepCount);
      }
      await this.#flagRead;
    }
    if (this.#refused !== undefined) this.#raiseRefusal();
  }

  /** Maps the staging copy of the flag; what it says covers the steps below `covered`. */
  #readFlag(covered: number): void {
    const staging = this.#flagStaging!;
    const epoch = this.#epoch;
    this.#flagRead = staging.mapAsync(0x0001 /* GPUMapMode.READ */).then(() => {
      const words = new Uint32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      this.#flagRead = undefined;
      if (epoch !== this.#epoch) return;
      if (this.#skipping) {
        this.#rebase(covered, words[2]!);
      } else if (words[1] === 0) {
        this.#known = Math.max(this.#known, covered);
        this.#history = this.#history.filter((snapshot) => snapshot.step >= covered);
      } else if (this.#refused === undefined) {
        this.#refused = { packed: words[0]!, step: words[1]! - 1 };
      }
    });
  }

  /** Goes back to the twins before the refused step, clears the flag, throws the step's error. */
  #raiseRefusal(): never {
    const { packed, step } = this.#refused!;
    const snapshot = this.#history.find((candidate) => candidate.step === step);
    this.#slots.clear();
    for (const [name, twin] of snapshot?.twins ?? []) {
      this.#slots.set(name, { name, index: (this.store.names as readonly string[]).indexOf(name), twin: { ...twin } });
    }
    this.#stepCount = step;
    this.#known = step;
    this.#history = [];
    this.#refused = undefined;
    this.#epoch += 1;
    this.store.device.queue.writeBuffer(this.#flagBuffer(), 0, CLEAR);
    const index = Math.floor(packed / 4);
    const value = [NaN, Infinity, -Infinity][packed % 4]!;
    const name = this.store.nameAt(index) ?? '';
    throw nonFiniteGradientError(this.#owner, name, index - (name === '' ? 0 : this.store.offsets[name as K]), value);
  }

  #flagBuffer(): GPUBuffer {
    if (this.#flag === undefined) {
      this.#flag = this.store.device.createBuffer({ label: `nesterov ${this.#rule.name} refusal`, size: 16, usage: FLAG_USAGE, mappedAtCreation: true });
      new Uint32Array(this.#flag.getMappedRange()).set(CLEAR);
      this.#flag.unmap();
    }
    return this.#flag;
  }

  #flagStagingBuffer(): GPUBuffer {
    this.#flagStaging ??= this.store.device.createBuffer({ size: 16, usage: 0x01 /* MAP_READ */ | 0x08 /* COPY_DST */ });
    return this.#flagStaging;
  }

  #scanPipeline(): { readonly pipeline: GPUComputePipeline; readonly layout: GPUBindGroupLayout } {
    if (this.#scan === undefined) {
      const device = this.store.device;
      const layout = device.createBindGroupLayout({
        entries: [
          { binding: 0, visibility: COMPUTE, buffer: { type: 'uniform' } },
          { binding: 1, visibility: COMPUTE, buffer: { type: 'read-only-storage' } },
          { binding: 2, visibility: COMPUTE, buffer: { type: 'storage' } },
        ],
      });
      const module = device.createShaderModule({ label: 'nesterov scan', code: this.#skipping ? SKIP_SCAN_SHADER : SCAN_SHADER });
      this.#scan = { layout, pipeline: device.createComputePipeline({ label: 'nesterov scan', layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: 'main' } }) };
    }
    return this.#scan;
  }

  #scanBindGroup(layout: GPUBindGroupLayout, slot: number, uniforms: GPUBuffer): GPUBindGroup {
    const key = `${slot}|scan`;
    let group = this.#bindGroups.get(key);
    if (group === undefined) {
      group = this.store.device.createBindGroup({
        layout,
        entries: [
          { binding: 0, resource: { buffer: uniforms, offset: slot * UNIFORM_SLOT, size: 16 } },
          { binding: 1, resource: { buffer: this.store.grads } },
          { binding: 2, resource: { buffer: this.#flagBuffer() } },
        ],
      });
      this.#bindGroups.set(key, group);
    }
    return group;
  }

  /**
   * A copy of the whole state in the CPU optimizer's format (read back from the GPU):
   * `loadStateDict` of the same CPU optimizer class takes it, and `saveState` writes it.
   */
  async stateDict(): Promise<OptimizerStateDict> {
    await this.sync();
    const rule = this.#rule;
    const store = this.store;
    const slots = [...this.#slots.values()].sort((a, b) => a.index - b.index);
    const keys = [...this.#state.keys()];
    const read = new Map<string, Float32Array[]>();
    for (const key of keys) {
      const ranges = slots.map((slot): [number, number] => [store.offsets[slot.name as K], store.lengths[slot.name as K]]);
      read.set(key, await readRanges(store.device, this.#state.get(key)!, ranges));
    }
    const params = Object.create(null) as { [name: string]: ParamStateRecord };
    slots.forEach((slot, s) => {
      const hyper = this.optimizer.hyperparameters(slot.name, this.#stepCount);
      const buffers = Object.create(null) as { [key: string]: FloatArray };
      for (const key of rule.bufferNames(hyper as never)) buffers[key] = read.get(key)![s]!;
      const scalars = Object.create(null) as { [key: string]: number };
      for (const key of rule.scalarNames) scalars[key] = (slot.twin as unknown as Record<string, number>)[key]!;
      params[slot.name] = { dtype: 'float32', length: store.lengths[slot.name as K], step: slot.twin.step, scalars, buffers };
    });
    const dict: OptimizerStateDict = {
      format: STATE_FORMAT,
      version: STATE_VERSION,
      optimizer: rule.name,
      variant: variantOf(this.optimizer.defaults),
      stepCount: this.#stepCount,
      skippedSteps: this.#skippedSteps,
      params,
    };
    const set = this.optimizer.stateDict().hyperparameters;
    if (set !== undefined) dict.hyperparameters = { ...set };
    return dict;
  }

  /**
   * Replaces the whole state with a saved one (from the GPU or the CPU; float64 state is
   * rounded to float32), checked first by the CPU optimizer: a refusal changes nothing.
   */
  loadStateDict(value: unknown): void {
    const owner = `${this.#rule.name}.loadStateDict`;
    const saved = checkStateDict(value);
    const store = this.store;
    for (const [name, record] of Object.entries(saved.params)) {
      if (!(store.names as readonly string[]).includes(name)) throw new StateError(`${owner}: the state has parameter '${name}', which the GPU store does not (${store.names.join(', ')})`);
      if (record.length !== store.lengths[name as K]) throw new StateError(`${owner}: parameter '${name}' has length ${record.length} in the state, ${store.lengths[name as K]} in the GPU store`);
    }
    const cpu = this.optimizer;
    cpu.loadStateDict(value);
    const rule = this.#rule;
    this.#slots.clear();
    for (const name of Object.keys(saved.params)) {
      const state = cpu.stateOf(name)!;
      const hyper = cpu.hyperparameters(name, saved.stepCount);
      const keys = rule.bufferNames(hyper as never);
      rule.buffersOf(state as never, hyper as never).forEach((array, k) => this.#upload(this.#stateBuffer(keys[k]!), store.offsets[name as K], array));
      const twin = newTwin(rule, hyper);
      copyCounters(rule, state, twin);
      this.#slots.set(name, { name, index: (store.names as readonly string[]).indexOf(name), twin });
    }
    this.#stepCount = cpu.stepCount;
    this.#skippedSteps = cpu.skippedSteps;
    this.#forgetRefusal();
    // Schedule-Free's mode travels in every parameter's `trainMode` (the CPU checked they agree).
    this.#training = [...this.#slots.values()].every((slot) => (slot.twin as unknown as { trainMode?: number }).trainMode !== 0);
    // The CPU copy has done its work; the set hyperparameters stay (reset keeps them).
    cpu.reset();
  }

  /** 'train' while the parameters hold y (updates allowed), 'eval' while they hold x (Schedule-Free; always 'train' for the others). */
  get mode(): 'train' | 'eval' {
    return this.#training ? 'train' : 'eval';
  }

  /**
   * Schedule-Free: moves the parameters on the GPU to x, the average to evaluate
   * (`p = lerp(y, z, 1 - 1 / beta)`), and refuses updates until `train()`. In eval mode
   * already: nothing happens.
   */
  eval(): void {
    if (this.#training) this.#move('eval', (beta) => 1 - 1 / beta);
  }

  /** Schedule-Free: moves the parameters back to y (`p = lerp(x, z, 1 - beta)`) and allows updates again. */
  train(): void {
    if (!this.#training) this.#move('train', (beta) => 1 - beta);
  }

  #move(mode: 'eval' | 'train', weightOf: (beta: number) => number): void {
    if (this.#refused !== undefined) this.#raiseRefusal();
    const modes = GPU_MODES[this.#rule.key];
    if (modes === undefined) throw new TypeError(`${this.#rule.name}.${mode}: ${this.#rule.name} has no eval and train modes (Schedule-Free optimizers have)`);
    const store = this.store;
    const moving = [...this.#slots.values()].filter((slot) => slot.twin.step > 0);
    const uniforms = this.#uniformBuffer(moving.length);
    const block = new ArrayBuffer(Math.max(1, moving.length) * UNIFORM_SLOT);
    const pipeline = this.#pipeline(modes.entry, this.#layoutOf(modes.entry).arrays.map((name, k): ArrayRole => (k === 0 ? 'params' : { state: modes.buffer })));
    const encoder = store.device.createCommandEncoder({ label: `${this.#rule.name}.${mode}` });
    const pass = encoder.beginComputePass();
    moving.forEach((slot, r) => {
      const w = weightOf(modes.beta(this.optimizer.hyperparameters(slot.name, this.#stepCount)));
      const n = store.lengths[slot.name as K];
      const { x, y, stride } = grid(n);
      writeUniforms(block, (r * UNIFORM_SLOT) / 4, pipeline.kernel, store.offsets[slot.name as K], n, stride, { w });
      pass.setPipeline(pipeline.pipeline);
      pass.setBindGroup(0, this.#bindGroup(pipeline, modes.entry, r, uniforms));
      if (n > 0) pass.dispatchWorkgroups(x, y);
    });
    pass.end();
    store.device.queue.writeBuffer(uniforms, 0, block);
    store.device.queue.submit([encoder.finish()]);
    this.#training = mode === 'train';
    for (const slot of this.#slots.values()) (slot.twin as unknown as { trainMode: number }).trainMode = this.#training ? 1 : 0;
  }

  /** Forgets the state of one parameter, or of all (and the step counts) when no name is given. */
  reset(name?: K): void {
    if (name === undefined) {
      this.#training = true;
      this.#slots.clear();
      this.#stepCount = 0;
      this.#skippedSteps = 0;
      this.#forgetRefusal();
    } else {
      this.#slots.delete(name);
      this.#chains.delete(name);
      // nonFinite 'skip': the steps in flight counted this parameter; the next step waits for them.
      if (this.#issued > this.#baseIssued) this.#pendingNames = 'reset';
    }
  }

  /** A new state replaces the old: what the device said of the old steps no longer applies. */
  #forgetRefusal(): void {
    this.#epoch += 1;
    this.#refused = undefined;
    this.#history = [];
    this.#known = this.#stepCount;
    this.#issued = 0;
    this.#baseIssued = 0;
    this.#baseApplied = this.#stepCount;
    this.#baseFlagSkips = 0;
    this.#pendingNames = '';
    this.#chains.clear();
    for (const [name, slot] of this.#slots) this.#chains.set(name, [slot.twin]);
    if (this.#flag !== undefined) this.store.device.queue.writeBuffer(this.#flag, 0, CLEAR);
  }

  /**
   * A GPUOptimizer of the same optimizer over another store of the same device (one with
   * more parameters, say), holding this one's state: the state of every parameter that
   * has some is copied GPU to GPU to its offset in `store`, which must hold it with the
   * same length; the counters, the mode and the steps the device has not yet been heard
   * on go with it (the refusal flag is copied too, so a refused step is raised by the new
   * optimizer as this one would have raised it). Nothing is read back. This optimizer is
   * left as it was; destroy it once done with it.
   */
  moveTo<L extends string>(store: GPUParamStore<L>): GPUOptimizer<L> {
    const owner = `${this.#rule.name}.moveTo`;
    if (store === null || typeof store !== 'object' || store.device !== this.store.device) throw optionError(owner, 'store', store, 'a GPUParamStore of the same device');
    for (const name of this.#slots.keys()) {
      const length = Object.hasOwn(store.lengths, name) ? store.lengths[name as L] : undefined;
      if (length !== this.store.lengths[name as K]) {
        throw new StateError(`${owner}: parameter '${name}' has state of length ${this.store.lengths[name as K]}, the new store ${length === undefined ? 'does not hold it' : `gives it length ${length}`}`);
      }
    }
    if (this.#skipping && this.#issued > this.#baseIssued) throw new UpdateError(`${owner}: with nonFinite 'skip', steps are unchecked on the device: await sync() first`, '');
    const next = new GPUOptimizer<L>(this.optimizer, store);
    const device = store.device;
    const encoder = device.createCommandEncoder({ label: owner });
    for (const [key, buffer] of this.#state) {
      const target = next.#stateBuffer(key);
      for (const name of this.#slots.keys()) {
        const length = this.store.lengths[name as K];
        if (length > 0) encoder.copyBufferToBuffer(buffer, this.store.byteOffset(name as K), target, store.byteOffset(name as L), length * 4);
      }
    }
    if (this.#flag !== undefined) encoder.copyBufferToBuffer(this.#flag, 0, next.#flagBuffer(), 0, 16);
    device.queue.submit([encoder.finish()]);
    for (const [name, slot] of this.#slots) next.#slots.set(name, { name, index: (store.names as readonly string[]).indexOf(name), twin: { ...slot.twin } });
    next.#stepCount = this.#stepCount;
    next.#skippedSteps = this.#skippedSteps;
    next.#training = this.#training;
    next.#known = this.#known;
    next.#history = this.#history.map((snapshot) => ({ step: snapshot.step, twins: new Map([...snapshot.twins].map(([name, twin]) => [name, { ...twin }])) }));
    next.#refused = this.#refused;
    next.#baseApplied = this.#baseApplied;
    next.#baseFlagSkips = this.#baseFlagSkips;
    for (const [name, slot] of next.#slots) next.#chains.set(name, [slot.twin]);
    return next;
  }

  /** Frees this optimizer's own GPU buffers (uniforms, placeholders); its state buffers go with the store. */
  destroy(): void {
    this.store.removeCheck(this.#settle);
    this.#uniforms?.destroy();
    this.#uniforms = undefined;
    this.#flag?.destroy();
    this.#flag = undefined;
    this.#flagStaging?.destroy();
    this.#flagStaging = undefined;
    this.#scan = undefined;
    for (const buffer of this.#dummies) buffer.destroy();
    this.#dummies.length = 0;
    this.#bindGroups.clear();
  }

  #layoutOf(entry: string): { readonly arrays: readonly string[]; readonly scalars: readonly string[] } {
    const layout = Object.values(this.#rule.kernels ?? {}).find((candidate) => candidate.entry === entry);
    if (layout === undefined) throw new Error(`${this.#owner}: the rule called kernel '${entry}', which its layouts do not declare`);
    return layout;
  }

  #stateBuffer(key: string): GPUBuffer {
    let buffer = this.#state.get(key);
    if (buffer === undefined) {
      buffer = this.store.createRegion(`nesterov ${this.#rule.name} ${key}`);
      this.#state.set(key, buffer);
      this.#bindGroups.clear();
    }
    return buffer;
  }

  #upload(buffer: GPUBuffer, offset: number, array: FloatArray): void {
    const values = array instanceof Float32Array ? array : Float32Array.from(array);
    if (values.length > 0) this.store.device.queue.writeBuffer(buffer, offset * 4, values.buffer, values.byteOffset, values.byteLength);
  }

  #uniformBuffer(runs: number): GPUBuffer {
    if (this.#uniforms === undefined || this.#uniformSlots < runs) {
      this.#uniforms?.destroy();
      this.#uniformSlots = Math.max(runs, 2 * this.#uniformSlots, 4);
      this.#uniforms = this.store.device.createBuffer({ label: `nesterov ${this.#rule.name} uniforms`, size: this.#uniformSlots * UNIFORM_SLOT, usage: UNIFORM_USAGE });
      this.#bindGroups.clear();
    }
    return this.#uniforms;
  }

  #pipeline(entry: string, roles: readonly ArrayRole[]): Pipeline {
    const flag: FlagUse = entry === GPU_MODES[this.#rule.key]?.entry ? 'ignore' : this.#checked ? 'error' : this.#skipping ? 'skip' : 'ignore';
    const key = `${entry}|${roles.map(roleKey).join(',')}|${flag}`;
    let pipeline = this.#pipelines.get(key);
    if (pipeline !== undefined) return pipeline;
    const kernel = this.#kernels[entry];
    if (kernel === undefined) throw new Error(`${this.#owner}: no GPU kernel for wasm entry '${entry}' (src/webgpu/rules/${this.#rule.key}.ts)`);
    const { arrays, scalars } = this.#layoutOf(entry);
    checkGpuKernel(this.#rule.name, entry, kernel, scalars, arrays);
    const device = this.store.device;
    const layout = device.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: COMPUTE, buffer: { type: 'uniform' } },
        ...arrays.map((_, k): GPUBindGroupLayoutEntry => ({ binding: k + 1, visibility: COMPUTE, buffer: { type: roles[k] === 'grads' ? 'read-only-storage' : 'storage' } })),
        ...(flag !== 'ignore' ? [{ binding: arrays.length + 1, visibility: COMPUTE, buffer: { type: 'read-only-storage' as const } }] : []),
      ],
    });
    const module = device.createShaderModule({ label: `nesterov ${entry}`, code: shaderSource(kernel, arrays, roles, flag) });
    pipeline = {
      pipeline: device.createComputePipeline({ label: `nesterov ${entry}`, layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: 'main' } }),
      layout,
      kernel,
      arrays,
      roles,
      flag,
    };
    this.#pipelines.set(key, pipeline);
    return pipeline;
  }

  #bindGroup(pipeline: Pipeline, entry: string, slot: number, uniforms: GPUBuffer): GPUBindGroup {
    const key = `${slot}|${entry}|${pipeline.roles.map(roleKey).join(',')}|${pipeline.flag}`;
    let group = this.#bindGroups.get(key);
    if (group !== undefined) return group;
    const store = this.store;
    const bytes = Math.ceil((uniformWords(pipeline.kernel) * 4) / 16) * 16;
    group = store.device.createBindGroup({
      layout: pipeline.layout,
      entries: [
        { binding: 0, resource: { buffer: uniforms, offset: slot * UNIFORM_SLOT, size: bytes } },
        ...pipeline.roles.map((role, k): GPUBindGroupEntry => ({ binding: k + 1, resource: { buffer: this.#bufferFor(role, k) } })),
        ...(pipeline.flag !== 'ignore' ? [{ binding: pipeline.roles.length + 1, resource: { buffer: this.#flagBuffer() } }] : []),
      ],
    });
    this.#bindGroups.set(key, group);
    return group;
  }

  #bufferFor(role: ArrayRole, binding: number): GPUBuffer {
    if (role === 'params') return this.store.params;
    if (role === 'grads') return this.store.grads;
    if (role === 'unused') {
      // A placeholder per binding: two writable bindings of one buffer are not allowed.
      while (this.#dummies.length <= binding) this.#dummies.push(this.store.device.createBuffer({ size: 16, usage: STORAGE_USAGE }));
      return this.#dummies[binding]!;
    }
    return this.#stateBuffer(role.state);
  }
}
