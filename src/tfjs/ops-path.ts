/**
 * The 'ops' path (default on every backend but cpu and wasm): the rule as TF.js ops
 * (src/tfjs/rules/, one file per rule) inside `tf.tidy`, the state in non-trainable
 * variables, so the data stays on the GPU. The counters and the per-parameter scalars
 * are kept here, as the core optimizer keeps them on the kernel path.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UpdateError } from '../errors.ts';
import type { NonFinitePolicy } from '../contract.ts';
import type { OptimizerStateDict, ParamStateRecord } from '../state.ts';
import { finiteFlags, finiteFlagsTensor, readFlags, readsSynchronously } from './flags.ts';
import type { RuleView } from './rule-view.ts';
import type { AnyRuleOps } from './rules/index.ts';
import type { Entry, Mode, Runner } from './types.ts';
import { shapeOf } from './weights.ts';

/** State of one parameter. */
interface Slot {
  step: number;
  readonly scalars: Record<string, number>;
  /** In the order of the rule's bufferNames. */
  buffers: tf.Variable[];
}

/**
 * All gradients scaled together so that their global L2 norm is at most `maxNorm`
 * (PyTorch's clip_grad_norm_: maxNorm / (norm + 1e-6) where that is below 1); the
 * gradients as they are without a maxNorm. Inside the caller's tf.tidy.
 */
function clippedByGlobalNorm(grads: tf.Tensor[], maxNorm: number | undefined): tf.Tensor[] {
  if (maxNorm === undefined) return grads;
  const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
  const scale = tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6)));
  return grads.map((g) => tf.mul(g, scale));
}

export class OpsPath implements Runner {
  readonly path = 'ops';
  readonly #view: RuleView;
  readonly #ops: AnyRuleOps;
  readonly #nonFinite: NonFinitePolicy;
  readonly #clipGradNorm: number | undefined;
  readonly #slots = new Map<string, Slot>();
  #stepCount = 0;
  #skippedSteps = 0;
  /** Schedule-Free: whether the variables hold y. */
  #training = true;
  /** Steps whose verdict (see #deferredStep) is still being read, oldest first. */
  readonly #pending: Pending[] = [];

  constructor(view: RuleView, ops: AnyRuleOps, nonFinite: NonFinitePolicy, clip: number | undefined) {
    this.#view = view;
    this.#ops = ops;
    this.#nonFinite = nonFinite;
    this.#clipGradNorm = clip;
  }

  get stepCount(): number {
    return this.#stepCount;
  }

  get skippedSteps(): number {
    return this.#skippedSteps;
  }

