/**
 * The adapter of one optimizer of this library as a TF.js `tf.Optimizer`: see index.ts
 * (the module's entry, `tfOptimizer`) for the two paths and what each rule adds.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UpdateError, describeValue, optionError } from '../errors.ts';
import { clipGradNorm } from '../grads.ts';
import type { AnyOptimizer } from '../optimizer.ts';
import type { CommonHyper, UpdateRule } from '../rule.ts';
import { AdaGrad, adagradRule } from '../rules/adagrad.ts';
import { Adam, adamRule } from '../rules/adam.ts';
import { AdamW, adamwRule } from '../rules/adamw.ts';
import { Momentum, momentumRule } from '../rules/momentum.ts';
import { NAdam, nadamRule } from '../rules/nadam.ts';
import { Nesterov, nesterovRule } from '../rules/nesterov.ts';
import { RMSProp, rmspropRule } from '../rules/rmsprop.ts';
import { SGD, sgdRule } from '../rules/sgd.ts';
import { RAdam, radamRule } from '../rules/radam.ts';
import { Adamax, adamaxRule } from '../rules/adamax.ts';
import { Adadelta, adadeltaRule } from '../rules/adadelta.ts';
import { Rprop, rpropRule } from '../rules/rprop.ts';
import { Lion, lionRule } from '../rules/lion.ts';
import { LAMB, lambRule } from '../rules/lamb.ts';
import { Muon, type MuonHyper, type MuonOptions } from '../rules/muon.ts';
import { ScheduleFreeOptimizer, ScheduleFreeSGD, scheduleFreeSgdRule, type ScheduleFreeCommonHyper, type ScheduleFreeCommonOptions, type ScheduleFreeState } from '../rules/schedulefree-sgd.ts';
import { ScheduleFreeAdamW, scheduleFreeAdamwRule } from '../rules/schedulefree-adamw.ts';
import { STATE_FORMAT, STATE_VERSION, type OptimizerStateDict, type ParamStateRecord } from '../state.ts';
import { ParamStore } from '../store.ts';
import { opsStep, type RuleName } from './ops.ts';

/** Which path runs the steps: see the top of this file. */
export type TfPath = 'auto' | 'kernel' | 'ops';

export interface TfOptimizerOptions {
  /** 'auto' (default): 'kernel' on the cpu and wasm backends, 'ops' on the others. */
  path?: TfPath;
  /**
   * Scale all gradients of a step together so that their global L2 norm is at most this
   * (PyTorch's `clip_grad_norm_`: scale maxNorm / (norm + 1e-6) when below 1), before the
   * step. A non-finite norm leaves the gradients as they are, for `nonFinite` to decide.
   */
  clipGradNorm?: number;
}

/** The weight that holds everything of our state that is not a per-element buffer. */
export const STATE_WEIGHT_NAME = 'nesterov/state';

/**
 * What `tfOptimizer` wraps: an optimizer of one rule (`new Nesterov()`, `new Lion()`, ...)
 * or Muon (which is not an elementwise rule: it keeps its own state and matrix kernels).
 */
export type TfWrappable = AnyOptimizer | Muon;

type AnyScheduleFree = ScheduleFreeOptimizer<ScheduleFreeCommonOptions, ScheduleFreeCommonHyper, ScheduleFreeState>;

interface RuleEntry {
  readonly name: RuleName;
  /** The elementwise rule; undefined for Muon (see MUON_OPTION_NAMES and its own state). */
  readonly rule: UpdateRule<never, CommonHyper, never> | undefined;
  readonly make: (options: Record<string, unknown>) => TfWrappable;
  /** Schedule-Free: the variables hold y while training, x in eval mode (see `eval()`). */
  readonly scheduleFree?: boolean;
}

/** Muon's options that a config holds (its `shapes` come from the variables). */
const MUON_OPTION_NAMES: readonly (keyof MuonOptions & keyof MuonHyper)[] = ['lr', 'momentum', 'nesterov', 'nsSteps', 'weightDecay', 'maximize'];

