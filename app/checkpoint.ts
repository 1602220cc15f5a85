/**
 * Checkpoints of the main job: everything a run needs to continue bit for bit (the
 * network's weights, the optimizer's state, the batch-order RNG and permutation, the
 * position, the curves so far), in one JSON file per optimizer, written atomically
 * (temp file, fsync, rename), so a kill at any instant leaves the last good one.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stateFromJSON, stateToJSON, type OptimizerStateDict } from 'nesterov';
import { writeFileAtomicSync } from 'nesterov/node';
import type { TrainConfig } from './train.ts';

export const CHECKPOINT_VERSION = 1;

export interface Checkpoint {
  config: TrainConfig;
  /** Where the next step starts. */
  epoch: number;
  step: number;
  rng: number[];
  indices: Uint32Array;
  params: Float32Array;
  optimizer: OptimizerStateDict;
  losses: number[];
  testAccuracy: number[];
  seconds: number;
  optimizerSeconds: number;
  finished: boolean;
}

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

function bytesToBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function checkpointPath(folder: string, name: string): string {
  return join(folder, 'checkpoints', `${name}.json`);
}

export function saveCheckpoint(path: string, checkpoint: Checkpoint): void {
  const record = {
    format: 'nesterov/main-job-checkpoint',
    version: CHECKPOINT_VERSION,
    ...checkpoint,
    indices: bytesToBase64(new Uint8Array(checkpoint.indices.buffer, checkpoint.indices.byteOffset, checkpoint.indices.byteLength)),
    params: bytesToBase64(new Uint8Array(checkpoint.params.buffer, checkpoint.params.byteOffset, checkpoint.params.byteLength)),
    optimizer: stateToJSON(checkpoint.optimizer),
  };
  writeFileAtomicSync(path, JSON.stringify(record));
}

/** Reads and checks a checkpoint; `expected` is the configuration of the run resuming it. */
export function loadCheckpoint(path: string, expected: TrainConfig): Checkpoint | undefined {
  if (!existsSync(path)) return undefined;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new CheckpointError(`${path}: corrupt checkpoint (${(error as Error).message})`);
  }
  if (record.format !== 'nesterov/main-job-checkpoint' || record.version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(`${path}: not a checkpoint of this program (format ${JSON.stringify(record.format)}, version ${JSON.stringify(record.version)})`);
  }
  const config = record.config as TrainConfig;
  for (const key of ['optimizer', 'lr', 'epochs', 'batch', 'seed'] as const) {
    if (config?.[key] !== expected[key]) {
      throw new CheckpointError(`${path}: made with ${key} ${JSON.stringify(config?.[key])}, this run has ${JSON.stringify(expected[key])} (use the same flags, or another --out)`);
    }
  }
  if (JSON.stringify(config.hidden) !== JSON.stringify(expected.hidden)) {
    throw new CheckpointError(`${path}: made with hidden ${JSON.stringify(config.hidden)}, this run has ${JSON.stringify(expected.hidden)}`);
  }
  try {
    const indices = Buffer.from(record.indices as string, 'base64');
    const params = Buffer.from(record.params as string, 'base64');
    const copy = (bytes: Buffer) => new Uint8Array(bytes).buffer;
    return {
      config,
      epoch: record.epoch as number,
      step: record.step as number,
      rng: record.rng as number[],
      indices: new Uint32Array(copy(indices)),
      params: new Float32Array(copy(params)),
      optimizer: stateFromJSON(record.optimizer as string),
      losses: record.losses as number[],
      testAccuracy: record.testAccuracy as number[],
      seconds: record.seconds as number,
      optimizerSeconds: record.optimizerSeconds as number,
      finished: record.finished === true,
    };
  } catch (error) {
    throw new CheckpointError(`${path}: corrupt checkpoint (${(error as Error).message})`);
  }
}
