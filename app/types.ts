/**
 * The types the main job's modules share (a run's configuration, its result, its
 * checkpoint), in a module of their own so that train.ts and checkpoint.ts, which both
 * need them, do not import each other.
 */
import type { OptimizerStateDict, PartitionStateDict, WrapperStateDict } from 'nesterov';

export interface TrainConfig {
  optimizer: string;
  lr: number;
  epochs: number;
  batch: number;
  seed: number;
  hidden: number[];
  /**
   * Set only for a run of the learning-rate search: how many of the training digits
   * (the last ones) it holds out as its validation set; it trains on the others and
   * never reads the test set (see dataFor in tune.ts).
   */
  validation?: number;
  /**
   * Set with --ema: the decay of an exponential moving average of the weights (the
   * library's EMA wrapper around the optimizer), evaluated after each epoch beside them.
   */
  ema?: number;
}

/** Where a run stopped because an optimizer step overflowed (the optimizer threw an UpdateError). */
export interface Divergence {
  /** The step that failed, counted from 1 over the whole run (steps - 1 were done). */
  step: number;
  /** Its epoch, from 1. */
  epoch: number;
  /** The optimizer's message (which parameter, which value). */
  message: string;
}

export interface TrainResult {
  name: string;
  lr: number;
  /** Mean training loss of every step. */
  losses: number[];
  /** Accuracy on the evaluation set (the test set; a search run's validation set) after each epoch. */
  testAccuracy: number[];
  /** Mean cross-entropy on the same evaluation set after each epoch. */
  evalLoss: number[];
  trainLoss: number;
  seconds: number;
  optimizerSeconds: number;
  steps: number;
  samplesPerSecond: number;
  /** Set when the run diverged: it stopped there; the curves hold the epochs and steps before it. */
  diverged?: Divergence;
  /** With --ema: the averaged weights' accuracy and loss on the same evaluation set after each epoch. */
  ema?: EmaCurves;
}

/** The evaluation of a run's averaged weights (--ema), after each epoch. */
export interface EmaCurves {
  decay: number;
  testAccuracy: number[];
  evalLoss: number[];
}

export type Progress = (epoch: number, step: number, stepsPerEpoch: number, loss: number) => void;

/** What a checkpoint belongs to: `--resume` refuses one of another run or another data split. */
export interface RunIdentity {
  /** The run's key (its file name without .json: sgd, sgd.run-1, sgd.search-1-3, sgd.tuned-0). */
  runKey: string;
  /** SHA-256 (hex) of the training and test digits in order: the data and its split (see dataSha256 in checkpoint.ts). */
  dataSha256: string;
}

export interface CheckpointOptions {
  /** Save every this many steps (0: never). */
  every: number;
  /** Recorded in every checkpoint saved. */
  identity: RunIdentity;
  save: (checkpoint: Checkpoint) => void;
  /** Continue from here. */
  from?: Checkpoint;
}

export interface Checkpoint extends RunIdentity {
  config: TrainConfig;
  /** Where the next step starts. */
  epoch: number;
  step: number;
  rng: number[];
  indices: Uint32Array;
  params: Float32Array;
  /** One optimizer's state, or a partition's (muon: Muon's and AdamW's); with --ema, the EMA wrapper's around either. */
  optimizer: OptimizerStateDict | PartitionStateDict | WrapperStateDict;
  losses: number[];
  testAccuracy: number[];
  evalLoss: number[];
  /** With --ema: the averaged weights' curves so far. */
  ema?: EmaCurves;
  seconds: number;
  optimizerSeconds: number;
  /** True at the end of the last epoch, and for a run that diverged (it does not go on). */
  finished: boolean;
  /** Set when the run diverged; epoch and step are then the position of the step that failed. */
  diverged?: Divergence;
}

export interface Stats {
  /** How many runs. */
  n: number;
  mean: number;
  /** Sample standard deviation (divisor n - 1); null for a single run. */
  std: number | null;
  /** mean -/+ t(0.975, n - 1) * std / sqrt(n); null for a single run. */
  ci95: [number, number] | null;
}

export interface SearchPoint {
  lr: number;
  /** Mean cross-entropy on the validation digits after the search's last epoch (null: diverged). */
  validationLoss: number | null;
  /** 1: the first grid, 2: the refinement. */
  stage: 1 | 2;
}

/** What the learning-rate search of one optimizer found (summary.json's `search`). */
export interface SearchSummary {
  /** The rate the grid is centred on: the default, or --lr's. */
  defaultLr: number;
  epochs: number;
  /** Training digits the search trains on, and the (last) ones it scores on. */
  fitDigits: number;
  validationDigits: number;
  /** Every rate tried, by increasing lr. */
  points: SearchPoint[];
  chosenLr: number;
}

/** The full runs of one optimizer in a --seeds / --tune comparison. */
export interface RunGroup {
  name: string;
  lr: number;
  runs: TrainResult[];
  /** The seed of each run. */
  seeds: number[];
  /** Over the runs that did not diverge; null when every run diverged. */
  testAccuracy: Stats | null;
  trainLoss: Stats | null;
  /** With --ema: the final test accuracy of the averaged weights, over the same runs. */
  emaTestAccuracy?: Stats | null;
  search?: SearchSummary;
  /** Under --tune, set for a learning-rate-free optimizer: its rate was not searched (it trains at its lr, 1 by default). */
  learningRateFree?: boolean;
}