// AdamW before Adam: neither extends the other, but the order documents the intent.
const RULES: readonly (RuleEntry & { readonly is: (o: TfWrappable) => boolean })[] = [
  { name: 'SGD', rule: sgdRule as never, make: (o) => new SGD(o) as AnyOptimizer, is: (o) => o instanceof SGD },
  { name: 'Momentum', rule: momentumRule as never, make: (o) => new Momentum(o) as unknown as AnyOptimizer, is: (o) => o instanceof Momentum },
  { name: 'Nesterov', rule: nesterovRule as never, make: (o) => new Nesterov(o) as unknown as AnyOptimizer, is: (o) => o instanceof Nesterov },
  { name: 'AdaGrad', rule: adagradRule as never, make: (o) => new AdaGrad(o) as unknown as AnyOptimizer, is: (o) => o instanceof AdaGrad },
  { name: 'RMSProp', rule: rmspropRule as never, make: (o) => new RMSProp(o) as unknown as AnyOptimizer, is: (o) => o instanceof RMSProp },
  { name: 'AdamW', rule: adamwRule as never, make: (o) => new AdamW(o) as unknown as AnyOptimizer, is: (o) => o instanceof AdamW },
  { name: 'Adam', rule: adamRule as never, make: (o) => new Adam(o) as unknown as AnyOptimizer, is: (o) => o instanceof Adam },
  { name: 'NAdam', rule: nadamRule as never, make: (o) => new NAdam(o) as unknown as AnyOptimizer, is: (o) => o instanceof NAdam },
  { name: 'RAdam', rule: radamRule as never, make: (o) => new RAdam(o) as unknown as AnyOptimizer, is: (o) => o instanceof RAdam },
  { name: 'Adamax', rule: adamaxRule as never, make: (o) => new Adamax(o) as unknown as AnyOptimizer, is: (o) => o instanceof Adamax },
  { name: 'Adadelta', rule: adadeltaRule as never, make: (o) => new Adadelta(o) as unknown as AnyOptimizer, is: (o) => o instanceof Adadelta },
  { name: 'Rprop', rule: rpropRule as never, make: (o) => new Rprop(o) as unknown as AnyOptimizer, is: (o) => o instanceof Rprop },
  { name: 'Lion', rule: lionRule as never, make: (o) => new Lion(o) as unknown as AnyOptimizer, is: (o) => o instanceof Lion },
  { name: 'LAMB', rule: lambRule as never, make: (o) => new LAMB(o) as unknown as AnyOptimizer, is: (o) => o instanceof LAMB },
  { name: 'ScheduleFreeSGD', rule: scheduleFreeSgdRule as never, make: (o) => new ScheduleFreeSGD(o) as unknown as AnyOptimizer, is: (o) => o instanceof ScheduleFreeSGD, scheduleFree: true },
  { name: 'ScheduleFreeAdamW', rule: scheduleFreeAdamwRule as never, make: (o) => new ScheduleFreeAdamW(o) as unknown as AnyOptimizer, is: (o) => o instanceof ScheduleFreeAdamW, scheduleFree: true },
  { name: 'Muon', rule: undefined, make: (o) => new Muon(o), is: (o) => o instanceof Muon },
];

/**
 * Checks a call as `optimizer.applyGradients(variableGradients)` would, writing nothing;
 * throws what it would throw. For TfPartition, which checks every member's part of a call
 * before any member steps. (Set by TfOptimizer's static block: it reads private state.)
 */
export let checkGradients: (optimizer: TfOptimizer, variableGradients: tf.NamedTensorMap | NamedTensor[]) => void;

/** Whether `optimizer` is one that TfOptimizer wraps (an optimizer of one of our rules, or Muon). */
export function isWrappable(optimizer: unknown): optimizer is TfWrappable {
  return RULES.some((candidate) => candidate.is(optimizer as TfWrappable));
}

/** TF.js's `{ name, tensor }` pair (tfjs-core does not export its type). */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

/** One gradient of a call, checked against its variable. */
interface Entry {
  readonly name: string;
  readonly variable: tf.Variable;
  readonly gradient: tf.Tensor;
}