  get mode(): Mode | undefined {
    if (!this.#view.scheduleFree) return undefined;
    return this.#training ? 'train' : 'eval';
  }

  stateLength(name: string): number | undefined {
    return this.#slots.get(name)?.buffers[0]?.size ?? undefined;
  }

  stateNames(): string[] {
    return [...this.#slots.keys()];
  }

  /** One step: `lrs` are the entries' learning rates, checked by the caller. */
  step(entries: readonly Entry[], lrs: readonly number[]): void {
    this.settle();
    const watch = this.#nonFinite !== 'ignore';
    if (watch && !readsSynchronously()) {
      this.#deferredStep(entries, lrs);
      return;
    }
    const view = this.#view;
    if (watch) {
      const finite = finiteFlags(entries.map((e) => e.gradient));
      const bad = finite.findIndex((ok) => ok !== 1);
      if (bad >= 0) {
        if (this.#nonFinite === 'skip') {
          this.#skippedSteps += 1;
          return;
        }
        const e = entries[bad]!;
        const values = e.gradient.dataSync();
        const index = values.findIndex((x) => !Number.isFinite(x));
        throw new UpdateError(`${view.name}.update: gradient '${e.name}' is not finite at index ${index} (${values[index]})`, e.name, index);
      }
    }
    const maxNorm = this.#clipGradNorm;
    const [flags, ...grads] = tf.tidy(() => {
      const grads = clippedByGlobalNorm(entries.map((e) => e.gradient), maxNorm);
      const written: tf.Tensor[] = [];
      entries.forEach((e, i) => {
        const hyper = view.hyper(e.name, this.#stepCount);
        const slot = this.#slotOf(e, hyper);
        slot.step += 1;
        const [param, ...buffers] = this.#ops.step({ hyper: hyper as never, lr: lrs[i]!, step: slot.step, scalars: slot.scalars }, e.variable, grads[i]!, slot.buffers);
        slot.buffers.forEach((variable, k) => variable.assign(buffers[k]!));
        e.variable.assign(param!);
        if (watch) written.push(param!, ...buffers);
      });
      // Whether each parameter and its state stayed finite (one flag per tensor), read once
      // below; the gradients are kept only to name the one an overflow came from.
      return [finiteFlagsTensor(written), ...(watch ? grads : [])];
    });
    this.#stepCount += 1;
    try {
      if (!watch || readFlags(flags!).every((ok) => ok === 1)) return;
      this.#throwOverflow(entries, grads);
    } finally {
      tf.dispose(flags!);
      if (maxNorm !== undefined) tf.dispose(grads);
    }
  }

  /**
   * The core's error for a step that was applied but wrote a NaN or an Infinity, naming
   * the first parameter (in the call's order) and the first index at which the parameter
   * or one of its state buffers is not finite (the parameter wins a tie, then the buffers
   * in the rule's order), word for word as the core's update.
   */
  /** The slot of a variable, made at its first step (its buffers filled as the rule starts them). */
  #slotOf(e: Entry, hyper: unknown): Slot {
    let slot = this.#slots.get(e.name);
    if (slot === undefined) {
      const fill = this.#ops.initialFill?.(hyper as never) ?? 0;
      const view = this.#view;
      slot = { step: 0, scalars: view.initialScalars(e.name), buffers: view.bufferNames(e.name).map(() => tf.variable(tf.fill(e.variable.shape, fill, 'float32'), false)) };
      this.#slots.set(e.name, slot);
    }
    return slot;
  }

  #throwOverflow(entries: readonly Entry[], grads: readonly tf.Tensor[]): never {
    const view = this.#view;
    for (const [i, e] of entries.entries()) {
      const slot = this.#slots.get(e.name)!;
      const arrays = [e.variable, ...slot.buffers].map((t) => t.dataSync() as Float32Array);
      let index = -1;
      let which = 0;
      arrays.forEach((array, k) => {
        const at = array.findIndex((x) => !Number.isFinite(x));
        if (at >= 0 && (index < 0 || at < index)) {
          index = at;
          which = k;
        }
      });
      if (index < 0) continue;
      if (view.matricesOnly) {
        throw new UpdateError(
          `${view.name}.update: the step overflowed: parameter '${e.name}' or its momentumBuffer holds a NaN or an Infinity, from finite gradients. ` +
            'This step WAS applied, to every parameter. Use a smaller lr, and restore the params and state saved before this step',
          e.name,
        );
      }
      const what = which === 0 ? `parameter '${e.name}'` : `the optimizer state '${view.bufferNames(e.name)[which - 1]}' of parameter '${e.name}'`;
      const skip = this.#nonFinite === 'skip' ? " (nonFinite: 'skip' skips a step whose gradients are not finite; these were, and the step cannot be undone)" : '';
      throw new UpdateError(
        `${view.name}.update: the step overflowed: ${what} became ${arrays[which]![index]} at index ${index}, from a finite gradient (${grads[i]!.dataSync()[index]}). ` +
          `This step WAS applied, to every parameter: the params and optimizer state now hold this value${skip}. ` +
          'Use a smaller lr or clip the gradients, and restore the params and state saved before this step',
        e.name,
        index,
      );
    }
    throw new UpdateError(`${view.name}.update: the step overflowed (a NaN or an Infinity was written). This step WAS applied, to every parameter`, '');
  }

  /**
   * eval / train: p <- p + w (z - p) as TF.js ops, z the first state buffer. As the core's
   * eval / train (and the kernel path): every variable is moved and the mode changes,
   * then, if a moved value is NaN or +-Infinity, the core's UpdateError names the first
   * such variable, word for word as on the kernel path (one flag per variable, all read at once).
   */
  move(mode: Mode, names: readonly string[], variables: readonly tf.Variable[]): void {
    this.settle();
    const view = this.#view;
    const averagingBeta = this.#ops.averagingBeta!;
    const moved: { name: string; beta: number }[] = [];
    const finite = tf.tidy(() => {
      const nexts: tf.Tensor[] = [];
      names.forEach((name, i) => {
        const slot = this.#slots.get(name)!;
        if (slot.step === 0) return;
        const beta = averagingBeta(view.hyper(name) as never);
        const weight = mode === 'eval' ? 1 - 1 / beta : 1 - beta;
        const p = variables[i]!;
        const next = tf.add(p, tf.mul(tf.sub(slot.buffers[0]!, p), weight));
        p.assign(next);
        moved.push({ name, beta });
        nexts.push(next);
      });
      // Where a synchronous read is not possible, the moved values are not checked.
      return readsSynchronously() ? finiteFlags(nexts) : new Float32Array(nexts.length).fill(1);
    });
    for (const slot of this.#slots.values()) slot.scalars.trainMode = mode === 'train' ? 1 : 0;
    this.#training = mode === 'train';
    const bad = moved.find((_, k) => finite[k] !== 1);
    if (bad !== undefined) {
      throw new UpdateError(
        `${view.name}.${mode}: parameter '${bad.name}' became non-finite (beta ${bad.beta}): the parameters were moved and the mode is now '${mode}'`,
        bad.name,
      );
    }
  }

  /**
   * The state as a state dict; `base` gives the rule and variant names. Waits for the
   * verdicts of the steps taken (a refused step's error is thrown here when no later call
   * threw it).
   */
  async stateDict(base: () => OptimizerStateDict): Promise<OptimizerStateDict> {
    await this.settled();
    const params = Object.create(null) as { [name: string]: ParamStateRecord };
    for (const [name, slot] of this.#slots) {
      const buffers = Object.create(null) as { [key: string]: Float32Array };
      for (const [k, key] of this.#view.bufferNames(name).entries()) {
        buffers[key] = await slot.buffers[k]!.data() as Float32Array;
      }
      const scalars = Object.create(null) as { [key: string]: number };
      for (const key of this.#view.scalarNames) scalars[key] = slot.scalars[key]!;
      params[name] = { dtype: 'float32', length: slot.buffers[0]?.size ?? 0, step: slot.step, scalars, buffers };
    }
    return { ...base(), stepCount: this.#stepCount, skippedSteps: this.#skippedSteps, params };
  }

  /** The core's own checks are the kernel path's: here the adapter's checks are all. */
  check(): void {}

  async sync(): Promise<void> {
    await this.settled();
  }

  /** After our optimizer loaded a state: its dict taken as this path's. */
  loaded(base: () => OptimizerStateDict, mode: Mode | undefined): void {
    this.load(base(), shapeOf, mode);
  }

  /** Takes a (validated) state dict; `mode` is the mode it holds (Schedule-Free). */
  load(dict: OptimizerStateDict, shapeOf: (name: string, length: number) => number[], mode: Mode | undefined): void {
    this.#disposeSlots();
    for (const [name, record] of Object.entries(dict.params)) {
      const shape = shapeOf(name, record.length);
      this.#slots.set(name, {
        step: record.step,
        scalars: { ...record.scalars },
        buffers: Object.values(record.buffers).map((values) => tf.variable(tf.tensor(Float32Array.from(values), shape, 'float32'), false)),
      });
    }
    this.#stepCount = dict.stepCount;
    this.#skippedSteps = dict.skippedSteps;
    if (mode !== undefined) this.#training = mode === 'train';
  }

  #disposeSlots(): void {
    for (const slot of this.#slots.values()) tf.dispose(slot.buffers);
    this.#slots.clear();
  }

  dispose(): void {
    this.#disposeSlots();
    for (const pending of this.#pending) tf.dispose(pending.gradients);
    this.#pending.length = 0;
  }

  // ---------------------------------------------------------------------------------
  // Backends without a synchronous read (see readsSynchronously)

  /**
   * A step whose verdict is read later: the gradients' finiteness is decided on the
   * device, and every write is `where(finite, new, old)`, so a step with a non-finite
   * gradient writes nothing, as the core's refused step. The counters and scalars move
   * as if the step was applied; its verdict (each gradient's finiteness, the first
   * non-finite index and value, the results' finiteness) is read with `data()`, and
   * settle() puts the counters back for a refused step and throws its error (the core's
   * words) at the next call, before that call writes anything.
   */
  #deferredStep(entries: readonly Entry[], lrs: readonly number[]): void {
    const view = this.#view;
    const snapshot: Snapshot = { stepCount: this.#stepCount, slots: new Map() };
    for (const e of entries) {
      const slot = this.#slots.get(e.name);
      snapshot.slots.set(e.name, slot === undefined ? undefined : { step: slot.step, scalars: { ...slot.scalars } });
    }
    const maxNorm = this.#clipGradNorm;
    // Kept: a caller's tf.tidy (model.fit runs each step in one) would dispose them before they are read.
    const verdict = tf.keep(tf.tidy(() => {
      const flat = entries.map((e) => tf.reshape(e.gradient, [-1]));
      const gradFinite = tf.stack(flat.map((g) => tf.all(tf.isFinite(g))));
      const ok = tf.all(gradFinite);
      const firstBad = flat.map((g) => tf.argMax(tf.cast(tf.logicalNot(tf.isFinite(g)), 'int32')));
      const badValues = flat.map((g, i) => tf.reshape(tf.gather(g, firstBad[i]!), []));
      const grads = clippedByGlobalNorm(entries.map((e) => e.gradient), maxNorm);
      const written: tf.Tensor[] = [];
      entries.forEach((e, i) => {
        const hyper = view.hyper(e.name, this.#stepCount);
        const slot = this.#slotOf(e, hyper);
        slot.step += 1;
        const [param, ...buffers] = this.#ops.step({ hyper: hyper as never, lr: lrs[i]!, step: slot.step, scalars: slot.scalars }, e.variable, grads[i]!, slot.buffers);
        const guarded = [param!, ...buffers].map((next, k) => tf.where(ok, next, k === 0 ? e.variable : slot.buffers[k - 1]!));
        slot.buffers.forEach((variable, k) => variable.assign(guarded[k + 1]!));
        e.variable.assign(guarded[0]!);
        written.push(...guarded);
      });
      // [finite per gradient (n), first non-finite index (n), its value (n), finite per written tensor]
      const parts = [tf.cast(gradFinite, 'float32'), tf.cast(tf.stack(firstBad), 'float32'), tf.stack(badValues), finiteFlagsTensor(written)];
      return tf.concat(parts.map((t) => tf.reshape(t, [-1])));
    }));
    this.#stepCount += 1;
    const pending: Pending = { names: entries.map((e) => e.name), counts: entries.map((e) => view.bufferNames(e.name).length + 1), snapshot, gradients: entries.map((e) => tf.keep(tf.clone(e.gradient))), values: undefined, later: 0, read: undefined };
    for (const earlier of this.#pending) earlier.later += 1;
    pending.read = verdict.data().then((values) => {
      pending.values = values as Float32Array;
    }).finally(() => verdict.dispose());
    this.#pending.push(pending);
  }

  /** Waits for every pending verdict, then settles them. */
  async settled(): Promise<void> {
    await Promise.all(this.#pending.map((p) => p.read));
    this.settle();
  }

  /**
   * Takes the verdicts read so far, oldest first: a step found refused has its counters
   * put back (when no later step was taken since) and, with nonFinite 'error', its
   * error thrown; 'skip' counts it as skipped. An overflow's error is thrown as the
   * core's (the step was applied).
   */
  settle(): void {
    while (this.#pending.length > 0 && this.#pending[0]!.values !== undefined) {
      const pending = this.#pending.shift()!;
      const values = pending.values!;
      const gradients = pending.gradients;
      tf.dispose(gradients);
      const n = pending.names.length;
      const bad = pending.names.findIndex((_, i) => values[i] !== 1);
      if (bad >= 0) {
        if (pending.later === 0) this.#restore(pending.snapshot);
        if (this.#nonFinite === 'skip') {
          this.#skippedSteps += 1;
          continue;
        }
        const name = pending.names[bad]!;
        const index = values[n + bad]!;
        const later = pending.later === 0 ? '' : ` (found after ${pending.later} later step(s) were taken, which counted it as a step)`;
        throw new UpdateError(`${this.#view.name}.update: gradient '${name}' is not finite at index ${index} (${values[2 * n + bad]})${later}`, name, index);
      }
      let at = 3 * n;
      for (const [i, name] of pending.names.entries()) {
        const count = pending.counts[i]!;
        const k = values.subarray(at, at + count).findIndex((ok) => ok !== 1);
        at += count;
        if (k < 0) continue;
        const what = k === 0 ? `parameter '${name}'` : `the optimizer state '${this.#view.bufferNames(name)[k - 1]}' of parameter '${name}'`;
        throw new UpdateError(
          `${this.#view.name}.update: the step overflowed: ${what} holds a NaN or an Infinity, from finite gradients. ` +
            'This step WAS applied, to every parameter: the params and optimizer state now hold this value. ' +
            'Use a smaller lr or clip the gradients, and restore the params and state saved before this step',
          name,
        );
      }
    }
  }

  /** The counters and scalars as they were before a refused step; its new slots removed. */
  #restore(snapshot: Snapshot): void {
    this.#stepCount = snapshot.stepCount;
    for (const [name, before] of snapshot.slots) {
      const slot = this.#slots.get(name);
      if (slot === undefined) continue;
      if (before === undefined) {
        tf.dispose(slot.buffers);
        this.#slots.delete(name);
      } else {
        slot.step = before.step;
        Object.assign(slot.scalars, before.scalars);
      }
    }
  }
}

/** What a refused step puts back. */
interface Snapshot {
  readonly stepCount: number;
  /** Per parameter of the step: its step and scalars before it, undefined when it had no state. */
  readonly slots: Map<string, { readonly step: number; readonly scalars: Record<string, number> } | undefined>;
}

/** A step whose verdict is being read. */
interface Pending {
  readonly names: readonly string[];
  /** Per parameter: 1 + its state buffers (the written tensors' flags). */
  readonly counts: readonly number[];
  readonly snapshot: Snapshot;
  /** The gradients (clones; the caller may dispose its own), freed when settled. */
  readonly gradients: tf.Tensor[];
  values: Float32Array | undefined;
  /** Steps taken after this one before it was settled. */
  later: number;
  read: Promise<void> | undefined;
}
