/**
 * One table of every rule and variant the library ships, with the settings the
 * convergence suite uses on each standard problem. Tests iterate over it, so a new
 * rule or variant added here is tested everywhere at once.
 */
import { AdaGrad, Adam, AdamW, cosineDecay, Momentum, NAdam, Nesterov, RMSProp, SGD, type LearningRate } from 'nesterov';
import type { Optimizer } from 'nesterov';
import { Adadelta, Adamax, RAdam, Rprop } from 'nesterov';
import { ScheduleFreeAdamW, ScheduleFreeSGD } from 'nesterov';
import { LAMB, Lion, QHM } from 'nesterov';
import { NAdamW } from 'nesterov';
import { Adan, QHAdam } from 'nesterov';
import { DAdaptAdamW, Prodigy } from 'nesterov';
import { Adafactor } from 'nesterov';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a table over differently-typed optimizers
export type AnyOptimizer = Optimizer<any, any, any>;

export type ProblemName = 'quadratic' | 'book' | 'rosenbrock';

export interface Entry {
  /** 'Nesterov/book' etc. */
  id: string;
  /** Builds the optimizer with an lr (number or schedule) and extra options. */
  make: (lr: LearningRate, extra?: Record<string, unknown>) => AnyOptimizer;
  /** Per problem: the lr (a schedule where a constant lr would only hover) and the step budget. */
  settings: Record<ProblemName, { lr: LearningRate; steps: number }>;
}

const decay = (lr: number, steps: number) => cosineDecay({ lr, steps, minLr: lr / 1000 });