/** State of one parameter on the 'ops' path. */
interface OpsSlot {
  step: number;
  readonly scalars: Record<string, number>;
  /** In the order of the rule's bufferNames. */
  buffers: tf.Variable[];
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function dataIdOf(tensor: tf.Tensor): object {
  return tensor.dataId as object;
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

/**
 * A `tf.Optimizer` that runs one optimizer of this library. Make it with `tfOptimizer`.
 *
 * `getWeights()` returns our full state in TF.js's weight format: `iter`, then one
 * float32 tensor per state buffer named `<variable>/<buffer>` (e.g. `dense/kernel/velocity`),
 * then `nesterov/state`, a string tensor with the JSON of the rest (rule, variant, step
 * counts, per-parameter steps and scalars). The tensors belong to this optimizer: they
 * stay valid until the next `getWeights()` or `dispose()`.
 */
export class TfOptimizer<O extends TfWrappable = TfWrappable> extends tf.Optimizer {
  /** The name under which the class is registered with `tf.serialization.registerClass`. */
  static get className(): string {
    return 'NesterovOptimizer';
  }

  /** Our optimizer: its options, state and counters (`stepCount`, `skippedSteps`). */
  readonly optimizer: O;
  readonly options: Readonly<Required<Pick<TfOptimizerOptions, 'path'>> & Pick<TfOptimizerOptions, 'clipGradNorm'>>;
  readonly #entry: RuleEntry;
  #path: 'kernel' | 'ops' | undefined;
  // 'kernel' path
  #store: ParamStore | undefined;
  /** The variables' data ids as we last wrote or read them, per name. */
  readonly #mirrored = new Map<string, object>();
  // 'ops' path
  readonly #opsSlots = new Map<string, OpsSlot>();
  #opsStepCount = 0;
  #opsSkippedSteps = 0;
  /** Schedule-Free on the 'ops' path: whether the variables hold y (the core optimizer keeps it on the 'kernel' path). */
  #opsTraining = true;
  /** Set by setWeights: the next step may adopt the saved state under the call's names. */
  #adoptNames = false;
  /** Tensors handed out by getWeights, disposed at the next getWeights or dispose. */
  #exported: tf.Tensor[] = [];

  constructor(optimizer: O, options: TfOptimizerOptions = {}) {
    super();
    const owner = 'tfOptimizer';
    const entry = RULES.find((candidate) => candidate.is(optimizer));
    if (entry === undefined) throw new TypeError(`${owner}: optimizer must be an optimizer of this library (new Nesterov(), new Adam(), ...), got ${describeValue(optimizer)}`);
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
    this.optimizer = optimizer;
    this.options = Object.freeze({ path, clipGradNorm: clip });
    this.#entry = entry;
    if (path !== 'auto') this.#path = path;
  }

  /**
   * The path the steps take: fixed by the `path` option, or, with 'auto', by the backend
   * at the first step (undefined before it).
   */
  get path(): 'kernel' | 'ops' | undefined {
    return this.#path;
  }

  /** Steps skipped for a non-finite gradient (`nonFinite: 'skip'`). */
  get skippedSteps(): number {
    return this.#path === 'ops' ? this.#opsSkippedSteps : this.optimizer.skippedSteps;
  }

  /** Steps taken (skipped ones not counted: `iterations` counts every call, as TF.js does). */
  get stepCount(): number {
    return this.#path === 'ops' ? this.#opsStepCount : this.optimizer.stepCount;
  }

  /**
   * Schedule-Free optimizers: 'train' while the variables hold y (where gradients are
   * taken), 'eval' while they hold x (the average to evaluate or save); see `eval()`.
   * Undefined for every other rule.
   */
  get mode(): 'train' | 'eval' | undefined {
    if (this.#entry.scheduleFree !== true) return undefined;
    if (this.#path === 'ops') return this.#opsTraining ? 'train' : 'eval';
    return (this.optimizer as AnyScheduleFree).mode;
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

  /** Schedule-Free: moves the variables back to y (`y = lerp(x, z, 1 - beta)`) and allows steps again. */
  train(): void {
    this.#move('train');
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const entries = this.#check(variableGradients);
    if (this.#adoptNames) {
      this.#adoptNames = false;
      this.#adoptSavedNames(entries);
    }
    if (entries.length > 0) {
      if (this.#path === 'kernel') this.#kernelStep(entries);
      else this.#opsStep(entries);
    }
    this.incrementIterations();
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
    const dict = this.#stateDict();
    const saved = Object.keys(dict.params);
    if (saved.length !== entries.length || entries.some((e) => Object.hasOwn(dict.params, e.name))) return;
    if (saved.some((name, i) => dict.params[name]!.length !== entries[i]!.variable.size)) return;
    const params = Object.create(null) as { [name: string]: ParamStateRecord };
    saved.forEach((name, i) => {
      params[entries[i]!.name] = dict.params[name]!;
    });
    this.optimizer.loadStateDict({ ...dict, params });
    if (this.#path === 'ops') this.#loadOps(this.optimizer.stateDict());
  }

  static {
    checkGradients = (optimizer, variableGradients) => {
      optimizer.#check(variableGradients);
    };
  }

  /** Everything applyGradients checks before it writes: the gradients against their variables, the mode. */
  #check(variableGradients: tf.NamedTensorMap | NamedTensor[]): Entry[] {
    const entries = this.#entries(variableGradients);
    this.#resolvePath();
    if (this.mode === 'eval') {
      throw new UpdateError(
        `${TfOptimizer.className}.applyGradients: the ${this.#entry.name} optimizer is in eval mode (the variables hold the average x, not y): call train() before applyGradients`,
        '',
      );
    }
    // A schedule may return anything: checked here, so that a partition's members all
    // pass before any writes (the ops path uses the values; the core evaluates them again).
    const step = this.stepCount;
    for (const e of entries) this.#learningRate(e.name, step);
    return entries;
  }

  /** This step's lr of parameter `name`, checked. */
  #learningRate(name: string, step: number): number {
    const lr = this.#hyper(name).lr;
    const value = typeof lr === 'number' ? lr : lr(step);
    if (typeof value !== 'number' || !(value >= 0) || value === Infinity) {
      throw new UpdateError(`${TfOptimizer.className}.applyGradients: the lr schedule of parameter '${name}' returned ${describeValue(value)} at step ${step} (expected a finite number >= 0)`, name);
    }
    return value;
  }

  /** With path 'auto', picks the path of the current backend, once. */
  #resolvePath(): void {
    if (this.#path !== undefined) return;
    const backend = tf.getBackend();
    this.#path = backend === 'cpu' || backend === 'wasm' ? 'kernel' : 'ops';
  }

  /** The call's gradients, each checked against its variable; throws before anything is written. */
  #entries(variableGradients: tf.NamedTensorMap | NamedTensor[]): Entry[] {
    const owner = `${TfOptimizer.className}.applyGradients`;
    if (variableGradients === null || typeof variableGradients !== 'object') {
      throw new TypeError(`${owner}: expected a map of gradients by variable name or an array of { name, tensor }, got ${describeValue(variableGradients)}`);
    }
    const pairs: [string, tf.Tensor | null | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map((item, i) => {
          if (item === null || typeof item !== 'object' || typeof item.name !== 'string') {
            throw new TypeError(`${owner}: item ${i} must be { name, tensor }, got ${describeValue(item)}`);
          }
          return [item.name, item.tensor];
        })
      : Object.entries(variableGradients);
    const registered = tf.engine().registeredVariables;
    const seen = new Set<string>();
    const entries: Entry[] = [];
    for (const [name, gradient] of pairs) {
      if (seen.has(name)) throw new UpdateError(`${owner}: two gradients for variable '${name}'`, name);
      seen.add(name);
      if (gradient === null || gradient === undefined) continue; // TF.js skips a missing gradient too
      const variable = Object.hasOwn(registered, name) ? registered[name] : undefined;
      if (variable === undefined) throw new UpdateError(`${owner}: gradient '${name}' has no variable of that name (tf.engine().registeredVariables)`, name);
      if (!(gradient instanceof tf.Tensor)) throw new UpdateError(`${owner}: gradient '${name}' must be a tf.Tensor, got ${describeValue(gradient)}`, name);
      if (gradient.isDisposed) throw new UpdateError(`${owner}: gradient '${name}' is disposed`, name);
      if (variable.dtype !== 'float32' || gradient.dtype !== 'float32') {
        throw new UpdateError(`${owner}: variable '${name}' and its gradient must be float32, got ${variable.dtype} and ${gradient.dtype}`, name);
      }
      if (!sameShape(variable.shape, gradient.shape)) {
        throw new UpdateError(`${owner}: gradient '${name}' has shape [${gradient.shape.join(', ')}], its variable has shape [${variable.shape.join(', ')}]`, name);
      }
      if (this.#entry.rule === undefined && variable.rank !== 2) {
        throw new UpdateError(
          `${owner}: variable '${name}' has shape [${variable.shape.join(', ')}]: Muon updates 2-D variables only (give '${name}' to another optimizer: tfOptimizer(partition(assign, { muon, adamw })))`,
          name,
        );
      }
      const state = this.#stateShape(name);
      if (state !== undefined && state !== variable.size) {
        throw new UpdateError(`${owner}: variable '${name}' has ${variable.size} elements, but its optimizer state was made for ${state} (did the variable change shape?)`, name);
      }
      entries.push({ name, variable, gradient });
    }
    return entries;
  }

  /** Elements of the state kept for `name`, if any. */
  #stateShape(name: string): number | undefined {
    if (this.#path === 'ops') return this.#opsSlots.get(name)?.buffers[0]?.size ?? undefined;
    const ours = this.optimizer;
    if (ours instanceof Muon) return ours.stateOf(name)?.momentumBuffer.length;
    const state = ours.stateOf(name);
    if (state === undefined) return undefined;
    const buffers = this.#entry.rule!.buffersOf(state as never, ours.hyperparameters(name) as never);
    return buffers.length > 0 ? buffers[0]!.length : undefined;
  }

  /** The resolved hyperparameters of parameter `name` (Muon has one set for all). */
  #hyper(name: string): CommonHyper | MuonHyper {
    const ours = this.optimizer;
    return ours instanceof Muon ? ours.defaults : ours.hyperparameters(name);
  }

  /** The names of the state buffers of parameter `name`, in the rule's order. */
  #bufferNames(name: string): readonly string[] {
    const rule = this.#entry.rule;
    return rule === undefined ? ['momentumBuffer'] : rule.bufferNames(this.#hyper(name) as never);
  }

  /** A fresh parameter's scalar state (NAdam's muProduct 1, Schedule-Free's lrMax -1, ...), as the rule starts it. */
  #initialScalars(hyper: CommonHyper | MuonHyper): Record<string, number> {
    const rule = this.#entry.rule;
    const scalars: Record<string, number> = {};
    if (rule === undefined) return scalars;
    const fresh = rule.init(0, 'float32', hyper as never) as unknown as Record<string, number>;
    for (const key of rule.scalarNames) scalars[key] = fresh[key]!;
    return scalars;
  }

  /** Checks that every variable with state is still there, then moves them all (see eval()). */
  #move(mode: 'eval' | 'train'): void {
    const owner = `${TfOptimizer.className}.${mode}`;
    if (this.#entry.scheduleFree !== true) {
      throw new TypeError(`${owner}: only Schedule-Free optimizers (ScheduleFreeSGD, ScheduleFreeAdamW) have a train and an eval mode; this one runs ${this.#entry.name}`);
    }
    this.#resolvePath();
    if (this.mode === mode) return;
    const names = this.#path === 'ops' ? [...this.#opsSlots.keys()] : Object.keys(this.optimizer.stateDict().params);
    const registered = tf.engine().registeredVariables;
    const variables = names.map((name) => {
      const variable = Object.hasOwn(registered, name) ? registered[name] : undefined;
      if (variable === undefined) {
        throw new UpdateError(`${owner}: variable '${name}' has optimizer state but is not registered any more (disposed?): ${mode} moves every variable the optimizer has updated`, name);
      }
      const length = this.#stateShape(name);
      if (length !== undefined && length !== variable.size) {
        throw new UpdateError(`${owner}: variable '${name}' has ${variable.size} elements, but its optimizer state was made for ${length} (did the variable change shape?)`, name);
      }
      return variable;
    });
    if (this.#path === 'ops') this.#opsMove(mode, names, variables);
    else this.#kernelMove(mode, names, variables);
  }

  // ---------------------------------------------------------------------------------
  // 'kernel' path

  #kernelStep(entries: Entry[]): void {
    let store = this.#store;
    if (store === undefined || store.names.length !== entries.length || entries.some((e, i) => store!.names[i] !== e.name || !sameShape(store!.shapes[e.name]!, e.variable.shape))) {
      const shapes: { [name: string]: readonly number[] } = Object.create(null) as { [name: string]: readonly number[] };
      for (const e of entries) Object.defineProperty(shapes, e.name, { value: e.variable.shape, enumerable: true });
      store = this.#store = new ParamStore(shapes, { stateBuffers: this.optimizer.stateBuffersPerParam() });
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
    if (this.options.clipGradNorm !== undefined) clipGradNorm(store.grads, this.options.clipGradNorm, { nonFinite: 'return' });
    const before = this.optimizer.stepCount;
    try {
      this.optimizer.update(store.params, store.grads);
    } finally {
      // Applied (also when it overflowed and threw, as the core says): the variables take
      // the store's values. Skipped or refused: nothing to write.
      if (this.optimizer.stepCount !== before) {
        for (const e of entries) {
          this.#assign(e.variable, store.params[e.name]!, onWasm);
          this.#mirrored.set(e.name, dataIdOf(e.variable));
        }
      }
    }
  }

  /** variable <- values. */
  #assign(variable: tf.Variable, values: Float32Array, onWasm: boolean): void {
    // The cpu backend keeps the array it is given (so it gets a copy); the wasm backend
    // copies it into its own heap at once (tfjs-backend-wasm's `move`), so the view will do.
    const value = tf.tensor(onWasm ? values : values.slice(), variable.shape, 'float32');
    variable.assign(value);
    value.dispose(); // the variable holds the data now
  }

  /**
   * eval / train on the 'kernel' path: our optimizer moves the values (in the store when
   * it holds exactly the variables with state, so its WebAssembly kernel does it as in a
   * plain ParamStore run; else in copies), and the variables are assigned them.
   */
  #kernelMove(mode: 'eval' | 'train', names: readonly string[], variables: readonly tf.Variable[]): void {
    const ours = this.optimizer as AnyScheduleFree;
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
          this.#assign(variable, params[name]!, onWasm);
          if (inStore) this.#mirrored.set(name, dataIdOf(variable));
          else this.#mirrored.delete(name); // the store's copy is stale: read it again at the next step
        });
      }
    }
  }

  /**
   * eval / train on the 'ops' path: p <- p + w (z - p) as TF.js ops, z the first state
   * buffer. As the core's eval / train (and the kernel path): every variable is moved and
   * the mode changes, then, if a moved value is NaN or +-Infinity, the core's UpdateError
   * names the first such variable, word for word as on the kernel path (one flag per
   * variable, all read in one dataSync).
   */
  #opsMove(mode: 'eval' | 'train', names: readonly string[], variables: readonly tf.Variable[]): void {
    const moved: { name: string; beta: number }[] = [];
    const finite = tf.tidy(() => {
      const nexts: tf.Tensor[] = [];
      names.forEach((name, i) => {
        const slot = this.#opsSlots.get(name)!;
        if (slot.step === 0) return;
        const hyper = this.#hyper(name) as ScheduleFreeCommonHyper & { momentum?: number; beta1?: number };
        const beta = (this.#entry.name === 'ScheduleFreeSGD' ? hyper.momentum : hyper.beta1)!;
        const weight = mode === 'eval' ? 1 - 1 / beta : 1 - beta;
        const p = variables[i]!;
        const next = tf.add(p, tf.mul(tf.sub(slot.buffers[0]!, p), weight));
        p.assign(next);
        moved.push({ name, beta });
        nexts.push(next);
      });
      return finiteFlags(nexts);
    });
    for (const slot of this.#opsSlots.values()) slot.scalars.trainMode = mode === 'train' ? 1 : 0;
    this.#opsTraining = mode === 'train';
    const bad = moved.find((_, k) => finite[k] === 0);
    if (bad !== undefined) {
      throw new UpdateError(
        `${this.#entry.name}.${mode}: parameter '${bad.name}' became non-finite (beta ${bad.beta}): the parameters were moved and the mode is now '${mode}'`,
        bad.name,
      );
    }
  }

  // ---------------------------------------------------------------------------------
  // 'ops' path

  #opsStep(entries: Entry[]): void {
    const ours = this.optimizer;
    // Checked by #check already; nothing is written yet.
    const lrs = entries.map((e) => this.#learningRate(e.name, this.#opsStepCount));
    if (ours.nonFinite !== 'ignore') {
      const finite = finiteFlags(entries.map((e) => e.gradient));
      const bad = finite.findIndex((ok) => ok === 0);
      if (bad >= 0) {
        if (ours.nonFinite === 'skip') {
          this.#opsSkippedSteps += 1;
          return;
        }
        const e = entries[bad]!;
        const values = e.gradient.dataSync();
        const index = values.findIndex((x) => !Number.isFinite(x));
        throw new UpdateError(`${this.#entry.name}.update: gradient '${e.name}' is not finite at index ${index} (${values[index]})`, e.name, index);
      }
    }
    const watch = ours.nonFinite !== 'ignore';
    const maxNorm = this.options.clipGradNorm;
    const [flags, ...grads] = tf.tidy(() => {
      let grads = entries.map((e) => e.gradient);
      if (maxNorm !== undefined) {
        const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
        const scale = tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6)));
        grads = grads.map((g) => tf.mul(g, scale));
      }
      const written: tf.Tensor[] = [];
      entries.forEach((e, i) => {
        const hyper = this.#hyper(e.name);
        let slot = this.#opsSlots.get(e.name);
        if (slot === undefined) {
          const names = this.#bufferNames(e.name);
          const fill = this.#entry.name === 'AdaGrad' ? (hyper as unknown as { initialAccumulatorValue: number }).initialAccumulatorValue : 0;
          slot = {
            step: 0,
            scalars: this.#initialScalars(hyper),
            buffers: names.map(() => tf.variable(tf.fill(e.variable.shape, fill, 'float32'), false)),
          };
          this.#opsSlots.set(e.name, slot);
        }
        slot.step += 1;
        const [param, ...buffers] = opsStep({ rule: this.#entry.name, hyper, lr: lrs[i]!, step: slot.step, scalars: slot.scalars }, e.variable, grads[i]!, slot.buffers);
        slot.buffers.forEach((variable, k) => variable.assign(buffers[k]!));
        e.variable.assign(param!);
        if (watch) written.push(param!, ...buffers);
      });
      // Whether each parameter and its state stayed finite (one flag per tensor), read once
      // below; the gradients are kept only to name the one an overflow came from.
      return [finiteFlagsTensor(written), ...(watch ? grads : [])];
    });
    this.#opsStepCount += 1;
    if (!watch) return;
    try {
      const finite = readFlags(flags!);
      if (finite.every((ok) => ok === 1)) return;
      this.#throwOpsOverflow(entries, grads);
    } finally {
      tf.dispose(flags!);
      if (maxNorm !== undefined) tf.dispose(grads);
    }
  }

  /**
   * The core's error for a step that was applied but wrote a NaN or an Infinity, naming
   * the first parameter (in the call's order) and the first index at which the parameter
   * or one of its state buffers is not finite (the parameter wins a tie, then the buffers
   * in the rule's order), as the core's update does.
   */
  #throwOpsOverflow(entries: readonly Entry[], grads: readonly tf.Tensor[]): never {
    const ours = this.optimizer;
    for (const [i, e] of entries.entries()) {
      const slot = this.#opsSlots.get(e.name)!;
      const arrays = [e.variable, ...slot.buffers].map((t) => t.dataSync() as Float32Array);
      const names = [null, ...this.#bufferNames(e.name)];
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
      if (this.#entry.rule === undefined) {
        throw new UpdateError(
          `Muon.update: the step overflowed: parameter '${e.name}' or its momentumBuffer holds a NaN or an Infinity, from finite gradients. ` +
            'This step WAS applied, to every parameter. Use a smaller lr, and restore the params and state saved before this step',
          e.name,
        );
      }
      const buffer = names[which];
      const what = buffer === null ? `parameter '${e.name}'` : `the optimizer state '${buffer}' of parameter '${e.name}'`;
      const skip = ours.nonFinite === 'skip' ? " (nonFinite: 'skip' skips a step whose gradients are not finite; these were, and the step cannot be undone)" : '';
      throw new UpdateError(
        `${this.#entry.rule.name}.update: the step overflowed: ${what} became ${arrays[which]![index]} at index ${index}, from a finite gradient (${grads[i]!.dataSync()[index]}). ` +
          `This step WAS applied, to every parameter: the params and optimizer state now hold this value${skip}. ` +
          'Use a smaller lr or clip the gradients, and restore the params and state saved before this step',
        e.name,
        index,
      );
    }
    throw new UpdateError(`${this.#entry.name}.update: the step overflowed (a NaN or an Infinity was written). This step WAS applied, to every parameter`, '');
  }

  // ---------------------------------------------------------------------------------
  // State in TF.js's weight format

  /** Our state as a state dict, from whichever path holds it. */
  #stateDict(): OptimizerStateDict {
    if (this.#path !== 'ops') return this.optimizer.stateDict();
    const dict = this.optimizer.stateDict(); // for the rule and variant names
    const params = Object.create(null) as { [name: string]: ParamStateRecord };
    for (const [name, slot] of this.#opsSlots) {
      const buffers = Object.create(null) as { [key: string]: Float32Array };
      this.#bufferNames(name).forEach((key, k) => {
        buffers[key] = slot.buffers[k]!.dataSync() as Float32Array;
      });
      const scalars = Object.create(null) as { [key: string]: number };
      for (const key of this.#entry.rule?.scalarNames ?? []) scalars[key] = slot.scalars[key]!;
      params[name] = { dtype: 'float32', length: slot.buffers[0]?.size ?? 0, step: slot.step, scalars, buffers };
    }
    return { ...dict, stepCount: this.#opsStepCount, skippedSteps: this.#opsSkippedSteps, params };
  }

  override async getWeights(): Promise<NamedTensor[]> {
    tf.dispose(this.#exported);
    this.#exported = [];
    const dict = this.#stateDict();
    const weights: NamedTensor[] = [{ name: 'iter', tensor: tf.scalar(this.iterations, 'int32') }];
    const meta: { [key: string]: unknown } = {
      format: dict.format,
      version: dict.version,
      optimizer: dict.optimizer,
      variant: dict.variant,
      stepCount: dict.stepCount,
      skippedSteps: dict.skippedSteps,
      params: Object.entries(dict.params).map(([name, record]) => ({ name, length: record.length, step: record.step, scalars: record.scalars, buffers: Object.keys(record.buffers) })),
    };
    for (const [name, record] of Object.entries(dict.params)) {
      const shape = this.#shapeOf(name, record.length);
      for (const [key, values] of Object.entries(record.buffers)) {
        weights.push({ name: `${name}/${key}`, tensor: tf.tensor(Float32Array.from(values), shape, 'float32') });
      }
    }
    weights.push({ name: STATE_WEIGHT_NAME, tensor: tf.scalar(JSON.stringify(meta), 'string') });
    this.#exported = weights.map((w) => w.tensor);
    return weights;
  }

  #shapeOf(name: string, length: number): number[] {
    const variable = tf.engine().registeredVariables[name];
    return variable !== undefined && variable.size === length ? variable.shape.slice() : [length];
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const owner = `${TfOptimizer.className}.setWeights`;
    const { byName, iter, metaTensor } = weightsByName(owner, weightValues, STATE_WEIGHT_NAME, TfOptimizer.className);
    // Everything is read and checked first; the state changes only once all of it is valid.
    const iterations = await readIter(owner, iter);
    const meta = await readMeta(owner, metaTensor, STATE_WEIGHT_NAME) as { [key: string]: unknown };
    if (!Array.isArray(meta.params)) throw new TypeError(`${owner}: '${STATE_WEIGHT_NAME}' has no params list, got ${describeValue(meta.params)}`);
    const params = Object.create(null) as { [name: string]: unknown };
    for (const [i, value] of (meta.params as unknown[]).entries()) {
      const record = value as { name?: unknown; length?: unknown; step?: unknown; scalars?: unknown; buffers?: unknown } | null;
      if (record === null || typeof record !== 'object' || typeof record.name !== 'string' || !Array.isArray(record.buffers) || record.buffers.some((key) => typeof key !== 'string')) {
        throw new TypeError(`${owner}: '${STATE_WEIGHT_NAME}' params[${i}] must be { name, length, step, scalars, buffers: [names] }, got ${describeValue(value)}`);
      }
      if (Object.hasOwn(params, record.name)) throw new TypeError(`${owner}: '${STATE_WEIGHT_NAME}' lists parameter '${record.name}' twice`);
      const buffers = Object.create(null) as { [key: string]: Float32Array };
      for (const key of record.buffers as string[]) {
        const name = `${record.name}/${key}`;
        const tensor = byName.get(name);
        if (tensor === undefined) throw new TypeError(`${owner}: the weights lack '${name}'`);
        buffers[key] = await readBuffer(owner, name, tensor);
      }
      params[record.name] = { dtype: 'float32', length: record.length, step: record.step, scalars: record.scalars, buffers };
    }
    const dict = { format: meta.format ?? STATE_FORMAT, version: meta.version ?? STATE_VERSION, optimizer: meta.optimizer, variant: meta.variant, stepCount: meta.stepCount, skippedSteps: meta.skippedSteps, params };
    // Validates everything (rule, variant, buffers, counts) and throws before changing anything.
    this.optimizer.loadStateDict(dict);
    this.#resolvePath();
    if (this.#path === 'ops') this.#loadOps(this.optimizer.stateDict());
    this.#mirrored.clear();
    this.#adoptNames = true;
    this.iterations_ = iterations;
  }

  #loadOps(dict: OptimizerStateDict): void {
    this.#disposeOps();
    for (const [name, record] of Object.entries(dict.params)) {
      const shape = this.#shapeOf(name, record.length);
      this.#opsSlots.set(name, {
        step: record.step,
        scalars: { ...record.scalars },
        buffers: Object.values(record.buffers).map((values) => tf.variable(tf.tensor(Float32Array.from(values), shape, 'float32'), false)),
      });
    }
    this.#opsStepCount = dict.stepCount;
    this.#opsSkippedSteps = dict.skippedSteps;
    // Schedule-Free: the mode our optimizer took from the saved state (trainMode).
    if (this.#entry.scheduleFree === true) this.#opsTraining = (this.optimizer as AnyScheduleFree).mode === 'train';
  }

  #disposeOps(): void {
    for (const slot of this.#opsSlots.values()) tf.dispose(slot.buffers);
    this.#opsSlots.clear();
  }

  /**
   * The rule and its options (numbers, booleans, strings): enough for `fromConfig` to
   * make the same optimizer, except a schedule (`lr: null`, `lrSchedule: true`) and
   * `overrides`, which are functions or patterns and are not saved.
   */
  override getConfig(): tf.serialization.ConfigDict {
    const options: tf.serialization.ConfigDict = {};
    const defaults = this.optimizer.defaults as unknown as Record<string, unknown>;
    for (const key of this.#entry.rule?.optionNames ?? MUON_OPTION_NAMES) {
      const value = defaults[key];
      if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') options[key] = value;
    }
    options.nonFinite = this.optimizer.nonFinite;
    const config: tf.serialization.ConfigDict = {
      optimizer: this.#entry.name,
      options,
      lrSchedule: typeof this.optimizer.defaults.lr === 'function',
      path: this.options.path,
    };
    if (this.options.clipGradNorm !== undefined) config.clipGradNorm = this.options.clipGradNorm;
    return config;
  }

  static override fromConfig<T extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
    const owner = `${TfOptimizer.className}.fromConfig`;
    const { optimizer, options } = optimizerFromConfig(owner, config);
    return new (cls as unknown as new (o: TfWrappable, options: TfOptimizerOptions) => T)(optimizer, options);
  }

  /** Frees every tensor this optimizer made (state variables, exported weights). */
  override dispose(): void {
    this.#disposeOps();
    tf.dispose(this.#exported);
    this.#exported = [];
    this.#store = undefined;
    this.#mirrored.clear();
  }
}

