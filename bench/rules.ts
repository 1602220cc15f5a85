/**
 * The elementwise rules `npm run bench` can time (`--rules`), one entry each: how to
 * build it, the bytes one step moves per float32 element (the arrays its wasm kernel in
 * assembly/kernels.ts reads and writes with the default options, in the steady state),
 * and its peers in PyTorch 1.13 and TF.js where they have the rule. bench/run.ts builds
 * every row from this table, so a rule added here gets the whole set of rows.
 *
 * Kept free of the benchmark's heavy imports (TF.js, threads, python) so that the
 * argument validation below is unit-tested (test/bench-args.test.ts).
 */
import {
  AdaGrad,
  Adadelta,
  Adam,
  Adamax,
  AdamW,
  Lion,
  Momentum,
  NAdam,
  Nesterov,
  RAdam,
  RMSProp,
  Rprop,
  ScheduleFreeAdamW,
  ScheduleFreeSGD,
  SGD,
  type Backend,
  type NonFinitePolicy,
  type ParamSet,
} from 'nesterov';

/** What the bench needs of an optimizer: one update in place. */
export interface Steppable {
  update(params: ParamSet, grads: ParamSet): unknown;
}

export interface BenchRule {
  /** The `--rules` name. */
  readonly id: string;
  /** The table's rule column. */
  readonly label: string;
  readonly make: (backend: Backend, nonFinite: NonFinitePolicy) => Steppable;
  /**
   * The arrays one step reads and writes (p params, g grads, the rest its state, by the
   * kernel's argument names): the bytes per element are 4 (reads + writes).
   */
  readonly reads: readonly string[];
  readonly writes: readonly string[];
  /** bench/torch_bench.py's name for the same computation, or why there is none. */
  readonly torch: { readonly rule: string } | { readonly none: string };
  /** TF.js's optimizer of the same rule, if it has one. */
  readonly tfjs?: 'momentum-nesterov' | 'momentum' | 'sgd' | 'adam' | 'adagrad' | 'adadelta' | 'adamax' | 'rmsprop';
}

/** Every elementwise rule (LAMB's two passes and Muon's matrix products are not). */
export const BENCH_RULES: readonly BenchRule[] = [
  {
    id: 'nesterov',
    label: 'Nesterov',
    make: (backend, nonFinite) => new Nesterov({ lr: 0.01, momentum: 0.9, backend, nonFinite }),
    reads: ['p', 'g', 'v'],
    writes: ['p', 'v'],
    torch: { rule: 'nesterov' },
    tfjs: 'momentum-nesterov',
  },
  {
    id: 'adam',
    label: 'Adam',
    make: (backend, nonFinite) => new Adam({ lr: 0.001, backend, nonFinite }),
    // adam(p, g, m, v, vmax): vmax only with amsgrad.
    reads: ['p', 'g', 'm', 'v'],
    writes: ['p', 'm', 'v'],
    torch: { rule: 'adam' },
    tfjs: 'adam',
  },
  {
    id: 'lion',
    label: 'Lion',
    make: (backend, nonFinite) => new Lion({ lr: 1e-4, backend, nonFinite }),
    reads: ['p', 'g', 'm'],
    writes: ['p', 'm'],
    torch: { none: 'no torch peer: torch 1.13 has no Lion' },
  },
  {
    id: 'schedulefree-adamw',
    label: 'Schedule-Free AdamW',
    make: (backend, nonFinite) => new ScheduleFreeAdamW({ backend, nonFinite }),
    // From the second step on (the first reads y for z).
    reads: ['p', 'g', 'z', 'v'],
    writes: ['p', 'z', 'v'],
    torch: { none: 'no torch peer: torch 1.13 has no Schedule-Free (facebookresearch/schedule_free is a separate package)' },
  },
  {
    id: 'sgd',
    label: 'SGD',
    make: (backend, nonFinite) => new SGD({ lr: 0.01, backend, nonFinite }),
    reads: ['p', 'g'],
    writes: ['p'],
    torch: { rule: 'sgd' },
    tfjs: 'sgd',
  },
  {
    id: 'momentum',
    label: 'Momentum',
    make: (backend, nonFinite) => new Momentum({ lr: 0.01, momentum: 0.9, variant: 'pytorch', backend, nonFinite }),
    reads: ['p', 'g', 'b'],
    writes: ['p', 'b'],
    torch: { rule: 'momentum' },
    tfjs: 'momentum',
  },
  {
    id: 'adagrad',
    label: 'AdaGrad',
    make: (backend, nonFinite) => new AdaGrad({ lr: 0.01, backend, nonFinite }),
    reads: ['p', 'g', 'h'],
    writes: ['p', 'h'],
    torch: { rule: 'adagrad' },
    tfjs: 'adagrad',
  },
  {
    id: 'rmsprop',
    label: 'RMSProp',
    make: (backend, nonFinite) => new RMSProp({ lr: 0.01, backend, nonFinite }),
    // rmsprop(p, g, sq, ga, buf): ga only when centered, buf only with momentum.
    reads: ['p', 'g', 'sq'],
    writes: ['p', 'sq'],
    torch: { rule: 'rmsprop' },
    tfjs: 'rmsprop',
  },
  {
    id: 'adamw',
    label: 'AdamW',
    make: (backend, nonFinite) => new AdamW({ lr: 0.001, backend, nonFinite }),
    reads: ['p', 'g', 'm', 'v'],
    writes: ['p', 'm', 'v'],
    torch: { rule: 'adamw' },
  },
  {
    id: 'nadam',
    label: 'NAdam',
    make: (backend, nonFinite) => new NAdam({ backend, nonFinite }),
    reads: ['p', 'g', 'm', 'v'],
    writes: ['p', 'm', 'v'],
    torch: { rule: 'nadam' },
  },
  {
    id: 'radam',
    label: 'RAdam',
    make: (backend, nonFinite) => new RAdam({ backend, nonFinite }),
    reads: ['p', 'g', 'm', 'v'],
    writes: ['p', 'm', 'v'],
    torch: { rule: 'radam' },
  },
  {
    id: 'adamax',
    label: 'Adamax',
    make: (backend, nonFinite) => new Adamax({ backend, nonFinite }),
    reads: ['p', 'g', 'm', 'u'],
    writes: ['p', 'm', 'u'],
    torch: { rule: 'adamax' },
    tfjs: 'adamax',
  },
  {
    id: 'adadelta',
    label: 'Adadelta',
    make: (backend, nonFinite) => new Adadelta({ backend, nonFinite }),
    reads: ['p', 'g', 'sq', 'acc'],
    writes: ['p', 'sq', 'acc'],
    torch: { rule: 'adadelta' },
    tfjs: 'adadelta',
  },
  {
    id: 'rprop',
    label: 'Rprop',
    make: (backend, nonFinite) => new Rprop({ backend, nonFinite }),
    reads: ['p', 'g', 'prev', 'stepSize'],
    writes: ['p', 'prev', 'stepSize'],
    torch: { rule: 'rprop' },
  },
  {
    id: 'schedulefree-sgd',
    label: 'Schedule-Free SGD',
    make: (backend, nonFinite) => new ScheduleFreeSGD({ backend, nonFinite }),
    reads: ['p', 'g', 'z'],
    writes: ['p', 'z'],
    torch: { none: 'no torch peer: torch 1.13 has no Schedule-Free' },
  },
];

