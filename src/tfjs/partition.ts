/**
 * A `partition(...)` of our optimizers as one `tf.Optimizer` (what `model.compile` takes):
 * Muon for the hidden matrices and AdamW for the rest, as Muon's authors recommend.
 *
 *     const opt = tfOptimizer(partition((name) => (name.endsWith('/kernel') ? 'muon' : 'adamw'), {
 *       muon: new Muon(), adamw: new AdamW({ lr: 1e-3 }) }));
 *     model.compile({ optimizer: opt, loss: 'categoricalCrossentropy' });
 *
 * Each member is a TfOptimizer of its own (its path, its state, its kernels); a call's
 * gradients are split by the partition's assignment and each member gets its variables'
 * gradients. As the core `partition`, a step is all or nothing: every member's part is
 * checked (variables, shapes, Muon's 2-D, Schedule-Free's mode) and every gradient's
 * finiteness is looked at before any member steps; a non-finite gradient makes its
 * member throw (nothing written) or, with `nonFinite: 'skip'`, the whole step is skipped.
 * `clipGradNorm` clips over all gradients together, before the split.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UpdateError, describeValue, optionError } from '../errors.ts';
import { clipGradNorm } from '../grads.ts';
import { partition, PARTITION_FORMAT, type Partition } from '../partition.ts';
import { TfOptimizer, isWrappable } from './adapter.ts';
import { adapterOptionsFromConfig, optimizerFromConfig } from './config.ts';
import { finiteFlags, readsSynchronously } from './flags.ts';
import { pairsOf } from './gradients.ts';
import type { NamedTensor, TfOptimizerOptions, TfPath, TfWrappable } from './types.ts';
import type { TfWrapper } from './wrappers.ts';
import { readIter, readMeta, weightsByName } from './weights.ts';

/** The members of a partition the adapter can wrap: optimizers of this library, Muon included. */
export type TfMembers = { readonly [key: string]: TfWrappable };
/** As TfMembers, and members that are wrappers (EMA, SWA, GradientAccumulation, Lookahead) around one. */
export type TfWrappedMembers = { readonly [key: string]: TfWrappable | TfWrapper };

/** The weight that holds a partition's own counters and its members' keys. */
export const PARTITION_WEIGHT_NAME = 'nesterov/partition';
/** Each member's weights are saved under this prefix and its key: `nesterov/partition/adamw/iter`, ... */
const MEMBER_PREFIX = 'nesterov/partition/';

/**
 * A `tf.Optimizer` that runs a `partition(...)` of optimizers of this library. Make it with
 * `tfOptimizer(partition(assign, optimizers), options)`.
 */
export class TfPartition<M extends TfWrappedMembers = TfMembers> extends tf.Optimizer {
  /** The name under which the class is registered with `tf.serialization.registerClass`. */
  static get className(): string {
    return 'NesterovPartition';
  }

  /** The partition: its members are our optimizers (their state on the 'kernel' path). */
  readonly partition: Partition<M>;
  /** One adapter per member, by the member's key. */
  readonly members: { readonly [K in keyof M]: TfOptimizer<M[K]> };
  readonly options: Readonly<{ path: TfPath; clipGradNorm: number | undefined }>;
  readonly #keys: readonly (keyof M & string)[];
  /** Every variable name seen so far and its member's key (what getConfig saves). */
  readonly #assigned = new Map<string, string>();
  #stepCount = 0;
  #skippedSteps = 0;
  #exported: tf.Tensor[] = [];

  constructor(split: Partition<M>, options: TfOptimizerOptions = {}) {
    super();
    const owner = 'tfOptimizer';
    if (options === null || typeof options !== 'object') throw new TypeError(`${owner}: options must be an object, got ${describeValue(options)}`);
    for (const key of Object.keys(options)) {
      if (key !== 'path' && key !== 'clipGradNorm') throw optionError(owner, 'option', key, "'path' or 'clipGradNorm'");
    }
    const clip = options.clipGradNorm;
    if (clip !== undefined && (typeof clip !== 'number' || !(clip >= 0) || clip === Infinity)) {
      throw optionError(owner, 'clipGradNorm', clip, 'a finite number >= 0');
    }
    const keys = Object.keys(split.members) as (keyof M & string)[];
    for (const key of keys) {
      if (!isWrappable(split.members[key])) {
        throw new TypeError(`${owner}: partition member '${key}' must be an optimizer of this library (new Muon(), new AdamW(), ..., or EMA, SWA, GradientAccumulation, Lookahead around one), got ${describeValue(split.members[key])}`);
      }
    }
    const path = options.path ?? 'auto';
    const members = {} as { [K in keyof M]: TfOptimizer<M[K]> };
    for (const key of keys) members[key] = new TfOptimizer(split.members[key]!, { path }); // checks path
    this.partition = split;
    this.members = members;
    this.options = Object.freeze({ path, clipGradNorm: clip });
    this.#keys = keys;
  }

