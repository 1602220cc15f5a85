/**
 * Adafactor on the GPU: the JS passes of src/rules/adafactor/kernels.ts as a program of
 * passes per parameter, its sums on the device (../reduce.ts). The rule has no wasm
 * kernels; the step's scalars come from its own CPU code (`writeDecay`: beta2 of the
 * step, in float64), the rest from the sums on the device, as its `writeScale` takes them.
 *
 * A factored matrix (rows x cols; vRow along the shorter dimension, vCol along the
 * longer, optax's):
 * 1. `rowSums`, `colSums`: the sums of G = g^2 + eps along each row and each column;
 * 2. vRow <- beta2 vRow + (1 - beta2) mean(G) along the longer dimension, vCol along the
 *    shorter (one dispatch over the longer's length);
 * 3. `rowMean`: the sum of vRow;
 * 4. `squares`: the sums of u^2 and p^2, u = g f_row f_col, the factors 1 / sqrt(vRow /
 *    mean(vRow)) and 1 / sqrt(vCol) broadcast;
 * 5. the move: u scaled by lr / max(1, rms(u) / clippingThreshold) * max(rms(p), 1e-3),
 *    through m with momentum, p <- p - u - weightDecayRate p.
 * The full second moment (a vector, a small matrix, factored: false): v <- beta2 v +
 * (1 - beta2) G, then `squares` (u = g / sqrt(v)) and the move.
 *
 * The state lives in the store's state regions at each parameter's offset, each buffer
 * as long as the CPU's (vRow min(rows, cols), vCol max(rows, cols), v 0 when factored):
 * a region is as long as the parameters, so the GPU does not save the memory factoring
 * saves on the CPU, only the traffic.
 */
import { BETA2, MIN_PARAM_SCALE, writeDecay } from '../../rules/adafactor/kernels.ts';
import type { AdafactorHyper, AdafactorState } from '../../rules/adafactor.ts';
import type { ArrayRole, GpuRuleKernels, ScalarValues } from '../kernel.ts';
import type { GpuProgram, PassCall, PassShape, ProgramPlan } from '../program.ts';

/** No wasm kernels: the whole step is the program below. */
export const adafactorGpu: GpuRuleKernels = {};

const G = `let gi = g[i];
    t[0] = gi * gi + s.eps;`;

/** Sums of G along each row (segments: rows of cols elements) or column (cols of rows, stride cols). */
const SUMS: PassShape = { label: 'gsquares', arrays: ['g'], uniforms: { eps: (s) => s.eps! }, terms: 1, body: G };

/** The two averages, one dispatch over the longer dimension (j below the shorter's length also moves vRow). */
const AVERAGES: PassShape = {
  label: 'averages',
  arrays: ['vRow', 'vCol'],
  sums: ['rowSums', 'colSums'],
  uniforms: { beta2: (s) => s.beta2!, omb2: (s) => s.omb2!, rows: (s) => s.rows!, cols: (s) => s.cols!, shortLen: (s) => s.shortLen!, rowsShort: (s) => s.rowsShort! },
  body: `if (j < u32(s.shortLen)) {
    var mean = red[s.colSumsAt + j] / s.rows;
    if (s.rowsShort != 0.0) { mean = red[s.rowSumsAt + j] / s.cols; }
    vRow[i] = s.beta2 * vRow[i] + s.omb2 * mean;
  }
  var along = red[s.rowSumsAt + j] / s.cols;
  if (s.rowsShort != 0.0) { along = red[s.colSumsAt + j] / s.rows; }
  vCol[i] = s.beta2 * vCol[i] + s.omb2 * along;`,
};

const ROW_MEAN: PassShape = { label: 'rowmean', arrays: ['vRow'], uniforms: {}, terms: 1, body: 't[0] = vRow[i];' };

/** WGSL: element `e`'s row factor fr and column factor fc (kernels.ts factoredStep's acc), `e` the index in the matrix. */
const FACTORS = (e: string): string => `let r = ${e} / u32(s.cols);
  let c = ${e} - r * u32(s.cols);
  let rowMean = red[s.rowMeanAt] / s.shortLen;
  var fr: f32;
  var fc: f32;
  if (s.rowsShort != 0.0) {
    fr = 1.0 / sqrt(vRow[s.base + r] / rowMean);
    fc = 1.0 / sqrt(vCol[s.base + c]);
  } else {
    fr = 1.0 / sqrt(vCol[s.base + r]);
    fc = 1.0 / sqrt(vRow[s.base + c] / rowMean);
  }`;

const MATRIX = { rows: (s: ScalarValues) => s.rows!, cols: (s: ScalarValues) => s.cols!, shortLen: (s: ScalarValues) => s.shortLen!, rowsShort: (s: ScalarValues) => s.rowsShort! };

/** WGSL: `scale`, kernels.ts writeScale's, from the sums of u^2 and p^2 on the device. */
const SCALE = `var scale = s.lr;
  if (s.clip > 0.0) { scale = scale / max(1.0, sqrt(red[s.squaresAt] / s.count) / s.clip); }
  if (s.paramScale != 0.0) {
    let rms = sqrt(red[s.squaresAt + 1u] / s.count);
    scale = scale * select(rms, s.minScale, rms <= s.minScale);
  }`;

