/**
 * minimize reproduces the rates the theory proves (nag.md section 4): on quadratics of
 * condition number kappa, iterations to a fixed accuracy grow like kappa for gradient
 * descent and like sqrt(kappa) for Nesterov with the true mu; adaptive restart gets
 * close without mu; on a smooth convex (singular) least-squares problem Nesterov stays
 * under 2 L ||x0 - x*||^2 / (k + 1)^2 at every k. Plus every stopping reason and error.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { minimize, softThreshold, type MinimizeOptions } from 'nesterov';
import { Rng } from '../app/nn/rng.ts';
import { leastSquaresObjective, logLogSlope as slope, quadratic, QUADRATIC_SIZE, singularLeastSquares } from './convex.ts';

const N = QUADRATIC_SIZE;

/** Iterations until f(x_k) - f* <= 1e-8 (f(x_0) - f*), from the history. */
function iterationsTo(problem: ReturnType<typeof quadratic>, options: MinimizeOptions): number {
  const result = minimize(problem.fg, problem.x0, { ...options, L: problem.L, history: true, gradTol: 0, maxIterations: 2_000_000, valueTol: 0, ...stopAtAccuracy(problem) });
  const f0 = result.history![0]!;
  const k = result.history!.findIndex((f) => f <= 1e-8 * f0);
  assert.ok(k >= 0, `did not reach 1e-8 in ${result.iterations} iterations`);
  return k;
}

// Stops the run soon after the accuracy is reached (by iterations): enough for the history.
function stopAtAccuracy(problem: ReturnType<typeof quadratic>): MinimizeOptions {
  const f0 = problem.fg(problem.x0, new Float64Array(N));
  return { gradTol: Math.sqrt(2 * problem.mu * 1e-9 * f0) };
}

describe('rates on quadratics (kappa 10, 100, 1000, 10000; seeded random rotations)', () => {
  const kappas = [10, 100, 1000, 10000];
  const problems = kappas.map((kappa, i) => quadratic(kappa, 100 + i));
  const counts: Record<string, number[]> = {};
  for (const [name, options] of [
    ['gd', { method: 'gd' }],
    ['nesterov, known mu', { method: 'nesterov', mu: 1 }],
    ['nesterov, function restart', { method: 'nesterov', restart: 'function' }],
    ['nesterov, gradient restart', { method: 'nesterov', restart: 'gradient' }],
  ] as const) {
    counts[name] = problems.map((problem) => iterationsTo(problem, options as MinimizeOptions));
  }

  it('gradient descent: the log-log slope of iterations against kappa is in [0.85, 1.15]', () => {
    const s = slope(kappas, counts.gd!);
    assert.ok(s >= 0.85 && s <= 1.15, `slope ${s}, iterations ${counts.gd}`);
  });
  it('nesterov with the true mu: slope in [0.4, 0.6]', () => {
    const s = slope(kappas, counts['nesterov, known mu']!);
    assert.ok(s >= 0.4 && s <= 0.6, `slope ${s}, iterations ${counts['nesterov, known mu']}`);
  });
  for (const scheme of ['function', 'gradient']) {
    it(`${scheme} restart without mu: slope <= 0.65 and at most 3x the iterations of the true mu`, () => {
      const restart = counts[`nesterov, ${scheme} restart`]!;
      const known = counts['nesterov, known mu']!;
      const s = slope(kappas, restart);
      assert.ok(s <= 0.65, `slope ${s}, iterations ${restart}`);
      restart.forEach((k, i) => assert.ok(k <= 3 * known[i]!, `kappa ${kappas[i]}: ${k} vs ${known[i]}`));
    });
  }
});

describe('restart fixes a mis-set mu', () => {
  it('constant momentum from mu = 1e-3 (true 1) oscillates and crawls; function restart recovers', () => {
    const problem = quadratic(1000, 11);
    const wrong = iterationsTo(problem, { method: 'nesterov', mu: 1e-3 });
    const fixed = iterationsTo(problem, { method: 'nesterov', mu: 1e-3, restart: 'function' });
    const right = iterationsTo(problem, { method: 'nesterov', mu: 1 });
    assert.ok(wrong > 3 * right, `mis-set mu ${wrong} vs true mu ${right}`);
    assert.ok(fixed <= 3 * right, `restarted ${fixed} vs true mu ${right}`);
    // the oscillation itself: f goes up many times without restart
    const trace = minimize(problem.fg, problem.x0, { method: 'nesterov', mu: 1e-3, L: problem.L, history: true, gradTol: 0, maxIterations: 2000 }).history!;
    const ups = trace.filter((f, k) => k > 0 && f > trace[k - 1]!).length;
    assert.ok(ups > 50, `f increased ${ups} times`);
  });
});

