/** Seeded strongly convex quadratics with a chosen condition number (tests and `npm run rates`). */
import { Rng } from '../src/nn/rng.ts';

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

