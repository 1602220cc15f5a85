/** The optimizers of the main job, by CLI name, with the learning rates it uses by default. */
import {
  AdaGrad,
  Adafactor,
  Adam,
  AdamW,
  Adan,
  DAdaptAdamW,
  Lion,
  Momentum,
  Muon,
  NAdam,
  NAdamW,
  Nesterov,
  partition,
  Prodigy,
  QHAdam,
  QHM,
  RMSProp,
  ScheduleFreeAdamW,
  SGD,
  type ParamSet,
} from 'nesterov';
import type { Checkpoint } from './types.ts';

/** What a run saves of its optimizer: one optimizer's state, or a partition's (muon: Muon's and AdamW's). */
export type RunOptimizerState = Checkpoint['optimizer'];

/**
 * What the main job needs of an optimizer: an `Optimizer` of the library, or a
 * `partition` of them (muon). `eval` / `train` are Schedule-Free's switch: the loop
 * calls `eval(params)` before it evaluates (so the accuracy is that of x, the average)
 * and `train(params)` after, so every step and every checkpoint sees y.
 */
export interface RunOptimizer {
  update(params: ParamSet, grads: ParamSet): boolean;
  stateDict(): RunOptimizerState;
  loadStateDict(value: unknown): void;
  eval?(params: ParamSet): void;
  train?(params: ParamSet): void;
}

export interface OptimizerEntry {
  /** For MNIST training (a 784-100-10 network, batch 100). */
  lr: number;
  /**
   * Whether `npm start` trains it without `--optimizers` (the default set,
   * DEFAULT_OPTIMIZERS). The others are offered by name only: the default run has a
   * time budget, and each entry costs a run of every epoch.
   */
  inDefaultSet: boolean;
  /**
   * A learning-rate-free optimizer (it learns its step size; lr is a multiplier on it,
   * 1 as its authors use it): `--tune` does not search its rate, its runs train at lr
   * (1, or --lr's) beside the tuned ones.
   */
  learningRateFree?: boolean;
  /** For the panels on the book's function (the book's chapter 6 picture uses these). */
  pathLr: number;
  /** For the panels on Rosenbrock, whose curvature near the valley is ~1000 times larger. */
  rosenbrockLr: number;
  make(lr: number): RunOptimizer;
  /**
   * The optimizer of the 2-D panels when it is not `make`'s. muon's: Muon alone, the
   * point (x, y) as a 1 x 2 matrix (the partition would send it to AdamW).
   */
  makeForPanels?(lr: number): RunOptimizer;
  /** What the panels of this optimizer show, when it needs saying (a sentence under them). */
  panelNote?: string;
  /** A run's CPU time relative to SGD's (default 1): the main job starts the costliest runs first. */
  cost?: number;
}

/** The adamw row's rate and decay: muon's AdamW part (b1, W2, b2) uses them too. */
const ADAMW_LR = 0.001;
const ADAMW_WEIGHT_DECAY = 0.01;

/** The hidden matrix of the 784-100-10 network: Muon's part of the muon entry. */
const MUON_PARAMS: ReadonlySet<string> = new Set(['W1']);

