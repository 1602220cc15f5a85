/**
 * The optimizers test/webgpu-browser.test.ts runs on the GPU and on the wasm kernels:
 * every variant of every rule with a GPU kernel, with weight decay and `maximize` where
 * the rule has them, a schedule and an override (two runs of parameters, one dispatch
 * each) in some.
 */
import { cosineDecay, warmupCosineDecay } from 'nesterov';

export interface GpuCase {
  readonly name: string;
  readonly key: string;
  readonly options: Record<string, unknown>;
  /** `setHyperparameters` with these values before step 30, on both sides. */
  readonly setAt30?: Record<string, number>;
  /** Adds this times a direction fixed per parameter to every gradient: the parameters drift one way (a global rule's d then grows). */
  readonly drift?: number;
  /**
   * The sums over a parameter its step reads (LAMB 2: its norms), each a float32 tree on
   * the GPU against the CPU's float64: the bound's per-step term grows by this many tree
   * depths (test/webgpu-browser.test.ts says why).
   */
  readonly sums?: number;
}

/** An override of parameter 'b' splits the store into runs: w | b | c. */
const overrideB = { overrides: [{ params: 'b', lr: 0.003, weightDecay: 0 }] };

export const GPU_CASES: readonly GpuCase[] = [
  { name: 'sgd', key: 'sgd', options: { lr: 0.05, nonFinite: 'ignore' } },
  { name: 'sgd decay maximize schedule', key: 'sgd', options: { lr: cosineDecay({ lr: 0.05, steps: 100 }), weightDecay: 0.01, maximize: true } },
  { name: 'momentum classic', key: 'momentum', options: { lr: 0.01, momentum: 0.9, variant: 'classic', weightDecay: 0.001 } },
  { name: 'momentum pytorch', key: 'momentum', options: { lr: 0.01, momentum: 0.9, dampening: 0.1, variant: 'pytorch', ...overrideB } },
  { name: 'nesterov nag', key: 'nesterov', options: { lr: 0.01, momentum: (t: number) => Math.min(0.9, 0.5 + 0.01 * t), variant: 'nag', weightDecay: 0.001, ...overrideB } },
  { name: 'nesterov book', key: 'nesterov', options: { lr: 0.01, momentum: 0.9, variant: 'book', maximize: true } },
  { name: 'nesterov pytorch', key: 'nesterov', options: { lr: 0.01, momentum: 0.9, dampening: 0.2, variant: 'pytorch', weightDecay: 0.001 }, setAt30: { momentum: 0.5, lr: 0.02 } },
  { name: 'adam', key: 'adam', options: { lr: 0.01, ...overrideB } },
  { name: 'adam amsgrad decay', key: 'adam', options: { lr: 0.01, amsgrad: true, weightDecay: 0.01 } },
  { name: 'adam book maximize', key: 'adam', options: { lr: 0.01, variant: 'book', maximize: true, nonFinite: 'ignore' } },
  { name: 'adamw', key: 'adamw', options: { lr: cosineDecay({ lr: 0.01, steps: 100 }), weightDecay: 0.1 } },
  { name: 'adamw book amsgrad-free', key: 'adamw', options: { lr: 0.01, variant: 'book', weightDecay: 0.05, ...overrideB } },
  { name: 'adagrad', key: 'adagrad', options: { lr: 0.05, lrDecay: 0.01, initialAccumulatorValue: 0.1, weightDecay: 0.001 } },
  { name: 'adagrad book', key: 'adagrad', options: { lr: 0.05, variant: 'book', ...overrideB } },
  { name: 'rmsprop', key: 'rmsprop', options: { lr: 0.001, ...overrideB } },
  { name: 'rmsprop centered momentum', key: 'rmsprop', options: { lr: 0.001, centered: true, momentum: 0.9, weightDecay: 0.001 } },
  { name: 'rmsprop book maximize', key: 'rmsprop', options: { lr: 0.001, variant: 'book', maximize: true } },
  { name: 'nadam', key: 'nadam', options: { lr: 0.01, weightDecay: 0.001, ...overrideB }, setAt30: { beta2: 0.99 } },
  { name: 'radam', key: 'radam', options: { lr: 0.01, weightDecay: 0.001 } },
  { name: 'adamax', key: 'adamax', options: { lr: 0.01, maximize: true, ...overrideB } },
  { name: 'adadelta', key: 'adadelta', options: { lr: 1, weightDecay: 0.001 } },
  { name: 'rprop', key: 'rprop', options: { lr: 0.01, ...overrideB } },
  { name: 'schedulefree-sgd', key: 'schedulefree-sgd', options: { lr: 0.1, warmupSteps: 10, weightDecay: 0.001 } },
  { name: 'schedulefree-adamw', key: 'schedulefree-adamw', options: { lr: 0.01, warmupSteps: 10, weightDecay: 0.01, ...overrideB } },
  { name: 'lion', key: 'lion', options: { lr: 0.001, weightDecay: 0.1, ...overrideB } },
  { name: 'lion maximize', key: 'lion', options: { lr: 0.001, maximize: true } },
  { name: 'qhm', key: 'qhm', options: { lr: 0.1, momentum: 0.9, nu: 0.7, weightDecay: 0.001, ...overrideB } },
  { name: 'adan', key: 'adan', options: { lr: 0.01, weightDecay: 0.02, ...overrideB } },
  { name: 'qhadam', key: 'qhadam', options: { lr: 0.01, nu1: 0.7, nu2: 1, weightDecay: 0.001 } },
  { name: 'nadamw', key: 'nadamw', options: { lr: 0.01, weightDecay: 0.05 } },
  // Global rules (one estimate d over every parameter, reduced on the device): d is compared too.
  { name: 'prodigy', key: 'prodigy', options: {} },
  { name: 'prodigy drift', key: 'prodigy', options: {}, drift: 0.05 },
  { name: 'prodigy decay warmup schedule safeguardWarmup', key: 'prodigy', options: { lr: warmupCosineDecay({ lr: 1, warmupSteps: 10, decaySteps: 90 }), weightDecay: 0.01, safeguardWarmup: true }, drift: 0.5 },
  { name: 'prodigy maximize beta3 coef estimLr0 override', key: 'prodigy', options: { maximize: true, beta3: 0.99, estimLrCoef: 0.5, estimLr0: 1e-4, ...overrideB } },
  { name: 'dadapt-adamw', key: 'dadapt-adamw', options: {} },
  { name: 'dadapt-adamw drift', key: 'dadapt-adamw', options: {}, drift: 0.5 },
  { name: 'dadapt-adamw decay schedule', key: 'dadapt-adamw', options: { lr: cosineDecay({ lr: 1, steps: 100 }), weightDecay: 0.05 }, drift: 0.5 },
  { name: 'dadapt-adamw maximize beta1 estimLr0 override', key: 'dadapt-adamw', options: { maximize: true, beta1: 0.8, estimLr0: 1e-4, ...overrideB } },
  { name: 'lamb', key: 'lamb', options: { lr: 0.01 }, sums: 2 },
  { name: 'lamb decay', key: 'lamb', options: { lr: 0.01, weightDecay: 0.01 }, sums: 2, setAt30: { beta2: 0.99 } },
  { name: 'lamb maximize', key: 'lamb', options: { lr: 0.01, maximize: true, eps: 1e-3 }, sums: 2 },
  { name: 'lamb schedule override', key: 'lamb', options: { lr: cosineDecay({ lr: 0.02, steps: 100 }), weightDecay: 0.05, ...overrideB }, sums: 2 },
  // Adafactor: w (7 x 13) factored with minDimSizeToFactor <= 7 (rows the shorter), b and c
  // keep the full v; `shapes` makes c a 20 x 15 matrix (rows the longer). Its step reads
  // five sums: row and column sums of g^2, the sum of vRow, and those of u^2 and p^2.
  { name: 'adafactor factored', key: 'adafactor', options: { lr: 0.01, minDimSizeToFactor: 4 }, sums: 5, setAt30: { decayRate: 0.6 } },
  {
    name: 'adafactor relative step momentum, c 20 x 15',
    key: 'adafactor',
    options: { lr: (t: number) => Math.min(1e-2, 1 / Math.sqrt(t + 1)), minDimSizeToFactor: 4, momentum: 0.9, shapes: { c: [20, 15] }, weightDecayRate: 0.001 },
    sums: 5,
  },
  {
    name: 'adafactor fixed lr, no clipping, maximize',
    key: 'adafactor',
    options: { lr: 0.001, multiplyByParameterScale: false, clippingThreshold: null, maximize: true, minDimSizeToFactor: 4, decayOffset: 5, shapes: { c: [20, 15] } },
    sums: 5,
  },
  { name: 'adafactor unfactored clip 2 override', key: 'adafactor', options: { lr: 0.01, factored: false, clippingThreshold: 2, momentum: 0.5, overrides: [{ params: 'b', lr: 0.003 }] }, sums: 5 },
  { name: 'adafactor default (nothing factored at 128)', key: 'adafactor', options: { lr: 0.01 }, sums: 5 },
  // Decoupled weight decay on the rules whose decay is coupled by default: p (1 - lr wd) before the step.
  ...[
    ['sgd', {}],
    ['momentum', { momentum: 0.9, variant: 'classic' }],
    ['momentum', { momentum: 0.9, variant: 'pytorch' }],
    ['nesterov', { momentum: 0.9, variant: 'nag' }],
    ['nesterov', { momentum: 0.9, variant: 'book' }],
    ['nesterov', { momentum: 0.9, variant: 'pytorch' }],
    ['adagrad', {}],
    ['rmsprop', { momentum: 0.9 }],
    ['adam', {}],
    ['nadam', {}],
    ['radam', {}],
    ['adamax', {}],
    ['adadelta', { lr: 1 }],
    ['rprop', {}],
    ['qhm', {}],
    ['qhadam', {}],
  ].map(([key, options]): GpuCase => ({
    name: `${key as string} ${JSON.stringify(options)} decoupled`,
    key: key as string,
    options: { lr: 0.01, weightDecay: 0.05, decoupledWeightDecay: true, ...(options as object) },
  })),
];

