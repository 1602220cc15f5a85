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
import { StateError, UpdateError, optionError } from '../errors.ts';
import { Optimizer, type AnyOptimizer } from '../optimizer.ts';
import type { OptimizerStateDict } from '../state.ts';
import type { AnyUpdateRule } from '../rules/index.ts';
import { GpuOptimizerCore } from './optimizer-core.ts';
import { copyState, moveParams } from './optimizer-modes.ts';
import { stepSkipping } from './optimizer-skip.ts';
import { loadStateDict, stateDict } from './optimizer-state-dict.ts';
import { encodeStep } from './optimizer-step.ts';
import { forgetRefusal, raiseRefusal, sync } from './optimizer-verdict.ts';
import { destroyPasses } from './passes.ts';
import { GPU_GLOBAL, GPU_KERNELS, GPU_MISSING, GPU_PROGRAMS } from './rules/index.ts';
import type { GPUParamStore } from './store.ts';

/**
 * Whether `new GPUOptimizer(optimizer, store)` takes this optimizer: one of an elementwise
 * rule with a GPU kernel for each of its kernels, of a perParameter rule with a GPU
 * program (LAMB, Adafactor: passes with sums over each parameter between them), or of a
 * rule with a global phase (Prodigy, D-Adapt AdamW: sums over every parameter).
 */
export function runsOnGpu(optimizer: unknown): optimizer is AnyOptimizer {
  if (!(optimizer instanceof Optimizer)) return false;
  const rule = optimizer.rule as unknown as AnyUpdateRule;
  if (!hasGpuProgram(rule)) return false;
  const kernels = GPU_KERNELS[rule.key]!;
  return Object.values(rule.kernels ?? {}).every((layout) => kernels[layout.entry] !== undefined);
}

/**
 * Whether the rule has a GPU program: a GPU kernel of an elementwise rule (one kernel
 * call per run, with its wasm step), of a perParameter rule with its passes in
 * GPU_PROGRAMS (sums over each parameter between them), or of a rule with a global phase
 * (whose wasm step throws: it steps through the phase) with its twin in GPU_GLOBAL.
 */
function hasGpuProgram(rule: AnyUpdateRule): boolean {
  if (GPU_KERNELS[rule.key] === undefined) return false;
  if (rule.global !== undefined) return GPU_GLOBAL[rule.key] !== undefined;
  if (GPU_PROGRAMS[rule.key] !== undefined) return true;
  return rule.stepWasm !== undefined && rule.perParameter !== true;
}

export class GPUOptimizer<K extends string = string> {
  /** The CPU optimizer whose options, schedules, overrides and state format this one follows. */
  readonly optimizer: AnyOptimizer;
  readonly store: GPUParamStore<K>;
  /** Everything else, shared with the files that do the jobs (optimizer-core.ts). */
  readonly #core: GpuOptimizerCore<K>;
  readonly #settle = (): Promise<void> => this.sync();

