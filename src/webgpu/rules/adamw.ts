/** AdamW on the GPU: Adam's kernels (assembly/rules/adam.ts), the decay decoupled by the scalars. */
export { adamGpu as adamwGpu } from './adam.ts';
