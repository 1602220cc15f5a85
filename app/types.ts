/**
 * The types the main job's modules share (a run's configuration, its result, its
 * checkpoint), in a module of their own so that train.ts and checkpoint.ts, which both
 * need them, do not import each other.
 */
import type { OptimizerStateDict } from 'nesterov';

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

export interface CheckpointOptions {
  /** Save every this many steps (0: never). */
  every: number;
  save: (checkpoint: Checkpoint) => void;
  /** Continue from here. */
  from?: Checkpoint;
}

export interface Checkpoint {
  config: TrainConfig;
  /** Where the next step starts. */
  epoch: number;
  step: number;
  rng: number[];
  indices: Uint32Array;
  params: Float32Array;
  optimizer: OptimizerStateDict;
  losses: number[];
  testAccuracy: number[];
  seconds: number;
  optimizerSeconds: number;
  finished: boolean;
}