/**
 * Where the refused-step contract plants a non-finite gradient, in the store of
 * test/webgpu-page.ts (w: 91 elements, b: 5, c: 300, at floats 0, 128 and 192 of the store
 * (256-byte alignment); one run of parameters: one scan and one step dispatch over all three): each class of position a scan or a kernel could get
 * wrong, with NaN, +Infinity and -Infinity.
 */
export interface PlantedGradient {
  readonly where: string;
  readonly param: 'w' | 'b' | 'c';
  readonly index: number;
  readonly value: number;
}

const PLACES: readonly [string, 'w' | 'b' | 'c', number][] = [
  ['the first element of the run', 'w', 0],
  ["the last element of the run, in the dispatch's last, partial workgroup", 'c', 299],
  ["in w's 4-wide SIMD tail (91 = 22 x 4 + 3), past w's last full 64", 'w', 89],
  ["b's last, alone in its SIMD tail (5 = 4 + 1)", 'b', 4],
  ["w's last, lane 2 of the scan's last vec4 of w (elements 88..91; 91 is padding)", 'w', 90],
  ['the first element of a later parameter in the run', 'b', 0],
  ['the first element of the last parameter in the run', 'c', 0],
  ["the last element of the dispatch's last full workgroup (c starts at float 192: 192 + 255 = 7 x 64 - 1)", 'c', 255],
  ["the first element of the dispatch's last, partial workgroup (492 elements = 7 x 64 + 44)", 'c', 256],
];

