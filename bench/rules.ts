/**
 * The rules `npm run bench` can time (`--rules`), derived from the registry (RULES in
 * src/rules/index.ts): every registered rule with a WebAssembly kernel is benchable, so a
 * rule added to the registry gets its rows here without an edit. Each entry: how to build
 * it (the rule's defaults, which are also the hyperparameters handed to the peers), the
 * bytes one step moves per float32 element (its state buffers, as the rule names them),
 * and its peers (the rule's own `peers`: torch, optax, TF.js, where they have it).
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

/** What the bench needs of an optimizer: one update in place, and its resolved options. */
export interface Steppable {
  update(params: ParamSet, grads: ParamSet): unknown;
  /** The resolved hyperparameters (what the peers are given, in their names). */
  readonly defaults: object;
}

export interface BenchRule {
  /** The `--rules` name: the registry's key. */
  readonly id: string;
  /** The table's rule column: the class name. */
  readonly label: string;
  readonly make: (backend: Backend, nonFinite: NonFinitePolicy) => Steppable;
  /**
   * The arrays one step reads and writes in the steady state (p params, g grads, the
   * rest its state buffers): the bytes per element are 4 (reads + writes).
   */
  readonly reads: readonly string[];
  readonly writes: readonly string[];
  /**
   * The step is one pass over the elements. LAMB's is two (its trust ratio needs the
   * whole update's norm before any parameter moves): no one-pass bound row for it.
   */
  readonly onePass: boolean;
  /** The peers' names for the same rule (the rule's `peers`). */
  readonly peers: { readonly torch?: string; readonly optax?: string; readonly tfjs?: string };
}

export const BENCH_RULES: readonly BenchRule[] = [
  {
    id: 'nesterov',
    label: 'Nesterov',
    make: (backend, nonFinite) => new Nesterov({ lr: 0.01, momentum: 0.9, backend, nonFinite }),
    onePass: true,
    reads: ['p', 'g', 'v'],
    writes: ['p', 'v'],
    peers: { torch: 'torch.optim.nesterov', optax: 'optax.nesterov', tfjs: 'momentum-nesterov' },
  },
  {
    id: 'adam',
    label: 'Adam',
    make: (backend, nonFinite) => new Adam({ lr: 0.001, backend, nonFinite }),
    // adam(p, g, m, v, vmax): vmax only with amsgrad.
    onePass: true,
    reads: ['p', 'g', 'm', 'v'],
    writes: ['p', 'm', 'v'],
    peers: { torch: 'torch.optim.adam', optax: 'optax.adam', tfjs: 'adam' },
  },
  {
    id: 'lion',
    label: 'Lion',
    make: (backend, nonFinite) => new Lion({ lr: 1e-4, backend, nonFinite }),
    onePass: true,
    reads: ['p', 'g', 'm'],
    writes: ['p', 'm'],
    peers: { optax: 'optax.lion' },
  },
  {
    id: 'schedulefree-adamw',
    label: 'Schedule-Free AdamW',
    make: (backend, nonFinite) => new ScheduleFreeAdamW({ backend, nonFinite }),
    // From the second step on (the first reads y for z).
    onePass: true,
    reads: ['p', 'g', 'z', 'v'],
    writes: ['p', 'z', 'v'],
    peers: { optax: 'optax.contrib.schedule_free_adamw' },
  },
  {
    id: 'sgd',
    label: 'SGD',
    make: (backend, nonFinite) => new SGD({ lr: 0.01, backend, nonFinite }),
    onePass: true,
    reads: ['p', 'g'],
    writes: ['p'],
    peers: { torch: 'torch.optim.sgd', optax: 'optax.sgd', tfjs: 'sgd' },
  },
  {
    id: 'momentum',
    label: 'Momentum',
    make: (backend, nonFinite) => new Momentum({ lr: 0.01, momentum: 0.9, variant: 'pytorch', backend, nonFinite }),
    onePass: true,
    reads: ['p', 'g', 'b'],
    writes: ['p', 'b'],
    peers: { torch: 'torch.optim.momentum', optax: 'optax.momentum', tfjs: 'momentum' },
  },
  {
    id: 'adagrad',
    label: 'AdaGrad',
    make: (backend, nonFinite) => new AdaGrad({ lr: 0.01, backend, nonFinite }),
    onePass: true,
    reads: ['p', 'g', 'h'],
    writes: ['p', 'h'],
    peers: { torch: 'torch.optim.adagrad', optax: 'optax.adagrad', tfjs: 'adagrad' },
  },
  {
    id: 'rmsprop',
    label: 'RMSProp',
    make: (backend, nonFinite) => new RMSProp({ lr: 0.01, backend, nonFinite }),
    // rmsprop(p, g, sq, ga, buf): ga only when centered, buf only with momentum.
    onePass: true,
    reads: ['p', 'g', 'sq'],
    writes: ['p', 'sq'],
    peers: { torch: 'torch.optim.rmsprop', optax: 'optax.rmsprop', tfjs: 'rmsprop' },
  },
  {
    id: 'adamw',
    label: 'AdamW',
    make: (backend, nonFinite) => new AdamW({ lr: 0.001, backend, nonFinite }),
    onePass: true,
    reads: ['p', 'g', 'm', 'v'],
    writes: ['p', 'm', 'v'],
    peers: { torch: 'torch.optim.adamw', optax: 'optax.adamw' },
  },
  {
    id: 'nadam',
    label: 'NAdam',
    make: (backend, nonFinite) => new NAdam({ backend, nonFinite }),
    onePass: true,
    reads: ['p', 'g', 'm', 'v'],
    writes: ['p', 'm', 'v'],
    peers: { torch: 'torch.optim.nadam', optax: 'optax.nadam' },
  },
  {
    id: 'radam',
    label: 'RAdam',
    make: (backend, nonFinite) => new RAdam({ backend, nonFinite }),
    onePass: true,
    reads: ['p', 'g', 'm', 'v'],
    writes: ['p', 'm', 'v'],
    peers: { torch: 'torch.optim.radam', optax: 'optax.radam' },
  },
  {
    id: 'adamax',
    label: 'Adamax',
    make: (backend, nonFinite) => new Adamax({ backend, nonFinite }),
    onePass: true,
    reads: ['p', 'g', 'm', 'u'],
    writes: ['p', 'm', 'u'],
    peers: { torch: 'torch.optim.adamax', optax: 'optax.adamax', tfjs: 'adamax' },
  },
  {
    id: 'adadelta',
    label: 'Adadelta',
    make: (backend, nonFinite) => new Adadelta({ backend, nonFinite }),
    onePass: true,
    reads: ['p', 'g', 'sq', 'acc'],
    writes: ['p', 'sq', 'acc'],
    peers: { torch: 'torch.optim.adadelta', optax: 'optax.adadelta', tfjs: 'adadelta' },
  },
  {
    id: 'rprop',
    label: 'Rprop',
    make: (backend, nonFinite) => new Rprop({ backend, nonFinite }),
    onePass: true,
    reads: ['p', 'g', 'prev', 'stepSize'],
    writes: ['p', 'prev', 'stepSize'],
    peers: { torch: 'torch.optim.rprop', optax: 'optax.rprop' },
  },
  {
    id: 'schedulefree-sgd',
    label: 'Schedule-Free SGD',
    make: (backend, nonFinite) => new ScheduleFreeSGD({ backend, nonFinite }),
    onePass: true,
    reads: ['p', 'g', 'z'],
    writes: ['p', 'z'],
    peers: { optax: 'optax.contrib.schedule_free_sgd' },
  },
];