  /** Steps taken (skipped ones not counted). */
  get stepCount(): number {
    return this.#stepCount;
  }

  /** Waits for every member's verdict on the steps taken (see TfOptimizer.sync): a refused step's error is thrown here. */
  async sync(): Promise<void> {
    for (const key of this.#keys) await this.members[key].sync();
  }

  /** Steps skipped for a non-finite gradient (a member with `nonFinite: 'skip'`). */
  get skippedSteps(): number {
    return this.#skippedSteps;
  }

  /** The Schedule-Free members' mode ('train' or 'eval'), undefined without one. */
  get mode(): 'train' | 'eval' | undefined {
    for (const key of this.#keys) {
      const mode = this.members[key].mode;
      if (mode !== undefined) return mode;
    }
    return undefined;
  }

  /** Schedule-Free members: moves their variables to x (see TfOptimizer.eval). */
  eval(): void {
    this.#move('eval');
  }

  /** Schedule-Free members: moves their variables back to y. */
  train(): void {
    this.#move('train');
  }

  #move(mode: 'eval' | 'train'): void {
    const scheduleFree = this.#keys.filter((key) => this.members[key].mode !== undefined);
    if (scheduleFree.length === 0) {
      throw new TypeError(`${TfPartition.className}.${mode}: only Schedule-Free optimizers (ScheduleFreeSGD, ScheduleFreeAdamW) have a train and an eval mode; this partition has none`);
    }
    for (const key of scheduleFree) this.members[key][mode]();
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const owner = `${TfPartition.className}.applyGradients`;
    // Split by member; every part checked by its member before anything is written.
    const parts = new Map<string, NamedTensor[]>();
    for (const [name, gradient] of pairsOf(owner, variableGradients)) {
      if (gradient === null || gradient === undefined) continue; // TF.js skips a missing gradient too
      const key = this.partition.memberOf(name);
      let part = parts.get(key);
      if (part === undefined) parts.set(key, (part = []));
      part.push({ name, tensor: gradient });
    }
    for (const [key, part] of parts) this.members[key]!.checkGradients(part);
    for (const [key, part] of parts) {
      for (const { name } of part) this.#assigned.set(name, key);
    }
    // Finiteness of every gradient a member looks at, before any member steps. Where the
    // backend cannot read synchronously (webgpu), each member decides on the device for
    // its own gradients instead (see OpsPath): a member's refusal then writes nothing of
    // that member, and the others step.
    const looked = [...parts].filter(([key]) => this.members[key]!.optimizer.nonFinite !== 'ignore');
    const all = looked.flatMap(([, part]) => part);
    if (all.length > 0 && readsSynchronously()) {
      const finite = finiteFlags(all.map((g) => g.tensor));
      const bad = finite.findIndex((ok) => ok !== 1);
      if (bad >= 0) {
        const badName = all[bad]!.name;
        const [key, part] = looked.find(([, p]) => p.some((g) => g.name === badName))!;
        const member = this.members[key]!;
        if (member.optimizer.nonFinite === 'skip') {
          this.#skippedSteps += 1;
          this.incrementIterations();
          return;
        }
        member.applyGradients(part); // throws, naming the gradient and index, and writes nothing
        throw new UpdateError(`${owner}: gradient '${badName}' is not finite`, badName); // not reached
      }
    }
    const clip = this.options.clipGradNorm;
    const clipped = clip === undefined ? undefined : this.#clip(parts, clip);
    try {
      for (const key of this.#keys) {
        const part = parts.get(key);
        if (part !== undefined) this.members[key].applyGradients(clipped?.get(key) ?? part);
      }
    } finally {
      if (clipped !== undefined) for (const part of clipped.values()) tf.dispose(part.map((g) => g.tensor));
    }
    if (parts.size > 0) this.#stepCount += 1;
    this.incrementIterations();
  }

