/**
 * The finiteness checks of the adapter (a step's gradients before it, a step's results
 * after it, eval / train's moved values): one flag per tensor, computed as TF.js ops and
 * read at once.
 */
import * as tf from '@tensorflow/tfjs-core';

/** One flag per tensor, 1 where every value is finite (no NaN, no +-Infinity). */
export function finiteFlags(tensors: readonly tf.Tensor[]): Float32Array {
  if (tensors.length === 0) return new Float32Array(0);
  const flags = finiteFlagsTensor(tensors);
  try {
    return readFlags(flags);
  } finally {
    flags.dispose();
  }
}

/**
 * The flags of finiteFlags as a float32 tensor: a computed bool tensor does not read
 * back right on every backend, a float32 one does wherever a read does.
 */
export function finiteFlagsTensor(tensors: readonly tf.Tensor[]): tf.Tensor {
  return tf.tidy(() => (tensors.length === 0 ? tf.zeros([0]) : tf.cast(tf.stack(tensors.map((t) => tf.all(tf.isFinite(t)))), 'float32')));
}

/** The values of a flags tensor, read synchronously. */
export function readFlags(flags: tf.Tensor): Float32Array {
  return flags.dataSync() as Float32Array;
}

/**
 * Whether the current backend reads a computed tensor back synchronously. TF.js 4.22's
 * webgpu backend reads `dataSync()` through a WebGPU canvas; where that canvas cannot be
 * made (Chromium's SwiftShader adapter, headless) the read returns zeros and the device
 * is lost, so every later step fails. There the adapter reads only with `data()`.
 */
export function readsSynchronously(): boolean {
  return tf.getBackend() !== 'webgpu';
}
