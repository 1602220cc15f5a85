/**
 * `npm run rates`: the convergence rates of `minimize`, measured and plotted.
 *
 * 1. Iterations to reduce f - f* by 1e-8 on quadratics of condition number kappa
 *    (10 .. 1e4, seeded random rotations), log-log: gradient descent grows like kappa,
 *    Nesterov with the true mu and heavy ball like sqrt(kappa), restart without mu close.
 * 2. f(x_k) - f* against k on a smooth convex least-squares problem with a singular
 *    Hessian, beside the bound 2 L ||x0 - x*||^2 / (k + 1)^2.
 * 3. L-BFGS: evaluations of f and its gradient to ||g|| <= 1e-6 against optax's lbfgs and
 *    the JavaScript minimizers fmin and numeric (bench/lbfgs.ts), as a markdown table.
 * Writes out/rates.html (self-contained SVG) and prints the fitted slopes and the table.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { minimize, type MinimizeOptions } from 'nesterov';
import { writeFileAtomicSync } from 'nesterov/node';
import { lineChart } from '../app/report.ts';
import { lbfgsComparison, lbfgsMarkdown } from './lbfgs.ts';
import { logLogSlope as slope, quadratic, QUADRATIC_SIZE as N, singularLeastSquares } from '../test/convex.ts';

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

const series = methods.map(([name, options]) => ({ name, points: kappas.map((k) => [k, iterations(k, options)] as [number, number]) }));
const slopes = series.map((s) => `${s.name}: slope ${slope(kappas, s.points.map((p) => p[1])).toFixed(3)}`);

// Smooth convex: least squares with singular values 1, 1/4, ..., 1/400 (rank 20 of 40).
const { fg, L, distance2 } = singularLeastSquares(9);
const K = 3000;
const run = (method: 'gd' | 'nesterov') => minimize(fg, new Float64Array(N), { method, L, gradTol: 0, maxIterations: K, history: true }).history!;
const convex = [
  { name: 'gd', points: run('gd').map((f, k) => [k + 1, f] as [number, number]) },
  { name: 'nesterov', points: run('nesterov').map((f, k) => [k + 1, f] as [number, number]) },
  { name: 'bound 2L||x0-x*||^2/(k+1)^2', points: Array.from({ length: K + 1 }, (_, k) => [k + 1, (2 * L * distance2) / (k + 1) ** 2] as [number, number]) },
];

const lbfgsTable = lbfgsMarkdown(lbfgsComparison());
const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');

const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>nesterov: convergence rates</title>
<style>body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; max-width: 900px; } svg text { font: 12px system-ui, sans-serif; } svg .title { font-weight: 600; }</style></head><body>
<h1>Convergence rates of minimize</h1>
<p>Iterations to reduce f - f* by 1e-8 on ${N}-dimensional quadratics (eigenvalues 1 .. kappa, seeded random rotation), log-log. Fitted slopes: ${slopes.join('; ')}.</p>
${lineChart('Iterations against the condition number', series, 'kappa', 'iterations to 1e-8', true, true)}
<p>f(x_k) - f* on least squares with a singular Hessian (singular values 1 .. 1/400, rank 20 of ${N}), with step 1/L, beside Nesterov's bound.</p>
${lineChart('f(x_k) - f* against k', convex, 'k + 1', 'f - f*', true, true, ['bound 2L||x0-x*||^2/(k+1)^2'])}
<h2>L-BFGS: evaluations of f and its gradient to ||g|| &lt;= 1e-6</h2>
<pre>${escape(lbfgsTable)}</pre>
</body></html>
`;
mkdirSync('out', { recursive: true });
writeFileAtomicSync(join('out', 'rates.html'), html);
console.log(slopes.join('\n'));
console.log(`\nL-BFGS (memory 10): evaluations of f and its gradient to ||g|| <= 1e-6\n\n${lbfgsTable}\n`);
console.log('wrote out/rates.html');