  /**
   * All gradients scaled together so that their global L2 norm is at most maxNorm (as
   * TfOptimizer's clipGradNorm, by our clipGradNorm over copies in double on the 'kernel'
   * path's backends, by TF.js ops on the others). New tensors, disposed by the caller.
   */
  #clip(parts: Map<string, NamedTensor[]>, maxNorm: number): Map<string, NamedTensor[]> {
    const out = new Map<string, NamedTensor[]>();
    const backend = tf.getBackend();
    const kernel = this.options.path === 'kernel' || (this.options.path === 'auto' && (backend === 'cpu' || backend === 'wasm'));
    if (kernel) {
      const arrays = Object.create(null) as { [name: string]: Float32Array };
      for (const part of parts.values()) for (const g of part) arrays[g.name] = Float32Array.from(g.tensor.dataSync() as Float32Array);
      clipGradNorm(arrays, maxNorm, { nonFinite: 'return' });
      for (const [key, part] of parts) out.set(key, part.map((g) => ({ name: g.name, tensor: tf.tensor(arrays[g.name]!, g.tensor.shape, 'float32') })));
      return out;
    }
    const all = [...parts.values()].flat();
    const scaled = tf.tidy(() => {
      const norm = tf.sqrt(tf.addN(all.map((g) => tf.sum(tf.square(g.tensor)))));
      const scale = tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6)));
      return all.map((g) => tf.mul(g.tensor, scale));
    });
    let i = 0;
    for (const [key, part] of parts) out.set(key, part.map((g) => ({ name: g.name, tensor: scaled[i++]! })));
    return out;
  }

  /**
   * `iter`, each member's weights under `nesterov/partition/<key>/` (its `iter`, its state
   * buffers, its `nesterov/state`), then `nesterov/partition` (JSON: the members' keys, the
   * partition's counters). Valid until the next getWeights or dispose.
   */
  override async getWeights(): Promise<NamedTensor[]> {
    tf.dispose(this.#exported);
    const own = [tf.scalar(this.iterations, 'int32'), tf.scalar(JSON.stringify({ format: PARTITION_FORMAT, members: this.#keys, stepCount: this.#stepCount, skippedSteps: this.#skippedSteps }), 'string')];
    this.#exported = own;
    const weights: NamedTensor[] = [{ name: 'iter', tensor: own[0]! }];
    for (const key of this.#keys) {
      for (const w of await this.members[key].getWeights()) weights.push({ name: `${MEMBER_PREFIX}${key}/${w.name}`, tensor: w.tensor });
    }
    weights.push({ name: PARTITION_WEIGHT_NAME, tensor: own[1]! });
    return weights;
  }

  /** Loads what getWeights saved; all or nothing (a member that refuses its part puts back the ones loaded before it). */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const owner = `${TfPartition.className}.setWeights`;
    const { byName, iter, metaTensor } = weightsByName(owner, weightValues, PARTITION_WEIGHT_NAME, TfPartition.className);
    const iterations = await readIter(owner, iter);
    const meta = await readMeta(owner, metaTensor, PARTITION_WEIGHT_NAME) as { format?: unknown; members?: unknown; stepCount?: unknown; skippedSteps?: unknown };
    const saved = Array.isArray(meta?.members) ? (meta.members as unknown[]) : [];
    if (meta?.format !== PARTITION_FORMAT || saved.length !== this.#keys.length || this.#keys.some((key) => !saved.includes(key))) {
      throw new TypeError(`${owner}: the weights were saved by a partition of [${saved.map(String).join(', ')}], this one has [${this.#keys.join(', ')}]`);
    }
    const stepCount = meta.stepCount;
    const skippedSteps = meta.skippedSteps;
    if (!Number.isSafeInteger(stepCount) || !Number.isSafeInteger(skippedSteps) || (stepCount as number) < 0 || (skippedSteps as number) < 0) {
      throw new TypeError(`${owner}: '${PARTITION_WEIGHT_NAME}' has stepCount ${describeValue(stepCount)} and skippedSteps ${describeValue(skippedSteps)}, expected integers >= 0`);
    }
    // Copies of each member's part (tf.clone shares the data): getWeights below would
    // dispose the tensors a member exported, which may be the ones given here.
    const parts = this.#keys.map((key) => {
      const prefix = `${MEMBER_PREFIX}${key}/`;
      return [...byName].filter(([name]) => name.startsWith(prefix)).map(([name, tensor]) => ({ name: name.slice(prefix.length), tensor: tf.clone(tensor) }));
    });
    const before: NamedTensor[][] = [];
    try {
      for (const key of this.#keys) before.push((await this.members[key].getWeights()).map((w) => ({ name: w.name, tensor: tf.clone(w.tensor) })));
      let done = 0;
      try {
        for (const [k, key] of this.#keys.entries()) {
          await this.members[key].setWeights(parts[k]!);
          done += 1;
        }
      } catch (error) {
        for (let k = 0; k < done; k++) await this.members[this.#keys[k]!].setWeights(before[k]!);
        throw error;
      }
    } finally {
      tf.dispose(parts.flat().map((w) => w.tensor));
      tf.dispose(before.flat().map((w) => w.tensor));
    }
    this.#stepCount = stepCount as number;
    this.#skippedSteps = skippedSteps as number;
    this.iterations_ = iterations;
  }

  /**
   * Per member: its key, its config (see TfOptimizer.getConfig) and the variables assigned
   * to it so far. A partition's `assign` may be a function, which a config cannot hold, so
   * `fromConfig` assigns by these names (a name tfjs-layers renamed on load, `..._1`, by
   * its name without that suffix). Every such string is the value of a `name` field: a
   * model's saved config goes through tfjs-layers' camelCase conversion, which rewrites
   * every other key and string ('dense_Dense1/kernel' would come back 'denseDense1/kernel').
   */
  override getConfig(): tf.serialization.ConfigDict {
    const members = this.#keys.map((key) => ({
      name: key,
      config: this.members[key].getConfig(),
      variables: [...this.#assigned].filter(([, k]) => k === key).map(([name]) => ({ name })),
    }));
    const config: tf.serialization.ConfigDict = { members, path: this.options.path };
    if (this.options.clipGradNorm !== undefined) config.clipGradNorm = this.options.clipGradNorm;
    return config;
  }

  static override fromConfig<T extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
    const owner = `${TfPartition.className}.fromConfig`;
    if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new TypeError(`${owner}: config must be an object, got ${describeValue(config)}`);
    const members: unknown = config.members;
    if (!Array.isArray(members) || members.length === 0) {
      throw new TypeError(`${owner}: config.members must be a non-empty list of { name, config, variables } (saved by a ${TfPartition.className}), got ${describeValue(members)}`);
    }
    const optimizers = Object.create(null) as { [key: string]: TfWrappable | TfWrapper };
    const saved: { name: string; key: string }[] = [];
    members.forEach((value: unknown, i) => {
      const member = value as { name?: unknown; config?: unknown; variables?: unknown } | null;
      if (member === null || typeof member !== 'object' || Array.isArray(member)) throw new TypeError(`${owner}: members[${i}] must be { name, config, variables }, got ${describeValue(value)}`);
      const key = member.name;
      if (typeof key !== 'string' || key === '') throw new TypeError(`${owner}: members[${i}].name must be a non-empty string, got ${describeValue(key)}`);
      if (key === '__proto__') throw new TypeError(`${owner}: members[${i}].name may not be '__proto__' (a partition's member key is an object key)`);
      if (Object.hasOwn(optimizers, key)) throw new TypeError(`${owner}: members[${i}].name '${key}' is the name of an earlier member too`);
      if (!Array.isArray(member.variables)) throw new TypeError(`${owner}: members[${i}].variables must be a list of { name }, got ${describeValue(member.variables)}`);
      member.variables.forEach((variable: unknown, k) => {
        const name = (variable as { name?: unknown } | null)?.name;
        if (variable === null || typeof variable !== 'object' || typeof name !== 'string') {
          throw new TypeError(`${owner}: members[${i}].variables[${k}] must be { name: string }, got ${describeValue(variable)}`);
        }
        saved.push({ name, key });
      });
      optimizers[key] = optimizerFromConfig(`${owner}: members[${i}] ('${key}')`, member.config).optimizer;
    });
    const options = adapterOptionsFromConfig(owner, config);
    return new (cls as unknown as new (split: Partition<TfWrappedMembers>, options: TfOptimizerOptions) => T)(partition(savedAssignment(saved), { ...optimizers }), options);
  }

  /** Frees every tensor this optimizer and its members made. */
  override dispose(): void {
    for (const key of this.#keys) this.members[key].dispose();
    tf.dispose(this.#exported);
    this.#exported = [];
  }
}

tf.serialization.registerClass(TfPartition);

/**
 * The assignment of a partition made by fromConfig: by the names its variables had when it
 * was saved. tfjs-layers gives a loaded variable its saved name, plus a suffix `_<n>` when
 * that name is taken in this process, and a variable saved with such a suffix (the second
 * model of a name in its process) loads without it in a fresh process: so a name not found
 * as it is is found by its name without the suffix, compared with the saved names without
 * theirs, where that picks one member. Unassigned names go to '' (the partition says so).
 */
function savedAssignment(saved: readonly { name: string; key: string }[]): (name: string) => string {
  const exact = new Map<string, string>();
  const byBase = new Map<string, string | null>(); // null: saved names of this base went to different members
  const base = (name: string): string => name.replace(/_\d+$/, '');
  for (const { name, key } of saved) {
    exact.set(name, key);
    const b = base(name);
    const known = byBase.get(b);
    byBase.set(b, known === undefined || known === key ? key : null);
  }
  return (name) => exact.get(name) ?? byBase.get(base(name)) ?? '';
}