export const PLANTED: readonly PlantedGradient[] = PLACES.flatMap(([where, param, index]) =>
  [NaN, Infinity, -Infinity].map((value) => ({ where, param, index, value })),
);

/**
 * The optimizers the refused-step contract runs with each planted gradient: Adam (one
 * kernel call per run); LAMB and Adafactor (both its matrices factored), programs of
 * passes per parameter with sums between them (a refused step must write neither the
 * moments nor the move); and the global rules (their estimate d on the device must not
 * move either), with drifting gradients and a d0 from which the refused step, had it been
 * finite, would move d. `name` is the class name the errors give.
 */
export const PLANTED_CASES: readonly GpuCase[] = [
  { name: 'Adam', key: 'adam', options: { lr: 0.01 } },
  { name: 'LAMB', key: 'lamb', options: { lr: 0.01, weightDecay: 0.01 }, sums: 2 },
  { name: 'Adafactor', key: 'adafactor', options: { lr: 0.01, minDimSizeToFactor: 4, momentum: 0.9, shapes: { c: [20, 15] } }, sums: 5 },
  { name: 'Prodigy', key: 'prodigy', options: { estimLr0: 1e-3, estimLrCoef: 100 }, drift: 0.5 },
  { name: 'DAdaptAdamW', key: 'dadapt-adamw', options: { estimLr0: 1e-3 }, drift: 0.5 },
];

/** nonFinite 'skip' beside Adam's run: the programs of passes and the global rules (drifting gradients so that d moves). */
export const SKIP_CASES: readonly GpuCase[] = [
  { name: 'LAMB', key: 'lamb', options: { lr: (t: number) => 0.01 * (1 + t / 10), weightDecay: 0.01, nonFinite: 'skip' }, sums: 2 },
  { name: 'Adafactor', key: 'adafactor', options: { lr: (t: number) => 0.01 * (1 + t / 10), minDimSizeToFactor: 4, momentum: 0.9, shapes: { c: [20, 15] }, nonFinite: 'skip' }, sums: 5 },
  { name: 'Prodigy', key: 'prodigy', options: { estimLr0: 1e-3, estimLrCoef: 100, lr: (t: number) => 1 - t / 20, nonFinite: 'skip' }, drift: 0.5 },
  { name: 'DAdaptAdamW', key: 'dadapt-adamw', options: { estimLr0: 1e-3, lr: (t: number) => 1 - t / 20, nonFinite: 'skip' }, drift: 0.5 },
];
