/**
 * The library's wrappers (EMA, SWA, GradientAccumulation, Lookahead) inside the adapter:
 * `tfOptimizer(new EMA(new AdamW()))`. A chain of wrappers around one optimizer of a
 * registered rule (or Muon) runs on the kernel path: the core wrapper steps the float32
 * ParamStore that mirrors the variables, exactly as it steps any ParamStore, so every
 * wrapper works on every backend with no TF.js ops of its own (the 'ops' path is refused,
 * naming the wrapper). What the adapter needs of the rule (its hyperparameters, its
 * buffers, its counters) it takes from the innermost optimizer, the chain's base.
 *
 * Saved state: the base's state in the adapter's weights as always, and the wrappers'
 * (averages, slow weights, a window's sums, their counters) in one string weight,
 * `nesterov/wrappers`: the library's state JSON (stateToJSON: exact, with a checksum) of
 * the wrapper tree with the base's parameters left out. The config names each wrapper and
 * its options (`wrappers: [{ name: 'EMA', options: { decay: 0.999 } }]`, outermost
 * first), so `fromConfig` (and `tf.loadLayersModel`) makes the same chain.
 */
import { GradientAccumulation } from '../accumulation.ts';
import { EMA, SWA } from '../averaging.ts';
import { describeValue, optionError } from '../errors.ts';
import { LOOKAHEAD_FORMAT, Lookahead } from '../lookahead.ts';
import { PARTITION_FORMAT } from '../partition.ts';
import { STATE_FORMAT, WRAPPER_STATE_FORMAT, stateToJSON, type OptimizerStateDict, type SavedState } from '../state.ts';
import type { OptimizerLike } from '../contract.ts';
import type { RegisteredOptimizer } from '../rules/index.ts';
import type { FloatArray } from '../types.ts';
import { registeredOf } from './rule-view.ts';
import type { TfWrappable } from './types.ts';

/** A wrapper of this library that the adapter runs (around a rule's optimizer, Muon or another such wrapper). */
export type TfWrapper =
  | EMA<TfWrappable | TfWrapper>
  | SWA<TfWrappable | TfWrapper>
  | GradientAccumulation<TfWrappable | TfWrapper>
  | Lookahead<TfWrappable | TfWrapper>;

/** Any of the four, whatever it wraps (what the checks find at run time, before the chain is known to end in a rule). */
export type AnyWrapper = EMA | SWA | GradientAccumulation | Lookahead;

/** The weight that holds the wrappers' state (see above). */
export const WRAPPERS_WEIGHT_NAME = 'nesterov/wrappers';

/** The names a config gives the wrappers. */
const WRAPPER_NAMES = ['EMA', 'SWA', 'GradientAccumulation', 'Lookahead'] as const;
type WrapperName = (typeof WRAPPER_NAMES)[number];

/** Whether `value` is one of the wrappers the adapter runs. */
export function isTfWrapper(value: unknown): value is AnyWrapper {
  return value instanceof EMA || value instanceof SWA || value instanceof GradientAccumulation || value instanceof Lookahead;
}

export function wrapperName(wrapper: AnyWrapper): WrapperName {
  if (wrapper instanceof EMA) return 'EMA';
  if (wrapper instanceof SWA) return 'SWA';
  if (wrapper instanceof GradientAccumulation) return 'GradientAccumulation';
  return 'Lookahead';
}

/** A chain of wrappers (outermost first, possibly none) around the base optimizer. */
export interface Chain {
  readonly wrappers: readonly AnyWrapper[];
  readonly base: TfWrappable;
  readonly entry: RegisteredOptimizer;
}

/**
 * The chain of `optimizer`: undefined when it is neither an optimizer of a registered rule
 * nor such wrappers around one. `problem` receives why, for an error message.
 */
export function chainOf(optimizer: unknown, problem?: (why: string) => void): Chain | undefined {
  const wrappers: AnyWrapper[] = [];
  let node: unknown = optimizer;
  while (isTfWrapper(node)) {
    wrappers.push(node);
    node = node.inner;
  }
  const entry = registeredOf(node);
  if (entry === undefined) {
    if (wrappers.length > 0) {
      const outer = wrapperName(wrappers.at(-1)!);
      const isPartition = node !== null && typeof node === 'object' && typeof (node as { memberOf?: unknown }).memberOf === 'function';
      problem?.(
        isPartition
          ? `${outer} wraps a partition: inside tfOptimizer a wrapper goes around one optimizer; wrap each member instead (partition(assign, { a: new ${outer}(new Muon()), b: new ${outer}(new AdamW()) }))`
          : `${outer} wraps ${describeValue(node)}, not an optimizer of this library`,
      );
    }
    return undefined;
  }
  return { wrappers, base: node as TfWrappable, entry };
}

/** The first averaging wrapper (EMA or SWA) of a chain, outermost first. */
export function averagingOf(chain: Chain): EMA | SWA | undefined {
  return chain.wrappers.find((w): w is EMA | SWA => w instanceof EMA || w instanceof SWA);
}

/** A wrapper in a config. Its name is in a `name` field: tfjs-layers rewrites any other string of a saved config into snake_case and back ('EMA' would not survive). */
export interface WrapperConfig {
  [key: string]: string | { [key: string]: number | { [key: string]: number } };
  name: string;
  options: { [key: string]: number | { [key: string]: number } };
}

