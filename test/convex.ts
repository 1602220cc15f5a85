/** Seeded convex test problems with known minima, for test/minimize.test.ts and `npm run rates`. */
import { Rng } from '../app/nn/rng.ts';

export const QUADRATIC_SIZE = 40;
const N = QUADRATIC_SIZE;

/** A random orthogonal matrix (Gram-Schmidt on a seeded Gaussian matrix), rows as arrays. */
export function rotation(n: number, rng: Rng): Float64Array[] {
  const q: Float64Array[] = [];
  while (q.length < n) {
    const v = Float64Array.from({ length: n }, () => rng.normal());
    for (const u of q) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += u[i]! * v[i]!;
      for (let i = 0; i < n; i++) v[i] = v[i]! - dot * u[i]!;
    }
    const length = Math.hypot(...v);
    if (length > 1e-8) q.push(v.map((x) => x / length));
  }
  return q;
}

/** f(x) = 1/2 (x - x*)' A (x - x*) with A = Q' diag(lambda) Q, lambda from 1 to kappa: f* = 0. */
export function quadratic(kappa: number, seed: number) {
  const rng = new Rng(seed);
  const q = rotation(N, rng);
  const lambda = Array.from({ length: N }, (_, i) => kappa ** (i / (N - 1)));
  const target = Float64Array.from({ length: N }, () => rng.normal());
  const d = new Float64Array(N);
  const z = new Float64Array(N);
  const fg = (x: Float64Array, g: Float64Array): number => {
    for (let i = 0; i < N; i++) d[i] = x[i]! - target[i]!;
    let f = 0;
    for (let k = 0; k < N; k++) {
      let s = 0;
      const row = q[k]!;
      for (let i = 0; i < N; i++) s += row[i]! * d[i]!;
      z[k] = lambda[k]! * s;
      f += 0.5 * lambda[k]! * s * s;
    }
    g.fill(0);
    for (let k = 0; k < N; k++) {
      const row = q[k]!;
      for (let i = 0; i < N; i++) g[i] = g[i]! + row[i]! * z[k]!;
    }
    return f;
  };
  return { fg, L: kappa, mu: 1, x0: new Float64Array(N) };
}


/** f(x) = 1/2 ||A x - b||^2 for the rows of A, with its gradient A'(A x - b). */
export function leastSquaresObjective(a: readonly Float64Array[], b: readonly number[]): (x: Float64Array, g: Float64Array) => number {
  const m = a.length;
  const n = a[0]!.length;
  const residual = new Float64Array(m);
  return (x, g) => {
    let f = 0;
    for (let k = 0; k < m; k++) {
      let s = -b[k]!;
      for (let i = 0; i < n; i++) s += a[k]![i]! * x[i]!;
      residual[k] = s;
      f += 0.5 * s * s;
    }
    g.fill(0);
    for (let k = 0; k < m; k++) for (let i = 0; i < n; i++) g[i] = g[i]! + a[k]![i]! * residual[k]!;
    return f;
  };
}

/**
 * Least squares with a singular Hessian: A = U diag(1, 1/4, ..., 1/400) V' (20 x 40, rank
 * 20 < 40) and b = A z, so f* = 0 at z and L = 1 (the largest singular value squared).
 * The spread-out singular values keep gradient descent sublinear for thousands of steps,
 * as the O(1/k) theory describes.
 */
export function singularLeastSquares(seed: number) {
  const rng = new Rng(seed);
  const m = 20;
  const u = rotation(m, rng);
  const vt = rotation(N, rng).slice(0, m);
  const a = Array.from({ length: m }, (_, r) => {
    const row = new Float64Array(N);
    for (let k = 0; k < m; k++) for (let i = 0; i < N; i++) row[i] = row[i]! + (u[k]![r]! / (k + 1) ** 2) * vt[k]![i]!;
    return row;
  });
  const z = Float64Array.from({ length: N }, () => rng.normal());
  const b = a.map((row) => row.reduce((s, v, i) => s + v * z[i]!, 0));
  return { fg: leastSquaresObjective(a, b), L: 1.001, minimizer: z, distance2: z.reduce((s, v) => s + v * v, 0) };
}

/** Least-squares slope of log(ys) against log(xs). */
export function logLogSlope(xs: readonly number[], ys: readonly number[]): number {
  const lx = xs.map(Math.log);
  const ly = ys.map(Math.log);
  const mx = lx.reduce((p, q) => p + q) / lx.length;
  const my = ly.reduce((p, q) => p + q) / ly.length;
  let num = 0;
  let den = 0;
  lx.forEach((x, i) => {
    num += (x - mx) * (ly[i]! - my);
    den += (x - mx) ** 2;
  });
  return num / den;
}
