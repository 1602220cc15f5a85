/**
 * `npm run rates`: the convergence rates of `minimize`, measured and plotted.
 *
 * 1. Iterations to reduce f - f* by 1e-8 on quadratics of condition number kappa
 *    (10 .. 1e4, seeded random rotations), log-log: gradient descent grows like kappa,
 *    Nesterov with the true mu and heavy ball like sqrt(kappa), restart without mu close.
 * 2. f(x_k) - f* against k on a smooth convex least-squares problem with a singular
 *    Hessian, beside the bound 2 L ||x0 - x*||^2 / (k + 1)^2.
 * Writes out/rates.html (self-contained SVG) and prints the fitted slopes.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { minimize, type MinimizeOptions } from '../src/index.ts';
import { writeFileAtomicSync } from '../src/node/index.ts';
import { Rng } from '../src/nn/rng.ts';
import { lineChart } from '../app/report.ts';
import { quadratic, QUADRATIC_SIZE as N, rotation } from '../test/quadratics.ts';

const kappas = [10, 31.6, 100, 316, 1000, 3162, 10000];
const methods: [string, MinimizeOptions][] = [
  ['gd', { method: 'gd' }],
  ['heavy-ball (known mu)', { method: 'heavy-ball', mu: 1 }],
  ['nesterov (known mu)', { method: 'nesterov', mu: 1 }],
  ['nesterov, restart (no mu)', { method: 'nesterov', restart: 'function' }],
  ['nesterov (no mu, no restart)', { method: 'nesterov' }],
];

function iterations(kappa: number, options: MinimizeOptions): number {
  const problem = quadratic(kappa, 100);
  const f0 = problem.fg(problem.x0, new Float64Array(N));
  const result = minimize(problem.fg, problem.x0, { ...options, L: problem.L, history: true, gradTol: Math.sqrt(2 * 1e-9 * f0), maxIterations: 3_000_000 });
  return result.history!.findIndex((f) => f <= 1e-8 * f0);
}

function slope(xs: number[], ys: number[]): number {
  const lx = xs.map(Math.log);
  const ly = ys.map(Math.log);
  const mx = lx.reduce((a, b) => a + b) / lx.length;
  const my = ly.reduce((a, b) => a + b) / ly.length;
  let num = 0;
  let den = 0;
  lx.forEach((x, i) => {
    num += (x - mx) * (ly[i]! - my);
    den += (x - mx) ** 2;
  });
  return num / den;
}

const series = methods.map(([name, options]) => ({ name, points: kappas.map((k) => [k, iterations(k, options)] as [number, number]) }));
const slopes = series.map((s) => `${s.name}: slope ${slope(kappas, s.points.map((p) => p[1])).toFixed(3)}`);

// Smooth convex: least squares with singular values 1, 1/4, ..., 1/400 (rank 20 of 40).
const rng = new Rng(9);
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
const residual = new Float64Array(m);
const fg = (x: Float64Array, g: Float64Array): number => {
  let f = 0;
  for (let k = 0; k < m; k++) {
    let s = -b[k]!;
    for (let i = 0; i < N; i++) s += a[k]![i]! * x[i]!;
    residual[k] = s;
    f += 0.5 * s * s;
  }
  g.fill(0);
  for (let k = 0; k < m; k++) for (let i = 0; i < N; i++) g[i] = g[i]! + a[k]![i]! * residual[k]!;
  return f;
};
const L = 1.001; // the largest singular value is 1
const K = 3000;
const distance2 = z.reduce((s, v) => s + v * v, 0);
const run = (method: 'gd' | 'nesterov') => minimize(fg, new Float64Array(N), { method, L, gradTol: 0, maxIterations: K, history: true }).history!;
const convex = [
  { name: 'gd', points: run('gd').map((f, k) => [k + 1, f] as [number, number]) },
  { name: 'nesterov', points: run('nesterov').map((f, k) => [k + 1, f] as [number, number]) },
  { name: 'bound 2L||x0-x*||^2/(k+1)^2', points: Array.from({ length: K + 1 }, (_, k) => [k + 1, (2 * L * distance2) / (k + 1) ** 2] as [number, number]) },
];

const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>nesterov: convergence rates</title>
<style>body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; max-width: 900px; } svg text { font: 12px system-ui, sans-serif; } svg .title { font-weight: 600; }</style></head><body>
<h1>Convergence rates of minimize</h1>
<p>Iterations to reduce f - f* by 1e-8 on ${N}-dimensional quadratics (eigenvalues 1 .. kappa, seeded random rotation), log-log. Fitted slopes: ${slopes.join('; ')}.</p>
${lineChart('Iterations against the condition number', series, 'kappa', 'iterations to 1e-8', true, true)}
<p>f(x_k) - f* on least squares with a singular Hessian (singular values 1 .. 1/400, rank 20 of ${N}), with step 1/L, beside Nesterov's bound.</p>
${lineChart('f(x_k) - f* against k', convex, 'k + 1', 'f - f*', true, true, ['bound 2L||x0-x*||^2/(k+1)^2'])}
</body></html>
`;
mkdirSync('out', { recursive: true });
writeFileAtomicSync(join('out', 'rates.html'), html);
console.log(slopes.join('\n'));
console.log('wrote out/rates.html');
