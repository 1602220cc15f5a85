/**
 * What nesterov/tfjs refuses to load, and that a refusal changes nothing: `setWeights`
 * with a bad 'iter', a bad state record, a field it does not know, or a buffer of another dtype (TfOptimizer and
 * TfPartition), and `fromConfig` with a config that is not one getConfig writes (directly
 * through the registered class, and inside `tf.loadLayersModel`). Each error names the
 * weight or field and the value.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, AdamW, Muon, partition, type AnyOptimizer, type Partition } from 'nesterov';
import { STATE_WEIGHT_NAME, tfOptimizer, type NamedTensor, type TfMembers, type TfWrappable } from 'nesterov/tfjs';
import { batches, exportedBits, lossFn, saveArtifacts, smallModel, tf, useBackend } from './tfjs-helpers.ts';

const isKernel = (name: string): boolean => /kernel(_\d+)?$/.test(name);
const muonAndAdamW = (): Partition<TfMembers> =>
  partition((name) => (isKernel(name) ? 'muon' : 'rest'), { muon: new Muon({ lr: 0.02 }) as TfWrappable, rest: new AdamW({ lr: 0.01 }) as unknown as AnyOptimizer }) as unknown as Partition<TfMembers>;

/** A source optimizer after one step, a target after three, and the source's weights. */
async function sourceAndTarget(make: () => tf.Optimizer): Promise<{ source: tf.Optimizer; target: tf.Optimizer; saved: NamedTensor[]; cleanup: () => void }> {
  const model = smallModel();
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { xs, ys } = batches(3);
  const source = make();
  source.minimize(lossFn(model, xs, ys, 0), false, vars);
  const target = make();
  for (let step = 0; step < 3; step++) target.minimize(lossFn(model, xs, ys, step), false, vars);
  const saved = await source.getWeights();
  return { source, target, saved, cleanup: () => { source.dispose(); target.dispose(); model.dispose(); tf.dispose([xs, ys]); } };
}

/** `saved` with the weight `name` replaced by `tensor`. */
function replaced(saved: readonly NamedTensor[], name: string, tensor: tf.Tensor): NamedTensor[] {
  assert.ok(saved.some((w) => w.name === name), name);
  return saved.map((w) => (w.name === name ? { name, tensor } : w));
}

