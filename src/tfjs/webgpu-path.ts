/**
 * The 'webgpu' path (default on TF.js's webgpu backend for a rule with a GPU kernel): the
 * variables and gradients are copied GPU to GPU (`copyBufferToBuffer`, nothing read back)
 * into a GPUParamStore on the backend's own device, a GPUOptimizer steps it with the
 * rule's fused WGSL kernel (src/webgpu), and each variable is assigned a new TF.js tensor
 * whose buffer is copied from the store. The state lives in the store's GPUBuffers.
 *
 * As the kernel path, the store mirrors the variables: one whose data id changed since
 * our last write (`model.setWeights`, `variable.assign`) is copied in again.
 *
 * The non-finite contract is the GPU store's: with nonFinite 'error' a step with a
 * non-finite gradient writes nothing, decided on the device, and its error is raised at
 * the next applyGradients once the device has reported it, else at the next getWeights
 * or `await optimizer.sync()`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AnyOptimizer } from '../optimizer.ts';
import type { OptimizerStateDict } from '../state.ts';
import { GPUOptimizer } from '../webgpu/optimizer.ts';
import { GPUParamStore } from '../webgpu/store.ts';
import type { RuleView } from './rule-view.ts';
import type { Entry, Mode, Runner } from './types.ts';

/** What tfjs-backend-webgpu 4.x keeps per tensor and how it flushes its commands; checked before use. */
interface WebGpuBackendInternals {
  device?: GPUDevice;
  tensorMap?: { get(dataId: object): { resource?: unknown } | undefined };
  uploadToGPU?(dataId: object): void;
  makeTensorInfo?(shape: number[], dtype: 'float32'): tf.TensorInfo;
  ensureCommandEncoderReady?(): void;
  endComputePassEncoder?(): void;
  submitQueue?(): void;
}

function webgpuBackend(): Required<WebGpuBackendInternals> {
  const backend = tf.backend() as unknown as WebGpuBackendInternals;
  for (const key of ['device', 'tensorMap', 'uploadToGPU', 'makeTensorInfo', 'ensureCommandEncoderReady', 'endComputePassEncoder', 'submitQueue'] as const) {
    if (backend[key] === undefined) throw new Error(`tfOptimizer: the webgpu backend has no '${key}' (a tfjs-backend-webgpu other than 4.x?): use { path: 'ops' }`);
  }
  return backend as Required<WebGpuBackendInternals>;
}

/** The GPUBuffer holding a tensor's data, uploaded first if it is still on the CPU. */
function bufferOf(backend: Required<WebGpuBackendInternals>, tensor: tf.Tensor | tf.TensorInfo): GPUBuffer {
  backend.uploadToGPU(tensor.dataId as object);
  const resource = backend.tensorMap.get(tensor.dataId as object)?.resource;
  if (!(resource instanceof GPUBuffer)) throw new Error('tfOptimizer: a tensor of the webgpu backend is not held in a GPUBuffer (a texture?): use { path: \'ops\' }');
  return resource;
}

/**
 * All gradients scaled together so that their global L2 norm is at most `maxNorm`
 * (PyTorch's clip_grad_norm_: maxNorm / (norm + 1e-6) where that is below 1), as TF.js
 * ops; a non-finite norm leaves them as they are, for the device's scan to refuse or
 * pass (as the core's clipGradNorm with nonFinite 'return'). New tensors.
 */
function clippedByGlobalNorm(grads: readonly tf.Tensor[], maxNorm: number): tf.Tensor[] {
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
    const scale = tf.where(tf.isFinite(norm), tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6))), tf.scalar(1));
    return grads.map((g) => tf.mul(g, scale));
  });
}

/**
 * Frees a GPU optimizer and its store once the device's verdict on its last steps is read
 * (a read in flight must not lose its buffer); a refusal found then is of no account
 * here (the optimizer is gone, or its successor carries the refusal).
 */
