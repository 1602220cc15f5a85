/**
 * The GPU kernels by rule key: one file per rule beside this one, the rule itself read
 * from the registry (src/rules/index.ts). test/webgpu-registry.test.ts walks the
 * registry and fails on an elementwise rule that has neither a GPU kernel here nor a
 * reason in GPU_MISSING.
 */
import type { GpuRuleKernels } from '../kernel.ts';
import { adamGpu } from './adam.ts';
import { adamwGpu } from './adamw.ts';
import { momentumGpu } from './momentum.ts';
import { nesterovGpu } from './nesterov.ts';
import { sgdGpu } from './sgd.ts';

export const GPU_KERNELS: { readonly [key: string]: GpuRuleKernels } = Object.freeze({
  sgd: sgdGpu,
  momentum: momentumGpu,
  nesterov: nesterovGpu,
  adam: adamGpu,
  adamw: adamwGpu,
});

/** Registered elementwise rules without a GPU kernel yet, each with the reason. */
export const GPU_MISSING: { readonly [key: string]: string } = Object.freeze({
  'adagrad': 'no GPU kernel written yet',
  'rmsprop': 'no GPU kernel written yet',
  'nadam': 'no GPU kernel written yet',
  'radam': 'no GPU kernel written yet',
  'adamax': 'no GPU kernel written yet',
  'adadelta': 'no GPU kernel written yet',
  'rprop': 'no GPU kernel written yet',
  'schedulefree-sgd': 'no GPU kernel written yet',
  'schedulefree-adamw': 'no GPU kernel written yet',
  'lion': 'no GPU kernel written yet',
  'lamb': 'no GPU kernel written yet',
  'qhm': 'no GPU kernel written yet',
  'adan': 'no GPU kernel written yet',
  'qhadam': 'no GPU kernel written yet',
});
