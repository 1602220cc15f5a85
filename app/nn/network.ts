/**
 * A multi-layer perceptron in the book's spirit ("Deep Learning from Scratch", ch. 5-6):
 * Affine -> ReLU -> ... -> Affine -> SoftmaxWithLoss, He initialisation, backprop by
 * hand. Its weights live in a ParamStore (W1, b1, W2, b2, ...), so an optimizer updates
 * them all with one kernel call, and `gradient` writes straight into `store.grads`.
 *
 * The matrix products of a float32 network run in the WebAssembly SIMD kernels that
 * Muon's Newton-Schulz iteration uses (assembly/muon.ts `matmul`, 4 x 16 register tiles),
 * on a memory of the network's own where every matrix is padded by zeros to multiples
 * of 4. The weights are copied in before each forward pass (the optimizer writes them in
 * the store between steps) and the gradients copied out: a few hundred kilobytes per step,
 * against millions of multiply-adds. Float32 products are rounded once per multiply and
 * once per add there (the JS loops round once per multiply-add), so the two paths agree to
 * float32 rounding, not bit for bit. A float64 network (the gradient checks), a runtime
 * without WebAssembly SIMD, or a layer too large for a 2 GiB memory runs the plain loops,
 * in the cache-friendly order (the innermost loop runs along contiguous rows).
 *
 * Either way the buffers are made once per batch size.
 */
import { ParamStore, type AnyParamStore, type Dtype, type FloatArray } from 'nesterov';
// The app's own use of the library's kernels (not a public API): the bench does the same.
import { instantiateKernels, SCALAR_BLOCK_DOUBLES, wasmUnavailableReason, type WasmKernels } from '../../src/wasm/kernels.ts';
import type { Rng } from './rng.ts';

/** 'auto' (default): the wasm kernels for float32 where they run, else the JS loops. */
export type NetworkBackend = 'auto' | 'js' | 'wasm';

export interface NetworkOptions {
  inputSize: number;
  hiddenSizes: readonly number[];
  outputSize: number;
  /** Default 'float32'. Gradient checks use 'float64'. */
  dtype?: Dtype;
  /** Default 'auto'; 'wasm' needs float32 and WebAssembly SIMD. */
  backend?: NetworkBackend;
}

/** A dimension padded to the kernels' lanes. */
const pad4 = (n: number): number => (n + 3) & ~3;

/** The largest memory the network makes for its matrices: beyond it, the JS loops run. */
const MAX_WASM_BYTES = 2 ** 31;

/**
 * The network's matrices in a WebAssembly memory of its own, for up to `rows` rows of a
 * batch (a multiple of 4). Offsets are in floats; `widths` are the layer sizes padded to
 * 4. The padding columns are zero (never written but by the kernels, which write zeros
 * there). The rows past a batch, up to its padded count, hold what a larger batch left:
 * they are never read into a batch's rows (each row's products are its own, and the
 * sums over the batch, dW's, stop at its last row).
 */
class WasmMatrices {
  readonly kernels: WasmKernels;
  readonly heap: Float32Array;
  readonly rows: number;
  readonly widths: readonly number[];
  /** Per layer size: the activations (after ReLU) and the gradient flowing back. */
  readonly act: readonly number[];
  readonly delta: readonly number[];
  /** Per layer: W (in x out), W^T (out x in) and dW (in x out), padded. */
  readonly w: readonly number[];
  readonly wt: readonly number[];
  readonly dw: readonly number[];
  /** The output layer's scores (rows x widths[last]), a view made once. */
  readonly scores: Float32Array;

  private constructor(kernels: WasmKernels, heap: Float32Array, rows: number, widths: number[], offsets: { act: number[]; delta: number[]; w: number[]; wt: number[]; dw: number[] }) {
    this.kernels = kernels;
    this.heap = heap;
    this.rows = rows;
    this.widths = widths;
    this.act = offsets.act;
    this.delta = offsets.delta;
    this.w = offsets.w;
    this.wt = offsets.wt;
    this.dw = offsets.dw;
    const last = widths.length - 1;
    this.scores = heap.subarray(offsets.act[last]!, offsets.act[last]! + rows * widths[last]!);
  }

