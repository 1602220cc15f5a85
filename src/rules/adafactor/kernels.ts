/**
 * Adafactor's JS passes (the formulas are at the top of ../adafactor.ts): the factored
 * step over a rows x cols matrix, the full second moment otherwise, and the scalars they
 * share. The rule and its class are in ../adafactor.ts.
 */
import { byArrayType, loopFor } from '../../kernel.ts';
import type { FloatArray } from '../../types.ts';
import type { AdafactorHyper, AdafactorState } from '../adafactor.ts';

/** The least parameter rms the step is scaled by (optax's `scale_by_param_block_rms` min_scale); the GPU's step reads it too. */
export const MIN_PARAM_SCALE = 1e-3;

// Scratch of the steps, in double: per-row then per-column sums, turned into the row and
// column factors. Grown to the largest matrix seen (one allocation per new size, none
// after), shared by every Adafactor: steps run one at a time.
let scratch = new Float64Array(256);
function scratchFor(length: number): Float64Array {
  if (scratch.length < length) scratch = new Float64Array(Math.max(length, 2 * scratch.length));
  return scratch;
}

/**
 * The sums of G = g * g + eps (eps in s[4]) along each row (into acc[0, rows)) and each column (into
 * acc[rows, rows + cols)) of a rows x cols matrix, in double.
 */
function factoredSums(g: FloatArray, rows: number, cols: number, acc: Float64Array, s: Float64Array): void {
  const eps = s[4]!;
  acc.fill(0, 0, rows + cols);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    let rowSum = 0;
    for (let j = 0; j < cols; j++) {
      const gi = g[o + j]!;
      const x = gi * gi + eps;
      rowSum += x;
      acc[rows + j] = acc[rows + j]! + x;
    }
    acc[i] = rowSum;
  }
}
const SUMS_LOOPS = byArrayType(factoredSums);

/**
 * The sums of u^2 and p^2 of a factored step (u = g * f[i] * f[rows + j], the factors in
 * acc), into s[5] and s[6].
 */
function factoredSquares(p: FloatArray, g: FloatArray, rows: number, cols: number, acc: Float64Array, s: Float64Array): void {
  let updateSquares = 0;
  let paramSquares = 0;
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    const fi = acc[i]!;
    for (let j = 0; j < cols; j++) {
      const u = g[o + j]! * fi * acc[rows + j]!;
      const pi = p[o + j]!;
      updateSquares += u * u;
      paramSquares += pi * pi;
    }
  }
  s[5] = updateSquares;
  s[6] = paramSquares;
}
const SQUARES_LOOPS = byArrayType(factoredSquares);

/**
 * The factored step: u = scale * g * f[i] * f[rows + j], through m when beta >= 0
 * (s[0] scale, s[1] beta, s[2] wd); returns whether every written value is finite.
 */
function factoredApply(p: FloatArray, g: FloatArray, m: FloatArray, rows: number, cols: number, acc: Float64Array, s: Float64Array): boolean {
  const scale = s[0]!;
  const beta = s[1]!;
  const wd = s[2]!;
  const oneMinusBeta = 1 - beta;
  let probe = 0;
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    const fi = acc[i]! * scale;
    for (let j = 0; j < cols; j++) {
      const e = o + j;
      let u = g[e]! * fi * acc[rows + j]!;
      if (beta >= 0) {
        m[e] = beta * m[e]! + oneMinusBeta * u;
        u = m[e]!;
        probe += u * 0;
      }
      p[e] = p[e]! - u - wd * p[e]!;
      probe += p[e]! * 0;
    }
  }
  return probe === 0;
}
const FACTORED_APPLY_LOOPS = byArrayType(factoredApply);

/**
 * The full second moment: v <- beta2 v + (1 - beta2) (g^2 + eps) (s[3] beta2, s[4] eps),
 * and the sums of u^2 and p^2 (u = g / sqrt(v)) into s[5] and s[6].
 */
function fullMoments(p: FloatArray, g: FloatArray, v: FloatArray, n: number, s: Float64Array): boolean {
  const beta2 = s[3]!;
  const eps = s[4]!;
  const oneMinusBeta2 = 1 - beta2;
  let updateSquares = 0;
  let paramSquares = 0;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    v[i] = beta2 * v[i]! + oneMinusBeta2 * (gi * gi + eps);
    const u = gi / Math.sqrt(v[i]!);
    const pi = p[i]!;
    updateSquares += u * u;
    paramSquares += pi * pi;
    probe += v[i]! * 0;
  }
  s[5] = updateSquares;
  s[6] = paramSquares;
  return probe === 0;
}
const FULL_MOMENTS_LOOPS = byArrayType(fullMoments);

