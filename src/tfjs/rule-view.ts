/**
 * What the adapter needs to know of the optimizer it wraps, found by its rule's key in
 * the registry (src/rules/index.ts), never by its class: the registry entry, the rule's
 * TF.js ops, and per parameter the hyperparameters, the state buffers' names and a
 * fresh parameter's scalars. Muon, whose step is not an elementwise rule, keeps one set
 * of hyperparameters and one momentum buffer per parameter.
 */
import type { CommonHyper } from '../rule.ts';
import { RULES, type AnyUpdateRule, type RegisteredOptimizer } from '../rules/index.ts';
import type { AnyOptimizer } from '../optimizer.ts';
import type { Muon, MuonHyper } from '../rules/muon.ts';
import { RULE_OPS, type AnyRuleOps } from './rules/index.ts';
import type { TfWrappable } from './types.ts';

/** The registry entry of the rule `optimizer` runs, when it is an optimizer of this library. */
export function registeredOf(optimizer: unknown): RegisteredOptimizer | undefined {
  if (optimizer === null || typeof optimizer !== 'object') return undefined;
  let rule: unknown;
  try {
    rule = (optimizer as { readonly rule?: unknown }).rule;
  } catch {
    return undefined;
  }
  const key = (rule as { readonly key?: unknown } | null | undefined)?.key;
  if (typeof key !== 'string') return undefined;
  const entry = RULES.find((candidate) => candidate.key === key);
  // An elementwise optimizer hands out its registered rule object itself; Muon its description.
  if (entry === undefined || (entry.rule !== undefined && entry.rule !== rule)) return undefined;
  if (typeof (optimizer as { readonly update?: unknown }).update !== 'function') return undefined;
  return entry;
}

export class RuleView {
  readonly entry: RegisteredOptimizer;
  /** The rule's TF.js ops (RULE_OPS), undefined for a rule that runs on the kernel path only. */
  readonly ops: AnyRuleOps | undefined;
  readonly #elementwise: { readonly optimizer: AnyOptimizer; readonly rule: AnyUpdateRule } | undefined;
  readonly #muon: Muon | undefined;

  constructor(optimizer: TfWrappable, entry: RegisteredOptimizer) {
    this.entry = entry;
    this.ops = RULE_OPS[entry.key];
    // The registry says which kind of optimizer this is (entry.rule undefined: Muon).
    if (entry.rule !== undefined) this.#elementwise = { optimizer: optimizer as AnyOptimizer, rule: entry.rule };
    else this.#muon = optimizer as Muon;
  }

  /** The class name ('Adam'), as configs and messages name the rule. */
  get name(): string {
    return this.entry.name;
  }

  /** Schedule-Free: the variables hold y while training, x in eval mode. */
  get scheduleFree(): boolean {
    return this.ops?.averagingBeta !== undefined;
  }

  /** Whether the optimizer updates 2-D variables only (Muon). */
  get matricesOnly(): boolean {
    return this.#muon !== undefined;
  }

  /** The options a config holds, in the rule's order. */
  get optionNames(): readonly string[] {
    return this.#elementwise?.rule.optionNames ?? MUON_OPTION_NAMES;
  }

  /**
   * The resolved hyperparameters of parameter `name` (Muon has one set for all) at update
   * `step` (default: the core optimizer's next), schedules evaluated; throws the core's
   * UpdateError for a scheduled value the rule refuses.
   */
  hyper(name: string, step?: number): CommonHyper | MuonHyper {
    return this.#elementwise !== undefined ? this.#elementwise.optimizer.hyperparameters(name, step) : this.#muon!.hyperparameters(step);
  }

  /** The names of the state buffers of parameter `name`, in the rule's order. */
  bufferNames(name: string): readonly string[] {
    const e = this.#elementwise;
    return e === undefined ? ['momentumBuffer'] : e.rule.bufferNames(this.hyper(name) as never);
  }

  /** The names of a parameter's scalar state. */
  get scalarNames(): readonly string[] {
    return this.#elementwise?.rule.scalarNames ?? [];
  }

  /** A fresh parameter's scalar state (NAdam's muProduct 1, Schedule-Free's lrMax -1, ...), as the rule starts it. */
  initialScalars(name: string): Record<string, number> {
    const scalars: Record<string, number> = {};
    const e = this.#elementwise;
    if (e === undefined) return scalars;
    const fresh = e.rule.init(0, 'float32', this.hyper(name) as never) as unknown as Record<string, number>;
    for (const key of e.rule.scalarNames) scalars[key] = fresh[key]!;
    return scalars;
  }

  /** Elements of the core optimizer's state for `name` (the kernel path's), if any. */
  coreStateLength(name: string): number | undefined {
    const e = this.#elementwise;
    if (e === undefined) return this.#muon!.stateOf(name)?.momentumBuffer.length;
    const state = e.optimizer.stateOf(name);
    // A shaped state's buffers (Adafactor's) are not the parameter's length: the core
    // optimizer checks that length itself, before its step writes anything.
    if (state === undefined || e.rule.ownState === true) return undefined;
    const buffers = e.rule.buffersOf(state as never, e.optimizer.hyperparameters(name) as never);
    return buffers.length > 0 ? buffers[0]!.length : undefined;
  }
}

/** Muon's options that a config holds (its `shapes` come from the variables). */
const MUON_OPTION_NAMES: readonly string[] = ['lr', 'momentum', 'nesterov', 'nsSteps', 'weightDecay', 'maximize'];
