/**
 * A multi-layer perceptron in the book's spirit ("Deep Learning from Scratch", ch. 5-6):
 * Affine -> ReLU -> ... -> Affine -> SoftmaxWithLoss, He initialisation, backprop by
 * hand. Its weights live in a ParamStore (W1, b1, W2, b2, ...), so an optimizer updates
 * them all with one kernel call, and `gradient` writes straight into `store.grads`.
 *
 * The matrix products are plain loops in the cache-friendly order (the innermost loop
 * runs along contiguous rows) over buffers made once per batch size: a training step
 * allocates nothing.
 */
import { ParamStore, type AnyParamStore, type Dtype, type FloatArray } from 'nesterov';
import type { Rng } from './rng.ts';

export interface NetworkOptions {
  inputSize: number;
  hiddenSizes: readonly number[];
  outputSize: number;
  /** Default 'float32'. Gradient checks use 'float64'. */
  dtype?: Dtype;
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
  #batch = 0;
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
    this.store = new ParamStore(shapes, { dtype: options.dtype ?? 'float32' });
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
    this.#activations = this.sizes.map((size) => make(batch * size));
    this.#deltas = this.sizes.map((size) => make(batch * size));
    this.#probabilities = make(batch * this.sizes[this.sizes.length - 1]!);
    this.#batch = batch;
  }

  /** Forward pass: fills the activations, returns the output layer's scores (logits). */
  #forward(x: FloatArray, batch: number): FloatArray {
    this.#ensureBatch(batch);
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
    let loss = 0;
    for (let r = 0; r < batch; r++) {
      const row = r * classes;
      let max = -Infinity;
      for (let j = 0; j < classes; j++) max = Math.max(max, scores[row + j]!);
      let sum = 0;
      for (let j = 0; j < classes; j++) {
        const e = Math.exp(scores[row + j]! - max);
        p[row + j] = e;
        sum += e;
      }
      for (let j = 0; j < classes; j++) p[row + j] = p[row + j]! / sum;
      // -log softmax_y = log(sum) - (s_y - max): exact and finite, so the gradient p - y is
      // the loss's own (the book's log(p_y + 1e-7) differs from it where p_y is small).
      loss += Math.log(sum) - (scores[row + labels[offset + r]!]! - max);
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
    // SoftmaxWithLoss backward: (p - onehot) / batch
    const top = this.#deltas[last + 1]!;
    const p = this.#probabilities;
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
        for (let j = 1; j < classes; j++) if (scores[r * classes + j]! > scores[r * classes + best]!) best = j;
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
        for (let j = 1; j < classes; j++) if (scores[r * classes + j]! > scores[r * classes + best]!) best = j;
        if (best === labels[offset + start + r]) correct += 1;
      }
    }
    return correct / count;
  }
}
