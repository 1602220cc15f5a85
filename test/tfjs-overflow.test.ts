/**
 * A step whose own arithmetic overflows, through nesterov/tfjs, does what the core does
 * (src/optimizer.ts): the step is applied, the variables hold what the core's params
 * hold, the UpdateError says so, word for word the core's, and after the user restores
 * the values the next step proceeds as the core's does. On both paths.
 *
 * SGD with lr 1e30 and gradient 1e10: p - 1e40, beyond float32's 3.4e38, is -Infinity.
 * Adam with gradient 1e25: v = (1 - 0.999) * 1e50 is +Infinity in float32 (the state
 * overflows), while the parameter moves by lr m / (sqrt(v) + eps) = 0 and stays finite.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, ParamStore, SGD, UpdateError, type AnyOptimizer } from 'nesterov';
import { tfOptimizer } from 'nesterov/tfjs';
import { BACKENDS, tf, useBackend } from './tfjs-helpers.ts';

function coreError(run: () => void): UpdateError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof UpdateError);
    return error;
  }
  assert.fail('the core did not throw');
}

const CASES: [string, () => AnyOptimizer, number][] = [
  ['SGD lr 1e30, gradient 1e10: the parameter becomes -Infinity', () => new SGD({ lr: 1e30 }) as unknown as AnyOptimizer, 1e10],
  ['Adam, gradient 1e25: its expAvgSq becomes Infinity', () => new Adam({ lr: 0.1 }) as unknown as AnyOptimizer, 1e25],
];

for (const backend of BACKENDS) {
  for (const path of ['kernel', 'ops'] as const) {
    describe(`an overflowing step, backend ${backend}, path '${path}'`, () => {
      for (const [name, make, big] of CASES) {
        it(`${name}: applied, the core's values and error once; restored, the next step is the core's`, async () => {
          await useBackend(backend);
          const v = tf.variable(tf.tensor([1, 2, 3]), true, `overflow_${backend}_${path}_${name.slice(0, 4)}`);
          const opt = tfOptimizer(make(), { path });
          const core = make();
          // The core on a float32 ParamStore, as the kernel path runs it.
          const store = new ParamStore({ [v.name]: [3] }, { stateBuffers: core.stateBuffersPerParam() });
          const params = store.params;
          params[v.name]!.set([1, 2, 3]);
          store.grads[v.name]!.set([big, 0, 0]);
          const grad = tf.tensor([big, 0, 0]);
          const expected = coreError(() => core.update(store.params, store.grads));
          assert.match(expected.message, /This step WAS applied/);
          assert.throws(() => opt.applyGradients({ [v.name]: grad }), (error: unknown) => {
            assert.ok(error instanceof UpdateError);
            assert.equal(error.message, expected.message);
            assert.equal(error.param, v.name);
            assert.equal(error.index, 0);
            return true;
          });
          assert.deepEqual(Array.from(v.dataSync()), Array.from(params[v.name]!));
          assert.equal(opt.stepCount, 1);
          assert.equal(opt.stepCount, core.stepCount);
          // The user restores the values (as the error says) and steps on: as the core.
          v.assign(tf.tensor([1, 2, 3]));
          params[v.name]!.set([1, 2, 3]);
          const small = tf.tensor([1e-31, -1e-31, 0.5e-31]);
          store.grads[v.name]!.set([1e-31, -1e-31, 0.5e-31]);
          if (name.startsWith('Adam')) {
            // Adam's state is not restored here: its v is Infinity, which the core keeps, and so does the adapter.
            const again = coreError(() => core.update(store.params, store.grads));
            assert.throws(() => opt.applyGradients({ [v.name]: small }), { message: again.message });
          } else {
            core.update(store.params, store.grads);
            opt.applyGradients({ [v.name]: small });
          }
          assert.deepEqual(Array.from(v.dataSync()), Array.from(params[v.name]!));
          assert.equal(opt.stepCount, 2);
          assert.equal(opt.stepCount, core.stepCount);
          opt.dispose();
          tf.dispose([v, grad, small]);
        });
      }
    });
  }
}
