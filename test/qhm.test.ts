/**
 * QHM's presets and its first step, by hand (the trajectories are in
 * test/fixtures/rules/qhm.json, from the paper's equations).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Nesterov, QHM, SGD, UpdateError } from 'nesterov';
import { assertClose } from './helpers.ts';

function run(opt: { update(p: { w: Float64Array }, g: { w: Float64Array }): boolean }, steps: number): Float64Array {
  const p = { w: Float64Array.from({ length: 16 }, (_, i) => Math.sin(i + 1) * 2) };
  const g = { w: new Float64Array(16) };
  for (let t = 0; t < steps; t++) {
    // Gradient of sum (x^2 - 1)^2 / 4 + 0.1 x: non-convex, so momentum matters.
    for (let i = 0; i < 16; i++) g.w[i] = p.w[i]! * (p.w[i]! * p.w[i]! - 1) + 0.1;
    opt.update(p, g);
  }
  return p.w;
}

describe('QHM', () => {
  it('the first step by hand: b = (1 - beta) d, p -= lr (nu b + (1 - nu) d)', () => {
    // lr 0.5, beta 0.9, nu 0.7, weight decay 0.1: d = 2 + 0.1 * 3 = 2.3, b = 0.23,
    // step = 0.5 (0.7 * 0.23 + 0.3 * 2.3) = 0.5 * 0.851 = 0.4255.
    const opt = new QHM({ lr: 0.5, momentum: 0.9, nu: 0.7, weightDecay: 0.1 });
    const p = { w: new Float64Array([3]) };
    opt.update(p, { w: new Float64Array([2]) });
    assert.ok(Math.abs(p.w[0]! - (3 - 0.4255)) < 1e-15, `${p.w[0]}`);
    assert.ok(Math.abs(opt.stateOf('w')!.momentumBuffer[0]! - 0.23) < 1e-16);
  });

  it('QHM.fromNesterov steps as Nesterov (PyTorch form) for 200 steps, with weight decay and a schedule', () => {
    const lr = (t: number): number => 0.05 / (1 + 0.01 * t);
    const nag = run(new Nesterov({ lr, momentum: 0.9, variant: 'pytorch', weightDecay: 0.01 }), 200);
    const qhm = run(QHM.fromNesterov({ lr, momentum: 0.9, weightDecay: 0.01 }), 200);
    assertClose(qhm, Array.from(nag), 1e-12, 'p after 200 steps');
  });

  it('nu = 0 is SGD, step for step', () => {
    assertClose(run(new QHM({ lr: 0.05, momentum: 0.99, nu: 0 }), 100), Array.from(run(new SGD({ lr: 0.05 }), 100)), 1e-15, 'p');
  });

  it('options are checked, naming the option and the value', () => {
    assert.throws(() => new QHM({ nu: 1.5 }), /^RangeError: QHM: invalid nu: 1.5 \(expected a number in \[0, 1\]\)$/);
    assert.throws(() => new QHM({ momentum: 1 }), /QHM: invalid momentum: 1/);
    assert.throws(() => QHM.fromNesterov({ lr: 0.1, momentum: 1 }), /QHM.fromNesterov: invalid momentum: 1/);
    const opt = new QHM({ lr: () => NaN });
    const p = { w: new Float64Array([1]) };
    assert.throws(() => opt.update(p, { w: new Float64Array([1]) }), UpdateError);
    assert.equal(p.w[0], 1);
  });
});
