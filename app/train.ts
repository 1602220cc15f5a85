/**
 * One training run of the main job: a 784-100-10 network from a seeded He
 * initialisation, mini-batches in a seeded order, one optimizer. The same seed gives
 * every optimizer the same initial weights and the same batches, so curves compare.
 */
import { Network } from '../src/nn/network.ts';
import { Rng } from '../src/nn/rng.ts';
import type { Digits } from './data.ts';
import { IMAGE_SIZE } from './data.ts';
import { OPTIMIZERS } from './optimizers.ts';

export interface TrainConfig {
  optimizer: string;
  lr: number;
  epochs: number;
  batch: number;
  seed: number;
  hidden: number[];
}

export interface TrainResult {
  name: string;
  lr: number;
  /** Mean training loss of every step. */
  losses: number[];
  /** Test accuracy after each epoch. */
  testAccuracy: number[];
  trainLoss: number;
  seconds: number;
  optimizerSeconds: number;
  steps: number;
  samplesPerSecond: number;
}

export type Progress = (epoch: number, step: number, stepsPerEpoch: number, loss: number) => void;

export function train(config: TrainConfig, data: { train: Digits; test: Digits }, progress: Progress): TrainResult {
  const entry = OPTIMIZERS[config.optimizer]!;
  const net = new Network({ inputSize: IMAGE_SIZE, hiddenSizes: config.hidden, outputSize: 10 });
  net.initialize(new Rng(config.seed));
  const order = new Rng(config.seed + 1);
  const optimizer = entry.make(config.lr);
  const { train: trainSet, test } = data;
  const batch = config.batch;
  const stepsPerEpoch = Math.floor(trainSet.count / batch);
  const x = new Float32Array(batch * IMAGE_SIZE);
  const labels = new Uint8Array(batch);
  const indices = Uint32Array.from({ length: trainSet.count }, (_, i) => i);
  const losses: number[] = [];
  const testAccuracy: number[] = [];
  let optimizerTime = 0;
  const start = performance.now();
  for (let epoch = 0; epoch < config.epochs; epoch++) {
    order.shuffle(indices);
    for (let step = 0; step < stepsPerEpoch; step++) {
      for (let r = 0; r < batch; r++) {
        const source = indices[step * batch + r]!;
        x.set(trainSet.images.subarray(source * IMAGE_SIZE, (source + 1) * IMAGE_SIZE), r * IMAGE_SIZE);
        labels[r] = trainSet.labels[source]!;
      }
      const loss = net.gradient(x, labels, 0, batch);
      const t = performance.now();
      optimizer.update(net.store.params, net.store.grads);
      optimizerTime += performance.now() - t;
      losses.push(loss);
      if (step % 10 === 0 || step === stepsPerEpoch - 1) progress(epoch, step + 1, stepsPerEpoch, loss);
    }
    testAccuracy.push(net.accuracy(test.images, test.labels, 0, test.count));
  }
  const seconds = (performance.now() - start) / 1000;
  const lastEpoch = losses.slice(-stepsPerEpoch);
  return {
    name: config.optimizer,
    lr: config.lr,
    losses,
    testAccuracy,
    trainLoss: lastEpoch.reduce((a, b) => a + b, 0) / Math.max(1, lastEpoch.length),
    seconds,
    optimizerSeconds: optimizerTime / 1000,
    steps: losses.length,
    samplesPerSecond: (losses.length * batch) / seconds,
  };
}
