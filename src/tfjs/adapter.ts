/**
 * The adapter of one optimizer of this library as a TF.js `tf.Optimizer`: a thin shell
 * over the modules beside it (see index.ts for the paths and what each rule adds):
 * - rule-view.ts: which rule the optimizer runs (by its key in the registry) and its ops;
 * - gradients.ts: a call's gradients checked against their variables;
 * - kernel-path.ts / ops-path.ts / webgpu-path.ts: the three ways a step runs (a Runner each);
 * - weights.ts / config.ts: the state as TF.js weights, the options as a TF.js config;
 * - wrappers.ts: EMA, SWA, GradientAccumulation and Lookahead around the optimizer (the
 *   kernel path steps them; their state and options beside the rule's).
 */
import * as tf from '@tensorflow/tfjs-core';
import { StateError, UpdateError, describeValue, optionError } from '../errors.ts';
import type { AnyOptimizer } from '../optimizer.ts';
import { stateFromJSON, type OptimizerStateDict, type SavedState } from '../state.ts';
import type { FloatArray } from '../types.ts';
import { runsOnGpu } from '../webgpu/optimizer.ts';
import { configOf, optimizerFromConfig } from './config.ts';
import { gradientEntries } from './gradients.ts';
import { KernelPath } from './kernel-path.ts';
import { OpsPath } from './ops-path.ts';
import { RuleView } from './rule-view.ts';
import { WebGpuPath } from './webgpu-path.ts';
import { KERNEL_ONLY } from './rules/index.ts';
import type { Entry, Mode, NamedTensor, Runner, TfOptimizerOptions, TfWrappable } from './types.ts';
import { stateOfWeights, weightsOf } from './weights.ts';
import { WRAPPERS_WEIGHT_NAME, averagingOf, chainOf, leafOf, paramsOfChainState, renamedState, withLeaf, wrapperName, wrappersConfig, wrappersText, type Chain, type TfWrapper } from './wrappers.ts';

export type { NamedTensor, TfOptimizerOptions, TfPath, TfWrappable } from './types.ts';
export { STATE_WEIGHT_NAME } from './weights.ts';
export { WRAPPERS_WEIGHT_NAME, type TfWrapper } from './wrappers.ts';

/**
 * Whether `optimizer` is one that TfOptimizer wraps: an optimizer of a registered rule, Muon,
 * or a chain of EMA, SWA, GradientAccumulation and Lookahead around one of them.
 */
export function isWrappable(optimizer: unknown): optimizer is TfWrappable | TfWrapper {
  return chainOf(optimizer) !== undefined;
}

/**
 * A `tf.Optimizer` that runs one optimizer of this library. Make it with `tfOptimizer`.
 *
 * `getWeights()` returns our full state in TF.js's weight format (see weights.ts). The
 * tensors belong to this optimizer: they stay valid until the next `getWeights()` or
 * `dispose()`.
 */
export class TfOptimizer<O extends TfWrappable | TfWrapper = TfWrappable> extends tf.Optimizer {
  /** The name under which the class is registered with `tf.serialization.registerClass`. */
  static get className(): string {
    return 'NesterovOptimizer';
  }

  /** Our optimizer: its options, state and counters (`stepCount`, `skippedSteps`); with wrappers, the outermost. */
  readonly optimizer: O;
  /** The wrappers (outermost first, often none) and the optimizer of the rule inside them. */
  readonly #chain: Chain;
  readonly options: Readonly<Required<Pick<TfOptimizerOptions, 'path'>> & Pick<TfOptimizerOptions, 'clipGradNorm'>>;
  readonly #view: RuleView;
  /** The path, once chosen (at construction, or with 'auto' at the first use on a backend). */
  #runner: Runner | undefined;
  /** Set by setWeights: the next step may adopt the saved state under the call's names. */
  #adoptNames = false;
  /** Tensors handed out by getWeights, disposed at the next getWeights or dispose. */
  #exported: tf.Tensor[] = [];

