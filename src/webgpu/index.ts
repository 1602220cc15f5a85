/// <reference types="@webgpu/types" preserve="true" />
/**
 * `nesterov/webgpu`: the step on the GPU. A GPUParamStore keeps params, grads and state in
 * `GPUBuffer`s; a GPUOptimizer runs an optimizer of this library over it, every step one
 * compute pass of the rule's fused WGSL kernel, one dispatch per run of parameters.
 *
 * This module and the ones below it are the only ones that touch WebGPU: importing
 * 'nesterov' alone loads none of them. TypeScript users add `@webgpu/types`.
 */
export { GPUParamStore } from './store.ts';
export { GPUOptimizer } from './optimizer.ts';
export { GPU_GLOBAL, GPU_KERNELS, GPU_MISSING, GPU_MODES, GPU_PROGRAMS, type GpuModes } from './rules/index.ts';
export type { GpuGlobalPhase } from './global.ts';
export type { GpuProgram, PassShape, PassCall, ProgramPlan, ProgramStep, CapturedKernelCall } from './program.ts';
export type { GpuKernel, GpuRuleKernels, ScalarValues } from './kernel.ts';
