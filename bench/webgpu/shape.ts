/** What `npm run bench:webgpu` hands its page, and what the page (and `--json`) gives back. */

export interface BenchConfig {
  readonly rules: readonly string[];
  readonly sizes: readonly number[];
  /** Timed samples per cell (after one warm-up). */
  readonly rounds: number;
  /** Whether to time TF.js's own optimizers on its webgpu backend. */
  readonly tfjs: boolean;
  /** Ours with nonFinite 'error' (the default: a scan of the gradients, then the step) or 'ignore' (the step alone). */
  readonly nonFinite: 'error' | 'ignore';
}

export interface BenchRow {
  readonly rule: string;
  readonly size: number;
  /** ours: GPUOptimizer on a GPUParamStore; tfjs: TF.js's optimizer on its webgpu backend; bound: the copy kernel of the rule's bytes. */
  readonly impl: 'ours' | 'tfjs' | 'bound';
  /** Median time of one step over its elements. */
  readonly nsPerElement: number;
  /** The rule's bytes per element (its kernel layout's reads and writes, 4 bytes each) over that time. */
  readonly gbPerSecond: number;
}

export interface BenchReport {
  readonly adapter: string;
  readonly rows: readonly BenchRow[];
}
