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
import { TfOptimizer, checkGradients, finiteFlags, isWrappable, weightsByName, type NamedTensor, type TfOptimizerOptions, type TfPath, type TfWrappable } from './adapter.ts';

/** The members of a partition the adapter can wrap: optimizers of this library, Muon included. */
export type TfMembers = { readonly [key: string]: TfWrappable };

/** The weight that holds a partition's own counters and its members' keys. */
export const PARTITION_WEIGHT_NAME = 'nesterov/partition';
/** Each member's weights are saved under this prefix and its key: `nesterov/partition/adamw/iter`, ... */
const MEMBER_PREFIX = 'nesterov/partition/';

function pairsOf(owner: string, variableGradients: tf.NamedTensorMap | NamedTensor[]): [string, tf.Tensor | null | undefined][] {
  if (variableGradients === null || typeof variableGradients !== 'object') {
    throw new TypeError(`${owner}: expected a map of gradients by variable name or an array of { name, tensor }, got ${describeValue(variableGradients)}`);
  }
  if (!Array.isArray(variableGradients)) return Object.entries(variableGradients);
  return variableGradients.map((item, i) => {
    if (item === null || typeof item !== 'object' || typeof item.name !== 'string') {
      throw new TypeError(`${owner}: item ${i} must be { name, tensor }, got ${describeValue(item)}`);
    }
    return [item.name, item.tensor];
  });
}

/**
 * A `tf.Optimizer` that runs a `partition(...)` of optimizers of this library. Make it with
 * `tfOptimizer(partition(assign, optimizers), options)`.
 */
export class TfPartition<M extends TfMembers = TfMembers> extends tf.Optimizer {
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
        throw new TypeError(`${owner}: partition member '${key}' must be an optimizer of this library (new Muon(), new AdamW(), ...), got ${describeValue(split.members[key])}`);
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
    for (const [key, part] of parts) checkGradients(this.members[key]!, part);
    for (const [key, part] of parts) {
      for (const { name } of part) this.#assigned.set(name, key);
    }
    // Finiteness of every gradient a member looks at, before any member steps.
    const looked = [...parts].filter(([key]) => this.members[key]!.optimizer.nonFinite !== 'ignore');
    const all = looked.flatMap(([, part]) => part);
    if (all.length > 0) {
      const finite = finiteFlags(all.map((g) => g.tensor));
      const bad = finite.findIndex((ok) => ok === 0);
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
    let meta: { format?: unknown; members?: unknown; stepCount?: unknown; skippedSteps?: unknown };
    try {
      meta = JSON.parse(String((await metaTensor.data())[0])) as typeof meta;
    } catch (error) {
      throw new TypeError(`${owner}: '${PARTITION_WEIGHT_NAME}' is not JSON: ${(error as Error).message}`);
    }
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
    this.iterations_ = (await iter.data())[0]!;
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
    const members = config.members as unknown as { name: string; config: tf.serialization.ConfigDict; variables: { name: string }[] }[] | null;
    if (!Array.isArray(members) || members.some((m) => m === null || typeof m !== 'object' || typeof m.name !== 'string' || !Array.isArray(m.variables))) {
      throw new TypeError(`${owner}: the config has no list of members with their variables (it was not saved by a ${TfPartition.className})`);
    }
    const optimizers: { [key: string]: TfWrappable } = {};
    const assignment = new Map<string, string>();
    for (const member of members) {
      optimizers[member.name] = (TfOptimizer.fromConfig(TfOptimizer as never, member.config) as unknown as TfOptimizer).optimizer;
      for (const variable of member.variables) assignment.set(variable.name, member.name);
    }
    const lookup = (name: string): string | undefined => assignment.get(name);
    const assign = (name: string): string => lookup(name) ?? lookup(name.replace(/_\d+$/, '')) ?? '';
    const options: TfOptimizerOptions = { path: config.path as TfPath };
    if (typeof config.clipGradNorm === 'number') options.clipGradNorm = config.clipGradNorm;
    return new (cls as unknown as new (split: Partition<TfMembers>, options: TfOptimizerOptions) => T)(partition(assign, optimizers), options);
  }

  /** Frees every tensor this optimizer and its members made. */
  override dispose(): void {
    for (const key of this.#keys) this.members[key].dispose();
    tf.dispose(this.#exported);
    this.#exported = [];
  }
}

tf.serialization.registerClass(TfPartition);