  /** The layout for `sizes` and `rows` rows, or null when it would not fit MAX_WASM_BYTES. */
  static make(sizes: readonly number[], rows: number): WasmMatrices | null {
    const widths = sizes.map(pad4);
    let at = (SCALAR_BLOCK_DOUBLES * 8) / 4;
    const take = (floats: number) => {
      const start = at;
      at += floats;
      return start;
    };
    const act = widths.map((width) => take(rows * width));
    const delta = widths.map((width) => take(rows * width));
    const w = widths.slice(1).map((out, l) => take(widths[l]! * out));
    const wt = widths.slice(1).map((out, l) => take(widths[l]! * out));
    const dw = widths.slice(1).map((out, l) => take(widths[l]! * out));
    const bytes = at * 4;
    if (bytes > MAX_WASM_BYTES) return null;
    const pages = Math.max(1, Math.ceil(bytes / 65536));
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    const kernels = instantiateKernels(memory, false, 0);
    return new WasmMatrices(kernels, new Float32Array(memory.buffer), rows, widths, { act, delta, w, wt, dw });
  }
}

interface Layer {
  readonly inputs: number;
  readonly outputs: number;
  readonly W: FloatArray;
  readonly b: FloatArray;
  readonly dW: FloatArray;
  readonly db: FloatArray;
}

export class Network {
  readonly store: AnyParamStore;
  readonly layers: readonly Layer[];
  readonly sizes: readonly number[];
  /** Which loops the matrix products run in: 'wasm' or 'js'. */
  readonly backend: 'js' | 'wasm';
  #batch = 0;
  #wasm: WasmMatrices | null = null;
  /** Row stride of the scores #forward returns (the output size, padded for wasm). */
  #stride = 0;
  // Per layer: its input activations (after ReLU), and the gradient flowing back.
  #activations: FloatArray[] = [];
  #deltas: FloatArray[] = [];
  #probabilities: FloatArray = new Float32Array(0);