export const REGISTRY: Entry[] = [
  {
    id: 'SGD',
    make: (lr, o) => new SGD({ lr, ...o }),
    settings: { quadratic: { lr: 0.1, steps: 300 }, book: { lr: 0.9, steps: 300 }, rosenbrock: { lr: 0.001, steps: 60000 } },
  },
  ...(['classic', 'pytorch'] as const).map((variant) => ({
    id: `Momentum/${variant}`,
    make: (lr: LearningRate, o?: Record<string, unknown>) => new Momentum({ lr, momentum: 0.9, variant, ...o }),
    settings: { quadratic: { lr: 0.05, steps: 300 }, book: { lr: 0.1, steps: 300 }, rosenbrock: { lr: 0.0005, steps: 20000 } },
  })),
  ...(['nag', 'pytorch', 'book'] as const).map((variant) => ({
    id: `Nesterov/${variant}`,
    make: (lr: LearningRate, o?: Record<string, unknown>) => new Nesterov({ lr, momentum: 0.9, variant, ...o }),
    settings: { quadratic: { lr: 0.05, steps: 300 }, book: { lr: 0.1, steps: 300 }, rosenbrock: { lr: 0.0005, steps: 20000 } },
  })),
  ...(['pytorch', 'book'] as const).map((variant) => ({
    id: `AdaGrad/${variant}`,
    make: (lr: LearningRate, o?: Record<string, unknown>) => new AdaGrad({ lr, variant, ...o }),
    settings: { quadratic: { lr: 0.5, steps: 2000 }, book: { lr: 1.5, steps: 2000 }, rosenbrock: { lr: 0.5, steps: 20000 } },
  })),
  ...(['pytorch', 'book'] as const).map((variant) => ({
    id: `RMSProp/${variant}`,
    make: (lr: LearningRate, o?: Record<string, unknown>) => new RMSProp({ lr, variant, ...o }),
    settings: {
      quadratic: { lr: decay(0.05, 2000), steps: 2000 },
      book: { lr: decay(0.1, 2000), steps: 2000 },
      rosenbrock: { lr: decay(0.005, 20000), steps: 20000 },
    },
  })),
  {
    id: 'RMSProp/centered+momentum',
    make: (lr, o) => new RMSProp({ lr, centered: true, momentum: 0.5, ...o }),
    settings: {
      quadratic: { lr: decay(0.05, 2000), steps: 2000 },
      book: { lr: decay(0.1, 2000), steps: 2000 },
      rosenbrock: { lr: decay(0.002, 20000), steps: 20000 },
    },
  },
  ...(
    [
      ['Adam/pytorch', (lr: LearningRate, o?: Record<string, unknown>) => new Adam({ lr, ...o })],
      ['Adam/book', (lr: LearningRate, o?: Record<string, unknown>) => new Adam({ lr, variant: 'book', ...o })],
      ['Adam/amsgrad', (lr: LearningRate, o?: Record<string, unknown>) => new Adam({ lr, amsgrad: true, ...o })],
      ['AdamW', (lr: LearningRate, o?: Record<string, unknown>) => new AdamW({ lr, weightDecay: 0, ...o })],
      ['NAdam', (lr: LearningRate, o?: Record<string, unknown>) => new NAdam({ lr, ...o })],
    ] as const
  ).map(([id, make]) => ({
    id,
    make,
    settings: {
      quadratic: { lr: decay(0.1, 2000), steps: 2000 },
      book: { lr: decay(0.3, 2000), steps: 2000 },
      rosenbrock: { lr: decay(0.02, 20000), steps: 20000 },
    },
  })),
  // PyTorch 1.13 parity rules.
  {
    id: 'RAdam',
    make: (lr, o) => new RAdam({ lr, ...o }),
    // Rosenbrock: RAdam's first steps (rho_t <= 5) are plain momentum steps on a gradient
    // of hundreds, so its lr is that of the momentum rules, not Adam's.
    settings: {
      quadratic: { lr: decay(0.1, 2000), steps: 2000 },
      book: { lr: decay(0.3, 2000), steps: 2000 },
      rosenbrock: { lr: decay(0.003, 20000), steps: 20000 },
    },
  },
  {
    id: 'Adamax',
    make: (lr, o) => new Adamax({ lr, ...o }),
    settings: {
      quadratic: { lr: decay(0.1, 2000), steps: 2000 },
      book: { lr: decay(0.3, 2000), steps: 2000 },
      rosenbrock: { lr: decay(0.03, 20000), steps: 20000 },
    },
  },
  {
    id: 'Adadelta',
    make: (lr, o) => new Adadelta({ lr, ...o }),
    settings: {
      quadratic: { lr: decay(1, 2000), steps: 2000 },
      book: { lr: decay(3, 2000), steps: 2000 },
      rosenbrock: { lr: decay(0.3, 20000), steps: 20000 },
    },
  },
  {
    id: 'Rprop',
    // lr is only the first step size. stepSizeMin 1e-9: with torch's 1e-6 the steps along
    // Rosenbrock's narrow valley stall 1e-3 from the minimizer.
    make: (lr, o) => new Rprop({ lr, stepSizeMin: 1e-9, ...o }),
    settings: {
      quadratic: { lr: 0.01, steps: 2000 },
      book: { lr: 0.01, steps: 2000 },
      rosenbrock: { lr: 0.01, steps: 20000 },
    },
  },
  // Schedule-Free: the params hold y while training; the suites check y.
  {
    id: 'ScheduleFreeSGD',
    make: (lr, o) => new ScheduleFreeSGD({ lr, ...o }),
    // Rosenbrock: measured distance 5e-8 after 80000 steps at lr 0.006 (3e-6 after 60000).
    settings: {
      quadratic: { lr: 0.5, steps: 2000 },
      book: { lr: 1, steps: 2000 },
      rosenbrock: { lr: 0.006, steps: 80000 },
    },
  },
  {
    id: 'ScheduleFreeAdamW',
    make: (lr, o) => new ScheduleFreeAdamW({ lr, ...o }),
    settings: {
      quadratic: { lr: 0.1, steps: 2000 },
      book: { lr: decay(0.3, 2000), steps: 2000 },
      rosenbrock: { lr: decay(0.03, 20000), steps: 20000 },
    },
  },
  // Lion: each element moves by exactly lr, so the lr decays to reach the minimizer.
  {
    id: 'Lion',
    make: (lr, o) => new Lion({ lr, ...o }),
    settings: {
      quadratic: { lr: decay(0.03, 2000), steps: 2000 },
      book: { lr: decay(0.03, 2000), steps: 2000 },
      rosenbrock: { lr: decay(0.003, 20000), steps: 20000 },
    },
  },
  // LAMB: the trust ratio scales each parameter's step to lr times its norm.
  {
    id: 'LAMB',
    make: (lr, o) => new LAMB({ lr, ...o }),
    settings: {
      quadratic: { lr: decay(0.1, 2000), steps: 2000 },
      book: { lr: decay(0.3, 2000), steps: 2000 },
      rosenbrock: { lr: decay(0.02, 20000), steps: 20000 },
    },
  },
  // QHM: dampened momentum, so its lr is momentum's divided by 1 - beta.
  {
    id: 'QHM',
    make: (lr, o) => new QHM({ lr, momentum: 0.9, nu: 0.7, ...o }),
    settings: { quadratic: { lr: 0.5, steps: 300 }, book: { lr: 1, steps: 300 }, rosenbrock: { lr: 0.005, steps: 20000 } },
  },
  // Adan and QHAdam: normalised steps, so Adam's settings.
  ...(
    [
      ['Adan', (lr: LearningRate, o?: Record<string, unknown>) => new Adan({ lr, ...o })],
      ['QHAdam', (lr: LearningRate, o?: Record<string, unknown>) => new QHAdam({ lr, ...o })],
    ] as const
  ).map(([id, make]) => ({
    id,
    make,
    settings: {
      quadratic: { lr: decay(0.1, 2000), steps: 2000 },
      book: { lr: decay(0.3, 2000), steps: 2000 },
      rosenbrock: { lr: decay(0.02, 20000), steps: 20000 },
    },
  })),
  // Prodigy, D-Adaptation: lr multiplies the learned step size; 1 decayed to 0 is the papers' recommendation.
  {
    id: 'Prodigy',
    make: (lr, o) => new Prodigy({ lr, ...o }),
    settings: {
      quadratic: { lr: decay(1, 2000), steps: 2000 },
      book: { lr: decay(1, 2000), steps: 2000 },
      rosenbrock: { lr: decay(1, 20000), steps: 20000 },
    },
  },
  {
    id: 'DAdaptAdamW',
    make: (lr, o) => new DAdaptAdamW({ lr, ...o }),
    settings: {
      quadratic: { lr: decay(1, 2000), steps: 2000 },
      book: { lr: decay(1, 2000), steps: 2000 },
      rosenbrock: { lr: decay(1, 20000), steps: 20000 },
    },
  },
  // Adafactor: the lr absolute (the parameter scale would shrink the steps near a
  // minimizer at 0 to lr / 1000); these problems are vectors, so v is kept whole. Any
  // matrix of 4 x 4 or more that a suite gives a shape (a ParamStore's) is factored.
  {
    id: 'Adafactor',
    make: (lr, o) => new Adafactor({ lr, multiplyByParameterScale: false, minDimSizeToFactor: 4, ...o }),
    settings: {
      quadratic: { lr: decay(0.1, 2000), steps: 2000 },
      book: { lr: decay(0.3, 2000), steps: 2000 },
      rosenbrock: { lr: decay(0.02, 20000), steps: 20000 },
    },
  },
  // NAdamW: NAdam's settings; weightDecay 0 (as AdamW's row), so the minimizer is the problem's.
  {
    id: 'NAdamW',
    make: (lr, o) => new NAdamW({ lr, weightDecay: 0, ...o }),
    settings: {
      quadratic: { lr: decay(0.1, 2000), steps: 2000 },
      book: { lr: decay(0.3, 2000), steps: 2000 },
      rosenbrock: { lr: decay(0.02, 20000), steps: 20000 },
    },
  },
];
