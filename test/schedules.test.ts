/** Learning-rate schedules against their closed forms, worked by hand. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cosineDecay, exponentialDecay, joinSchedules, linearWarmup, SGD, stepDecay, warmupCosineDecay } from 'nesterov';
import { assertClose } from './helpers.ts';

const at = (schedule: (t: number) => number, steps: number[]) => steps.map(schedule);

describe('schedules', () => {
  it('stepDecay: 0.1 * 0.5^floor(t / 3) = 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025', () => {
    assert.deepEqual(at(stepDecay({ lr: 0.1, stepSize: 3, gamma: 0.5 }), [0, 1, 2, 3, 4, 5, 6]), [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]);
  });
  it('exponentialDecay: 1 * 0.9^t = 1, 0.9, 0.81, 0.729, 0.6561 (correctly rounded, unlike 0.9 ** 4 in V8)', () => {
    assert.deepEqual(at(exponentialDecay({ lr: 1, gamma: 0.9 }), [0, 1, 2, 3, 4]), [1, 0.9, 0.81, 0.7290000000000001, 0.6561]);
  });
  it('cosineDecay: 1 -> 0.5 (halfway) -> minLr, then flat; at a quarter (1 + cos(pi/4)) / 2 = 0.853553', () => {
    const schedule = cosineDecay({ lr: 1, steps: 100, minLr: 0.1 });
    assertClose(at(schedule, [0, 25, 50, 100, 150]), [1, 0.1 + 0.9 * 0.8535533905932737, 0.55, 0.1, 0.1], 1e-15, 'lr');
  });
  it('linearWarmup: factor 0.25 + 0.75 t / 4 over 4 steps, then the wrapped schedule', () => {
    const schedule = linearWarmup({ lr: 0.2, steps: 4, startFactor: 0.25 });
    assertClose(at(schedule, [0, 1, 2, 3, 4, 10]), [0.05, 0.0875, 0.125, 0.1625, 0.2, 0.2], 1e-15, 'lr');
  });
  it('joinSchedules restarts the count at each boundary (optax join_schedules)', () => {
    const schedule = joinSchedules([0.3, exponentialDecay({ lr: 0.2, gamma: 0.5 })], [2]);
    assert.deepEqual(at(schedule, [0, 1, 2, 3, 4]), [0.3, 0.3, 0.2, 0.1, 0.05]);
  });
  it('warmupCosineDecay: 0 -> lr over the warm-up, then half a cosine down to minLr', () => {
    const schedule = warmupCosineDecay({ lr: 1, warmupSteps: 10, decaySteps: 20, minLr: 0 });
    assertClose(at(schedule, [0, 5, 10, 20, 30, 40]), [0, 0.5, 1, 0.5, 0, 0], 1e-15, 'lr');
  });
  it('an optimizer calls the schedule with the 0-based update count', () => {
    const seen: number[] = [];
    const opt = new SGD({ lr: (t) => (seen.push(t), 0.1) });
    const p = { w: new Float64Array([1]) };
    for (let i = 0; i < 3; i++) opt.update(p, { w: new Float64Array([1]) });
    assert.deepEqual(seen, [0, 1, 2]);
    assert.equal(opt.learningRate(), 0.1);
  });
  it('bad schedule settings name the setting and the value', () => {
    assert.throws(() => stepDecay({ lr: 0.1, stepSize: 0 }), /stepDecay: invalid stepSize: 0 \(expected an integer >= 1\)/);
    assert.throws(() => cosineDecay({ lr: -1, steps: 10 }), /cosineDecay: invalid lr: -1/);
    assert.throws(() => linearWarmup({ lr: 0.1, steps: 5, startFactor: 2 }), /linearWarmup: invalid startFactor: 2/);
    assert.throws(() => joinSchedules([0.1, 0.2], [3, 4]), /joinSchedules: invalid boundaries/);
    assert.throws(() => joinSchedules([0.1, 0.2, 0.3], [4, 3]), /joinSchedules: invalid boundaries\[1\]: 3/);
    // A missing option is blamed on the function the user called.
    assert.throws(
      () => warmupCosineDecay({ lr: 0.1, warmupSteps: 10 } as never),
      (error: Error) => error.message === 'warmupCosineDecay: invalid decaySteps: undefined (expected an integer >= 1)',
    );
    assert.throws(() => warmupCosineDecay({ lr: 0.1, decaySteps: 10 } as never), /^RangeError: warmupCosineDecay: invalid warmupSteps: undefined/);
  });
});
