/** The optimizers of the main job, by CLI name, with the learning rates it uses by default. */
import {
  AdaGrad,
  Adam,
  AdamW,
  Lion,
  Momentum,
  Muon,
  NAdam,
  Nesterov,
  partition,
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
  sgd: { lr: 0.1, pathLr: 0.95, rosenbrockLr: 0.001, make: (lr) => new SGD({ lr }) },
  momentum: { lr: 0.05, pathLr: 0.1, rosenbrockLr: 0.0005, make: (lr) => new Momentum({ lr, momentum: 0.9 }) },
  nesterov: { lr: 0.05, pathLr: 0.1, rosenbrockLr: 0.0005, make: (lr) => new Nesterov({ lr, momentum: 0.9 }) },
  'nesterov-book': { lr: 0.05, pathLr: 0.1, rosenbrockLr: 0.0005, make: (lr) => new Nesterov({ lr, momentum: 0.9, variant: 'book' }) },
  adagrad: { lr: 0.05, pathLr: 1.5, rosenbrockLr: 0.5, make: (lr) => new AdaGrad({ lr }) },
  rmsprop: { lr: 0.001, pathLr: 0.1, rosenbrockLr: 0.005, make: (lr) => new RMSProp({ lr }) },
  adam: { lr: 0.001, pathLr: 0.3, rosenbrockLr: 0.02, make: (lr) => new Adam({ lr }) },
  adamw: { lr: ADAMW_LR, pathLr: 0.3, rosenbrockLr: 0.02, make: (lr) => new AdamW({ lr, weightDecay: ADAMW_WEIGHT_DECAY }) },
  nadam: { lr: 0.002, pathLr: 0.3, rosenbrockLr: 0.02, make: (lr) => new NAdam({ lr }) },
  // Every element moves by exactly lr a step: the paper's advice is an lr 3-10x smaller
  // than AdamW's and a weight decay as much larger (lr * wd as AdamW's 1e-5).
  lion: { lr: 0.0003, pathLr: 0.2, rosenbrockLr: 0.002, make: (lr) => new Lion({ lr, weightDecay: 0.03 }) },
  // The authors' defaults (lr 0.0025, no warmup, no decay).
  'schedulefree-adamw': {
    lr: 0.0025,
    pathLr: 0.5,
    rosenbrockLr: 0.05,
    make: (lr) => new ScheduleFreeAdamW({ lr }),
    panelNote: 'The schedulefree-adamw panels draw x, the average its eval() gives (the point it is evaluated at), not y where the gradients are taken.',
  },
  // Muon for the hidden matrix W1 (lr is Muon's), AdamW at the adamw row's rate for the
  // biases and the output layer W2, as Muon's authors recommend.
  muon: {
    lr: 0.02,
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
};

export const OPTIMIZER_NAMES = Object.keys(OPTIMIZERS);

/** Whether `name` is one of the optimizers: an own key (`name in OPTIMIZERS` is true for 'constructor' too). */
export function isOptimizerName(name: string): boolean {
  return Object.hasOwn(OPTIMIZERS, name);
}
