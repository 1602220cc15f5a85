/**
 * One training run of the main job: a 784-100-10 network from a seeded He
 * initialisation, mini-batches in a seeded order, one optimizer. The same seed gives
 * every optimizer the same initial weights and the same batches, so curves compare.
 */
import { EMA, UpdateError } from 'nesterov';
import { Network } from './nn/network.ts';
import { Rng } from './nn/rng.ts';
import type { Digits } from './data.ts';
import { IMAGE_SIZE } from './data.ts';
import { OPTIMIZERS } from './optimizers.ts';
import { dataFor } from './tune.ts';
import type { Checkpoint, CheckpointOptions, Divergence, EmaCurves, Progress, TrainConfig, TrainResult } from './types.ts';
import type { RunOptimizer } from './optimizers.ts';

export type { CheckpointOptions, Progress, TrainConfig, TrainResult } from './types.ts';

/**
 * The optimizer a run steps: the entry's, or with `ema` the library's EMA wrapper around
 * it (its state dict then holds the averages and the inner state). Checkpoints are loaded
 * into the same.
 */
export function runOptimizer(config: Pick<TrainConfig, 'optimizer' | 'lr' | 'ema'>): { optimizer: RunOptimizer; inner: RunOptimizer; ema: EMA | undefined } {
  const inner = OPTIMIZERS[config.optimizer]!.make(config.lr);
  if (config.ema === undefined) return { optimizer: inner, inner, ema: undefined };
  const ema = new EMA(inner as ConstructorParameters<typeof EMA>[0], { decay: config.ema });
  return { optimizer: ema, inner, ema };
}