tf.serialization.registerClass(TfOptimizer);

/**
 * One flag per tensor, 1 where every value is finite (no NaN, no +-Infinity), all read
 * at once: the finiteness checks of TfOptimizer and TfPartition.
 */
export function finiteFlags(tensors: readonly tf.Tensor[]): Float32Array {
  if (tensors.length === 0) return new Float32Array(0);
  const flags = finiteFlagsTensor(tensors);
  try {
    return readFlags(flags);
  } finally {
    flags.dispose();
  }
}

/** The flags of finiteFlags as a float32 tensor (a computed bool tensor does not read back right on every backend). */
export function finiteFlagsTensor(tensors: readonly tf.Tensor[]): tf.Tensor {
  return tf.tidy(() => (tensors.length === 0 ? tf.zeros([0]) : tf.cast(tf.stack(tensors.map((t) => tf.all(tf.isFinite(t)))), 'float32')));
}

/** The values of a flags tensor. */
export function readFlags(flags: tf.Tensor): Float32Array {
  return flags.dataSync() as Float32Array;
}

/**
 * The weights setWeights was given, by name, with 'iter' and the JSON metadata tensor
 * `metaName` (a string tensor) that every saved set carries; a clear TypeError otherwise.
 * Shared by TfOptimizer and TfPartition.
 */