for (const path of ['kernel', 'ops'] as const) {
  describe(`setWeights, path '${path}': refused before anything is loaded`, () => {
    const makers: [string, () => tf.Optimizer, string, string][] = [
      ['TfOptimizer', () => tfOptimizer(new Adam({ lr: 0.01 }) as unknown as AnyOptimizer, { path }), 'NesterovOptimizer.setWeights', ''],
      ['TfPartition', () => tfOptimizer(muonAndAdamW(), { path }), 'NesterovPartition.setWeights', 'nesterov/partition/rest/'],
    ];
    for (const [kind, make, owner, prefix] of makers) {
      it(`${kind}: 'iter' of a string, NaN, -5, 2.5, no value or disposed is refused, naming it; iterations and the state stay`, async () => {
        await useBackend('cpu');
        const { target, saved, cleanup } = await sourceAndTarget(make);
        const before = await exportedBits(target);
        const disposed = tf.scalar(1, 'int32');
        disposed.dispose();
        const cases: [tf.Tensor, string][] = [
          [tf.scalar('abc'), `${owner}: weight 'iter' must be an int32 or float32 scalar, got a string tensor ("abc")`],
          [tf.scalar(NaN), `${owner}: weight 'iter' must be an integer >= 0, got NaN`],
          [tf.scalar(-5, 'int32'), `${owner}: weight 'iter' must be an integer >= 0, got -5`],
          [tf.scalar(2.5), `${owner}: weight 'iter' must be an integer >= 0, got 2.5`],
          [tf.tensor([], [0], 'int32'), `${owner}: weight 'iter' must hold one value, got shape [0]`],
          [disposed, `${owner}: weight 'iter' is disposed`],
        ];
        for (const [iter, message] of cases) {
          await assert.rejects(target.setWeights(replaced(saved, 'iter', iter)), (error: unknown) => {
            assert.ok(error instanceof TypeError);
            assert.equal(error.message, message);
            return true;
          });
          assert.equal(target.iterations, 3);
          assert.deepEqual(await exportedBits(target), before);
        }
        tf.dispose(cases.map(([t]) => t));
        cleanup();
      });

      it(`${kind}: a state record that is not one (null, no buffers list) is refused, naming it; nothing changes`, async () => {
        await useBackend('cpu');
        const { target, saved, cleanup } = await sourceAndTarget(make);
        const before = await exportedBits(target);
        const metaName = `${prefix}${STATE_WEIGHT_NAME}`;
        const meta = JSON.parse(String(saved.find((w) => w.name === metaName)!.tensor.dataSync()[0])) as { params: unknown[] };
        const stateOwner = 'NesterovOptimizer.setWeights';
        for (const [record, shown] of [[null, 'null'], [{ name: 'x' }, 'an object'], [{ name: 1, buffers: [] }, 'an object']] as const) {
          const edited = tf.scalar(JSON.stringify({ ...meta, params: [record, ...meta.params.slice(1)] }), 'string');
          await assert.rejects(target.setWeights(replaced(saved, metaName, edited)), {
            name: 'TypeError',
            message: `${stateOwner}: '${STATE_WEIGHT_NAME}' params[0] must be { name, length, step, scalars, buffers: [names] }, got ${shown}`,
          });
          edited.dispose();
          assert.equal(target.iterations, 3);
          assert.deepEqual(await exportedBits(target), before);
        }
        cleanup();
      });

      it(`${kind}: a field of '${STATE_WEIGHT_NAME}' it does not know (a corrupted key such as '{ormat') is refused, naming it; nothing changes`, async () => {
        await useBackend('cpu');
        const { target, saved, cleanup } = await sourceAndTarget(make);
        const before = await exportedBits(target);
        const metaName = `${prefix}${STATE_WEIGHT_NAME}`;
        const text = String(saved.find((w) => w.name === metaName)!.tensor.dataSync()[0]);
        const meta = JSON.parse(text) as { params: object[] };
        const stateOwner = 'NesterovOptimizer.setWeights';
        const cases: [string, string][] = [
          // 'format' missing would take its default: the key's damage would go unseen.
          [text.replace('"format"', '"{ormat"'), `${stateOwner}: '${STATE_WEIGHT_NAME}' has an unknown field "{ormat" (known: format, version, optimizer, variant, stepCount, skippedSteps, params, hyperparameters, scalars)`],
          [JSON.stringify({ ...meta, lr: 0.5 }), `${stateOwner}: '${STATE_WEIGHT_NAME}' has an unknown field "lr" (known: format, version, optimizer, variant, stepCount, skippedSteps, params, hyperparameters, scalars)`],
          [JSON.stringify({ ...meta, params: [{ ...meta.params[0], stpe: 1 }, ...meta.params.slice(1)] }), `${stateOwner}: '${STATE_WEIGHT_NAME}' params[0] has an unknown field "stpe" (known: name, length, step, scalars, buffers)`],
        ];
        for (const [edited, message] of cases) {
          const tensor = tf.scalar(edited, 'string');
          await assert.rejects(target.setWeights(replaced(saved, metaName, tensor)), { name: 'TypeError', message });
          tensor.dispose();
          assert.equal(target.iterations, 3);
          assert.deepEqual(await exportedBits(target), before);
        }
        cleanup();
      });

      it(`${kind}: a state buffer of int32, bool or string is refused, naming the weight and its dtype; nothing changes`, async () => {
        await useBackend('cpu');
        const { target, saved, cleanup } = await sourceAndTarget(make);
        const before = await exportedBits(target);
        const buffer = saved.find((w) => w.name.startsWith(prefix) && w.name.endsWith('/expAvg'))!;
        for (const dtype of ['int32', 'bool', 'string'] as const) {
          const tensor = dtype === 'string' ? tf.tensor(Array.from({ length: buffer.tensor.size }, () => 'a'), buffer.tensor.shape) : tf.zeros(buffer.tensor.shape, dtype);
          await assert.rejects(target.setWeights(replaced(saved, buffer.name, tensor)), {
            name: 'TypeError',
            message: `NesterovOptimizer.setWeights: weight '${buffer.name.slice(prefix.length)}' must be float32, got ${dtype}`,
          });
          tensor.dispose();
          assert.equal(target.iterations, 3);
          assert.deepEqual(await exportedBits(target), before);
        }
        cleanup();
      });
    }
  });
}

