/** The optimizers of the main job, by CLI name, with the learning rates it uses by default. */
import { AdaGrad, Adam, AdamW, Momentum, NAdam, Nesterov, RMSProp, SGD, type Optimizer } from 'nesterov';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a table over differently-typed optimizers
export type AnyOptimizer = Optimizer<any, any, any>;

export interface OptimizerEntry {
  /** For MNIST training (a 784-100-10 network, batch 100). */
  lr: number;
  /** For the panels on the book's function (the book's chapter 6 picture uses these). */
  pathLr: number;
  /** For the panels on Rosenbrock, whose curvature near the valley is ~1000 times larger. */
  rosenbrockLr: number;
  make(lr: number): AnyOptimizer;
}

export const OPTIMIZERS: Record<string, OptimizerEntry> = {
  sgd: { lr: 0.1, pathLr: 0.95, rosenbrockLr: 0.001, make: (lr) => new SGD({ lr }) },
  momentum: { lr: 0.05, pathLr: 0.1, rosenbrockLr: 0.0005, make: (lr) => new Momentum({ lr, momentum: 0.9 }) },
  nesterov: { lr: 0.05, pathLr: 0.1, rosenbrockLr: 0.0005, make: (lr) => new Nesterov({ lr, momentum: 0.9 }) },
  'nesterov-book': { lr: 0.05, pathLr: 0.1, rosenbrockLr: 0.0005, make: (lr) => new Nesterov({ lr, momentum: 0.9, variant: 'book' }) },
  adagrad: { lr: 0.05, pathLr: 1.5, rosenbrockLr: 0.5, make: (lr) => new AdaGrad({ lr }) },
  rmsprop: { lr: 0.001, pathLr: 0.1, rosenbrockLr: 0.005, make: (lr) => new RMSProp({ lr }) },
  adam: { lr: 0.001, pathLr: 0.3, rosenbrockLr: 0.02, make: (lr) => new Adam({ lr }) },
  adamw: { lr: 0.001, pathLr: 0.3, rosenbrockLr: 0.02, make: (lr) => new AdamW({ lr, weightDecay: 0.01 }) },
  nadam: { lr: 0.002, pathLr: 0.3, rosenbrockLr: 0.02, make: (lr) => new NAdam({ lr }) },
};

export const OPTIMIZER_NAMES = Object.keys(OPTIMIZERS);