export function weightsByName(
  owner: string, weightValues: unknown, metaName: string, className: string,
): { byName: Map<string, tf.Tensor>; iter: tf.Tensor; metaTensor: tf.Tensor } {
  if (!Array.isArray(weightValues)) throw new TypeError(`${owner}: expected an array of { name, tensor }, got ${describeValue(weightValues)}`);
  const byName = new Map<string, tf.Tensor>();
  for (const w of weightValues as unknown[]) {
    const weight = w as { name?: unknown; tensor?: unknown } | null;
    if (weight === null || typeof weight !== 'object' || typeof weight.name !== 'string' || !(weight.tensor instanceof tf.Tensor)) {
      throw new TypeError(`${owner}: every weight must be { name, tensor }, got ${describeValue(w)}`);
    }
    if (weight.tensor.isDisposed) throw new TypeError(`${owner}: weight '${weight.name}' is disposed`);
    byName.set(weight.name, weight.tensor);
  }
  const iter = byName.get('iter');
  const metaTensor = byName.get(metaName);
  if (iter === undefined || metaTensor === undefined || metaTensor.dtype !== 'string') {
    throw new TypeError(`${owner}: the weights lack 'iter' or '${metaName}' (they were not saved by a ${className})`);
  }
  return { byName, iter, metaTensor };
}

