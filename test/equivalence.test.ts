/**
 * Equivalent formulations checked against each other in float64, and the
 * non-equivalences the docs claim, shown.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, AdamW, Momentum, Nesterov, type FloatArray, type LearningRate } from 'nesterov';
import { reference } from './fixtures.ts';
import { assertClose, doubleWellGradient, relativeError } from './helpers.ts';

const problem = reference.problem;
const W = Float64Array.from(problem.x0.W!);
const C = Float64Array.from(problem.c.W!);
const STEPS = 60;

function gradientAt(x: Float64Array, out: Float64Array): void {
  doubleWellGradient(x, C, problem.coupling, out);
}

/** Our optimizer on the double-well W block; returns the iterates. */
function ours(make: () => { update(p: { W: FloatArray }, g: { W: FloatArray }): boolean }): Float64Array[] {
  const opt = make();
  const p = { W: W.slice() };
  const g = { W: new Float64Array(W.length) };
  const path: Float64Array[] = [];
  for (let t = 0; t < STEPS; t++) {
    gradientAt(p.W, g.W);
    opt.update(p, g);
    path.push(p.W.slice());
  }
  return path;
}

/**
 * Sutskever et al. (2013) eqs. 3-4, written here from the paper: the gradient at the
 * look-ahead point theta + mu v. Returns theta_t + mu v_t, the point 'nag' stores.
 */
function sutskever(lr: (t: number) => number, mu: number): Float64Array[] {
  const theta = W.slice();
  const v = new Float64Array(W.length);
  const lookahead = new Float64Array(W.length);
  const g = new Float64Array(W.length);
  const path: Float64Array[] = [];
  for (let t = 0; t < STEPS; t++) {
    for (let i = 0; i < W.length; i++) lookahead[i] = theta[i]! + mu * v[i]!;
    gradientAt(lookahead, g);
    for (let i = 0; i < W.length; i++) {
      v[i] = mu * v[i]! - lr(t) * g[i]!;
      theta[i] = theta[i]! + v[i]!;
    }
    path.push(theta.map((x, i) => x + mu * v[i]!));
  }
  return path;
}

function maxDifference(a: Float64Array[], b: Float64Array[]): number {
  return Math.max(...a.map((x, t) => relativeError(x, b[t]!)));
}

describe("Nesterov 'nag' is NAG", () => {
  it("the Sutskever look-ahead form gives the 'nag' sequence (p_t = theta_t + mu v_t) to 1e-13", () => {
    const difference = maxDifference(ours(() => new Nesterov({ lr: 0.02, momentum: 0.9 })), sutskever(() => 0.02, 0.9));
    assert.ok(difference < 1e-13, `largest relative difference ${difference}`);
  });

  it("under a schedule, 'nag' is still the look-ahead form with lr_t inside the velocity", () => {
    const schedule = (t: number) => 0.03 / (1 + 0.1 * t);
    const difference = maxDifference(ours(() => new Nesterov({ lr: schedule, momentum: 0.9 })), sutskever(schedule, 0.9));
    assert.ok(difference < 1e-13, `largest relative difference ${difference}`);
  });

  it("'pytorch' equals 'nag' under a constant lr", () => {
    const nag = ours(() => new Nesterov({ lr: 0.02, momentum: 0.9 }));
    const pytorch = ours(() => new Nesterov({ lr: 0.02, momentum: 0.9, variant: 'pytorch' }));
    nag.forEach((x, t) => assertClose(x, pytorch[t]!, 1e-13, `step ${t + 1}`));
  });

  it("'pytorch' differs from 'nag' under a schedule (it rescales the whole buffer by the new lr)", () => {
    const schedule: LearningRate = (t) => 0.03 / (1 + 0.1 * t);
    const nag = ours(() => new Nesterov({ lr: schedule, momentum: 0.9 }));
    const pytorch = ours(() => new Nesterov({ lr: schedule, momentum: 0.9, variant: 'pytorch' }));
    assert.equal(relativeError(nag[0]!, pytorch[0]!) < 1e-15, true, 'the first step is the same');
    const difference = maxDifference(nag, pytorch);
    assert.ok(difference > 1e-3, `the paths should part; largest relative difference ${difference}`);
  });

  it("'book' is p <- p + mu^3 v - (1 + mu + mu^2) lr g with the old velocity (nag.md section 2)", () => {
    const lr = 0.02;
    const mu = 0.9;
    const p = W.slice();
    const v = new Float64Array(W.length);
    const g = new Float64Array(W.length);
    const expanded: Float64Array[] = [];
    for (let t = 0; t < STEPS; t++) {
      gradientAt(p, g);
      for (let i = 0; i < W.length; i++) {
        p[i] = p[i]! + mu ** 3 * v[i]! - (1 + mu + mu * mu) * lr * g[i]!;
        v[i] = mu * v[i]! - lr * g[i]!;
      }
      expanded.push(p.slice());
    }
    const book = ours(() => new Nesterov({ lr, momentum: mu, variant: 'book' }));
    book.forEach((x, t) => assertClose(x, expanded[t]!, 1e-12, `step ${t + 1}`));
    const nag = ours(() => new Nesterov({ lr, momentum: mu }));
    assert.ok(maxDifference(book, nag) > 1e-2, "the book's method is not NAG");
  });
});

