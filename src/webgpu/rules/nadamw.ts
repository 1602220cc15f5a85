/** NAdamW on the GPU: NAdam's kernel (assembly/rules/nadam.ts), the decay decoupled by its `shrink`. */
export { nadamGpu as nadamwGpu } from './nadam.ts';
