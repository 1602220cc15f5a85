/** Typed access to test/fixtures/reference.json (written by generate.py). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface FixtureConfig {
  optimizer: string;
  options: Record<string, unknown>;
  compareState?: boolean;
}

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
