/**
 * nesterov/tfjs with a rule whose step size is one estimate over every variable
 * (Prodigy, DAdaptAdamW): the kernel path equals the core optimizer bit for bit, the
 * ops path is refused with the reason, and the estimate travels with getWeights /
 * setWeights (a resumed run continues bit for bit).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DAdaptAdamW, Prodigy, type AnyOptimizer } from 'nesterov';
import { tfOptimizer } from 'nesterov/tfjs';
import { BACKENDS, batches, bitDifferences, lossFn, runAgainstCore, smallModel, tf, useBackend, weightsOf } from './tfjs-helpers.ts';

const STEPS = 12;
const MAKERS: [string, () => AnyOptimizer][] = [
  ['Prodigy', () => new Prodigy({ weightDecay: 0.01 }) as unknown as AnyOptimizer],
  ['DAdaptAdamW', () => new DAdaptAdamW({ weightDecay: 0.01 }) as unknown as AnyOptimizer],
];

for (const backend of BACKENDS) {
  describe(`backend ${backend}`, () => {
    for (const [name, make] of MAKERS) {
      it(`${name}: the kernel path equals the core optimizer, bit for bit, the estimate included`, async () => {
        await useBackend(backend);
        const { adapter, core, opt, core_ } = runAgainstCore(make, { path: 'kernel' }, { steps: STEPS });
        assert.equal(bitDifferences(adapter, core), 0);
        assert.deepEqual(opt.optimizer.stateDict(), core_.stateDict());
        assert.ok(opt.optimizer.stateDict().scalars!.estimLr! > 1e-6, 'the estimate moved');
        opt.dispose();
      });

      it(`${name}: the ops path is refused, saying why`, () => {
        assert.throws(() => tfOptimizer(make(), { path: 'ops' }), /runs on the kernel path only: .*one estimate over every variable/);
      });

      it(`${name}: setWeights(getWeights()) into a fresh adapter continues bit for bit`, async () => {
        await useBackend(backend);
        const { xs, ys } = batches(STEPS);
        const whole = smallModel();
        const wholeVars = whole.trainableWeights.map((w) => w.read() as tf.Variable);
        const a = tfOptimizer(make(), { path: 'kernel' });
        for (let step = 0; step < STEPS; step++) a.minimize(lossFn(whole, xs, ys, step), false, wholeVars);
        const split = smallModel();
        const splitVars = split.trainableWeights.map((w) => w.read() as tf.Variable);
        const first = tfOptimizer(make(), { path: 'kernel' });
        for (let step = 0; step < 5; step++) first.minimize(lossFn(split, xs, ys, step), false, splitVars);
        const saved = await first.getWeights();
        const second = tfOptimizer(make(), { path: 'kernel' });
        await second.setWeights(saved);
        first.dispose();
        for (let step = 5; step < STEPS; step++) second.minimize(lossFn(split, xs, ys, step), false, splitVars);
        assert.equal(bitDifferences(weightsOf(split), weightsOf(whole)), 0);
        assert.deepEqual(second.optimizer.stateDict().scalars, a.optimizer.stateDict().scalars);
        a.dispose();
        second.dispose();
        whole.dispose();
        split.dispose();
        tf.dispose([xs, ys]);
      });
    }
  });
}
