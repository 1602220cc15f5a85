/**
 * Evaluations of f and its gradient to reach ||g|| <= 1e-6: minimize's 'lbfgs' against
 * optax's lbfgs (the counts test/fixtures/generate_lbfgs_optax.py recorded, same memory,
 * float64) and the JavaScript minimizers a user would otherwise pick: fmin's
 * conjugateGradient (Polak-Ribiere with a Wolfe line search) and numeric's uncmin (BFGS
 * with a dense inverse Hessian and backtracking). Part of `npm run rates`.
 *
 * fmin and numeric have their own stopping rules, so they run under a wrapper of f that
 * counts the points it is evaluated at (numeric asks for f and the gradient separately:
 * one point, one evaluation) and stops the run by throwing at the first point whose
 * gradient norm is at most 1e-6, trial points included: a count no method could beat
 * with the same path. fmin stops by itself once ||g|| <= 1e-5, which is reported as such.
 */
import { readFileSync } from 'node:fs';
import { minimize } from 'nesterov';
import 'fmin';
import numeric from 'numeric';
import { lbfgsProblems, type Problem } from '../test/lbfgs-problems.ts';

export const GRAD_TOL = 1e-6;
/** A run that has not reached the tolerance after this many evaluations is reported as not converged. */
const BUDGET = 200_000;

interface OptaxFixture {
  optax: string;
  memory: number;
  gradTol: number;
  problems: { id: string; evaluations: number; iterations: number; value: number; gradNorm: number }[];
}

export function optaxFixture(): OptaxFixture {
  return JSON.parse(readFileSync(new URL('../test/fixtures/reference-lbfgs-optax.json', import.meta.url), 'utf8')) as OptaxFixture;
}

/** One cell: the evaluations, and a note when the run stopped short of 1e-6. */
export interface Count {
  evaluations: number;
  note?: string;
}

class Reached extends Error {}

/** Counts distinct points and throws Reached at the first with ||g|| <= GRAD_TOL. */
function counted(problem: Problem) {
  const n = problem.x0.length;
  const x = new Float64Array(n);
  const g = new Float64Array(n);
  let last: number[] | undefined;
  let value = NaN;
  let evaluations = 0;
  const at = (point: ArrayLike<number>): void => {
    if (last !== undefined && last.every((v, i) => v === point[i])) return;
    last = Array.from(point);
    x.set(last);
    value = problem.fg(x, g);
    evaluations += 1;
    let square = 0;
    for (let i = 0; i < n; i++) square += g[i]! * g[i]!;
    if (Math.sqrt(square) <= GRAD_TOL) throw new Reached();
    if (evaluations >= BUDGET) throw new Error(`no convergence in ${BUDGET} evaluations`);
  };
  return {
    value: (point: ArrayLike<number>) => (at(point), value),
    gradient: (point: ArrayLike<number>) => (at(point), Array.from(g)),
    evaluations: () => evaluations,
  };
}

function runPeer(problem: Problem, run: (f: ReturnType<typeof counted>) => string | undefined): Count {
  const f = counted(problem);
  try {
    const stopped = run(f);
    return { evaluations: f.evaluations(), note: stopped ?? 'stopped' };
  } catch (error) {
    if (error instanceof Reached) return { evaluations: f.evaluations() };
    return { evaluations: f.evaluations(), note: (error as Error).message };
  }
}

interface Fmin {
  conjugateGradient(f: (x: number[], gradOut: number[]) => number, initial: number[], params?: { maxIterations?: number }): { fx: number };
}

function fminConjugateGradient(problem: Problem): Count {
  const fmin = (globalThis as unknown as { fmin: Fmin }).fmin;
  return runPeer(problem, (f) => {
    fmin.conjugateGradient(
      (x, gradOut) => {
        const value = f.value(x);
        const g = f.gradient(x);
        for (let i = 0; i < g.length; i++) gradOut[i] = g[i]!;
        return value;
      },
      Array.from(problem.x0),
      { maxIterations: BUDGET },
    );
    return 'stops at its own ||g|| <= 1e-5';
  });
}

/** Past this size numeric is not run: uncmin updates a dense n x n inverse Hessian (nested Arrays) at every step. */
const NUMERIC_LARGEST = 800;

function numericUncmin(problem: Problem): Count | undefined {
  if (problem.x0.length > NUMERIC_LARGEST) return undefined;
  return runPeer(problem, (f) => {
    const result = numeric.uncmin(f.value, Array.from(problem.x0), 0, f.gradient, BUDGET) as { message: string };
    return result.message;
  });
}

function ours(problem: Problem): Count {
  const result = minimize(problem.fg, problem.x0, { method: 'lbfgs', memory: 10, gradTol: GRAD_TOL, maxIterations: BUDGET });
  return result.reason === 'gradient-tolerance' ? { evaluations: result.evaluations } : { evaluations: result.evaluations, note: result.reason };
}

export interface Row {
  id: string;
  title: string;
  ours: Count;
  optax: Count;
  fmin: Count;
  /** undefined: not run (too large for a dense inverse Hessian). */
  numeric: Count | undefined;
}

export function lbfgsComparison(): Row[] {
  const fixture = optaxFixture();
  return lbfgsProblems().map((problem) => {
    const reference = fixture.problems.find((p) => p.id === problem.id);
    if (reference === undefined) throw new Error(`reference-lbfgs-optax.json has no ${problem.id}: run npm run fixtures:optax`);
    return {
      id: problem.id,
      title: problem.title,
      ours: ours(problem),
      optax: { evaluations: reference.evaluations },
      fmin: fminConjugateGradient(problem),
      numeric: numericUncmin(problem),
    };
  });
}

export function lbfgsMarkdown(rows: Row[]): string {
  const notes: string[] = [];
  const cell = (count: Count | undefined): string => {
    if (count === undefined) return `not run (n > ${NUMERIC_LARGEST}: dense n x n inverse Hessian)`;
    if (count.note === undefined) return String(count.evaluations);
    let index = notes.indexOf(count.note);
    if (index < 0) index = notes.push(count.note) - 1;
    return `${count.evaluations} (${'*'.repeat(index + 1)})`;
  };
  const fixture = optaxFixture();
  const lines = [
    `| problem | nesterov \`lbfgs\` | optax ${fixture.optax} \`lbfgs\` | fmin \`conjugateGradient\` | numeric \`uncmin\` |`,
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.title} | ${cell(r.ours)} | ${cell(r.optax)} | ${cell(r.fmin)} | ${cell(r.numeric)} |`),
  ];
  notes.forEach((note, i) => lines.push('', `(${'*'.repeat(i + 1)}) did not reach 1e-6: ${note}`));
  return lines.join('\n');
}