describe('smooth convex, not strongly convex: least squares with a singular Hessian', () => {
  // f* = 0 at z, rank 20 of 40, L = 1 (see singularLeastSquares in convex.ts).
  const { fg, L, distance2 } = singularLeastSquares(9);
  const x0 = new Float64Array(N);
  const run = (method: 'gd' | 'nesterov') => minimize(fg, x0, { method, L, gradTol: 0, maxIterations: 2000, history: true }).history!;

  it('nesterov: f(x_k) - f* <= 2 L ||x0 - x*||^2 / (k + 1)^2 at every k', () => {
    run('nesterov').forEach((f, k) => assert.ok(f <= (2 * L * distance2) / (k + 1) ** 2, `k ${k}: ${f} > bound`));
  });
  it('gd: within its O(1/k) bound L ||x0 - x*||^2 / (2k), sublinear, and far behind nesterov', () => {
    const gd = run('gd');
    const nag = run('nesterov');
    gd.forEach((f, k) => k > 0 && assert.ok(f <= (L * distance2) / (2 * k), `k ${k}`));
    // ten times the iterations buy gd less than a hundredfold (it is not O(1/k^2) or linear)
    assert.ok(gd[2000]! > gd[200]! / 100, `gd ${gd[200]} -> ${gd[2000]}`);
    assert.ok(nag[2000]! < gd[2000]! / 10, `nesterov ${nag[2000]} vs gd ${gd[2000]}`);
  });
});