/** WGSL: u through m (momentum >= 0), then p <- p - u - wd p. */
const MOVE = `if (s.momentum >= 0.0) {
    let mi = s.momentum * m[i] + s.omm * u;
    m[i] = mi;
    u = mi;
  }
  let pi = p[i];
  p[i] = pi - u - s.wd * pi;`;

const MOVE_UNIFORMS = {
  lr: (s: ScalarValues) => s.lr!,
  clip: (s: ScalarValues) => s.clip!,
  paramScale: (s: ScalarValues) => s.paramScale!,
  minScale: (s: ScalarValues) => s.minScale!,
  count: (s: ScalarValues) => s.count!,
  momentum: (s: ScalarValues) => s.momentum!,
  omm: (s: ScalarValues) => s.omm!,
  wd: (s: ScalarValues) => s.wd!,
};

const FACTORED_SQUARES: PassShape = {
  label: 'factoredsquares',
  arrays: ['p', 'g', 'vRow', 'vCol'],
  sums: ['rowMean'],
  uniforms: MATRIX,
  terms: 2,
  body: `${FACTORS('k')}
    let u = g[i] * fr * fc;
    let pi = p[i];
    t[0] = u * u;
    t[1] = pi * pi;`,
};

const FACTORED_MOVE: PassShape = {
  label: 'factoredmove',
  arrays: ['p', 'g', 'vRow', 'vCol', 'm'],
  sums: ['rowMean', 'squares'],
  uniforms: { ...MATRIX, ...MOVE_UNIFORMS },
  body: `${FACTORS('j')}
  ${SCALE}
  var u = g[i] * (fr * scale) * fc;
  ${MOVE}`,
};

const FULL_MOMENT: PassShape = {
  label: 'fullmoment',
  arrays: ['g', 'v'],
  uniforms: { beta2: (s) => s.beta2!, omb2: (s) => s.omb2!, eps: (s) => s.eps! },
  body: `let gi = g[i];
  v[i] = s.beta2 * v[i] + s.omb2 * (gi * gi + s.eps);`,
};

const FULL_SQUARES: PassShape = {
  label: 'fullsquares',
  arrays: ['p', 'g', 'v'],
  uniforms: {},
  terms: 2,
  body: `let u = g[i] / sqrt(v[i]);
    let pi = p[i];
    t[0] = u * u;
    t[1] = pi * pi;`,
};

const FULL_MOVE: PassShape = {
  label: 'fullmove',
  arrays: ['p', 'g', 'v', 'm'],
  sums: ['squares'],
  uniforms: MOVE_UNIFORMS,
  body: `${SCALE}
  var u = (scale * g[i]) / sqrt(v[i]);
  ${MOVE}`,
};

const decay = new Float64Array(8);
const state = (name: string): ArrayRole => ({ state: name });

export const adafactorProgram: GpuProgram = {
  plan(step): ProgramPlan {
    const twin = step.twin as AdafactorState;
    const h = step.hyper as AdafactorHyper;
    const n = step.length;
    // The rule's own step: count it, beta2 of the step (0 where optax's would be NaN).
    twin.step += 1;
    if (n === 0) return { sums: {}, calls: [] };
    writeDecay(decay, twin.step, h);
    const beta2 = decay[BETA2]!;
    const rows = twin.rows;
    const cols = twin.cols;
    const scalars: ScalarValues = {
      beta2,
      omb2: 1 - beta2,
      eps: h.eps,
      lr: h.maximize ? -step.lr : step.lr,
      clip: h.clippingThreshold ?? 0,
      paramScale: h.multiplyByParameterScale ? 1 : 0,
      minScale: MIN_PARAM_SCALE,
      count: n,
      momentum: h.momentum ?? -1,
      omm: 1 - (h.momentum ?? 0),
      wd: h.weightDecayRate,
      rows,
      cols,
      shortLen: Math.min(rows, cols),
      rowsShort: rows <= cols ? 1 : 0,
    };
    const m: ArrayRole = h.momentum === null ? 'unused' : state('m');
    const call = (shape: PassShape, roles: readonly ArrayRole[], extent: Omit<PassCall, 'shape' | 'roles' | 'scalars'>): PassCall => ({ shape, roles, scalars, ...extent });
    const whole = { segments: 1, segStride: 0, elemStride: 1 };
    if (rows === 0) {
      return {
        sums: { squares: 2 },
        calls: [
          call(FULL_MOMENT, ['grads', state('v')], { n }),
          call(FULL_SQUARES, ['params', 'grads', state('v')], { n, ...whole, into: 'squares' }),
          call(FULL_MOVE, ['params', 'grads', state('v'), m], { n }),
        ],
      };
    }
    return {
      sums: { rowSums: rows, colSums: cols, rowMean: 1, squares: 2 },
      calls: [
        call(SUMS, ['grads'], { n: cols, segments: rows, segStride: cols, elemStride: 1, into: 'rowSums' }),
        call(SUMS, ['grads'], { n: rows, segments: cols, segStride: 1, elemStride: cols, into: 'colSums' }),
        call(AVERAGES, [state('vRow'), state('vCol')], { n: Math.max(rows, cols) }),
        call(ROW_MEAN, [state('vRow')], { n: Math.min(rows, cols), ...whole, into: 'rowMean' }),
        call(FACTORED_SQUARES, ['params', 'grads', state('vRow'), state('vCol')], { n, ...whole, into: 'squares' }),
        call(FACTORED_MOVE, ['params', 'grads', state('vRow'), state('vCol'), m], { n }),
      ],
    };
  },
};