describe('Nesterov.step(params, grads, closure): the look-ahead form as an API', () => {
  it('evaluates the closure at theta + mu v, and its theta + mu v path is the nag path (1e-13)', () => {
    const opt = new Nesterov({ lr: 0.02, momentum: 0.9 });
    const theta = { W: W.slice() };
    const g = { W: new Float64Array(W.length) };
    const nag = ours(() => new Nesterov({ lr: 0.02, momentum: 0.9 }));
    const reference = sutskever(() => 0.02, 0.9);
    for (let t = 0; t < STEPS; t++) {
      const velocityBefore = opt.stateOf('W')?.velocity!.slice() ?? new Float64Array(W.length);
      opt.step(theta, g, (at) => {
        // the closure sees exactly theta + mu v
        const point = (at as Record<string, Float64Array>).W!;
        for (let i = 0; i < W.length; i++) assert.equal(point[i], theta.W[i]! + 0.9 * velocityBefore[i]!);
        gradientAt(point, g.W);
      });
      const v = opt.stateOf('W')!.velocity!;
      const lookahead = theta.W.map((x, i) => x + 0.9 * v[i]!);
      assertClose(lookahead, nag[t]!, 1e-13, `step ${t + 1} vs nag`);
      assertClose(lookahead, reference[t]!, 1e-13, `step ${t + 1} vs Sutskever`);
    }
  });
  it('refuses other variants', () => {
    assert.throws(() => new Nesterov({ variant: 'book' }).step({ w: new Float64Array(1) }, { w: new Float64Array(1) }, () => 0), /variant 'book'/);
  });
});

describe('other equivalences', () => {
  it("Momentum 'classic' equals 'pytorch' under a constant lr (v = -lr b)", () => {
    const classic = ours(() => new Momentum({ lr: 0.02, momentum: 0.9 }));
    const pytorch = ours(() => new Momentum({ lr: 0.02, momentum: 0.9, variant: 'pytorch' }));
    classic.forEach((x, t) => assertClose(x, pytorch[t]!, 1e-13, `step ${t + 1}`));
  });

  it("Adam 'book' equals 'pytorch' when eps = 0 (bias correction folded into the step size)", () => {
    const book = ours(() => new Adam({ lr: 0.01, eps: 0, variant: 'book' }));
    const pytorch = ours(() => new Adam({ lr: 0.01, eps: 0 }));
    book.forEach((x, t) => assertClose(x, pytorch[t]!, 1e-13, `step ${t + 1}`));
  });

  it('AdamW with weightDecay 0 is Adam, bit for bit', () => {
    assert.deepEqual(ours(() => new AdamW({ lr: 0.01, weightDecay: 0 })), ours(() => new Adam({ lr: 0.01 })));
  });

  it('maximize with the negated gradient is minimize, bit for bit, for every rule', () => {
    for (const make of [
      (maximize: boolean) => new Nesterov({ lr: 0.02, maximize }),
      (maximize: boolean) => new Adam({ lr: 0.01, maximize, weightDecay: 0.01 }),
    ]) {
      const minimize = ours(() => make(false));
      const opt = make(true);
      const p = { W: W.slice() };
      const g = { W: new Float64Array(W.length) };
      for (let t = 0; t < STEPS; t++) {
        gradientAt(p.W, g.W);
        for (let i = 0; i < g.W.length; i++) g.W[i] = -g.W[i]!;
        opt.update(p, g);
        assert.deepEqual(p.W, minimize[t]);
      }
    }
  });
});