function retire(gpu: GPUOptimizer, store: GPUParamStore): void {
  void gpu.sync().catch(() => undefined).finally(() => {
    gpu.destroy();
    store.destroy();
  });
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export class WebGpuPath implements Runner {
  readonly path = 'webgpu';
  readonly #optimizer: AnyOptimizer;
  readonly #view: RuleView;
  readonly #clipGradNorm: number | undefined;
  #store: GPUParamStore | undefined;
  #gpu: GPUOptimizer | undefined;
  /** Set when our optimizer loaded a state: the GPU takes it before its next use. */
  #pendingLoad = false;
  /** The variables' data ids as we last wrote or read them, per name. */
  readonly #mirrored = new Map<string, object>();
  /** Parameters stepped since the state began (the ones with state on the GPU). */
  readonly #stepped = new Set<string>();

  constructor(optimizer: AnyOptimizer, view: RuleView, clip: number | undefined) {
    this.#optimizer = optimizer;
    this.#view = view;
    this.#clipGradNorm = clip;
  }

  get stepCount(): number {
    return this.#gpu === undefined || this.#pendingLoad ? this.#optimizer.stepCount : this.#gpu.stepCount;
  }

  get skippedSteps(): number {
    return this.#gpu === undefined || this.#pendingLoad ? this.#optimizer.skippedSteps : this.#gpu.skippedSteps;
  }

  get mode(): Mode | undefined {
    if (!this.#view.scheduleFree) return undefined;
    if (this.#gpu === undefined || this.#pendingLoad) return (this.#optimizer as unknown as { readonly mode: Mode }).mode;
    return this.#gpu.mode;
  }

  stateLength(name: string): number | undefined {
    if (this.#gpu === undefined || this.#pendingLoad) return this.#view.coreStateLength(name);
    return this.#stepped.has(name) ? this.#store!.lengths[name] : undefined;
  }

  stateNames(): string[] {
    if (this.#gpu === undefined || this.#pendingLoad) return Object.keys(this.#optimizer.stateDict().params);
    return [...this.#stepped];
  }

  /** Nothing to settle: a refusal the device reported is raised by the next update. */
  settle(): void {}

  /** The adapter checked the gradients and the learning rates; the GPU optimizer checks the rest as it steps. */
  check(): void {}

  step(entries: readonly Entry[]): void {
    const gpu = this.#ready(entries);
    const store = this.#store!;
    const backend = webgpuBackend();
    const clip = this.#clipGradNorm;
    const gradients = clip === undefined ? entries.map((e) => e.gradient) : clippedByGlobalNorm(entries.map((e) => e.gradient), clip);
    try {
      this.#stepStaged(gpu, store, backend, entries, gradients);
    } finally {
      // Our copies of them are submitted: TF.js may reuse their buffers for what it runs next.
      if (clip !== undefined) tf.dispose(gradients);
    }
  }

  #stepStaged(gpu: GPUOptimizer, store: GPUParamStore, backend: Required<WebGpuBackendInternals>, entries: readonly Entry[], gradients: readonly tf.Tensor[]): void {
    const grads = gradients.map((g) => bufferOf(backend, g));
    const variables = entries.map((e) => (this.#mirrored.get(e.name) === e.variable.dataId ? undefined : bufferOf(backend, e.variable)));
    // TF.js's commands (the gradients, an upload) are submitted before our copies read them.
    this.#flush(backend);
    const encoder = backend.device.createCommandEncoder({ label: 'nesterov tfjs in' });
    entries.forEach((e, i) => {
      const bytes = e.variable.size * 4;
      if (bytes === 0) return;
      const offset = store.byteOffset(e.name);
      if (variables[i] !== undefined) encoder.copyBufferToBuffer(variables[i]!, 0, store.params, offset, bytes);
      encoder.copyBufferToBuffer(grads[i]!, 0, store.grads, offset, bytes);
    });
    backend.device.queue.submit([encoder.finish()]);
    entries.forEach((e, i) => {
      if (variables[i] !== undefined) this.#mirrored.set(e.name, e.variable.dataId);
    });
    gpu.update(entries.map((e) => e.name)); // throws before submitting anything when it refuses the call
    for (const e of entries) this.#stepped.add(e.name);
    this.#writeBack(backend, entries.map((e) => e.name), entries.map((e) => e.variable));
  }

  /** eval / train: the GPU optimizer moves the store's params; every variable with state is assigned its new value. */
  move(mode: Mode, names: readonly string[], variables: readonly tf.Variable[]): void {
    const gpu = this.#ready(names.map((name, i) => ({ name, variable: variables[i]! })));
    const store = this.#store!;
    const backend = webgpuBackend();
    const stale = names.map((name, i) => (this.#mirrored.get(name) === variables[i]!.dataId ? undefined : bufferOf(backend, variables[i]!)));
    this.#flush(backend);
    const encoder = backend.device.createCommandEncoder({ label: 'nesterov tfjs in' });
    names.forEach((name, i) => {
      if (stale[i] !== undefined && store.lengths[name]! > 0) encoder.copyBufferToBuffer(stale[i]!, 0, store.params, store.byteOffset(name), store.lengths[name]! * 4);
    });
    backend.device.queue.submit([encoder.finish()]);
    names.forEach((name, i) => {
      if (stale[i] !== undefined) this.#mirrored.set(name, variables[i]!.dataId);
    });
    if (mode === 'eval') gpu.eval();
    else gpu.train();
    this.#writeBack(backend, names, variables);
  }

  /** The state in the CPU's format: read back from the GPU, after the device's verdict on every step (a refusal is raised here). */
  async stateDict(): Promise<OptimizerStateDict> {
    if (this.#gpu === undefined || this.#pendingLoad) return this.#optimizer.stateDict();
    return this.#gpu.stateDict();
  }

  /** Waits for the device's verdict on every step submitted: a refused step's error is raised here. */
  async sync(): Promise<void> {
    if (this.#gpu !== undefined && !this.#pendingLoad) await this.#gpu.sync();
  }

  /** After our optimizer loaded a state: the GPU takes it at its next use; every variable is copied in again. */
  loaded(): void {
    this.#pendingLoad = true;
    this.#mirrored.clear();
  }

  dispose(): void {
    if (this.#gpu !== undefined) retire(this.#gpu, this.#store!);
    this.#gpu = undefined;
    this.#store = undefined;
    this.#mirrored.clear();
    this.#stepped.clear();
  }

  /**
   * The store and the GPU optimizer for these variables: made at the first use (with the
   * state our optimizer holds, loaded or empty); a state loaded since is taken now. A call
   * with a variable the store does not hold (or of another shape) makes a new store, of
   * the old variables and the call's, and the state moves to it GPU to GPU.
   */
  #ready(entries: readonly { readonly name: string; readonly variable: tf.Variable }[]): GPUOptimizer {
    const store = this.#store;
    const misfit = store === undefined || entries.some((e) => !Object.hasOwn(store.lengths, e.name) || !sameShape(store.shapes[e.name]!, e.variable.shape));
    if (misfit) {
      const shapes = Object.create(null) as { [name: string]: readonly number[] };
      for (const name of store?.names ?? []) Object.defineProperty(shapes, name, { value: store!.shapes[name], enumerable: true, configurable: true });
      for (const e of entries) Object.defineProperty(shapes, e.name, { value: e.variable.shape, enumerable: true, configurable: true });
      const fresh = new GPUParamStore(webgpuBackend().device, shapes);
      const old = this.#gpu;
      this.#gpu = old === undefined || this.#pendingLoad ? new GPUOptimizer(this.#optimizer, fresh) : old.moveTo(fresh);
      if (old !== undefined) retire(old, store!);
      this.#store = fresh;
      this.#pendingLoad ||= old === undefined;
      this.#mirrored.clear(); // the new store's params are copied in at each variable's next step
    }
    const gpu = this.#gpu!;
    if (this.#pendingLoad) {
      // Our optimizer holds the state to take (loaded, or as it was made); the GPU's loadStateDict checks it.
      const dict = this.#optimizer.stateDict();
      gpu.loadStateDict(dict);
      this.#pendingLoad = false;
      this.#stepped.clear();
      for (const name of Object.keys(dict.params)) this.#stepped.add(name);
    }
    return gpu;
  }

  /** Submits what TF.js has recorded, so that our commands come after it in the queue. */
  #flush(backend: Required<WebGpuBackendInternals>): void {
    backend.ensureCommandEncoderReady();
    backend.endComputePassEncoder();
    backend.submitQueue();
  }

  /** Each variable <- a new tensor of the backend, copied from the store's params. */
  #writeBack(backend: Required<WebGpuBackendInternals>, names: readonly string[], variables: readonly tf.Variable[]): void {
    const store = this.#store!;
    const encoder = backend.device.createCommandEncoder({ label: 'nesterov tfjs out' });
    const infos = variables.map((variable, i) => {
      const info = backend.makeTensorInfo([...variable.shape], 'float32');
      const bytes = variable.size * 4;
      if (bytes > 0) encoder.copyBufferToBuffer(store.params, store.byteOffset(names[i]!), bufferOf(backend, info), 0, bytes);
      return info;
    });
    // The new buffers were only acquired (nothing recorded by TF.js), so this submit is ordered after the step.
    backend.device.queue.submit([encoder.finish()]);
    variables.forEach((variable, i) => {
      const value = tf.engine().makeTensorFromTensorInfo(infos[i]!);
      variable.assign(value);
      value.dispose(); // the variable holds the data now
      this.#mirrored.set(names[i]!, variable.dataId);
    });
  }
}