  constructor(optimizer: O, options: TfOptimizerOptions = {}) {
    super();
    const owner = 'tfOptimizer';
    let problem = '';
    const chain = chainOf(optimizer, (why) => (problem = `: ${why}`));
    if (chain === undefined) {
      throw new TypeError(`${owner}: optimizer must be an optimizer of this library (new Nesterov(), new Adam(), ..., or EMA, SWA, GradientAccumulation, Lookahead around one), got ${describeValue(optimizer)}${problem}`);
    }
    const entry = chain.entry;
    if (options === null || typeof options !== 'object') throw new TypeError(`${owner}: options must be an object, got ${describeValue(options)}`);
    for (const key of Object.keys(options)) {
      if (key !== 'path' && key !== 'clipGradNorm') throw optionError(owner, 'option', key, "'path' or 'clipGradNorm'");
    }
    const path = options.path ?? 'auto';
    if (path !== 'auto' && path !== 'kernel' && path !== 'ops') throw optionError(owner, 'path', path, "'auto', 'kernel' or 'ops'");
    const clip = options.clipGradNorm;
    if (clip !== undefined && (typeof clip !== 'number' || !(clip >= 0) || clip === Infinity)) {
      throw optionError(owner, 'clipGradNorm', clip, 'a finite number >= 0');
    }
    this.#view = new RuleView(chain.base, entry);
    if (path === 'ops' && this.#view.ops === undefined) {
      throw optionError(owner, 'path', path, `'auto' or 'kernel' (${entry.name} runs on the kernel path only: ${KERNEL_ONLY[entry.key] ?? 'it has no TF.js ops'})`);
    }
    if (path === 'ops' && chain.wrappers.length > 0) {
      const name = wrapperName(chain.wrappers[0]!);
      throw optionError(owner, 'path', path, `'auto' or 'kernel' (${name} runs on the kernel path only, on any backend: its state is the core ${name}'s typed arrays; 'auto' picks the kernel path for it)`);
    }
    this.#chain = chain;
    this.optimizer = optimizer;
    this.options = Object.freeze({ path, clipGradNorm: clip });
    if (path !== 'auto') this.#runner = this.#makeRunner(path);
  }

