/** Typed access to test/fixtures/reference.json (written by generate.py). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ParamStore, type FloatArray } from 'nesterov';
import type { FixtureConfig } from './fixture-options.ts';

export { caseOptions, type FixtureConfig } from './fixture-options.ts';

export interface FixtureCase {
  id: string;
  source: 'torch' | 'book';
  dtype: 'float32' | 'float64';
  reference: string;
  negateGrad: boolean;
  schedule: 'inverse-time' | null;
  ours: FixtureConfig[];
  trajectory: Record<string, Record<string, number[]>>;
  state: Record<string, { step?: number | null; buffers: Record<string, number[]>; scalars?: Record<string, number> }>;
}

export interface Fixture {
  versions: Record<string, string>;
  problem: {
    sizes: Record<string, number>;
    shapes?: Record<string, number[]>;
    coupling: number;
    steps: number;
    checkpoints: number[];
    x0: Record<string, number[]>;
    c: Record<string, number[]>;
  };
  cases: FixtureCase[];
}

export const reference: Fixture = JSON.parse(
  readFileSync(fileURLToPath(new URL('./fixtures/reference.json', import.meta.url)), 'utf8'),
) as Fixture;

/** What every fixture generator's problem has: sizes, the start x0 and the constants c. */
export interface FixtureProblem {
  sizes: Record<string, number>;
  /** [rows, cols] of the matrices, where a rule's state depends on them (Adafactor). */
  shapes?: Record<string, number[]>;
  x0: Record<string, number[]>;
  c: Record<string, number[]>;
}

/**
 * The problem's arrays for one run: params at x0, zero grads and the constants c, as
 * plain typed arrays of `dtype` (the JS kernels), or with `backend: 'wasm'` params and
 * grads in a float32 ParamStore (the WebAssembly kernels; `stateBuffers` regions per
 * parameter, the store's default when absent): update `store.params`, not `params`
 * (views without the store's mark run the JS kernels).
 */
export function problemArrays(problem: FixtureProblem, dtype: 'float32' | 'float64', backend: 'js' | 'wasm' = 'js', stateBuffers?: number) {
  const Type = dtype === 'float32' ? Float32Array : Float64Array;
  const store = backend === 'wasm' ? new ParamStore({ ...problem.sizes, ...problem.shapes }, stateBuffers === undefined ? {} : { stateBuffers }) : undefined;
  const params: Record<string, FloatArray> = {};
  const grads: Record<string, FloatArray> = {};
  const constants: Record<string, FloatArray> = {};
  for (const [name, size] of Object.entries(problem.sizes)) {
    if (store === undefined) {
      params[name] = Type.from(problem.x0[name]!);
      grads[name] = new Type(size);
    } else {
      params[name] = store.params[name]!;
      params[name].set(problem.x0[name]!);
      grads[name] = store.grads[name]!;
    }
    constants[name] = Type.from(problem.c[name]!);
  }
  return { store, params, grads, constants };
}