/** The rules of a plain `npm run bench`. */
export const DEFAULT_RULES = ['nesterov', 'adam', 'lion', 'schedulefree-adamw'] as const;

/** Bytes one step moves per element. */
export function bytesPerElement(rule: BenchRule): number {
  return 4 * (rule.reads.length + rule.writes.length);
}

/** "reads p, g, m; writes p, m = 20 B/el" */
export function trafficLabel(rule: BenchRule): string {
  return `reads ${rule.reads.join(', ')}; writes ${rule.writes.join(', ')} = ${bytesPerElement(rule)} B/el`;
}

/**
 * The streaming kernel that moves a rule's bytes (the same count of arrays read and
 * written, no arithmetic), or undefined when assembly/kernels.ts has none for that
 * traffic (SGD's read 2, write 1).
 */
export function boundKernelFor(rule: BenchRule): 'stream3to2' | 'stream4to3' | undefined {
  if (rule.reads.length === 3 && rule.writes.length === 2) return 'stream3to2';
  if (rule.reads.length === 4 && rule.writes.length === 3) return 'stream4to3';
  return undefined;
}

export interface BenchArgs {
  readonly sizes: readonly number[];
  readonly rules: readonly BenchRule[];
}

/**
 * Checks `--sizes` and `--rules` (the raw strings, undefined when not given) and returns
 * what they select. Errors name the flag, the offending value and what is accepted.
 */
export function parseBenchArgs(raw: { sizes?: string; rules?: string; quick?: boolean }): BenchArgs {
  let sizes: number[];
  if (raw.sizes === undefined) sizes = raw.quick ? [1e3, 1e5, 1e6] : [1e3, 1e5, 1e6, 1.6e7];
  else {
    const parts = raw.sizes.split(',');
    sizes = parts.map(Number);
    const bad = parts.find((part, i) => part.trim() === '' || !Number.isInteger(sizes[i]) || sizes[i]! < 16 || sizes[i]! > 2 ** 28);
    if (bad !== undefined) throw new RangeError(`--sizes: '${bad}' is not an integer from 16 to 2^28 (in --sizes '${raw.sizes}'; e.g. --sizes 1e5,1.6e7)`);
  }
  let rules: BenchRule[];
  if (raw.rules === undefined) rules = DEFAULT_RULES.map((id) => BENCH_RULES.find((r) => r.id === id)!);
  else if (raw.rules === 'all') rules = [...BENCH_RULES];
  else {
    const ids = raw.rules.split(',');
    rules = [];
    for (const id of ids) {
      const rule = BENCH_RULES.find((r) => r.id === id);
      if (rule === undefined) throw new RangeError(`--rules: unknown rule '${id}' (in --rules '${raw.rules}'); known: ${BENCH_RULES.map((r) => r.id).join(', ')}, or all`);
      if (rules.includes(rule)) throw new RangeError(`--rules: '${id}' is listed twice (in --rules '${raw.rules}')`);
      rules.push(rule);
    }
  }
  return { sizes, rules };
}