export const OPTIMIZERS: Record<string, OptimizerEntry> = {
  sgd: { lr: 0.1, inDefaultSet: true, pathLr: 0.95, rosenbrockLr: 0.001, make: (lr) => new SGD({ lr }) },
  momentum: { lr: 0.05, inDefaultSet: true, pathLr: 0.1, rosenbrockLr: 0.0005, make: (lr) => new Momentum({ lr, momentum: 0.9 }) },
  nesterov: { lr: 0.05, inDefaultSet: true, pathLr: 0.1, rosenbrockLr: 0.0005, make: (lr) => new Nesterov({ lr, momentum: 0.9 }) },
  'nesterov-book': { lr: 0.05, inDefaultSet: true, pathLr: 0.1, rosenbrockLr: 0.0005, make: (lr) => new Nesterov({ lr, momentum: 0.9, variant: 'book' }) },
  adagrad: { lr: 0.05, inDefaultSet: true, pathLr: 1.5, rosenbrockLr: 0.5, make: (lr) => new AdaGrad({ lr }) },
  rmsprop: { lr: 0.001, inDefaultSet: true, pathLr: 0.1, rosenbrockLr: 0.005, make: (lr) => new RMSProp({ lr }) },
  adam: { lr: 0.001, inDefaultSet: true, pathLr: 0.3, rosenbrockLr: 0.02, make: (lr) => new Adam({ lr }) },
  adamw: { lr: ADAMW_LR, inDefaultSet: true, pathLr: 0.3, rosenbrockLr: 0.02, make: (lr) => new AdamW({ lr, weightDecay: ADAMW_WEIGHT_DECAY }) },
  nadam: { lr: 0.002, inDefaultSet: true, pathLr: 0.3, rosenbrockLr: 0.02, make: (lr) => new NAdam({ lr }) },
  // NAdam's rate, with AdamW's decoupled decay (0.01): the AlgoPerf NAdamW baseline's form.
  nadamw: { lr: 0.002, inDefaultSet: true, pathLr: 0.3, rosenbrockLr: 0.02, make: (lr) => new NAdamW({ lr, weightDecay: ADAMW_WEIGHT_DECAY }) },
  // Every element moves by exactly lr a step: the paper's advice is an lr 3-10x smaller
  // than AdamW's and a weight decay as much larger (lr * wd as AdamW's 1e-5).
  lion: { lr: 0.0003, inDefaultSet: true, pathLr: 0.2, rosenbrockLr: 0.002, make: (lr) => new Lion({ lr, weightDecay: 0.03 }) },
  // The authors' defaults (lr 0.0025, no warmup, no decay).
  'schedulefree-adamw': {
    lr: 0.0025,
    inDefaultSet: true,
    pathLr: 0.5,
    rosenbrockLr: 0.05,
    make: (lr) => new ScheduleFreeAdamW({ lr }),
    panelNote: 'The schedulefree-adamw panels draw x, the average its eval() gives (the point it is evaluated at), not y where the gradients are taken.',
  },
  // Muon for the hidden matrix W1 (lr is Muon's), AdamW at the adamw row's rate for the
  // biases and the output layer W2, as Muon's authors recommend.
  muon: {
    lr: 0.02,
    inDefaultSet: true,
    pathLr: 0.5,
    rosenbrockLr: 0.005,
    make: (lr) =>
      partition((name) => (MUON_PARAMS.has(name) ? 'muon' : 'adamw'), {
        muon: new Muon({ lr }),
        adamw: new AdamW({ lr: ADAMW_LR, weightDecay: ADAMW_WEIGHT_DECAY }),
      }),
    makeForPanels: (lr) => new Muon({ lr, shapes: { xy: [1, 2] } }),
    // Five Newton-Schulz steps on 784 x 100 take ~12 ms, as much again as the rest of a step.
    cost: 2,
    panelNote:
      'The muon panels run Muon alone on the point as a 1 x 2 matrix: orthogonalising a single row is normalising it, so each step has length lr times the quintic\'s gain (0.68 to 1.14) along the Nesterov momentum. In training, muon is Muon for W1 and AdamW for b1, W2 and b2.',
  },
  // Learning-rate free: lr 1 is the authors' (and optax's) multiplier on the step size
  // it learns, d. On the book's function, 30 steps are about the steps d takes to grow
  // from 1e-6: at lr 1 the path has barely left the start, at 3 it reaches the minimum.
  // On Rosenbrock (2000 steps) lr 1 overshoots the valley; 0.1 follows it to (1, 1).
  prodigy: {
    lr: 1,
    inDefaultSet: true,
    learningRateFree: true,
    pathLr: 3,
    rosenbrockLr: 0.1,
    make: (lr) => new Prodigy({ lr }),
    panelNote: 'prodigy starts from the estimate d = 1e-6: its first steps are too short to see, until d has grown to the scale of the function; then it steps as Adam at the rate it learned.',
  },
  // QHM at the authors' recommendation (momentum 0.999, nu 0.7, the library's defaults)
  // and lr 1, their example: QHM's buffer is normalised, so its lr is momentum SGD's
  // divided by 1 - beta.
  // On the panels (30 steps) the buffer of beta 0.999 holds a few percent of the
  // gradients: the step is mostly the 0.3 of the fresh gradient, hence the larger rate.
  qhm: { lr: 1, inDefaultSet: false, pathLr: 3, rosenbrockLr: 0.003, make: (lr) => new QHM({ lr }) },
  // The authors' lr 1e-3 and betas (0.98, 0.92, 0.99, the library's defaults) with their
  // usual weight decay 0.02 (decoupled, p <- p - lr wd p, as optax's).
  adan: { lr: 0.001, inDefaultSet: false, pathLr: 0.3, rosenbrockLr: 0.02, make: (lr) => new Adan({ lr, weightDecay: 0.02 }) },
  // The paper's recommended discounts nu1 0.7, nu2 1 with the beta1 0.995 it pairs them
  // with, and Adam's lr 1e-3.
  qhadam: { lr: 0.001, inDefaultSet: false, pathLr: 0.3, rosenbrockLr: 0.02, make: (lr) => new QHAdam({ lr, beta1: 0.995, nu1: 0.7, nu2: 1 }) },
  // Learning-rate free as prodigy: lr 1 (optax's default) multiplies the learned step.
  'dadapt-adamw': {
    lr: 1,
    inDefaultSet: false,
    learningRateFree: true,
    pathLr: 3,
    rosenbrockLr: 0.5,
    make: (lr) => new DAdaptAdamW({ lr }),
    panelNote: 'dadapt-adamw starts from the estimate d = 1e-6: its first steps are too short to see, until d has grown to the scale of the function.',
  },
  // The paper's relative step size is min(1e-2, 1/sqrt(t)): 1e-2 for the first 10,000
  // steps, which covers every step of the default run, so a constant lr 0.01 is it here
  // (relative to each tensor's rms, multiplyByParameterScale). The paper factors every
  // matrix; optax's default factors only those whose both sides reach 128, which neither
  // W1 (784 x 100) nor W2 (100 x 10) does, so minDimSizeToFactor 1 here: both are
  // factored, their shapes taken from the network's ParamStore.
  adafactor: { lr: 0.01, inDefaultSet: false, pathLr: 0.3, rosenbrockLr: 0.03, make: (lr) => new Adafactor({ lr, minDimSizeToFactor: 1 }) },
};

/** Every optimizer `--optimizers` takes, in the table's order. */
export const OPTIMIZER_NAMES = Object.keys(OPTIMIZERS);

/** The optimizers `npm start` trains when `--optimizers` is not given. */
export const DEFAULT_OPTIMIZERS = OPTIMIZER_NAMES.filter((name) => OPTIMIZERS[name]!.inDefaultSet);

/** Whether `name` is one of the optimizers: an own key (`name in OPTIMIZERS` is true for 'constructor' too). */
export function isOptimizerName(name: string): boolean {
  return Object.hasOwn(OPTIMIZERS, name);
}
