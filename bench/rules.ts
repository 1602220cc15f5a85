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
import { RULES, type AnyUpdateRule, type Backend, type NonFinitePolicy, type ParamSet } from 'nesterov';

/** What the bench needs of an optimizer: one update in place, and its resolved options. */
export interface Steppable {
  update(params: ParamSet, grads: ParamSet): unknown;
  /** The resolved hyperparameters (what the peers are given, in their names). */
  readonly defaults: object;
  /** The state regions a ParamStore it updates must reserve per parameter. */
  stateBuffersPerParam(): number;
  /** Threads that ran the last update. */
  readonly threadsUsed?: number | undefined;
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

/**
 * The arrays one step of a rule moves with its default options, as its kernels declare
 * them (src/rules/*.ts `kernels`): the kernel of its default variant, or its one step
 * kernel; a rule of several passes (LAMB) moves at least every array one of its passes
 * reads or writes (each counted once: the least traffic of any way to take the step).
 */
function traffic(rule: AnyUpdateRule, defaults: object): { reads: string[]; writes: string[] } {
  const layouts = rule.kernels ?? {};
  const variant = (defaults as { variant?: unknown }).variant;
  const one = (typeof variant === 'string' ? layouts[variant] : undefined) ?? layouts.step;
  if (one !== undefined) return { reads: [...one.reads], writes: [...one.writes] };
  const passes = Object.values(layouts);
  const once = (names: readonly string[]): string[] => [...new Set(names)];
  return { reads: once(passes.flatMap((layout) => layout.reads)), writes: once(passes.flatMap((layout) => layout.writes)) };
}

/** Every rule of the registry with a WebAssembly kernel, in the registry's order. */
export const BENCH_RULES: readonly BenchRule[] = RULES.flatMap((entry): BenchRule[] => {
  const rule = entry.rule;
  if (rule === undefined || rule.stepWasm === undefined) return [];
  // The bench steps on a fixed gradient, a linear objective: the estimate of a rule with a
  // global phase (Prodigy, D-Adaptation) rightly grows without bound there, and overflows
  // float32 within a few hundred steps. lr 0 keeps it at its start, with the same
  // arithmetic per element.
  const fixed = rule.global === undefined ? {} : { lr: 0 };
  const make = (backend: Backend, nonFinite: NonFinitePolicy) => entry.make({ backend, nonFinite, ...fixed }) as unknown as Steppable;
  const { torch, optax, tfjs } = entry.peers;
  return [
    {
      id: entry.key,
      label: entry.name,
      make,
      ...traffic(rule, (make('js', 'ignore') as unknown as { defaults: object }).defaults),
      onePass: rule.perParameter !== true,
      peers: { ...(torch === undefined ? {} : { torch }), ...(optax === undefined ? {} : { optax }), ...(tfjs === undefined ? {} : { tfjs }) },
    },
  ];
});

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

/** "reads p, g, expAvg; writes p, expAvg = 20 B/el" */
export function trafficLabel(rule: BenchRule): string {
  const traffic = `reads ${rule.reads.join(', ')}; writes ${rule.writes.join(', ')} = ${bytesPerElement(rule)} B/el`;
  return rule.onePass ? traffic : `at least: ${traffic}, in two passes over the tensor`;
}

/**
 * The streaming kernel that moves a rule's bytes (the same count of arrays read and
 * written, no arithmetic), or undefined when assembly/kernels.ts has none for that
 * traffic (SGD's read 2, write 1) or the step is not one pass.
 */
export function boundKernelFor(rule: BenchRule): 'stream3to2' | 'stream4to3' | 'stream6to5' | undefined {
  if (!rule.onePass) return undefined;
  if (rule.reads.length === 3 && rule.writes.length === 2) return 'stream3to2';
  if (rule.reads.length === 4 && rule.writes.length === 3) return 'stream4to3';
  if (rule.reads.length === 6 && rule.writes.length === 5) return 'stream6to5';
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
