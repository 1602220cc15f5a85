/**
 * The adapter as a TF.js serializable: `getConfig` holds the rule and its options
 * (numbers, booleans, strings) and the wrappers around it (`wrappers: [{ name, options }]`,
 * outermost first, see wrappers.ts), enough for `fromConfig` to make the same optimizer,
 * except a schedule (`lrSchedule: true` for lr, `schedules: [names]` for the others) and
 * `overrides`, which are functions
 * or patterns and are not saved. Reading a config checks every field, naming it and its value.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { describeValue, optionError } from '../errors.ts';
import { RULES } from '../rules/index.ts';
import type { RuleView } from './rule-view.ts';
import type { TfOptimizerOptions, TfWrappable } from './types.ts';
import { wrappersFromConfig, type TfWrapper } from './wrappers.ts';

/** The config of an adapter of `optimizer` (whose rule `view` describes). */
export function configOf(optimizer: TfWrappable, view: RuleView, options: Readonly<TfOptimizerOptions>): tf.serialization.ConfigDict {
  const saved: tf.serialization.ConfigDict = {};
  const defaults = optimizer.defaults as unknown as Record<string, unknown>;
  // A scheduled option's record holds one step's value: saving it would make a constant of it.
  const scheduled = optimizer.scheduledOptions.filter((key) => key !== 'lr');
  for (const key of view.optionNames) {
    if (scheduled.includes(key)) continue;
    const value = defaults[key];
    // null is an option's value too (Adafactor's clippingThreshold: null, no clipping).
    if (value === null || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') saved[key] = value;
  }
  saved.nonFinite = optimizer.nonFinite;
  const config: tf.serialization.ConfigDict = {
    optimizer: view.name,
    options: saved,
    lrSchedule: typeof optimizer.defaults.lr === 'function',
    path: options.path ?? 'auto',
  };
  if (options.clipGradNorm !== undefined) config.clipGradNorm = options.clipGradNorm;
  if (scheduled.length > 0) config.schedules = scheduled;
  return config;
}

/**
 * Our optimizer and the adapter's options from a config of `configOf` (TfOptimizer's, or
 * a partition member's).
 */
export function optimizerFromConfig(owner: string, config: unknown): { optimizer: TfWrappable | TfWrapper; options: TfOptimizerOptions } {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new TypeError(`${owner}: config must be an object, got ${describeValue(config)}`);
  const c = config as { readonly [key: string]: unknown };
  // The config names the rule by its class name ('AdamW'), as saved models hold it.
  const entry = RULES.find((candidate) => candidate.name === c.optimizer);
  if (entry === undefined) throw optionError(owner, 'optimizer', c.optimizer, RULES.map((r) => `'${r.name}'`).join(', '));
  if (c.lrSchedule === true) throw new RangeError(`${owner}: the optimizer used an lr schedule, which a config cannot hold: make it again with tfOptimizer(new ${entry.name}({ lr: schedule }))`);
  if (Array.isArray(c.schedules) && c.schedules.length > 0) {
    throw new RangeError(`${owner}: the optimizer used schedules for ${c.schedules.map(String).join(', ')}, which a config cannot hold: make it again with tfOptimizer(new ${entry.name}({ ${c.schedules.map(String).join(', ')}: (step) => value }))`);
  }
  const given = c.options ?? {};
  if (given === null || typeof given !== 'object' || Array.isArray(given)) throw optionError(owner, 'options', given, "an object of the optimizer's options");
  const options = adapterOptionsFromConfig(owner, c);
  const base = entry.make({ ...(given as Record<string, unknown>) }) as TfWrappable;
  // The wrappers around it (wrappers.ts), outermost first; absent from a config without them.
  const optimizer = c.wrappers === undefined ? base : (wrappersFromConfig(owner, c.wrappers, base) as TfWrapper);
  return { optimizer, options };
}

/** The adapter's own options in a config (`path`, `clipGradNorm`), checked. */
export function adapterOptionsFromConfig(owner: string, config: { readonly [key: string]: unknown }): TfOptimizerOptions {
  const path = config.path ?? 'auto';
  if (path !== 'auto' && path !== 'kernel' && path !== 'ops') throw optionError(owner, 'path', path, "'auto', 'kernel' or 'ops'");
  const clip = config.clipGradNorm ?? undefined;
  if (clip !== undefined && (typeof clip !== 'number' || !(clip >= 0) || clip === Infinity)) throw optionError(owner, 'clipGradNorm', clip, 'a finite number >= 0');
  const options: TfOptimizerOptions = { path };
  if (clip !== undefined) options.clipGradNorm = clip;
  return options;
}