describe('stopping and errors', () => {
  const bowl = (x: Float64Array, g: Float64Array) => {
    let f = 0;
    for (let i = 0; i < x.length; i++) {
      g[i] = 2 * (x[i]! - 1);
      f += (x[i]! - 1) ** 2;
    }
    return f;
  };
  it('every stopping reason', () => {
    const base = { L: 2, x0: [5, -3] };
    const grad = minimize(bowl, base.x0, { L: 2, method: 'gd' });
    assert.equal(grad.reason, 'gradient-tolerance');
    assert.ok(grad.converged);
    assert.deepEqual(Array.from(grad.x), [1, 1]); // step 1/L on this bowl lands on the minimum
    assert.equal(minimize(bowl, base.x0, { L: 20, method: 'gd', gradTol: 0, valueTol: 1e-6 }).reason, 'value-tolerance');
    const capped = minimize(bowl, base.x0, { L: 20, gradTol: 0, maxIterations: 7 });
    assert.equal(capped.reason, 'max-iterations');
    assert.equal(capped.iterations, 7);
    assert.equal(capped.converged, false);
    const budget = minimize(bowl, base.x0, { L: 20, gradTol: 0, maxEvaluations: 9 });
    assert.equal(budget.reason, 'max-evaluations');
    assert.ok(budget.evaluations <= 9);
  });
  it('a non-finite value stops with the last good point', () => {
    let calls = 0;
    const breaks = (x: Float64Array, g: Float64Array) => (++calls > 6 ? NaN : bowl(x, g));
    const result = minimize(breaks, [5, -3], { L: 20, gradTol: 0 });
    assert.equal(result.reason, 'non-finite');
    assert.ok(result.x.every(Number.isFinite) && Number.isFinite(result.value));
  });
  it('bad options and a bad x0 are rejected naming them', () => {
    assert.throws(() => minimize(bowl, [1], { lineSearch: 'none' }), /minimize: invalid L: undefined/);
    assert.throws(() => minimize(bowl, [1], { method: 'fista' }), /invalid prox: undefined \(expected a function/);
    assert.throws(() => minimize(bowl, [1], { method: 'fista', prox: softThreshold(1), restart: 'function' }), /invalid restart: "function"/);
    assert.throws(() => minimize(bowl, [1], { method: 'heavy-ball' }), /invalid lineSearch: "backtracking"/);
    assert.throws(() => softThreshold(-1), /softThreshold: invalid lambda: -1/);
    assert.throws(() => minimize(bowl, [1], { L: -1 }), /minimize: invalid L: -1/);
    assert.throws(() => minimize(bowl, [], { L: 1 }), /minimize: invalid x0/);
    assert.throws(() => minimize(bowl, [1, NaN], { L: 1 }), /minimize: invalid x0\[1\]: NaN/);
    assert.throws(() => minimize(bowl, [1], { L: 1, method: 'bfgs' as 'gd' }), /invalid method: "bfgs"/);
    assert.throws(() => minimize(bowl, [1], { L: 1, restart: 'always' as 'none' }), /invalid restart: "always"/);
    assert.throws(() => minimize(bowl, [1], { L: 1, mu: 2 }), /invalid mu: 2/);
    assert.throws(() => minimize(bowl, [1], { L: 1, maxIterations: 1.5 }), /invalid maxIterations: 1.5/);
    assert.throws(() => minimize(bowl, [1], { L: 1, maxEvaluations: 0 }), /invalid maxEvaluations: 0/);
    assert.throws(() => minimize(bowl, [1], { L: 1, gradTol: -1 }), /invalid gradTol: -1/);
    assert.throws(() => minimize(bowl, [1], { L: 1, valueTol: NaN }), /invalid valueTol: NaN/);
    assert.throws(() => minimize(bowl, [1], { lineSearch: 'wolfe' as 'none' }), /invalid lineSearch: "wolfe"/);
    assert.throws(() => minimize(bowl, [1], { L: 1, prox: softThreshold(1) }), /invalid prox/);
    assert.throws(() => minimize('f' as unknown as typeof bowl, [1], { L: 1 }), /fg must be a function/);
    assert.throws(() => minimize(bowl, [1], { L: 1, tolerance: 1 } as MinimizeOptions), /unknown option 'tolerance'/);
    assert.throws(() => minimize(() => NaN, [1], { L: 1 }), /not finite at x0/);
  });
});

describe('line search', () => {
  it('without L, backtracking finds a step and reaches the same accuracy as the true L', () => {
    const problem = quadratic(100, 7);
    const known = minimize(problem.fg, problem.x0, { method: 'nesterov', L: problem.L, gradTol: 1e-6, maxIterations: 100_000 });
    for (const lineSearch of ['backtracking', 'adaptive'] as const) {
      const found = minimize(problem.fg, problem.x0, { method: 'nesterov', lineSearch, gradTol: 1e-6, maxIterations: 100_000 });
      assert.equal(found.reason, 'gradient-tolerance', lineSearch);
      assert.ok(found.L >= problem.L / 2 && found.L <= 4 * problem.L, `${lineSearch}: L ${found.L}`);
      assert.ok(found.iterations <= 2 * known.iterations, `${lineSearch}: ${found.iterations} vs ${known.iterations}`);
      assert.ok(found.value < 1e-9);
    }
  });
});

describe('lasso by FISTA', () => {
  // min 1/2 ||A x - b||^2 + lambda ||x||_1, A 30 x 20 Gaussian, b from a sparse x.
  const rng = new Rng(21);
  const m = 30;
  const n = 20;
  const a = Array.from({ length: m }, () => Float64Array.from({ length: n }, () => rng.normal()));
  const truth = Float64Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 3 * rng.normal() : 0));
  const b = a.map((row) => row.reduce((s, v, i) => s + v * truth[i]!, 0) + 0.1 * rng.normal());
  const lambda = 2;
  const fg = leastSquaresObjective(a, b);

  /** The reference: cyclic coordinate descent with exact soft-threshold updates, to 1e-12. */
  function coordinateDescent(): Float64Array {
    const x = new Float64Array(n);
    const columnNorm = Array.from({ length: n }, (_, j) => a.reduce((s, row) => s + row[j]! * row[j]!, 0));
    const residual = Float64Array.from(b, (v) => -v); // A x - b
    for (let sweep = 0; sweep < 100_000; sweep++) {
      let change = 0;
      for (let j = 0; j < n; j++) {
        let rho = 0;
        for (let k = 0; k < m; k++) rho += a[k]![j]! * (residual[k]! - a[k]![j]! * x[j]!);
        const z = -rho;
        const updated = (z > lambda ? z - lambda : z < -lambda ? z + lambda : 0) / columnNorm[j]!;
        const delta = updated - x[j]!;
        if (delta !== 0) {
          for (let k = 0; k < m; k++) residual[k] = residual[k]! + a[k]![j]! * delta;
          x[j] = updated;
          change = Math.max(change, Math.abs(delta));
        }
      }
      if (change < 1e-12) break;
    }
    return x;
  }

  it('agrees with coordinate descent to 1e-6, with the same support', () => {
    const reference = coordinateDescent();
    const result = minimize(fg, new Float64Array(n), { method: 'fista', prox: softThreshold(lambda), gradTol: 1e-10, maxIterations: 100_000 });
    assert.equal(result.reason, 'gradient-tolerance');
    for (let i = 0; i < n; i++) assert.ok(Math.abs(result.x[i]! - reference[i]!) < 1e-6, `x[${i}] ${result.x[i]} vs ${reference[i]}`);
    const support = (x: Float64Array) => Array.from(x, (v, i) => (v !== 0 ? i : -1)).filter((i) => i >= 0);
    assert.deepEqual(support(result.x), support(reference));
    assert.ok(support(reference).length < n, 'the solution is sparse');
  });

  it('with gradient restart it needs no more iterations', () => {
    const plain = minimize(fg, new Float64Array(n), { method: 'fista', prox: softThreshold(lambda), gradTol: 1e-8, maxIterations: 100_000 });
    const restarted = minimize(fg, new Float64Array(n), { method: 'fista', prox: softThreshold(lambda), gradTol: 1e-8, maxIterations: 100_000, restart: 'gradient' });
    assert.ok(restarted.iterations <= plain.iterations, `${restarted.iterations} vs ${plain.iterations}`);
  });
});

