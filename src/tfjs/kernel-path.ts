/**
 * The 'kernel' path (default on the cpu and wasm backends): the gradients are read into a
 * float32 ParamStore, our optimizer steps it with its WebAssembly kernels, and each
 * variable is assigned its new value. The store mirrors the variables; a variable whose
 * data changed since our last write (`model.setWeights`, `variable.assign`: TF.js then
 * gives it a new data id) is read again before the step, so a stale copy never wins.
 */
import * as tf from '@tensorflow/tfjs-core';
import { clipGradNorm } from '../grads.ts';
import type { OptimizerLike } from '../contract.ts';
import type { OptimizerStateDict } from '../state.ts';
import { ParamStore } from '../store.ts';
import type { ScheduleFreeOptimizer, ScheduleFreeCommonHyper, ScheduleFreeCommonOptions, ScheduleFreeState } from '../rules/schedulefree-sgd.ts';
import type { RuleView } from './rule-view.ts';
import type { Entry, Mode, Runner, TfWrappable } from './types.ts';

type AnyScheduleFree = ScheduleFreeOptimizer<ScheduleFreeCommonOptions, ScheduleFreeCommonHyper, ScheduleFreeState>;

function dataIdOf(tensor: tf.Tensor): object {
  return tensor.dataId as object;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** What the wasm backend of TF.js 4.x keeps per tensor (backend_wasm.js); checked before use. */
interface WasmBackendInternals {
  wasm?: { HEAPU8?: unknown };
  dataIdMap?: { get?: (dataId: object) => { memoryOffset?: unknown; dtype?: unknown } | undefined };
}

/**
 * A float32 tensor's data on the wasm backend as a view of the backend's heap, or
 * undefined where that cannot be seen (another backend, another layout of its internals).
 * `dataSync()` would copy it into a new array first: on the wasm backend that copy and its
 * allocation cost as much as our whole step. Read at once, before TF.js runs anything else
 * (its heap may grow, which detaches the view's buffer).
 */
function wasmHeapView(tensor: tf.Tensor): Float32Array | undefined {
  const backend = tf.backend() as unknown as WasmBackendInternals;
  const heap = backend.wasm?.HEAPU8;
  const entry = typeof backend.dataIdMap?.get === 'function' ? backend.dataIdMap.get(dataIdOf(tensor)) : undefined;
  if (!(heap instanceof Uint8Array) || entry === undefined || typeof entry.memoryOffset !== 'number' || entry.dtype !== 'float32') return undefined;
  if (entry.memoryOffset + tensor.size * 4 > heap.byteLength) return undefined;
  return new Float32Array(heap.buffer, heap.byteOffset + entry.memoryOffset, tensor.size);
}

/** A float32 tensor's values, without a copy where the backend allows. */
function valuesOf(tensor: tf.Tensor, onWasm: boolean): Float32Array {
  return (onWasm ? wasmHeapView(tensor) : undefined) ?? (tensor.dataSync() as Float32Array);
}

/** variable <- values. */
function assign(variable: tf.Variable, values: Float32Array, onWasm: boolean): void {
  // The cpu backend keeps the array it is given (so it gets a copy); the wasm backend
  // copies it into its own heap at once (tfjs-backend-wasm's `move`), so the view will do.
  const value = tf.tensor(onWasm ? values : values.slice(), variable.shape, 'float32');
  variable.assign(value);
  value.dispose(); // the variable holds the data now
}

export class KernelPath implements Runner {
  readonly path = 'kernel';
  /** What steps the store: the base optimizer, or the wrappers around it (wrappers.ts). */
  readonly #stepper: OptimizerLike;
  /** The optimizer of the rule (the innermost of the wrappers): its counters say whether a step was applied. */
  readonly #optimizer: TfWrappable;
  readonly #view: RuleView;
  readonly #clipGradNorm: number | undefined;
  #store: ParamStore | undefined;
  /** The variables' data ids as we last wrote or read them, per name. */
  readonly #mirrored = new Map<string, object>();

  constructor(stepper: OptimizerLike, optimizer: TfWrappable, view: RuleView, clip: number | undefined) {
    this.#stepper = stepper;
    this.#optimizer = optimizer;
    this.#view = view;
    this.#clipGradNorm = clip;
  }

  get stepCount(): number {
    return this.#optimizer.stepCount;
  }

  get skippedSteps(): number {
    return this.#optimizer.skippedSteps;
  }

  get mode(): Mode | undefined {
    return this.#view.scheduleFree ? this.#scheduleFree().mode : undefined;
  }

  /** The core optimizer's Schedule-Free methods (the view found the rule by its key). */
  #scheduleFree(): AnyScheduleFree {
    return this.#optimizer as unknown as AnyScheduleFree;
  }

  stateLength(name: string): number | undefined {
    return this.#view.coreStateLength(name);
  }

  stateNames(): string[] {
    return Object.keys(this.#optimizer.stateDict().params);
  }

  stateDict(): OptimizerStateDict {
    return this.#optimizer.stateDict();
  }

  /** Steps are applied as they are taken: nothing to wait for. */
  settle(): void {}

  async sync(): Promise<void> {}

  /** After the core optimizer loaded a state: every variable is read again at the next step. */
  loaded(): void {
    this.#mirrored.clear();
  }

  /**
   * The store holding these entries' variables and gradients (made or remade when the
   * set of variables changes), with the variables read where they changed and the
   * gradients copied in. Writes no variable and no optimizer state.
   */
  #stage(entries: readonly Entry[]): ParamStore {
    let store = this.#store;
    if (store === undefined || store.names.length !== entries.length || entries.some((e, i) => store!.names[i] !== e.name || !sameShape(store!.shapes[e.name]!, e.variable.shape))) {
      const shapes: { [name: string]: readonly number[] } = Object.create(null) as { [name: string]: readonly number[] };
      for (const e of entries) Object.defineProperty(shapes, e.name, { value: e.variable.shape, enumerable: true });
      store = this.#store = new ParamStore(shapes, { stateBuffers: this.#stepper.stateBuffersPerParam() });
      this.#mirrored.clear();
    }
    const onWasm = tf.getBackend() === 'wasm';
    for (const e of entries) {
      const id = dataIdOf(e.variable);
      if (this.#mirrored.get(e.name) !== id) {
        store.params[e.name]!.set(valuesOf(e.variable, onWasm));
        this.#mirrored.set(e.name, id);
      }
      store.grads[e.name]!.set(valuesOf(e.gradient, onWasm));
    }
    return store;
  }

  /**
   * The core optimizer's own checks of the step these entries would take (its overrides,
   * schedules, state and finiteness), writing no variable and no state: a TfPartition
   * runs this for every member before any member steps. Throws what the step would
   * throw; false where the step would be skipped.
   */
  check(entries: readonly Entry[]): boolean {
    const store = this.#stage(entries);
    return this.#stepper.check(store.params, store.grads);
  }

  step(entries: readonly Entry[]): void {
    const store = this.#stage(entries);
    const onWasm = tf.getBackend() === 'wasm';
    if (this.#clipGradNorm !== undefined) clipGradNorm(store.grads, this.#clipGradNorm, { nonFinite: 'return' });
    const before = this.#optimizer.stepCount;
    try {
      this.#stepper.update(store.params, store.grads);
    } finally {
      // Applied (also when it overflowed and threw, as the core says): the variables take
      // the store's values. Skipped or refused: nothing to write. A wrapper writes the
      // params only in a step of its base (Lookahead's sync follows one; a micro-batch
      // that GradientAccumulation only adds to its sums writes none).
      if (this.#optimizer.stepCount !== before) {
        for (const e of entries) {
          assign(e.variable, store.params[e.name]!, onWasm);
          this.#mirrored.set(e.name, dataIdOf(e.variable));
        }
      }
    }
  }

  /**
   * eval / train: our optimizer moves the values (in the store when it holds exactly the
   * variables with state, so its WebAssembly kernel does it as in a plain ParamStore run;
   * else in copies), and the variables are assigned them.
   */
  move(mode: Mode, names: readonly string[], variables: readonly tf.Variable[]): void {
    const ours = this.#scheduleFree();
    const onWasm = tf.getBackend() === 'wasm';
    const store = this.#store;
    const inStore = store !== undefined && store.names.length === names.length && names.every((name) => Object.hasOwn(store.params, name));
    const arrays = Object.create(null) as { [name: string]: Float32Array };
    names.forEach((name, i) => {
      const variable = variables[i]!;
      if (inStore) {
        const id = dataIdOf(variable);
        if (this.#mirrored.get(name) !== id) {
          store.params[name]!.set(valuesOf(variable, onWasm));
          this.#mirrored.set(name, id);
        }
      } else {
        arrays[name] = Float32Array.from(valuesOf(variable, onWasm));
      }
    });
    const params = inStore ? store.params : arrays;
    try {
      if (mode === 'eval') ours.eval(params);
      else ours.train(params);
    } finally {
      // Moved (the mode changed, also when a value overflowed and it threw): write them all.
      if (ours.mode === mode) {
        names.forEach((name, i) => {
          const variable = variables[i]!;
          assign(variable, params[name]!, onWasm);
          if (inStore) this.#mirrored.set(name, dataIdOf(variable));
          else this.#mirrored.delete(name); // the store's copy is stale: read it again at the next step
        });
      }
    }
  }

  dispose(): void {
    this.#store = undefined;
    this.#mirrored.clear();
  }
}
