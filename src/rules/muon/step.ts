/**
 * One Muon step of one 2-D parameter, in place (the formulas are at the top of
 * ../muon.ts): momentum, u normalised into the workspace in the iteration's orientation,
 * the Newton-Schulz iteration (wasm.ts dispatches it), then decay and the scaled update.
 */
import type { FloatArray } from '../../types.ts';
import type { Workspace } from './newton-schulz.ts';
import type { MuonHyper } from './options.ts';
import { orthogonalise } from './wasm.ts';

/** Added to the Frobenius norm before dividing (muon.py). */
const NORM_EPS = 1e-7;

/**
 * p (rows x cols) and its momentum m stepped with gradient g at rate lr[0], on workspace w
 * (the rate in an array: a double argument to a call that is not inlined is boxed).
 * Returns whether p or m holds a NaN or an Infinity afterwards.
 */
export function muonStep(p: FloatArray, g: FloatArray, m: FloatArray, rows: number, cols: number, w: Workspace, h: Readonly<MuonHyper>, rate: Float64Array): boolean {
  const lr = rate[0]!;
  const beta = h.momentum;
  const oneMinusBeta = 1 - beta;
  const sign = h.maximize ? -1 : 1;
  const transposed = rows > cols;
  const x = w.x;
  const stride = w.stride;
  // Momentum, and u written into X in the iteration's orientation.
  let sumSquares = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const e = i * cols + j;
      const gi = sign * g[e]!;
      m[e] = beta * m[e]! + oneMinusBeta * gi;
      const u = h.nesterov ? oneMinusBeta * gi + beta * m[e]! : m[e]!;
      const at = transposed ? j * stride + i : i * stride + j;
      x[at] = u;
      sumSquares += x[at]! * x[at]!;
    }
  }
  const divisor = Math.sqrt(sumSquares) + NORM_EPS;
  const wideRows = w.rows;
  const wideCols = w.cols;
  for (let i = 0; i < wideRows; i++) {
    const o = i * stride;
    for (let j = 0; j < wideCols; j++) x[o + j] = x[o + j]! / divisor;
  }
  const out = orthogonalise(w, h.nsSteps);
  const decay = 1 - lr * h.weightDecay;
  const negLr = -lr;
  const scale = Math.sqrt(Math.max(1, rows / cols));
  let probe = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const e = i * cols + j;
      const o = out[transposed ? j * stride + i : i * stride + j]!;
      p[e] = p[e]! * decay + negLr * (scale * o);
      probe += (p[e]! + m[e]!) * 0;
    }
  }
  return probe !== 0;
}