  constructor(options: NetworkOptions) {
    const sizes = [options.inputSize, ...options.hiddenSizes, options.outputSize];
    for (const size of sizes) {
      if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`Network: invalid layer size: ${size} (expected an integer >= 1)`);
    }
    this.sizes = sizes;
    const shapes: Record<string, number[]> = {};
    for (let l = 1; l < sizes.length; l++) {
      shapes[`W${l}`] = [sizes[l - 1]!, sizes[l]!];
      shapes[`b${l}`] = [sizes[l]!];
    }
    const dtype = options.dtype ?? 'float32';
    const backend = options.backend ?? 'auto';
    if (backend !== 'auto' && backend !== 'js' && backend !== 'wasm') throw new RangeError(`Network: invalid backend: ${String(backend)} (expected 'auto', 'js' or 'wasm')`);
    const reason = dtype === 'float32' ? wasmUnavailableReason() : 'the wasm kernels are float32';
    if (backend === 'wasm' && reason !== undefined) throw new RangeError(`Network: backend 'wasm' cannot run: ${reason}`);
    this.backend = backend === 'js' || reason !== undefined ? 'js' : 'wasm';
    this.store = new ParamStore(shapes, { dtype });
    this.layers = sizes.slice(1).map((outputs, i) => ({
      inputs: sizes[i]!,
      outputs,
      W: this.store.params[`W${i + 1}`]!,
      b: this.store.params[`b${i + 1}`]!,
      dW: this.store.grads[`W${i + 1}`]!,
      db: this.store.grads[`b${i + 1}`]!,
    }));
  }

  /** He initialisation (weights ~ N(0, 2 / fan_in), biases 0), from `rng`. */
  initialize(rng: Rng): void {
    for (const layer of this.layers) {
      const scale = Math.sqrt(2 / layer.inputs);
      for (let i = 0; i < layer.W.length; i++) layer.W[i] = scale * rng.normal();
      layer.b.fill(0);
    }
  }

  #ensureBatch(batch: number): void {
    if (batch === this.#batch) return;
    const make = (n: number) => (this.store.dtype === 'float32' ? new Float32Array(n) : new Float64Array(n));
    this.#probabilities = make(batch * this.sizes[this.sizes.length - 1]!);
    this.#batch = batch;
    if (this.backend === 'wasm') {
      // One memory for the largest batch so far (training's, then the evaluation's 500).
      if (this.#wasm === null || pad4(batch) > this.#wasm.rows) this.#wasm = WasmMatrices.make(this.sizes, pad4(batch));
      if (this.#wasm !== null) return;
    }
    this.#activations = this.sizes.map((size) => make(batch * size));
    this.#deltas = this.sizes.map((size) => make(batch * size));
  }

  /** The wasm forward pass: bias rows, then out += in W (the kernel), then ReLU. */
  #forwardWasm(w: WasmMatrices, x: FloatArray, batch: number): Float32Array {
    const heap = w.heap;
    const rows = pad4(batch);
    const inputs = this.sizes[0]!;
    const width = w.widths[0]!;
    const a0 = w.act[0]!;
    // The padding columns of the input rows are never written: they stay zero.
    if (width === inputs) heap.set(x.subarray(0, batch * inputs), a0);
    else for (let r = 0; r < batch; r++) heap.set(x.subarray(r * inputs, (r + 1) * inputs), a0 + r * width);
    const last = this.layers.length - 1;
    for (let l = 0; l <= last; l++) {
      const { inputs: n, outputs: m, W, b } = this.layers[l]!;
      const wi = w.widths[l]!;
      const wo = w.widths[l + 1]!;
      copyPadded(W, n, m, heap, w.w[l]!, wo);
      const out = w.act[l + 1]!;
      // Every row of the padded batch starts from the bias (the kernel adds to it).
      for (let r = 0; r < rows; r++) {
        const row = out + r * wo;
        for (let j = 0; j < m; j++) heap[row + j] = b[j]!;
      }
      w.kernels.exports.matmul(4 * w.act[l]!, 4 * wi, 4, 4 * w.w[l]!, rows, n, wo, 4 * out, 1);
      if (l < last) for (let k = out; k < out + batch * wo; k++) if (heap[k]! < 0) heap[k] = 0; // ReLU
    }
    this.#stride = w.widths[last + 1]!;
    return w.scores;
  }

  /** The wasm backward pass from the top delta (already in w.delta[last + 1]): dW, db, and the delta below. */
  #backwardWasm(w: WasmMatrices, batch: number): void {
    const heap = w.heap;
    const rows = pad4(batch);
    for (let l = this.layers.length - 1; l >= 0; l--) {
      const { inputs: n, outputs: m, W, dW, db } = this.layers[l]!;
      const wi = w.widths[l]!;
      const wo = w.widths[l + 1]!;
      const input = w.act[l]!;
      const delta = w.delta[l + 1]!;
      // dW = in^T delta: A is the activations read down their columns (aRow 1 float, aCol a row).
      w.kernels.exports.matmul(4 * input, 4, 4 * wi, 4 * delta, wi, batch, wo, 4 * w.dw[l]!, 0);
      copyUnpadded(heap, w.dw[l]!, wo, dW, n, m);
      db.fill(0);
      for (let r = 0; r < batch; r++) {
        const row = delta + r * wo;
        for (let j = 0; j < m; j++) db[j] = db[j]! + heap[row + j]!;
      }
      if (l === 0) break;
      // delta of the layer below: (delta W^T) masked by the ReLU (its output was > 0)
      const wt = w.wt[l]!;
      for (let i = 0; i < n; i++) {
        const from = i * m;
        for (let j = 0; j < m; j++) heap[wt + j * wi + i] = W[from + j]!;
      }
      const below = w.delta[l]!;
      w.kernels.exports.matmul(4 * delta, 4 * wo, 4, 4 * wt, rows, m, wi, 4 * below, 0);
      for (let r = 0; r < batch; r++) {
        const row = r * wi;
        for (let i = 0; i < n; i++) if (heap[input + row + i]! <= 0) heap[below + row + i] = 0;
      }
    }
  }

  /** Forward pass: fills the activations, returns the output layer's scores (logits, rows of #stride). */
  #forward(x: FloatArray, batch: number): FloatArray {
    this.#ensureBatch(batch);
    if (this.#wasm !== null) return this.#forwardWasm(this.#wasm, x, batch);
    this.#stride = this.sizes[this.sizes.length - 1]!;
    this.#activations[0]!.set(x.subarray(0, batch * this.sizes[0]!));
    const last = this.layers.length - 1;
    for (let l = 0; l <= last; l++) {
      const { inputs, outputs, W, b } = this.layers[l]!;
      const input = this.#activations[l]!;
      const out = this.#activations[l + 1]!;
      for (let r = 0; r < batch; r++) {
        const row = r * outputs;
        for (let j = 0; j < outputs; j++) out[row + j] = b[j]!;
        for (let i = 0; i < inputs; i++) {
          const xi = input[r * inputs + i]!;
          if (xi === 0) continue; // ReLU outputs and MNIST backgrounds are mostly zero
          const w = i * outputs;
          for (let j = 0; j < outputs; j++) out[row + j] = out[row + j]! + xi * W[w + j]!;
        }
      }
      if (l < last) for (let k = 0; k < batch * outputs; k++) if (out[k]! < 0) out[k] = 0; // ReLU
    }
    return this.#activations[last + 1]!;
  }

  /** Softmax of the scores into #probabilities; returns the mean cross-entropy of `labels`. */
  #softmaxLoss(scores: FloatArray, labels: Uint8Array, offset: number, batch: number): number {
    const classes = this.sizes[this.sizes.length - 1]!;
    const p = this.#probabilities;
    const stride = this.#stride;
    let loss = 0;
    for (let r = 0; r < batch; r++) {
      const row = r * classes;
      const at = r * stride;
      let max = -Infinity;
      for (let j = 0; j < classes; j++) max = Math.max(max, scores[at + j]!);
      let sum = 0;
      for (let j = 0; j < classes; j++) {
        const e = Math.exp(scores[at + j]! - max);
        p[row + j] = e;
        sum += e;
      }
      for (let j = 0; j < classes; j++) p[row + j] = p[row + j]! / sum;
      // -log softmax_y = log(sum) - (s_y - max): exact and finite, so the gradient p - y is
      // the loss's own (the book's log(p_y + 1e-7) differs from it where p_y is small).
      loss += Math.log(sum) - (scores[at + labels[offset + r]!]! - max);
    }
    return loss / batch;
  }

  /** Mean cross-entropy loss of a batch (x: batch rows of inputSize values). */
  loss(x: FloatArray, labels: Uint8Array, offset: number, batch: number): number {
    return this.#softmaxLoss(this.#forward(x, batch), labels, offset, batch);
  }

  /**
   * Loss and gradient of a batch: backprop through SoftmaxWithLoss, the Affine layers and
   * the ReLUs, written into `store.grads`. Returns the loss.
   */
  gradient(x: FloatArray, labels: Uint8Array, offset: number, batch: number): number {
    const loss = this.loss(x, labels, offset, batch);
    const classes = this.sizes[this.sizes.length - 1]!;
    const last = this.layers.length - 1;
    const p = this.#probabilities;
    const w = this.#wasm;
    if (w !== null) {
      // SoftmaxWithLoss backward into the padded top delta; its padding rows and columns zero.
      const heap = w.heap;
      const top = w.delta[last + 1]!;
      const width = w.widths[last + 1]!;
      for (let r = 0; r < batch; r++) {
        const row = top + r * width;
        for (let j = 0; j < classes; j++) heap[row + j] = p[r * classes + j]! / batch;
        heap[row + labels[offset + r]!] = heap[row + labels[offset + r]!]! - 1 / batch;
      }
      this.#backwardWasm(w, batch);
      return loss;
    }
    // SoftmaxWithLoss backward: (p - onehot) / batch
    const top = this.#deltas[last + 1]!;
    for (let r = 0; r < batch; r++) {
      for (let j = 0; j < classes; j++) top[r * classes + j] = p[r * classes + j]! / batch;
      top[r * classes + labels[offset + r]!] = top[r * classes + labels[offset + r]!]! - 1 / batch;
    }
    for (let l = last; l >= 0; l--) {
      const { inputs, outputs, W, dW, db } = this.layers[l]!;
      const input = this.#activations[l]!;
      const delta = this.#deltas[l + 1]!;
      dW.fill(0);
      db.fill(0);
      for (let r = 0; r < batch; r++) {
        const row = r * outputs;
        for (let j = 0; j < outputs; j++) db[j] = db[j]! + delta[row + j]!;
        for (let i = 0; i < inputs; i++) {
          const xi = input[r * inputs + i]!;
          if (xi === 0) continue;
          const w = i * outputs;
          for (let j = 0; j < outputs; j++) dW[w + j] = dW[w + j]! + xi * delta[row + j]!;
        }
      }
      if (l === 0) break;
      // delta of the layer below: (delta . W^T) masked by the ReLU (its output was > 0)
      const below = this.#deltas[l]!;
      for (let r = 0; r < batch; r++) {
        const row = r * outputs;
        for (let i = 0; i < inputs; i++) {
          if (input[r * inputs + i]! <= 0) {
            below[r * inputs + i] = 0;
            continue;
          }
          const w = i * outputs;
          let sum = 0;
          for (let j = 0; j < outputs; j++) sum += delta[row + j]! * W[w + j]!;
          below[r * inputs + i] = sum;
        }
      }
    }
    return loss;
  }

  /**
   * Accuracy (fraction of rows whose highest score is the label) and mean cross-entropy
   * of `count` rows, from one forward pass per `batch` rows: what a run records after
   * each epoch on its evaluation set.
   */
  evaluate(x: FloatArray, labels: Uint8Array, offset: number, count: number, batch = 500): { accuracy: number; loss: number } {
    const classes = this.sizes[this.sizes.length - 1]!;
    let correct = 0;
    let loss = 0;
    for (let start = 0; start < count; start += batch) {
      const size = Math.min(batch, count - start);
      const scores = this.#forward(x.subarray(start * this.sizes[0]!), size);
      for (let r = 0; r < size; r++) {
        let best = 0;
        for (let j = 1; j < classes; j++) if (scores[r * this.#stride + j]! > scores[r * this.#stride + best]!) best = j;
        if (best === labels[offset + start + r]) correct += 1;
      }
      loss += this.#softmaxLoss(scores, labels, offset + start, size) * size;
    }
    return { accuracy: correct / count, loss: loss / count };
  }

  /** Fraction of rows whose highest score is the label. */
  accuracy(x: FloatArray, labels: Uint8Array, offset: number, count: number, batch = 500): number {
    const classes = this.sizes[this.sizes.length - 1]!;
    let correct = 0;
    for (let start = 0; start < count; start += batch) {
      const size = Math.min(batch, count - start);
      const scores = this.#forward(x.subarray(start * this.sizes[0]!), size);
      for (let r = 0; r < size; r++) {
        let best = 0;
        for (let j = 1; j < classes; j++) if (scores[r * this.#stride + j]! > scores[r * this.#stride + best]!) best = j;
        if (best === labels[offset + start + r]) correct += 1;
      }
    }
    return correct / count;
  }
}

/** Copies `src` (rows x cols, row-major) into `heap` at `at` with row stride `width` (padding untouched). */
function copyPadded(src: FloatArray, rows: number, cols: number, heap: Float32Array, at: number, width: number): void {
  if (width === cols) {
    heap.set(src.subarray(0, rows * cols), at);
    return;
  }
  for (let i = 0; i < rows; i++) {
    const from = i * cols;
    const to = at + i * width;
    for (let j = 0; j < cols; j++) heap[to + j] = src[from + j]!;
  }
}

/** The inverse: rows x cols of `heap` at `at` (row stride `width`) into `dst`. */
function copyUnpadded(heap: Float32Array, at: number, width: number, dst: FloatArray, rows: number, cols: number): void {
  if (width === cols) {
    dst.set(heap.subarray(at, at + rows * cols));
    return;
  }
  for (let i = 0; i < rows; i++) {
    const from = at + i * width;
    const to = i * cols;
    for (let j = 0; j < cols; j++) dst[to + j] = heap[from + j]!;
  }
}
