/**
 * The GPU kernels by rule key: one file per rule beside this one, the rule itself read
 * from the registry (src/rules/index.ts). test/webgpu-registry.test.ts walks the
 * registry and fails on an elementwise rule that has neither a GPU kernel here for each
 * of its wasm kernels nor a reason in GPU_MISSING.
 */
import type { CommonHyper } from '../../rule.ts';
import type { GpuGlobalPhase } from '../global.ts';
import type { GpuRuleKernels } from '../kernel.ts';
import type { GpuProgram } from '../program.ts';
import { adadeltaGpu } from './adadelta.ts';
import { adagradGpu } from './adagrad.ts';
import { adamGpu } from './adam.ts';
import { adamaxGpu } from './adamax.ts';
import { adamwGpu } from './adamw.ts';
import { adafactorGpu, adafactorProgram } from './adafactor.ts';
import { adanGpu } from './adan.ts';
import { dadaptAdamwGlobalGpu, dadaptAdamwGpu } from './dadapt-adamw.ts';
import { lambGpu, lambProgram } from './lamb.ts';
import { lionGpu } from './lion.ts';
import { momentumGpu } from './momentum.ts';
import { nadamGpu } from './nadam.ts';
import { nadamwGpu } from './nadamw.ts';
import { nesterovGpu } from './nesterov.ts';
import { prodigyGlobalGpu, prodigyGpu } from './prodigy.ts';
import { qhadamGpu } from './qhadam.ts';
import { qhmGpu } from './qhm.ts';
import { radamGpu } from './radam.ts';
import { rmspropGpu } from './rmsprop.ts';
import { rpropGpu } from './rprop.ts';
import { scheduleFreeAdamwGpu } from './schedulefree-adamw.ts';
import { scheduleFreeSgdGpu } from './schedulefree-sgd.ts';
import { sgdGpu } from './sgd.ts';

export const GPU_KERNELS: { readonly [key: string]: GpuRuleKernels } = Object.freeze({
  sgd: sgdGpu,
  momentum: momentumGpu,
  nesterov: nesterovGpu,
  adagrad: adagradGpu,
  rmsprop: rmspropGpu,
  adam: adamGpu,
  adamw: adamwGpu,
  nadam: nadamGpu,
  radam: radamGpu,
  adamax: adamaxGpu,
  adadelta: adadeltaGpu,
  rprop: rpropGpu,
  'schedulefree-sgd': scheduleFreeSgdGpu,
  'schedulefree-adamw': scheduleFreeAdamwGpu,
  lion: lionGpu,
  qhm: qhmGpu,
  adan: adanGpu,
  qhadam: qhadamGpu,
  nadamw: nadamwGpu,
  prodigy: prodigyGpu,
  'dadapt-adamw': dadaptAdamwGpu,
  lamb: lambGpu,
  adafactor: adafactorGpu,
});

/**
 * The GPU twins of the rules' global phases (a sum over every parameter between two
 * passes, src/webgpu/global.ts), by rule key: every rule with a `global` phase and a GPU
 * kernel has one.
 */
export const GPU_GLOBAL: { readonly [key: string]: GpuGlobalPhase } = Object.freeze({
  prodigy: prodigyGlobalGpu,
  'dadapt-adamw': dadaptAdamwGlobalGpu,
});

/**
 * The perParameter rules whose step on the GPU is several passes with sums on the device
 * between them (program.ts, passes.ts), by key; each also has its kernels above.
 */
export const GPU_PROGRAMS: { readonly [key: string]: GpuProgram } = Object.freeze({
  lamb: lambProgram,
  adafactor: adafactorProgram,
});

/** Registered elementwise rules without a GPU kernel, each with the reason. */
export const GPU_MISSING: { readonly [key: string]: string } = Object.freeze({
});

/**
 * Rules whose parameters move between two points by `eval()` and `train()` (Schedule-Free:
 * y to train, x to evaluate): the GPU kernel of the move, the state buffer it reads, and
 * the beta of the move as the rule's CPU class takes it.
 */
export interface GpuModes {
  readonly entry: string;
  readonly buffer: string;
  readonly beta: (hyper: CommonHyper) => number;
}

export const GPU_MODES: { readonly [key: string]: GpuModes } = Object.freeze({
  'schedulefree-sgd': { entry: 'scheduleFreeLerp', buffer: 'z', beta: (h: CommonHyper) => (h as unknown as { momentum: number }).momentum },
  'schedulefree-adamw': { entry: 'scheduleFreeLerp', buffer: 'z', beta: (h: CommonHyper) => (h as unknown as { beta1: number }).beta1 },
});