/** The rules of a plain `npm run bench`: the ones a user compares first. */
export const DEFAULT_RULES = ['nesterov', 'adam', 'adamw', 'lion'] as const;
/** The rules of `--full` (the whole matrix): those, and Schedule-Free AdamW. */
export const FULL_RULES = ['nesterov', 'adam', 'adamw', 'lion', 'schedulefree-adamw'] as const;
/** The sizes of a plain `npm run bench`, and of `--full`. */
export const DEFAULT_SIZES = [1e5, 1.6e7] as const;
export const FULL_SIZES = [1e3, 1e5, 1e6, 1.6e7] as const;

/** Bytes one step moves per element. */
export function bytesPerElement(rule: BenchRule): number {
  return 4 * (rule.reads.length + rule.writes.length);
}

/** "reads p, g, m; writes p, m = 20 B/el" */
export function trafficLabel(rule: BenchRule): string {
  return `reads ${rule.reads.join(', ')}; writes ${rule.writes.join(', ')} = ${bytesPerElement(rule)} B/el${rule.onePass ? '' : ' per pass (two passes per step)'}`;
}

/**
 * The streaming kernel that moves a rule's bytes (the same count of arrays read and
 * written, no arithmetic), or undefined when assembly/kernels.ts has none for that
 * traffic (SGD's read 2, write 1) or the step is not one pass.
 */
export function boundKernelFor(rule: BenchRule): 'stream3to2' | 'stream4to3' | undefined {
  if (!rule.onePass) return undefined;
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
 * what they select: without them, the default rows, or with `full` the whole matrix
 * (`quick`: the sizes below 1e7 only). Errors name the flag, the offending value and what
 * is accepted.
 */
export function parseBenchArgs(raw: { sizes?: string; rules?: string; quick?: boolean; full?: boolean }): BenchArgs {
  let sizes: number[];
  if (raw.sizes === undefined) {
    sizes = [...(raw.full ? FULL_SIZES : DEFAULT_SIZES)];
    if (raw.quick) sizes = sizes.filter((n) => n < 1e7);
  } else {
    const parts = raw.sizes.split(',');
    sizes = parts.map(Number);
    const bad = parts.find((part, i) => part.trim() === '' || !Number.isInteger(sizes[i]) || sizes[i]! < 16 || sizes[i]! > 2 ** 28);
    if (bad !== undefined) throw new RangeError(`--sizes: '${bad}' is not an integer from 16 to 2^28 (in --sizes '${raw.sizes}'; e.g. --sizes 1e5,1.6e7)`);
  }
  let rules: BenchRule[];
  if (raw.rules === undefined) rules = (raw.full ? FULL_RULES : DEFAULT_RULES).map((id) => BENCH_RULES.find((r) => r.id === id)!);
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