/** The value of the weight 'iter' (TF.js's count of applyGradients calls): one integer >= 0. */
export async function readIter(owner: string, iter: tf.Tensor): Promise<number> {
  if (iter.dtype !== 'int32' && iter.dtype !== 'float32') {
    const shown = iter.dtype === 'string' && iter.size === 1 ? ` (${describeValue((await iter.data())[0])})` : '';
    throw new TypeError(`${owner}: weight 'iter' must be an int32 or float32 scalar, got a ${iter.dtype} tensor${shown}`);
  }
  if (iter.size !== 1) throw new TypeError(`${owner}: weight 'iter' must hold one value, got shape [${iter.shape.join(', ')}]`);
  const value = (await iter.data())[0]!;
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`${owner}: weight 'iter' must be an integer >= 0, got ${describeValue(value)}`);
  return value;
}

/** The JSON object in the string weight `name`. */
export async function readMeta(owner: string, tensor: tf.Tensor, name: string): Promise<object> {
  if (tensor.size !== 1) throw new TypeError(`${owner}: weight '${name}' must hold one string, got shape [${tensor.shape.join(', ')}]`);
  let meta: unknown;
  try {
    meta = JSON.parse(String((await tensor.data())[0]));
  } catch (error) {
    throw new TypeError(`${owner}: '${name}' is not JSON: ${(error as Error).message}`);
  }
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw new TypeError(`${owner}: '${name}' must hold a JSON object, got ${describeValue(meta)}`);
  return meta;
}