export function train(config: TrainConfig, data: { train: Digits; test: Digits }, progress: Progress, checkpoints?: CheckpointOptions): TrainResult {
  const net = new Network({ inputSize: IMAGE_SIZE, hiddenSizes: config.hidden, outputSize: 10 });
  net.initialize(new Rng(config.seed));
  const order = new Rng(config.seed + 1);
  const { optimizer, inner, ema } = runOptimizer(config);
  // A search run gets the training digits only (fit / validation), never data.test.
  const { train: trainSet, test } = dataFor(config, data);
  const batch = config.batch;
  const stepsPerEpoch = Math.floor(trainSet.count / batch);
  const x = new Float32Array(batch * IMAGE_SIZE);
  const labels = new Uint8Array(batch);
  let indices = Uint32Array.from({ length: trainSet.count }, (_, i) => i);
  let losses: number[] = [];
  let testAccuracy: number[] = [];
  let evalLoss: number[] = [];
  let emaCurves: EmaCurves | undefined = ema === undefined ? undefined : { decay: ema.decay, testAccuracy: [], evalLoss: [] };
  let optimizerTime = 0;
  let secondsBefore = 0;
  let firstEpoch = 0;
  let firstStep = 0;
  const resume = checkpoints?.from;
  if (resume !== undefined) {
    const flat = net.store.view(0, 0, net.store.regionLength);
    if (resume.params.length !== flat.length || resume.indices.length !== indices.length) {
      throw new Error(`checkpoint of ${config.optimizer} does not fit this network or data set`);
    }
    flat.set(resume.params);
    // A diverged run's checkpoint is its last (finished): nothing steps again, and its
    // state may hold the overflow of the failed step, which loadStateDict refuses.
    if (resume.diverged === undefined) optimizer.loadStateDict(resume.optimizer);
    order.state.set(resume.rng);
    indices = resume.indices.slice();
    losses = resume.losses.slice();
    testAccuracy = resume.testAccuracy.slice();
    evalLoss = resume.evalLoss.slice();
    if (emaCurves !== undefined) emaCurves = { decay: emaCurves.decay, testAccuracy: resume.ema!.testAccuracy.slice(), evalLoss: resume.ema!.evalLoss.slice() };
    secondsBefore = resume.seconds;
    optimizerTime = resume.optimizerSeconds * 1000;
    firstEpoch = resume.epoch;
    firstStep = resume.step;
  }
  let diverged = resume?.diverged;
  const start = performance.now();
  const snapshot = (identity: CheckpointOptions['identity'], epoch: number, step: number, finished: boolean): Checkpoint => ({
    ...identity,
    config,
    epoch,
    step,
    rng: Array.from(order.state),
    indices: indices.slice(),
    params: Float32Array.from(net.store.view(0, 0, net.store.regionLength)),
    optimizer: optimizer.stateDict(),
    losses: losses.slice(),
    testAccuracy: testAccuracy.slice(),
    evalLoss: evalLoss.slice(),
    ...(emaCurves ? { ema: { decay: emaCurves.decay, testAccuracy: emaCurves.testAccuracy.slice(), evalLoss: emaCurves.evalLoss.slice() } } : {}),
    seconds: secondsBefore + (performance.now() - start) / 1000,
    optimizerSeconds: optimizerTime / 1000,
    finished,
    ...(diverged ? { diverged } : {}),
  });
  training: for (let epoch = firstEpoch; epoch < config.epochs && !(resume?.finished ?? false); epoch++) {
    // A resumed epoch keeps the order it had; a new one shuffles (the RNG state is saved).
    if (epoch !== firstEpoch || firstStep === 0) order.shuffle(indices);
    for (let step = epoch === firstEpoch ? firstStep : 0; step < stepsPerEpoch; step++) {
      for (let r = 0; r < batch; r++) {
        const source = indices[step * batch + r]!;
        x.set(trainSet.images.subarray(source * IMAGE_SIZE, (source + 1) * IMAGE_SIZE), r * IMAGE_SIZE);
        labels[r] = trainSet.labels[source]!;
      }
      const loss = net.gradient(x, labels, 0, batch);
      const t = performance.now();
      try {
        optimizer.update(net.store.params, net.store.grads);
      } catch (error) {
        // A rate too large for this problem: the step overflowed (or the weights it left
        // make the next gradient overflow). The run stops and is reported as diverged; any
        // other error is a bug and propagates.
        if (!(error instanceof UpdateError)) throw error;
        optimizerTime += performance.now() - t;
        diverged = { step: epoch * stepsPerEpoch + step + 1, epoch: epoch + 1, message: error.message.split('\n')[0]! };
        if (checkpoints && checkpoints.every > 0) checkpoints.save(snapshot(checkpoints.identity, epoch, step, true));
        break training;
      }
      optimizerTime += performance.now() - t;
      losses.push(loss);
      if (step % 10 === 0 || step === stepsPerEpoch - 1) progress(epoch, step + 1, stepsPerEpoch, loss);
      const done = epoch * stepsPerEpoch + step + 1;
      // A checkpoint between steps of an epoch; the end-of-epoch one follows the evaluation.
      if (checkpoints && checkpoints.every > 0 && done % checkpoints.every === 0 && step + 1 < stepsPerEpoch) {
        checkpoints.save(snapshot(checkpoints.identity, epoch, step + 1, false));
      }
    }
    // Schedule-Free evaluates at x (the average) and trains at y: the parameters move to x
    // for the evaluation and back before the checkpoint, which is so always in train mode.
    inner.eval?.(net.store.params);
    const evaluation = net.evaluate(test.images, test.labels, 0, test.count);
    inner.train?.(net.store.params);
    testAccuracy.push(evaluation.accuracy);
    evalLoss.push(evaluation.loss);
    // The averaged weights, swapped in for their evaluation and back, bit for bit. For
    // schedulefree-adamw they are the average of y, the weights it steps (EMA averages
    // the params after each update).
    if (ema !== undefined && emaCurves !== undefined) {
      ema.swap(net.store.params);
      const averaged = net.evaluate(test.images, test.labels, 0, test.count);
      ema.swap(net.store.params);
      emaCurves.testAccuracy.push(averaged.accuracy);
      emaCurves.evalLoss.push(averaged.loss);
    }
    if (checkpoints && checkpoints.every > 0) checkpoints.save(snapshot(checkpoints.identity, epoch + 1, 0, epoch + 1 === config.epochs));
  }
  const seconds = secondsBefore + (performance.now() - start) / 1000;
  const lastEpoch = losses.slice(-stepsPerEpoch);
  const stopped: { diverged?: Divergence } = diverged ? { diverged } : {};
  return {
    name: config.optimizer,
    lr: config.lr,
    losses,
    testAccuracy,
    evalLoss,
    // A diverged run has no final training loss: NaN (null in summary.json).
    trainLoss: diverged ? NaN : lastEpoch.reduce((a, b) => a + b, 0) / Math.max(1, lastEpoch.length),
    seconds,
    optimizerSeconds: optimizerTime / 1000,
    steps: losses.length,
    samplesPerSecond: (losses.length * batch) / seconds,
    ...(emaCurves ? { ema: emaCurves } : {}),
    ...stopped,
  };
}