describe('fromConfig refuses a config getConfig did not write, naming the field and the value', () => {
  const fromConfig = (className: string, config: unknown): unknown => {
    const [cls, make] = tf.serialization.SerializationMap.getMap().classNameMap[className]!;
    return make(cls, config as tf.serialization.ConfigDict);
  };
  const adamw = { optimizer: 'AdamW', options: { lr: 0.01 }, lrSchedule: false, path: 'auto' };

  it('TfOptimizer: null, a bad path, clipGradNorm "x", options that are not an object', () => {
    const owner = 'NesterovOptimizer.fromConfig';
    assert.throws(() => fromConfig('NesterovOptimizer', null), { name: 'TypeError', message: `${owner}: config must be an object, got null` });
    assert.throws(() => fromConfig('NesterovOptimizer', { ...adamw, path: 'gpu' }), { message: `${owner}: invalid path: "gpu" (expected 'auto', 'kernel' or 'ops')` });
    assert.throws(() => fromConfig('NesterovOptimizer', { ...adamw, clipGradNorm: 'x' }), { message: `${owner}: invalid clipGradNorm: "x" (expected a finite number >= 0)` });
    assert.throws(() => fromConfig('NesterovOptimizer', { ...adamw, options: 3 }), { message: `${owner}: invalid options: 3 (expected an object of the optimizer's options)` });
  });

  it('TfPartition: null, no member config, config null, variables [null], a duplicate name, __proto__, clipGradNorm "x"', () => {
    const owner = 'NesterovPartition.fromConfig';
    const member = (name: string, extra: object = {}): object => ({ name, config: adamw, variables: [{ name: 'v' }], ...extra });
    const cases: [unknown, string][] = [
      [null, `${owner}: config must be an object, got null`],
      [{ members: [{ name: 'a', variables: [] }] }, `${owner}: members[0] ('a'): config must be an object, got undefined`],
      [{ members: [member('a', { config: null })] }, `${owner}: members[0] ('a'): config must be an object, got null`],
      [{ members: [member('a', { variables: [null] })] }, `${owner}: members[0].variables[0] must be { name: string }, got null`],
      [{ members: [member('a'), member('a')] }, `${owner}: members[1].name 'a' is the name of an earlier member too`],
      [{ members: [member('__proto__')] }, `${owner}: members[0].name may not be '__proto__' (a partition's member key is an object key)`],
      [{ members: [member('a')], clipGradNorm: 'x' }, `${owner}: invalid clipGradNorm: "x" (expected a finite number >= 0)`],
      [{ members: [null] }, `${owner}: members[0] must be { name, config, variables }, got null`],
    ];
    for (const [config, message] of cases) assert.throws(() => fromConfig('NesterovPartition', config), { message });
  });

  it('inside tf.loadLayersModel: an edited training_config is refused with the same error', async () => {
    await useBackend('cpu');
    const model = smallModel();
    const opt = tfOptimizer(muonAndAdamW());
    model.compile({ optimizer: opt, loss: 'meanSquaredError' });
    const { xs, ys } = batches(1);
    await model.fit(xs, ys, { batchSize: 8, epochs: 1, verbose: 0 });
    const artifacts = await saveArtifacts(model);
    const original = artifacts.trainingConfig!;
    type Members = { variables: unknown[]; config: unknown }[];
    const edits: [(members: Members) => void, string][] = [
      [(members) => { members[0]!.variables = [null]; }, 'NesterovPartition.fromConfig: members[0].variables[0] must be { name: string }, got null'],
      [(members) => { members[0]!.config = null; }, "NesterovPartition.fromConfig: members[0] ('muon'): config must be an object, got null"],
    ];
    for (const [edit, message] of edits) {
      const config = structuredClone(original);
      edit((config as unknown as { optimizer_config: { config: { members: Members } } }).optimizer_config.config.members);
      await assert.rejects(tf.loadLayersModel(tf.io.fromMemory({ ...artifacts, trainingConfig: config })), { message });
    }
    opt.dispose();
    model.dispose();
    tf.dispose([xs, ys]);
  });
});
