/**
 * Muon's Newton-Schulz iteration in JS (double arithmetic, rounded to the parameter's
 * type on every store), and the scratch it runs on (see ../muon.ts for the rule, wasm.ts
 * for the WebAssembly layout of the same scratch).
 */
import type { Dtype, FloatArray } from '../../types.ts';
import type { WasmKernels } from '../../wasm/kernels.ts';

/** The quintic's coefficients (muon.py). */
export const NEWTON_SCHULZ_COEFFICIENTS = [3.4445, -4.775, 2.0315] as const;

/**
 * Scratch for one matrix shape: X and its ping-pong partner (rows x cols, rows <= cols,
 * the orientation the iteration runs in), A and B (rows x rows). For wasm, views into a
 * memory of its own with both dimensions padded to multiples of 4 (zeros, which stay
 * zero); for JS, unpadded arrays of the parameter's type.
 */
export interface Workspace {
  readonly rows: number;
  readonly cols: number;
  /** Row stride of x and t (cols, padded for wasm). */
  readonly stride: number;
  readonly x: FloatArray;
  readonly t: FloatArray;
  readonly aa: FloatArray;
  readonly bm: FloatArray;
  /** A row of double accumulators (JS). */
  readonly acc: Float64Array;
  readonly kernels: WasmKernels | null;
  /** Padded dims and byte addresses of x, t, aa, bm (wasm). */
  readonly paddedRows: number;
  readonly addresses: readonly [number, number, number, number];
}

export function jsWorkspace(rows: number, cols: number, dtype: Dtype): Workspace {
  const make = (n: number): FloatArray => (dtype === 'float32' ? new Float32Array(n) : new Float64Array(n));
  return {
    rows,
    cols,
    stride: cols,
    x: make(rows * cols),
    t: make(rows * cols),
    aa: make(rows * rows),
    bm: make(rows * rows),
    acc: new Float64Array(Math.max(rows, cols)),
    kernels: null,
    paddedRows: rows,
    addresses: [0, 0, 0, 0],
  };
}

/** out (n x n) = x x^T for x (n x m): dot products in double, each computed once. */
function gramJs(x: FloatArray, n: number, m: number, out: FloatArray): void {
  for (let i = 0; i < n; i++) {
    const oi = i * m;
    for (let j = i; j < n; j++) {
      const oj = j * m;
      let sum = 0;
      for (let k = 0; k < m; k++) sum += x[oi + k]! * x[oj + k]!;
      out[i * n + j] = sum;
      out[j * n + i] = sum;
    }
  }
}

/** One Newton-Schulz step in JS: to = a from + (b A + c A A) from, A = from from^T. */
function newtonSchulzStepJs(w: Workspace, from: FloatArray, to: FloatArray): void {
  const n = w.rows;
  const m = w.cols;
  // Indexed reads: destructuring runs the iterator protocol, which may allocate.
  const a = NEWTON_SCHULZ_COEFFICIENTS[0];
  const b = NEWTON_SCHULZ_COEFFICIENTS[1];
  const c = NEWTON_SCHULZ_COEFFICIENTS[2];
  const aa = w.aa;
  const bm = w.bm;
  const acc = w.acc;
  gramJs(from, n, m, aa);
  gramJs(aa, n, n, bm);
  for (let i = 0; i < n * n; i++) bm[i] = b * aa[i]! + c * bm[i]!;
  for (let i = 0; i < n; i++) {
    acc.fill(0, 0, m);
    for (let k = 0; k < n; k++) {
      const bik = bm[i * n + k]!;
      const ok = k * m;
      for (let j = 0; j < m; j++) acc[j] = acc[j]! + bik * from[ok + j]!;
    }
    const oi = i * m;
    for (let j = 0; j < m; j++) to[oi + j] = a * from[oi + j]! + acc[j]!;
  }
}

/** Runs the iteration in JS on w.x (already normalised); returns the array holding the result. */
export function newtonSchulzJs(w: Workspace, steps: number): FloatArray {
  let from = w.x;
  let to = w.t;
  for (let s = 0; s < steps; s++) {
    newtonSchulzStepJs(w, from, to);
    const swap = from;
    from = to;
    to = swap;
  }
  return from;
}
