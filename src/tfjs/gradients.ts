/**
 * A call's gradients, checked against their variables before anything is written: the
 * checks `applyGradients` runs (TfOptimizer's and each member's of a TfPartition).
 */
import * as tf from '@tensorflow/tfjs-core';
import { UpdateError, describeValue } from '../errors.ts';
import type { Entry, NamedTensor } from './types.ts';

/** The call's (name, gradient) pairs, in its order; a clear TypeError for what is not a call. */
export function pairsOf(owner: string, variableGradients: tf.NamedTensorMap | NamedTensor[]): [string, tf.Tensor | null | undefined][] {
  if (variableGradients === null || typeof variableGradients !== 'object') {
    throw new TypeError(`${owner}: expected a map of gradients by variable name or an array of { name, tensor }, got ${describeValue(variableGradients)}`);
  }
  if (!Array.isArray(variableGradients)) return Object.entries(variableGradients);
  return variableGradients.map((item, i) => {
    if (item === null || typeof item !== 'object' || typeof item.name !== 'string') {
      throw new TypeError(`${owner}: item ${i} must be { name, tensor }, got ${describeValue(item)}`);
    }
    return [item.name, item.tensor];
  });
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export interface GradientChecks {
  /** Muon: every variable must be 2-D. */
  readonly matricesOnly: boolean;
  /** Elements of the state kept for a variable, if any. */
  stateLength(name: string): number | undefined;
}

/** The call's gradients, each checked against its variable; throws before anything is written. */
export function gradientEntries(owner: string, variableGradients: tf.NamedTensorMap | NamedTensor[], checks: GradientChecks): Entry[] {
  const pairs = pairsOf(owner, variableGradients);
  const registered = tf.engine().registeredVariables;
  const seen = new Set<string>();
  const entries: Entry[] = [];
  for (const [name, gradient] of pairs) {
    if (seen.has(name)) throw new UpdateError(`${owner}: two gradients for variable '${name}'`, name);
    seen.add(name);
    if (gradient === null || gradient === undefined) continue; // TF.js skips a missing gradient too
    const variable = Object.hasOwn(registered, name) ? registered[name] : undefined;
    if (variable === undefined) throw new UpdateError(`${owner}: gradient '${name}' has no variable of that name (tf.engine().registeredVariables)`, name);
    if (!(gradient instanceof tf.Tensor)) throw new UpdateError(`${owner}: gradient '${name}' must be a tf.Tensor, got ${describeValue(gradient)}`, name);
    if (gradient.isDisposed) throw new UpdateError(`${owner}: gradient '${name}' is disposed`, name);
    if (variable.dtype !== 'float32' || gradient.dtype !== 'float32') {
      throw new UpdateError(`${owner}: variable '${name}' and its gradient must be float32, got ${variable.dtype} and ${gradient.dtype}`, name);
    }
    if (!sameShape(variable.shape, gradient.shape)) {
      throw new UpdateError(`${owner}: gradient '${name}' has shape [${gradient.shape.join(', ')}], its variable has shape [${variable.shape.join(', ')}]`, name);
    }
    if (checks.matricesOnly && variable.rank !== 2) {
      throw new UpdateError(
        `${owner}: variable '${name}' has shape [${variable.shape.join(', ')}]: Muon updates 2-D variables only (give '${name}' to another optimizer: tfOptimizer(partition(assign, { muon, adamw })))`,
        name,
      );
    }
    const state = checks.stateLength(name);
    if (state !== undefined && state !== variable.size) {
      throw new UpdateError(`${owner}: variable '${name}' has ${variable.size} elements, but its optimizer state was made for ${state} (did the variable change shape?)`, name);
    }
    entries.push({ name, variable, gradient });
  }
  return entries;
}