/** The step with the full second moment: u = scale * g / sqrt(v), through m when beta >= 0 (s as factoredApply's). */
function fullApply(p: FloatArray, g: FloatArray, v: FloatArray, m: FloatArray, n: number, s: Float64Array): boolean {
  const scale = s[0]!;
  const beta = s[1]!;
  const wd = s[2]!;
  const oneMinusBeta = 1 - beta;
  let probe = 0;
  for (let i = 0; i < n; i++) {
    let u = (scale * g[i]!) / Math.sqrt(v[i]!);
    if (beta >= 0) {
      m[i] = beta * m[i]! + oneMinusBeta * u;
      u = m[i]!;
      probe += u * 0;
    }
    p[i] = p[i]! - u - wd * p[i]!;
    probe += p[i]! * 0;
  }
  return probe === 0;
}
const FULL_APPLY_LOOPS = byArrayType(fullApply);

/** Stands in for `m` without momentum: the apply loops never touch it then. */
const NO_MOMENTUM = new Float64Array(0);

/** The scalars of a step (see the indices below). */
export const stepScalars = new Float64Array(8);

// Doubles travel between the functions of a step in stepScalars, not as arguments or
// return values: a double passed to or returned from a call V8 does not inline is boxed,
// an allocation per call. Indices: 0 scale, 1 momentum, 2 wd (the apply loops); 3 beta2,
// 4 eps, 5 and 6 the sums of u^2 and p^2; 7 the lr.
const SCALE = 0;
/** Where writeDecay leaves beta2 (the GPU's step takes it from there). */
export const BETA2 = 3;
const EPS = 4;
const UPDATE_SQUARES = 5;
const PARAM_SQUARES = 6;
export const LR = 7;

/** beta2 of the 1-based step t into s[BETA2] (see the doc comment: 0 where optax's would be NaN). */
export function writeDecay(s: Float64Array, step: number, h: AdafactorHyper): void {
  const t = step - h.decayOffset;
  s[BETA2] = t < 1 ? 0 : 1 - Math.pow(t, -h.decayRate);
}

/**
 * s[SCALE]: the lr, the parameter scale and the clipping as one factor (the sign of
 * maximize folded in), from s[LR] and the two sums; s[1] momentum (-1: none), s[2] wd.
 */
function writeScale(s: Float64Array, h: AdafactorHyper, n: number): void {
  let scale = h.maximize ? -s[LR]! : s[LR]!;
  if (h.clippingThreshold !== null) scale /= Math.max(1, Math.sqrt(s[UPDATE_SQUARES]! / n) / h.clippingThreshold);
  if (h.multiplyByParameterScale) {
    const rms = Math.sqrt(s[PARAM_SQUARES]! / n);
    scale *= rms <= MIN_PARAM_SCALE ? MIN_PARAM_SCALE : rms;
  }
  s[SCALE] = scale;
  s[1] = h.momentum ?? -1;
  s[2] = h.weightDecayRate;
}

export function factoredStep(p: FloatArray, g: FloatArray, state: AdafactorState, h: AdafactorHyper): boolean {
  const rows = state.rows;
  const cols = state.cols;
  const acc = scratchFor(rows + cols);
  const s = stepScalars;
  const beta2 = s[BETA2]!;
  s[EPS] = h.eps;
  loopFor(SUMS_LOOPS, p)(g, rows, cols, acc, s);
  // vRow is along the shorter dimension (optax's): the rows when rows <= cols.
  const rowsShort = rows <= cols;
  const vRow = state.vRow;
  const vCol = state.vCol;
  const oneMinusBeta2 = 1 - beta2;
  let probe = 0;
  let rowMean = 0;
  for (let k = 0; k < vRow.length; k++) {
    const mean = rowsShort ? acc[k]! / cols : acc[rows + k]! / rows;
    vRow[k] = beta2 * vRow[k]! + oneMinusBeta2 * mean;
    rowMean += vRow[k]!;
    probe += vRow[k]! * 0;
  }
  rowMean /= vRow.length;
  for (let k = 0; k < vCol.length; k++) {
    const mean = rowsShort ? acc[rows + k]! / rows : acc[k]! / cols;
    vCol[k] = beta2 * vCol[k]! + oneMinusBeta2 * mean;
    probe += vCol[k]! * 0;
  }
  // The factors per row (acc[i]) and per column (acc[rows + j]) of the matrix.
  for (let k = 0; k < vRow.length; k++) acc[rowsShort ? k : rows + k] = 1 / Math.sqrt(vRow[k]! / rowMean);
  for (let k = 0; k < vCol.length; k++) acc[rowsShort ? rows + k : k] = 1 / Math.sqrt(vCol[k]!);
  loopFor(SQUARES_LOOPS, p)(p, g, rows, cols, acc, s);
  writeScale(s, h, p.length);
  return loopFor(FACTORED_APPLY_LOOPS, p)(p, g, state.m ?? NO_MOMENTUM, rows, cols, acc, s) && probe === 0;
}

export function fullStep(p: FloatArray, g: FloatArray, state: AdafactorState, h: AdafactorHyper): boolean {
  const s = stepScalars;
  s[EPS] = h.eps;
  const moments = loopFor(FULL_MOMENTS_LOOPS, p)(p, g, state.v, p.length, s);
  writeScale(s, h, p.length);
  return loopFor(FULL_APPLY_LOOPS, p)(p, g, state.v, state.m ?? NO_MOMENTUM, p.length, s) && moments;
}
