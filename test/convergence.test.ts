/**
 * Every rule and variant in the registry reaches the minimizer of a quadratic
 * (condition number 10), of the book's x^2/20 + y^2 from (-7, 2), and of Rosenbrock
 * from (-1.2, 1), with the settings in test/registry.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROBLEMS } from './problems.ts';
import { REGISTRY } from './registry.ts';

const TOLERANCE = 1e-4;

for (const entry of REGISTRY) {
  describe(`${entry.id} converges`, () => {
    for (const problem of PROBLEMS) {
      const { lr, steps } = entry.settings[problem.name];
      it(`on ${problem.name} within ${steps} steps to ${TOLERANCE}`, () => {
        const optimizer = entry.make(lr);
        const p = { x: Float64Array.from(problem.start) };
        const g = { x: new Float64Array(problem.start.length) };
        const f0 = problem.gradient(p.x, g.x);
        for (let t = 0; t < steps; t++) {
          problem.gradient(p.x, g.x);
          optimizer.update(p, g);
        }
        const f = problem.gradient(p.x, g.x);
        const error = Math.max(...Array.from(p.x, (v, i) => Math.abs(v - problem.minimizer[i]!)));
        assert.ok(error < TOLERANCE, `distance to the minimizer ${error}, f ${f} (from ${f0})`);
        assert.equal(optimizer.stepCount, steps);
      });
    }
  });
}

describe('maximize', () => {
  for (const entry of REGISTRY) {
    it(`${entry.id}: maximize on -f follows minimize on f bit for bit`, () => {
      const problem = PROBLEMS[2]!;
      const { lr } = entry.settings[problem.name];
      const down = entry.make(lr);
      const up = entry.make(lr, { maximize: true });
      const a = { x: Float64Array.from(problem.start) };
      const b = { x: Float64Array.from(problem.start) };
      const ga = { x: new Float64Array(2) };
      const gb = { x: new Float64Array(2) };
      for (let t = 0; t < 200; t++) {
        problem.gradient(a.x, ga.x);
        problem.gradient(b.x, gb.x);
        gb.x[0] = -gb.x[0]!;
        gb.x[1] = -gb.x[1]!;
        down.update(a, ga);
        up.update(b, gb);
      }
      assert.deepEqual(b.x, a.x);
    });
  }
});