/**
 * An fg that stops being finite must end the run with reason 'non-finite' and the last
 * accepted iterate, in every method and line-search mode. The runs happen in a child
 * process with a time limit: an endless line search blocks its own thread, so in this
 * process it would hang the suite instead of failing.
 */
describe('an fg that turns non-finite ends the run (no endless line search)', () => {
  // f(x) = (x0 - 1)^2 + 10 (x1 + 2)^2 (L = 20), from (0, 0): f = 41, gradient (-2, 40).
  const child = `
    import { minimize, softThreshold } from 'nesterov';
    const bowl = (x, g) => { g[0] = 2 * (x[0] - 1); g[1] = 20 * (x[1] + 2); return (x[0] - 1) ** 2 + 10 * (x[1] + 2) ** 2; };
    // finite for the first 'good' calls, then the chosen kind of breakage forever
    const breaking = (kind, good) => { let calls = 0; return (x, g) => {
      const f = bowl(x, g);
      if (++calls <= good) return f;
      if (kind === 'nan') return NaN;
      if (kind === 'infinity') return Infinity;
      g[1] = NaN; return f;
    }; };
    const shown = (r) => ({ reason: r.reason, x: Array.from(r.x), value: r.value, gradNorm: r.gradNorm, iterations: r.iterations, evaluations: r.evaluations, L: r.L });
    const out = [];
    for (const c of JSON.parse(process.env.MINIMIZE_CASES)) {
      const options = { method: c.method, gradTol: 0, ...(c.lineSearch === 'none' ? { L: 20 } : { lineSearch: c.lineSearch }), ...(c.method === 'fista' ? { prox: softThreshold(0.1) } : {}) };
      const result = minimize(breaking(c.kind, c.good), [0, 0], options);
      // the same run on the intact bowl, stopped after as many iterations
      const intact = minimize(bowl, [0, 0], { ...options, maxIterations: result.iterations });
      out.push({ result: shown(result), intact: shown(intact) });
    }
    console.log(JSON.stringify(out));
  `;
  const bowl = (x: number[]) => (x[0]! - 1) ** 2 + 10 * (x[1]! + 2) ** 2;
  type Shown = { reason: string; x: number[]; value: number; gradNorm: number; iterations: number; evaluations: number; L: number };
  const combos = [
    ['gd', 'none'],
    ['gd', 'backtracking'],
    ['gd', 'adaptive'],
    ['heavy-ball', 'none'],
    ['nesterov', 'none'],
    ['nesterov', 'backtracking'],
    ['nesterov', 'adaptive'],
    ['fista', 'none'],
    ['fista', 'backtracking'],
    ['fista', 'adaptive'],
  ] as const;
  const cases = combos.flatMap(([method, lineSearch]) =>
    (['nan', 'infinity', 'gradient-nan'] as const).flatMap((kind) => [0, 30].map((after) => ({ method, lineSearch, kind, good: 1 + after }))),
  );

  function run(list: object[], env: Record<string, string> = {}): { result: Shown; intact: Shown }[] {
    const done = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], {
      env: { ...process.env, MINIMIZE_CASES: JSON.stringify(list), ...env },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(done.signal, null, `minimize did not return within 30 s (killed by ${done.signal}): an endless line search`);
    assert.equal(done.status, 0, done.stderr);
    return JSON.parse(done.stdout) as { result: Shown; intact: Shown }[];
  }
  const results = run(cases);

  it('non-finite from the first call after x0: x0, f(x0) = 41, its gradient norm and the starting L, after a bounded number of calls', () => {
    results.forEach(({ result }, i) => {
      const c = cases[i]!;
      if (c.good !== 1) return;
      const name = `${c.method}/${c.lineSearch}/${c.kind}`;
      assert.equal(result.reason, 'non-finite', name);
      assert.deepEqual(result.x, [0, 0], name);
      assert.equal(result.value, 41, name);
      assert.equal(result.gradNorm, Math.sqrt(2 * 2 + 40 * 40), name);
      assert.equal(result.iterations, 0, name);
      assert.equal(result.L, c.lineSearch === 'none' ? 20 : 1, name);
      // Calls: x0, then for nesterov and fista y = x0, which already fails. gd, heavy-ball:
      // x0 and one step with the given L; with backtracking, a step for each L = 2^0 ... 2^1023
      // (x0 has zeros, so the step (2, -40) / L never vanishes: L stops at the largest
      // power of two below the largest double); adaptive first halves L, adding 2^-1.
      const expected = c.method === 'nesterov' || c.method === 'fista' ? 2 : c.lineSearch === 'none' ? 2 : c.lineSearch === 'backtracking' ? 1 + 1024 : 1 + 1025;
      assert.equal(result.evaluations, expected, name);
    });
  });

  it('non-finite after some good steps: the last accepted iterate, exactly as the intact run stopped there', () => {
    results.forEach(({ result, intact }, i) => {
      const c = cases[i]!;
      if (c.good === 1) return;
      const name = `${c.method}/${c.lineSearch}/${c.kind}`;
      assert.equal(result.reason, 'non-finite', name);
      assert.ok(result.iterations >= 1, `${name}: ${result.iterations} iterations`);
      assert.deepEqual(result.x, intact.x, name);
      assert.equal(result.value, intact.value, name);
      assert.equal(result.value, bowl(result.x), name);
      assert.equal(result.gradNorm, intact.gradNorm, name);
      assert.equal(result.L, intact.L, name);
    });
  });

  it('f = x^2 from 3, NaN after x0, backtracking: the step 6 / L stops moving 3 at L = 2^55, after 57 calls', () => {
    // 3 - 6 / 2^55 = 3 - 0.375 ulp(3) rounds to 3, while 3 - 6 / 2^54 does not: fg is NaN at
    // the very point where it was finite, and no shorter step can help.
    const oneDimensional = `
      import { minimize } from 'nesterov';
      const out = [];
      for (const offset of [NaN, 100]) {
        let calls = 0;
        const r = minimize((x, g) => { g[0] = 2 * x[0]; return x[0] ** 2 + (++calls > 1 ? offset : 0); }, [3], { method: 'gd' });
        out.push([r.reason, Array.from(r.x), r.value, r.evaluations, r.L, r.iterations]);
      }
      console.log(JSON.stringify(out));
    `;
    const done = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', oneDimensional], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(done.signal, null, 'minimize did not return within 30 s: an endless line search');
    assert.equal(done.status, 0, done.stderr);
    assert.deepEqual(JSON.parse(done.stdout), [
      ['non-finite', [3], 9, 57, 1, 0],
      // f that is 100 higher after its first call never decreases sufficiently: the step
      // shrinks to nothing the same way and the search gives up with the starting point.
      ['line-search-failed', [3], 9, 57, 1, 0],
    ]);
  });
});