  #makeRunner(path: 'kernel' | 'ops' | 'webgpu'): Runner {
    const clip = this.options.clipGradNorm;
    const ops = this.#view.ops;
    if (path === 'webgpu') return new WebGpuPath(this.#chain.base as AnyOptimizer, this.#view, clip);
    return path === 'ops' && ops !== undefined ? new OpsPath(this.#view, ops, this.#chain.base.nonFinite, clip) : new KernelPath(this.optimizer, this.#chain.base, this.#view, clip);
  }

  /**
   * With path 'auto', picks the path of the current backend, once: 'webgpu' on the webgpu
   * backend where the rule has a GPU kernel, without wrappers or nonFinite 'skip' (these
   * take the ops path there, the wrappers the kernel path).
   */
  #resolve(): Runner {
    if (this.#runner === undefined) {
      const backend = tf.getBackend();
      const base = this.#chain.base;
      const wrapped = this.#chain.wrappers.length > 0;
      // A rule with a GPU program but no TF.js ops (Prodigy, D-Adapt AdamW, Adafactor) takes the webgpu path too.
      const webgpu = backend === 'webgpu' && !wrapped && base.nonFinite !== 'skip' && runsOnGpu(base);
      const kernel = !webgpu && (backend === 'cpu' || backend === 'wasm' || this.#view.ops === undefined || wrapped);
      this.#runner = this.#makeRunner(kernel ? 'kernel' : webgpu ? 'webgpu' : 'ops');
    }
    return this.#runner;
  }

  /**
   * The path the steps take: fixed by the `path` option, or, with 'auto', by the backend
   * at the first step (undefined before it). 'webgpu' on TF.js's webgpu backend for a rule
   * with a GPU kernel (every elementwise rule, LAMB, Adafactor, Prodigy and D-Adapt AdamW
   * included); there nonFinite 'skip' takes 'ops' (or 'kernel' for a rule without TF.js
   * ops), the wrappers and Muon 'kernel'.
   */
  get path(): 'kernel' | 'ops' | 'webgpu' | undefined {
    return this.#runner?.path;
  }

  /**
   * Waits for the verdict of every step taken (on the webgpu and ops paths the device
   * decides whether a gradient is finite): a step refused with nonFinite 'error' throws
   * its error here, when no call since has thrown it.
   */
  async sync(): Promise<void> {
    await this.#runner?.sync();
  }

  /** Steps skipped for a non-finite gradient (`nonFinite: 'skip'`); with wrappers, the base optimizer's. */
  get skippedSteps(): number {
    return this.#runner?.skippedSteps ?? this.#chain.base.skippedSteps;
  }

  /**
   * Steps taken (skipped ones not counted: `iterations` counts every call, as TF.js does);
   * with wrappers, the base optimizer's (under GradientAccumulation one per window).
   */
  get stepCount(): number {
    return this.#runner?.stepCount ?? this.#chain.base.stepCount;
  }

  /**
   * EMA / SWA (the outermost one among the wrappers): copies of the averages by variable
   * name, as the core wrapper's `averaged()`. Refused while swapped (see swap()).
   */
  averaged(): { [name: string]: FloatArray } {
    return this.#averaging('averaged').averaged();
  }

  /**
   * EMA / SWA: exchanges every averaged variable's value with its average, so the model
   * holds the averaged weights (to evaluate, predict or save them); call it again to put the
   * training weights back, bit for bit. While swapped, applyGradients (and so model.fit)
   * is refused. Every averaged variable must still be registered with its size: checked
   * before anything moves.
   */
  swap(): void {
    const owner = `${TfOptimizer.className}.swap`;
    const averaging = this.#averaging('swap');
    const names = Object.keys(averaging.stateDict().buffers);
    const registered = tf.engine().registeredVariables;
    const variables = names.map((name) => {
      const variable = Object.hasOwn(registered, name) ? registered[name] : undefined;
      if (variable === undefined) throw new UpdateError(`${owner}: variable '${name}' has an average but is not registered any more (disposed?): swap exchanges every averaged variable`, name);
      return variable;
    });
    const arrays = Object.create(null) as { [name: string]: Float32Array };
    names.forEach((name, i) => {
      arrays[name] = Float32Array.from(variables[i]!.dataSync() as Float32Array);
    });
    averaging.swap(arrays); // checks every length before it moves anything
    names.forEach((name, i) => {
      const value = tf.tensor(arrays[name]!, variables[i]!.shape, 'float32');
      variables[i]!.assign(value);
      value.dispose();
    });
  }

  /** Whether the variables hold the averages (swap() was called an odd number of times). */
  get swapped(): boolean {
    return averagingOf(this.#chain)?.swapped ?? false;
  }

  #averaging(method: string): NonNullable<ReturnType<typeof averagingOf>> {
    const averaging = averagingOf(this.#chain);
    if (averaging === undefined) {
      throw new TypeError(`${TfOptimizer.className}.${method}: only an EMA or SWA keeps averages; this optimizer runs ${[...this.#chain.wrappers.map(wrapperName), this.#view.name].join(' around ')}`);
    }
    return averaging;
  }

  /**
   * Schedule-Free optimizers: 'train' while the variables hold y (where gradients are
   * taken), 'eval' while they hold x (the average to evaluate or save); see `eval()`.
   * Undefined for every other rule.
   */
  get mode(): Mode | undefined {
    if (!this.#view.scheduleFree) return undefined;
    return this.#runner?.mode ?? 'train';
  }

  /**
   * Schedule-Free: moves every variable this optimizer has updated to x, the average
   * (`x = lerp(y, z, 1 - 1 / beta)`), to evaluate or save the model; `applyGradients`
   * then throws until `train()`. In eval mode already: nothing happens. Every such
   * variable must still be registered (not disposed), with its shape; that is checked
   * before any moves.
   */
  eval(): void {
    this.#move('eval');
  }

  /**
   * Passes to our optimizer's `setHyperparameters` (e.g. `{ momentum: 0.95 }`, numbers or
   * schedules), in force from the next step on either path; checked at the call. Under
   * wrappers it is the rule optimizer's, innermost.
   */
  setHyperparameters(values: Parameters<TfWrappable['setHyperparameters']>[0]): void {
    (this.#chain.base as { setHyperparameters(values: unknown): void }).setHyperparameters(values);
  }

  /** Schedule-Free: moves the variables back to y (`y = lerp(x, z, 1 - beta)`) and allows steps again. */
  train(): void {
    this.#move('train');
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const entries = this.#check(variableGradients);
    const runner = this.#resolve();
    if (this.#adoptNames) {
      this.#adoptNames = false;
      this.#adoptSavedNames(entries);
    }
    if (entries.length > 0) {
      runner.step(entries, entries.map((e) => this.#learningRate(e.name, runner.stepCount)));
    }
    this.incrementIterations();
  }

  /**
   * Checks a call as `applyGradients(variableGradients)` would, writing nothing; throws
   * what it would throw before writing (a TfPartition checks every member's part of a
   * call this way before any member steps).
   */
  checkGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const entries = this.#check(variableGradients);
    // On the kernel path the core optimizer's own checks too (an override that matches no
    // variable, the state it holds): its update would make them after another member of
    // a partition had written. Whether the step would be skipped is the caller's to ask.
    const runner = this.#resolve();
    if (entries.length > 0) runner.check(entries);
  }

  /**
   * After setWeights: when none of the call's variables has state, but the saved state
   * has as many parameters of the same lengths, the state belongs to these variables
   * under other names. tfjs-layers renames the variables of a model loaded in a process
   * that already has one (`dense_Dense1/kernel` becomes `dense_Dense1/kernel_1`); TF.js's
   * own optimizers keep state by position, so a save/load round trip works for them, and
   * by this it works here too. The saved order is the order of the first step's variables.
   */
  #adoptSavedNames(entries: readonly Entry[]): void {
    // Right after setWeights our optimizer holds the loaded state, on either path (the
    // base's, and the wrappers' around it, whose parameters may be the only ones saved).
    const saved = [...paramsOfChainState(this.optimizer.stateDict())];
    if (saved.length !== entries.length || entries.some((e) => saved.some(([name]) => name === e.name))) return;
    if (saved.some(([, length], i) => length !== entries[i]!.variable.size)) return;
    const names = new Map(saved.map(([name], i) => [name, entries[i]!.name]));
    // The wrappers' state follows the same names (their averages, sums, slow weights).
    this.optimizer.loadStateDict(renamedState(this.optimizer.stateDict(), names));
    this.#loaded();
  }

  /** Everything applyGradients checks before it writes: the gradients against their variables, the mode, the learning rates. */
  #check(variableGradients: tf.NamedTensorMap | NamedTensor[]): Entry[] {
    const owner = `${TfOptimizer.className}.applyGradients`;
    const runner = this.#resolve();
    // The verdicts of earlier steps read since (backends without a synchronous read): a
    // refused one puts its counters back, or throws, before this call checks anything.
    runner.settle();
    const entries = gradientEntries(owner, variableGradients, { matricesOnly: this.#view.matricesOnly, stateLength: (name) => runner.stateLength(name) });
    if (this.mode === 'eval') {
      throw new UpdateError(
        `${owner}: the ${this.#view.name} optimizer is in eval mode (the variables hold the average x, not y): call train() before applyGradients`,
        '',
      );
    }
    if (this.swapped) {
      const name = wrapperName(averagingOf(this.#chain)!);
      throw new UpdateError(`${owner}: the variables hold the ${name}'s averages (swap() was called): call swap() again to put the training weights back before applyGradients`, '');
    }
    // A schedule may return anything: checked here, so that a partition's members all
    // pass before any writes (the ops path uses the values; the core evaluates them again).
    for (const e of entries) this.#learningRate(e.name, runner.stepCount);
    return entries;
  }

  /** This step's lr of parameter `name`, checked, and with it every scheduled value of the step. */
  #learningRate(name: string, step: number): number {
    const lr = this.#view.hyper(name, step).lr;
    const value = typeof lr === 'number' ? lr : lr(step);
    if (typeof value !== 'number' || !(value >= 0) || value === Infinity) {
      throw new UpdateError(`${TfOptimizer.className}.applyGradients: the lr schedule of parameter '${name}' returned ${describeValue(value)} at step ${step} (expected a finite number >= 0)`, name);
    }
    return value;
  }

  /** Checks that every variable with state is still there, then moves them all (see eval()). */
  #move(mode: Mode): void {
    const owner = `${TfOptimizer.className}.${mode}`;
    if (!this.#view.scheduleFree) {
      throw new TypeError(`${owner}: only Schedule-Free optimizers (ScheduleFreeSGD, ScheduleFreeAdamW) have a train and an eval mode; this one runs ${this.#view.name}`);
    }
    const runner = this.#resolve();
    if (this.mode === mode) return;
    const names = runner.stateNames();
    const registered = tf.engine().registeredVariables;
    const variables = names.map((name) => {
      const variable = Object.hasOwn(registered, name) ? registered[name] : undefined;
      if (variable === undefined) {
        throw new UpdateError(`${owner}: variable '${name}' has optimizer state but is not registered any more (disposed?): ${mode} moves every variable the optimizer has updated`, name);
      }
      const length = runner.stateLength(name);
      if (length !== undefined && length !== variable.size) {
        throw new UpdateError(`${owner}: variable '${name}' has ${variable.size} elements, but its optimizer state was made for ${length} (did the variable change shape?)`, name);
      }
      return variable;
    });
    runner.move(mode, names, variables);
  }

  override async getWeights(): Promise<NamedTensor[]> {
    tf.dispose(this.#exported);
    this.#exported = [];
    const base = (): OptimizerStateDict => this.#chain.base.stateDict();
    const dict = this.#runner === undefined ? base() : await this.#runner.stateDict(base);
    const weights = weightsOf(dict, this.iterations);
    if (this.#chain.wrappers.length > 0) weights.push({ name: WRAPPERS_WEIGHT_NAME, tensor: tf.scalar(wrappersText(this.optimizer.stateDict() as SavedState), 'string') });
    this.#exported = weights.map((w) => w.tensor);
    return weights;
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const owner = `${TfOptimizer.className}.setWeights`;
    // Everything is read and checked first (stateOfWeights, then loadStateDict, which
    // throws before changing anything); the state changes only once all of it is valid.
    const { dict, iterations } = await stateOfWeights(owner, weightValues, TfOptimizer.className);
    this.optimizer.loadStateDict(await this.#withWrappers(owner, weightValues as NamedTensor[], dict));
    this.#resolve();
    this.#loaded();
    this.#adoptNames = true;
    this.iterations_ = iterations;
  }

  /**
   * The state to load: the base's `dict`, inside the wrappers' tree saved in the weight
   * `nesterov/wrappers` when this optimizer has wrappers. Refuses weights of an optimizer
   * with other wrappers (the loadStateDict of each wrapper checks the rest).
   */
  async #withWrappers(owner: string, weightValues: readonly NamedTensor[], dict: unknown): Promise<unknown> {
    const weight = weightValues.find((w) => w.name === WRAPPERS_WEIGHT_NAME);
    const mine = this.#chain.wrappers.map(wrapperName).join(', ');
    if (weight === undefined) {
      if (mine === '') return dict;
      throw new TypeError(`${owner}: the weights lack '${WRAPPERS_WEIGHT_NAME}' (saved without wrappers), this optimizer has [${mine}]`);
    }
    if (mine === '') throw new TypeError(`${owner}: the weights hold wrappers' state ('${WRAPPERS_WEIGHT_NAME}'), this optimizer has none (${this.#view.name} alone)`);
    if (weight.tensor.dtype !== 'string' || weight.tensor.size !== 1) {
      throw new TypeError(`${owner}: weight '${WRAPPERS_WEIGHT_NAME}' must hold one string, got a ${weight.tensor.dtype} tensor of shape [${weight.tensor.shape.join(', ')}]`);
    }
    const tree = stateFromJSON<SavedState>(String((await weight.tensor.data())[0]));
    const leaf = leafOf(tree) as { params?: unknown };
    if (leaf === tree) throw new StateError(`${owner}: weight '${WRAPPERS_WEIGHT_NAME}' holds no wrapper's state, this optimizer has [${mine}]`);
    if (leaf.params !== null && typeof leaf.params === 'object' && Object.keys(leaf.params).length > 0) {
      throw new StateError(`${owner}: weight '${WRAPPERS_WEIGHT_NAME}' holds parameters of the base optimizer, which its own weights hold`);
    }
    return withLeaf(tree, dict);
  }

  /** After our optimizer loaded a state: the path takes it. */
  #loaded(): void {
    const mode = this.#view.scheduleFree ? (this.#chain.base as unknown as { readonly mode: Mode }).mode : undefined;
    this.#resolve().loaded(() => this.#chain.base.stateDict(), mode);
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config = configOf(this.#chain.base, this.#view, this.options);
    if (this.#chain.wrappers.length > 0) config.wrappers = wrappersConfig(this.#chain.wrappers);
    return config;
  }

  static override fromConfig<T extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
    const { optimizer, options } = optimizerFromConfig(`${TfOptimizer.className}.fromConfig`, config);
    return new (cls as unknown as new (o: TfWrappable | TfWrapper, options: TfOptimizerOptions) => T)(optimizer, options);
  }

  /** Frees every tensor this optimizer made (state variables, exported weights). */
  override dispose(): void {
    this.#runner?.dispose();
    tf.dispose(this.#exported);
    this.#exported = [];
  }
}

tf.serialization.registerClass(TfOptimizer);
