/**
 * The adapter as a TF.js serializable: `getConfig` holds the rule and its options
 * (numbers, booleans, strings), enough for `fromConfig` to make the same optimizer,
 * except a schedule (`lr: null`, `lrSchedule: true`) and `overrides`, which are functions
 * or patterns and are not saved. Reading a config checks every field, naming it and its value.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { describeValue, optionError } from '../errors.ts';
import { RULES } from '../rules/index.ts';
import type { RuleView } from './rule-view.ts';
import type { TfOptimizerOptions, TfWrappable } from './types.ts';

/** The config of an adapter of `optimizer` (whose rule `view` describes). */
export function configOf(optimizer: TfWrappable, view: RuleView, options: Readonly<TfOptimizerOptions>): tf.serialization.ConfigDict {
  const saved: tf.serialization.ConfigDict = {};
  const defaults = optimizer.defaults as unknown as Record<string, unknown>;
  for (const key of view.optionNames) {
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
  return config;
}

/**
 * Our optimizer and the adapter's options from a config of `configOf` (TfOptimizer's, or
 * a partition member's).
 */
export function optimizerFromConfig(owner: string, config: unknown): { optimizer: TfWrappable; options: TfOptimizerOptions } {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new TypeError(`${owner}: config must be an object, got ${describeValue(config)}`);
  const c = config as { readonly [key: string]: unknown };
  // The config names the rule by its class name ('AdamW'), as saved models hold it.
  const entry = RULES.find((candidate) => candidate.name === c.optimizer);
  if (entry === undefined) throw optionError(owner, 'optimizer', c.optimizer, RULES.map((r) => `'${r.name}'`).join(', '));
  if (c.lrSchedule === true) throw new RangeError(`${owner}: the optimizer used an lr schedule, which a config cannot hold: make it again with tfOptimizer(new ${entry.name}({ lr: schedule }))`);
  const given = c.options ?? {};
  if (given === null || typeof given !== 'object' || Array.isArray(given)) throw optionError(owner, 'options', given, "an object of the optimizer's options");
  const options = adapterOptionsFromConfig(owner, c);
  return { optimizer: entry.make({ ...(given as Record<string, unknown>) }) as TfWrappable, options };
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
