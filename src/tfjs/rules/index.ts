/**
 * Each registered rule's TF.js ops, by the rule's key (src/rules/index.ts): the 'ops'
 * path looks a rule up here. A rule of the registry with no ops here must be in
 * KERNEL_ONLY with the reason (test/tfjs-ops-registry.test.ts walks RULES).
 */
import { adadeltaOps } from './adadelta.ts';
import { adagradOps } from './adagrad.ts';
import { adamOps } from './adam.ts';
import { adamaxOps } from './adamax.ts';
import { adamwOps } from './adamw.ts';
import { lambOps } from './lamb.ts';
import { lionOps } from './lion.ts';
import { momentumOps } from './momentum.ts';
import { muonOps } from './muon.ts';
import { nadamOps } from './nadam.ts';
import { nadamwOps } from './nadamw.ts';
import { nesterovOps } from './nesterov.ts';
import type { RuleOps } from './ops.ts';
import { qhmOps } from './qhm.ts';
import { adanOps } from './adan.ts';
import { qhadamOps } from './qhadam.ts';
import { radamOps } from './radam.ts';
import { rmspropOps } from './rmsprop.ts';
import { rpropOps } from './rprop.ts';
import { scheduleFreeAdamwOps, scheduleFreeSgdOps } from './schedulefree.ts';
import { sgdOps } from './sgd.ts';

export type { OpsStep, RuleOps } from './ops.ts';

/** A rule's ops with its hyperparameters' type erased (each file types its own). */
export type AnyRuleOps = RuleOps<never>;

function ops<H>(rule: RuleOps<H>): AnyRuleOps {
  return rule as unknown as AnyRuleOps;
}

/** The TF.js ops of each rule, by its registry key. */
export const RULE_OPS: { readonly [key: string]: AnyRuleOps } = Object.freeze({
  sgd: ops(sgdOps),
  momentum: ops(momentumOps),
  nesterov: ops(nesterovOps),
  adagrad: ops(adagradOps),
  rmsprop: ops(rmspropOps),
  adam: ops(adamOps),
  adamw: ops(adamwOps),
  nadam: ops(nadamOps),
  radam: ops(radamOps),
  adamax: ops(adamaxOps),
  adadelta: ops(adadeltaOps),
  rprop: ops(rpropOps),
  'schedulefree-sgd': ops(scheduleFreeSgdOps),
  'schedulefree-adamw': ops(scheduleFreeAdamwOps),
  lion: ops(lionOps),
  lamb: ops(lambOps),
  muon: ops(muonOps),
  qhm: ops(qhmOps),
  adan: ops(adanOps),
  qhadam: ops(qhadamOps),
  nadamw: ops(nadamwOps),
});

/**
 * Rules that run only on the kernel path, by key, each with the reason a user sees when
 * asking for the ops path.
 */
export const KERNEL_ONLY: { readonly [key: string]: string } = Object.freeze({
  prodigy:
    "Prodigy's step size is one estimate over every variable, summed before any variable moves; the ops path steps each variable on its own (RuleOps.step), so Prodigy runs on the kernel path",
  'dadapt-adamw':
    "DAdaptAdamW's step size is one estimate over every variable, summed before any variable moves; the ops path steps each variable on its own (RuleOps.step), so DAdaptAdamW runs on the kernel path",
  adafactor:
    "Adafactor's factored state is a row and a column vector per matrix, and the ops path keeps every state buffer as a variable of its parameter's shape; the kernel path steps it in a ParamStore of the variables' shapes",
});