/** A state buffer's values: the weight must be float32 (getWeights saves float32; another dtype is not ours). */
async function readBuffer(owner: string, name: string, tensor: tf.Tensor): Promise<Float32Array> {
  if (tensor.dtype !== 'float32') throw new TypeError(`${owner}: weight '${name}' must be float32, got ${tensor.dtype}`);
  return Float32Array.from(await tensor.data() as Float32Array);
}

/**
 * Our optimizer and the adapter's options from a config of `getConfig` (TfOptimizer's, or
 * a partition member's): every field checked, naming it and its value.
 */
export function optimizerFromConfig(owner: string, config: unknown): { optimizer: TfWrappable; options: TfOptimizerOptions } {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new TypeError(`${owner}: config must be an object, got ${describeValue(config)}`);
  const c = config as { [key: string]: unknown };
  const entry = RULES.find((candidate) => candidate.name === c.optimizer);
  if (entry === undefined) throw optionError(owner, 'optimizer', c.optimizer, RULES.map((r) => `'${r.name}'`).join(', '));
  if (c.lrSchedule === true) throw new RangeError(`${owner}: the optimizer used an lr schedule, which a config cannot hold: make it again with tfOptimizer(new ${entry.name}({ lr: schedule }))`);
  const given = c.options ?? {};
  if (given === null || typeof given !== 'object' || Array.isArray(given)) throw optionError(owner, 'options', given, 'an object of the optimizer\'s options');
  const options = adapterOptionsFromConfig(owner, c);
  return { optimizer: entry.make({ ...(given as Record<string, unknown>) }), options };
}

/** The adapter's own options in a config (`path`, `clipGradNorm`), checked. */
export function adapterOptionsFromConfig(owner: string, config: { readonly [key: string]: unknown }): TfOptimizerOptions {
  const path = config.path ?? 'auto';
  if (path !== 'auto' && path !== 'kernel' && path !== 'ops') throw optionError(owner, 'path', path, "'auto', 'kernel' or 'ops'");
  const clip = config.clipGradNorm ?? undefined;
  if (clip !== undefined && (typeof clip !== 'number' || !(clip >= 0) || clip === Infinity)) throw optionError(owner, 'clipGradNorm', clip, 'a finite number >= 0');
  const options: TfOptimizerOptions = { path };
  if (clip !== undefined) options.clipGradNorm = clip;
  return options;
}