  constructor(optimizer: AnyOptimizer, store: GPUParamStore<K>) {
    if (!(optimizer instanceof Optimizer)) {
      throw optionError('GPUOptimizer', 'optimizer', optimizer, "an optimizer of one of this library's elementwise rules (new Adam(...), new Nesterov(...))");
    }
    const rule = optimizer.rule as unknown as AnyUpdateRule;
    const kernels = GPU_KERNELS[rule.key];
    if (kernels === undefined || !hasGpuProgram(rule)) {
      const why = GPU_MISSING[rule.key] ?? 'it has no GPU kernel';
      throw optionError('GPUOptimizer', 'optimizer', `${rule.name}`, `an optimizer with a GPU kernel (${rule.name}: ${why})`);
    }
    for (const layout of Object.values(rule.kernels ?? {})) {
      if (kernels[layout.entry] === undefined) throw optionError('GPUOptimizer', 'optimizer', rule.name, `an optimizer with a GPU kernel (${rule.name} has none for its kernel '${layout.entry}')`);
    }
    this.optimizer = optimizer;
    this.store = store;
    this.#core = new GpuOptimizerCore(optimizer, store, rule, kernels);
    if (this.#core.checked || this.#core.skipping) store.addCheck(this.#settle);
  }

  /** Updates applied so far; the step number a schedule sees next. */
  get stepCount(): number {
    return this.#core.stepCount;
  }

  /** Updates skipped (`nonFinite: 'skip'`). */
  get skippedSteps(): number {
    return this.#core.skippedSteps;
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
    // A step the device refused since: its error now, the state as before it.
    if (this.#core.refused !== undefined) raiseRefusal(this.#core);
    if (!this.#core.training) {
      throw new UpdateError(`${this.#core.owner}: the optimizer is in eval mode (the parameters hold the average x, not y): call train() before update`, '');
    }
    if (!Array.isArray(names)) throw optionError(this.#core.owner, 'names', names, 'an array of parameter names of the store');
    const indices = names.map((name) => {
      const index = (store.names as readonly string[]).indexOf(name);
      if (index < 0) throw new UpdateError(`${this.#core.owner}: '${String(name)}' is not a parameter of the store (${store.names.join(', ')})`, String(name));
      return index;
    });
    if (new Set(indices).size !== indices.length) throw optionError(this.#core.owner, 'names', names, 'names without repeats');
    if (this.#core.skipping) {
      stepSkipping(this.#core, names, indices);
      return;
    }
    encodeStep(this.#core, names, indices);
  }

  /**
   * Resolves once every step submitted so far has been checked on the device; rejects
   * with the UpdateError of a refused step (`nonFinite: 'error'`: a non-finite gradient),
   * the params and state then as before that step. Reading params back
   * (`store.read`) and `stateDict()` call it first.
   */
  sync(): Promise<void> {
    return sync(this.#core);
  }

  /**
   * A copy of the whole state in the CPU optimizer's format (read back from the GPU):
   * `loadStateDict` of the same CPU optimizer class takes it, and `saveState` writes it.
   */
  stateDict(): Promise<OptimizerStateDict> {
    return stateDict(this.#core);
  }

  /**
   * Replaces the whole state with a saved one (from the GPU or the CPU; float64 state is
   * rounded to float32), checked first by the CPU optimizer: a refusal changes nothing.
   */
  loadStateDict(value: unknown): void {
    loadStateDict(this.#core, value);
  }

  /** 'train' while the parameters hold y (updates allowed), 'eval' while they hold x (Schedule-Free; always 'train' for the others). */
  get mode(): 'train' | 'eval' {
    return this.#core.training ? 'train' : 'eval';
  }

  /**
   * Schedule-Free: moves the parameters on the GPU to x, the average to evaluate
   * (`p = lerp(y, z, 1 - 1 / beta)`), and refuses updates until `train()`. In eval mode
   * already: nothing happens.
   */
  eval(): void {
    if (this.#core.training) moveParams(this.#core, 'eval', (beta) => 1 - 1 / beta);
  }

  /** Schedule-Free: moves the parameters back to y (`p = lerp(x, z, 1 - beta)`) and allows updates again. */
  train(): void {
    if (!this.#core.training) moveParams(this.#core, 'train', (beta) => 1 - beta);
  }

  /** Forgets the state of one parameter, or of all (and the step counts) when no name is given. */
  reset(name?: K): void {
    if (name === undefined) {
      this.#core.training = true;
      this.#core.slots.clear();
      this.#core.stepCount = 0;
      this.#core.skippedSteps = 0;
      this.#core.global?.reset();
      forgetRefusal(this.#core);
    } else {
      this.#core.slots.delete(name);
      this.#core.chains.delete(name);
      // nonFinite 'skip': the steps in flight counted this parameter; the next step waits for them.
      if (this.#core.issued > this.#core.baseIssued) this.#core.pendingNames = 'reset';
    }
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
    const owner = `${this.#core.rule.name}.moveTo`;
    if (store === null || typeof store !== 'object' || store.device !== this.store.device) throw optionError(owner, 'store', store, 'a GPUParamStore of the same device');
    for (const name of this.#core.slots.keys()) {
      const length = Object.hasOwn(store.lengths, name) ? store.lengths[name as L] : undefined;
      if (length !== this.store.lengths[name as K]) {
        throw new StateError(`${owner}: parameter '${name}' has state of length ${this.store.lengths[name as K]}, the new store ${length === undefined ? 'does not hold it' : `gives it length ${length}`}`);
      }
    }
    if (this.#core.skipping && this.#core.issued > this.#core.baseIssued) throw new UpdateError(`${owner}: with nonFinite 'skip', steps are unchecked on the device: await sync() first`, '');
    const next = new GPUOptimizer<L>(this.optimizer, store);
    copyState(this.#core, next.#core, owner);
    return next;
  }

  /** Frees this optimizer's own GPU buffers (uniforms, placeholders); its state buffers go with the store. */
  destroy(): void {
    this.store.removeCheck(this.#settle);
    destroyPasses(this.#core);
    this.#core.destroy();
  }
}
