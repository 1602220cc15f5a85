/**
 * The registry: every optimizer of the library, in one list that every other list is
 * derived from (the TF.js adapter, the bench, the app's table, the tests' tables, the
 * README's table is checked against it). Adding a rule means adding its line here; a
 * test walks this list and fails where a rule has no fixture, no test settings or no
 * README row.
 */
import type { OptimizerLike } from '../contract.ts';
import type { CommonHyper, RuleDescription, RuleState, UpdateRule } from '../rule.ts';
import { AdaGrad, adagradRule } from './adagrad.ts';
import { Adadelta, adadeltaRule } from './adadelta.ts';
import { Adam, adamRule } from './adam.ts';
import { Adamax, adamaxRule } from './adamax.ts';
import { AdamW, adamwRule } from './adamw.ts';
import { LAMB, lambRule } from './lamb.ts';
import { Lion, lionRule } from './lion.ts';
import { Momentum, momentumRule } from './momentum.ts';
import { Muon, muonDescription, type MuonOptions } from './muon.ts';
import { NAdam, nadamRule } from './nadam.ts';
import { NAdamW, nadamwRule } from './nadamw.ts';
import { QHM, qhmRule } from './qhm.ts';
import { Adan, adanRule } from './adan.ts';
import { QHAdam, qhadamRule } from './qhadam.ts';
import { Prodigy, prodigyRule } from './prodigy.ts';
import { DAdaptAdamW, dadaptAdamwRule } from './dadapt-adamw.ts';
import { Adafactor, adafactorRule } from './adafactor.ts';
import { Nesterov, nesterovRule } from './nesterov.ts';
import { RAdam, radamRule } from './radam.ts';
import { RMSProp, rmspropRule } from './rmsprop.ts';
import { Rprop, rpropRule } from './rprop.ts';
import { ScheduleFreeAdamW, scheduleFreeAdamwRule } from './schedulefree-adamw.ts';
import { ScheduleFreeSGD, scheduleFreeSgdRule } from './schedulefree-sgd.ts';
import { SGD, sgdRule } from './sgd.ts';

/** An elementwise rule of any options, hyperparameters and state (for code that walks the registry). */
export type AnyUpdateRule = UpdateRule<never, CommonHyper, RuleState>;

/** One registered optimizer. */
export interface RegisteredOptimizer extends RuleDescription {
  /** The elementwise rule it runs; undefined for Muon, whose step is a matrix iteration. */
  readonly rule: AnyUpdateRule | undefined;
  /** A new optimizer of this rule (options as its class takes them; validated there). */
  make(options?: Record<string, unknown>): OptimizerLike;
}

function entry<O>(rule: UpdateRule<O & object, CommonHyper, RuleState> | RuleDescription, make: (options: O) => OptimizerLike, elementwise: boolean): RegisteredOptimizer {
  const { name, key, paper, weightDecayKind, fixedOptions, peers } = rule;
  return Object.freeze({
    name,
    key,
    paper,
    weightDecayKind,
    ...(fixedOptions === undefined ? {} : { fixedOptions }),
    peers,
    rule: elementwise ? (rule as unknown as AnyUpdateRule) : undefined,
    make: (options: Record<string, unknown> = {}) => make(options as O),
  });
}

/** Every optimizer of the library, the book's seven first, then the rest as they were added. */
export const RULES: readonly RegisteredOptimizer[] = Object.freeze([
  entry(sgdRule, (o) => new SGD(o), true),
  entry(momentumRule, (o) => new Momentum(o), true),
  entry(nesterovRule, (o) => new Nesterov(o), true),
  entry(adagradRule, (o) => new AdaGrad(o), true),
  entry(rmspropRule, (o) => new RMSProp(o), true),
  entry(adamRule, (o) => new Adam(o), true),
  entry(adamwRule, (o) => new AdamW(o), true),
  entry(nadamRule, (o) => new NAdam(o), true),
  entry(radamRule, (o) => new RAdam(o), true),
  entry(adamaxRule, (o) => new Adamax(o), true),
  entry(adadeltaRule, (o) => new Adadelta(o), true),
  entry(rpropRule, (o) => new Rprop(o), true),
  entry(scheduleFreeSgdRule, (o) => new ScheduleFreeSGD(o), true),
  entry(scheduleFreeAdamwRule, (o) => new ScheduleFreeAdamW(o), true),
  entry(lionRule, (o) => new Lion(o), true),
  entry(lambRule, (o) => new LAMB(o), true),
  entry<MuonOptions>(muonDescription, (o) => new Muon(o), false),
  entry(qhmRule, (o) => new QHM(o), true),
  entry(adanRule, (o) => new Adan(o), true),
  entry(qhadamRule, (o) => new QHAdam(o), true),
  entry(prodigyRule, (o) => new Prodigy(o), true),
  entry(dadaptAdamwRule, (o) => new DAdaptAdamW(o), true),
  entry(adafactorRule, (o) => new Adafactor(o), true),
  entry(nadamwRule, (o) => new NAdamW(o), true),
]);

/** The registered optimizer of a key ('nesterov') or class name ('Nesterov'), or undefined. */
export function registered(keyOrName: string): RegisteredOptimizer | undefined {
  return RULES.find((candidate) => candidate.key === keyOrName || candidate.name === keyOrName);
}
