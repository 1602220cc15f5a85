/**
 * Muon's matrix products in WebAssembly SIMD (assembly/muon.ts: `gram`, `nsPoly`,
 * `nsApply`, register-blocked): the memory of Muon's own, one per matrix shape, made at
 * the first step of that shape and never grown; and the dispatch of a shape to those
 * kernels or to the JS loops of newton-schulz.ts.
 */
import type { Backend } from '../../optimizer.ts';
import type { Dtype, FloatArray } from '../../types.ts';
import { instantiateKernels, wasmUnavailableReason, SCALAR_BLOCK_DOUBLES } from '../../wasm/kernels.ts';
import { NEWTON_SCHULZ_COEFFICIENTS, jsWorkspace, newtonSchulzJs, type Workspace } from './newton-schulz.ts';

/**
 * A padded dimension for the wasm layout: a multiple of 4 (the kernels' lanes), and not
 * a multiple of 256 floats (1 KB). At a 4 KB row stride every row of a column strip maps
 * to the same cache set, and B X re-reads its strip from further out: measured on the
 * 1024 square, 16 more zero columns (1.6% more work) make nsApply 1.5x faster (246 -> 164 ms).
 */
const padded = (n: number): number => {
  const p = (n + 3) & ~3;
  return p % 256 === 0 ? p + 16 : p;
};

/** A workspace of its own wasm memory (both dimensions padded), the kernels' coefficients set. */
export function wasmWorkspace(rows: number, cols: number): Workspace {
  const pr = padded(rows);
  const pc = padded(cols);
  const header = SCALAR_BLOCK_DOUBLES * 8;
  const xBytes = pr * pc * 4;
  const aBytes = pr * pr * 4;
  const bytes = header + 2 * xBytes + 2 * aBytes;
  const pages = Math.max(1, Math.ceil(bytes / 65536));
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const kernels = instantiateKernels(memory, false, 0);
  const x = header;
  const t = x + xBytes;
  const aa = t + xBytes;
  const bm = aa + aBytes;
  const [a, b, c] = NEWTON_SCHULZ_COEFFICIENTS;
  kernels.scalars[0] = a;
  kernels.scalars[1] = b;
  kernels.scalars[2] = c;
  return {
    rows,
    cols,
    stride: pc,
    x: new Float32Array(memory.buffer, x, pr * pc),
    t: new Float32Array(memory.buffer, t, pr * pc),
    aa: new Float32Array(memory.buffer, aa, pr * pr),
    bm: new Float32Array(memory.buffer, bm, pr * pr),
    acc: new Float64Array(0),
    kernels,
    paddedRows: pr,
    addresses: [x, t, aa, bm],
  };
}

/**
 * The workspace of a rows x cols parameter of `dtype`, from `workspaces` (shared by the
 * parameters of one shape and kind: 'wasm', 'float32', 'float64'), made at its first use:
 * wasm for float32 unless `backend` is 'js' or WebAssembly does not run here.
 */
export function workspaceFor(workspaces: Map<string, Workspace>, slotRows: number, slotCols: number, dtype: Dtype, backend: Backend): Workspace {
  // The iteration runs on the wide orientation: rows <= cols.
  const rows = Math.min(slotRows, slotCols);
  const cols = Math.max(slotRows, slotCols);
  const wasm = dtype === 'float32' && backend !== 'js' && wasmUnavailableReason() === undefined;
  const key = `${rows}x${cols}:${wasm ? 'wasm' : dtype}`;
  let w = workspaces.get(key);
  if (w === undefined) {
    w = wasm ? wasmWorkspace(rows, cols) : jsWorkspace(rows, cols, dtype);
    workspaces.set(key, w);
  }
  return w;
}

/** Runs the iteration on w.x (already normalised), in wasm when w has kernels; returns the array holding the result. */
export function orthogonalise(w: Workspace, steps: number): FloatArray {
  const k = w.kernels;
  if (k !== null) {
    const at = w.addresses;
    const result = k.exports.newtonSchulz(at[0], at[1], at[2], at[3], w.paddedRows, w.stride, steps, k.address);
    return result === at[0] ? w.x : w.t;
  }
  return newtonSchulzJs(w, steps);
}