/** The wrappers of a chain as a config holds them: `[{ name, options }]`, outermost first. */
export function wrappersConfig(wrappers: readonly AnyWrapper[]): WrapperConfig[] {
  return wrappers.map((w): WrapperConfig => {
    if (w instanceof EMA) return { name: 'EMA', options: w.warmup === undefined ? { decay: w.decay } : { decay: w.decay, warmup: { gamma: w.warmup.gamma, power: w.warmup.power } } };
    if (w instanceof SWA) return { name: 'SWA', options: { start: w.start, every: w.every } };
    if (w instanceof GradientAccumulation) return { name: 'GradientAccumulation', options: { steps: w.steps } };
    return { name: 'Lookahead', options: { k: w.k, alpha: w.alpha } };
  });
}

/**
 * The chain of a config's `wrappers` around `base`, each made with its saved options (the
 * wrapper's constructor checks them, naming the option and its value).
 */
export function wrappersFromConfig(owner: string, value: unknown, base: TfWrappable): OptimizerLike {
  if (!Array.isArray(value)) throw new TypeError(`${owner}: config.wrappers must be a list of { name, options }, got ${describeValue(value)}`);
  let optimizer: OptimizerLike = base;
  for (let i = value.length - 1; i >= 0; i--) {
    const item = value[i] as { name?: unknown; options?: unknown } | null;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw new TypeError(`${owner}: config.wrappers[${i}] must be { name, options }, got ${describeValue(item)}`);
    const name = item.name;
    if (!WRAPPER_NAMES.includes(name as WrapperName)) throw optionError(owner, `wrappers[${i}].name`, name, WRAPPER_NAMES.map((n) => `'${n}'`).join(', '));
    const options = item.options ?? {};
    if (options === null || typeof options !== 'object' || Array.isArray(options)) throw optionError(owner, `wrappers[${i}].options`, options, `an object of ${String(name)}'s options`);
    const given = { ...(options as Record<string, never>) };
    switch (name as WrapperName) {
      case 'EMA':
        optimizer = new EMA(optimizer, given);
        break;
      case 'SWA':
        optimizer = new SWA(optimizer, given);
        break;
      case 'GradientAccumulation':
        optimizer = new GradientAccumulation(optimizer, given);
        break;
      case 'Lookahead':
        optimizer = new Lookahead(optimizer, given);
        break;
    }
  }
  return optimizer;
}

type Node = { [key: string]: unknown };

function isNode(value: unknown): value is Node {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A copy of `tree` (wrapper and Lookahead nodes) whose innermost state is `leaf`. */
export function withLeaf(tree: unknown, leaf: unknown): unknown {
  if (isNode(tree) && (tree.format === WRAPPER_STATE_FORMAT || tree.format === LOOKAHEAD_FORMAT)) return { ...tree, inner: withLeaf(tree.inner, leaf) };
  return leaf;
}

/** The innermost state of a chain's tree. */
export function leafOf(tree: unknown): unknown {
  let node = tree;
  while (isNode(node) && (node.format === WRAPPER_STATE_FORMAT || node.format === LOOKAHEAD_FORMAT)) node = node.inner;
  return node;
}

/** The wrappers' state as the text of the weight `nesterov/wrappers`: the tree with the base's parameters left out. */
export function wrappersText(tree: SavedState): string {
  const leaf = leafOf(tree) as OptimizerStateDict;
  return stateToJSON(withLeaf(tree, { ...leaf, params: Object.create(null) as OptimizerStateDict['params'] }) as SavedState);
}

/**
 * The parameters a chain's saved state holds anything of, with their lengths, in order:
 * the base's records first, then the wrappers' arrays (a GradientAccumulation's first
 * window may hold sums of parameters the base has no state for yet).
 */
export function paramsOfChainState(tree: unknown): Map<string, number> {
  const out = new Map<string, number>();
  const add = (record: unknown, lengthOf: (value: unknown) => unknown): void => {
    if (!isNode(record)) return;
    for (const [name, value] of Object.entries(record)) {
      const length = lengthOf(value);
      if (!out.has(name) && typeof length === 'number') out.set(name, length);
    }
  };
  const leaf = leafOf(tree);
  if (isNode(leaf)) add(leaf.params, (record) => (isNode(record) ? record.length : undefined));
  let node = tree;
  while (node !== leaf && isNode(node)) {
    add(node.format === LOOKAHEAD_FORMAT ? node.slow : node.buffers, (array) => (ArrayBuffer.isView(array) ? (array as FloatArray).length : undefined));
    node = node.inner;
  }
  return out;
}

/** Record `record` with its keys renamed by `names` (a key not in it kept), without prototype. */
function renamedRecord(record: unknown, names: ReadonlyMap<string, string>): unknown {
  if (!isNode(record)) return record;
  const out = Object.create(null) as Node;
  for (const [key, value] of Object.entries(record)) out[names.get(key) ?? key] = value;
  return out;
}

/**
 * A saved state of a chain (a single optimizer's, or wrapper and Lookahead nodes around
 * it) with every parameter renamed by `names`: the base's records, the wrappers' arrays
 * and counts, a Lookahead's slow weights.
 */
export function renamedState(tree: unknown, names: ReadonlyMap<string, string>): unknown {
  if (!isNode(tree)) return tree;
  if (tree.format === WRAPPER_STATE_FORMAT) return { ...tree, buffers: renamedRecord(tree.buffers, names), counts: renamedRecord(tree.counts, names), inner: renamedState(tree.inner, names) };
  if (tree.format === LOOKAHEAD_FORMAT) return { ...tree, slow: renamedRecord(tree.slow, names), inner: renamedState(tree.inner, names) };
  if (tree.format === PARTITION_FORMAT || (tree.format !== undefined && tree.format !== STATE_FORMAT)) return tree;
  return { ...tree, params: renamedRecord(tree.params, names) };
}
