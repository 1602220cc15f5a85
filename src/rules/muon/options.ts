/**
 * Muon's options: the registry's description, the option and state types, and the
 * checks that turn options into validated hyperparameters (see ../muon.ts for the rule).
 */
import { optionError } from '../../errors.ts';
import type { FloatArray, LearningRate } from '../../types.ts';
import { booleanOption, checkKnownOptions, learningRateOption, numberOption } from '../../validate.ts';
import type { Backend, NonFinitePolicy } from '../../optimizer.ts';
import type { RuleDescription } from '../../rule.ts';

/** What Muon is, for the registry (rules/index.ts): it is not an elementwise rule, so it has no UpdateRule. */
export const muonDescription: RuleDescription = Object.freeze({
  name: 'Muon',
  key: 'muon',
  paper: 'Jordan, Jin, Boza, You, Cesista, Newhouse & Bernstein (2024), "Muon: an optimizer for hidden layers in neural networks"',
  weightDecayKind: 'decoupled',
  fixedOptions: Object.freeze({ shapes: "it gives each parameter's matrix shape, which its state is made for" }),
  peers: Object.freeze({ torch: 'torch.optim.Muon', optax: 'optax.contrib.muon', keras: 'keras.optimizers.Muon' }),
});

export interface MuonOptions {
  /** Learning rate (spectral norm per update), or a schedule of the update count. Default 0.02. */
  lr?: LearningRate;
  /** beta of the momentum. Default 0.95. */
  momentum?: number;
  /** Orthogonalise (1 - beta) g + beta m rather than m. Default true. */
  nesterov?: boolean;
  /** Newton-Schulz steps. Default 5. */
  nsSteps?: number;
  /** Decoupled weight decay: p <- p (1 - lr wd) first. Default 0. */
  weightDecay?: number;
  /** Ascend instead of descend. Default false. */
  maximize?: boolean;
  /** [rows, cols] of parameters that are not in a ParamStore (a store's shapes are used otherwise). */
  shapes?: { readonly [name: string]: readonly [number, number] | readonly number[] };
  /** 'auto' (default: wasm for float32 params where WebAssembly runs), 'js' or 'wasm'. */
  backend?: Backend;
  /** As the other optimizers': 'error' (default), 'skip' or 'ignore'. */
  nonFinite?: NonFinitePolicy;
  /** Check names, types and lengths of every call (default true). */
  checkInputs?: boolean;
}

export interface MuonHyper {
  readonly lr: LearningRate;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly nsSteps: number;
  readonly weightDecay: number;
  readonly maximize: boolean;
}

export interface MuonState {
  step: number;
  momentumBuffer: FloatArray;
}

export const OPTION_NAMES = ['lr', 'momentum', 'nesterov', 'nsSteps', 'weightDecay', 'maximize', 'shapes', 'backend', 'nonFinite', 'checkInputs'] as const;
/** The options that are hyperparameters (the rest configure the optimizer: fixed at construction). */
export const HYPER_NAMES: readonly string[] = ['lr', 'momentum', 'nesterov', 'nsSteps', 'weightDecay', 'maximize'];

/** Muon's hyperparameters, validated, defaults applied. */
export function resolveMuon(options: { readonly [key: string]: unknown }): MuonHyper {
  const owner = 'Muon';
  checkKnownOptions(owner, options, HYPER_NAMES);
  const nsSteps = numberOption(owner, 'nsSteps', options.nsSteps, 5, { min: 0 });
  if (!Number.isInteger(nsSteps)) throw optionError(owner, 'nsSteps', nsSteps, 'an integer >= 0');
  return {
    lr: learningRateOption(owner, options.lr, 0.02),
    momentum: numberOption(owner, 'momentum', options.momentum, 0.95, { min: 0, below: 1 }),
    nesterov: booleanOption(owner, 'nesterov', options.nesterov, true),
    nsSteps,
    weightDecay: numberOption(owner, 'weightDecay', options.weightDecay, 0, { min: 0 }),
    maximize: booleanOption(owner, 'maximize', options.maximize, false),
  };
}

/** options.shapes, checked, into `into` (name -> [rows, cols]). */
export function resolveShapes(owner: string, shapes: unknown, into: Map<string, readonly [number, number]>): void {
  if (shapes === undefined) return;
  if (shapes === null || typeof shapes !== 'object' || Array.isArray(shapes)) {
    throw optionError(owner, 'shapes', shapes, 'an object { name: [rows, cols] }');
  }
  for (const [name, shape] of Object.entries(shapes)) {
    if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 1)) {
      throw optionError(owner, `shapes['${name}']`, shape, '[rows, cols], two integers >= 1 (Muon updates 2-D parameters only)');
    }
    into.set(name, [shape[0] as number, shape[1] as number]);
  }
}
