/**
 * Checkpoints of the main job: everything a run needs to continue bit for bit (the
 * network's weights, the optimizer's state, the batch-order RNG and permutation, the
 * position, the curves so far), in one file per optimizer, written atomically (temp
 * file, fsync, rename), so a kill at any instant leaves the last good one.
 *
 * The file is two parts: one header line, exactly
 * `{"format":"nesterov/main-job-checkpoint","version":3,"sha256":"<64 lowercase hex>"}`,
 * then the JSON body. The digest is SHA-256 of the body's exact bytes, so any change
 * of the body (a flipped bit, two swapped base64 characters, a truncation) is caught,
 * and the header must match byte for byte, so a change there is caught too. A body that
 * passes the digest is still checked field by field (a schema, then against the run
 * resuming it), because a digest proves only that the file is what some writer wrote.
 *
 * Version 3 added what a checkpoint belongs to: `runKey` (the run, as its file is named:
 * a renamed or copied file is caught) and `dataSha256` (the digits it trains and is
 * tested on, in order: another --seed's split, other --data or --digits are caught),
 * and `diverged` ({ step, epoch, message }, only in the last checkpoint of a run whose
 * optimizer step overflowed). A version 2 file records neither run nor split, and a
 * renamed one cannot be told from a genuine one, so it is refused.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PARTITION_FORMAT, WRAPPER_STATE_FORMAT, checkSavedState, stateFromJSON, stateToJSON, type OptimizerStateDict, type PartitionStateDict, type SavedState, type WrapperStateDict } from 'nesterov';
import { writeFileAtomicSync } from 'nesterov/node';
import { z } from 'zod';
import { Network } from './nn/network.ts';
import { IMAGE_SIZE, type Digits } from './data.ts';
import { writeErrorOf } from './files.ts';
import { runOptimizer } from './train.ts';
import type { Checkpoint, RunIdentity, TrainConfig } from './types.ts';

export const CHECKPOINT_FORMAT = 'nesterov/main-job-checkpoint';
export const CHECKPOINT_VERSION = 3;

export type { Checkpoint } from './types.ts';

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

const HEADER_PREFIX = `{"format":"${CHECKPOINT_FORMAT}","version":${CHECKPOINT_VERSION},"sha256":"`;
const HEADER = new RegExp(`^${HEADER_PREFIX.replace(/[{}"/.]/g, '\\$&')}([0-9a-f]{64})"\\}$`);
const HEADER_LENGTH = HEADER_PREFIX.length + 64 + 2;

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function bytesOf(array: Float32Array | Uint8Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/**
 * The identity of the data a run trains and is tested on: SHA-256 over the training
 * digits' count, pixels (float32) and labels, then the test digits' the same way. Two
 * splits of the embedded digits by different seeds, or other --data files, differ.
 */
export function dataSha256(data: { train: Digits; test: Digits }): string {
  const hash = createHash('sha256');
  // A megabyte at a time, copied: the --data pixels live in a SharedArrayBuffer (up to
  // 784 MB of them), which a hash may not read directly and should not be copied whole.
  const update = (bytes: Uint8Array) => {
    for (let at = 0; at < bytes.length; at += 1 << 20) hash.update(bytes.slice(at, at + (1 << 20)));
  };
  for (const digits of [data.train, data.test]) {
    hash.update(`${digits.count}\n`);
    update(bytesOf(digits.images));
    update(bytesOf(digits.labels));
  }
  return hash.digest('hex');
}

function bytesToBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function checkpointPath(folder: string, name: string): string {
  return join(folder, 'checkpoints', `${name}.json`);
}

function isPartitionState(state: unknown): state is PartitionStateDict {
  return (state as Partial<PartitionStateDict>).format === PARTITION_FORMAT;
}

function isWrapperState(state: unknown): state is WrapperStateDict {
  return (state as Partial<WrapperStateDict>).format === WRAPPER_STATE_FORMAT;
}

/**
 * The optimizer field's text: stateToJSON's for one optimizer, and for the EMA wrapper
 * of --ema (the whole tree, the inner state in it); for a partition (muon)
 * `{"format":"nesterov/partition-state","members":{KEY: stateToJSON text, ...}}`, so
 * every member's state keeps the checksum and validation of the library's format.
 */
function optimizerStateToText(state: Checkpoint['optimizer']): string {
  if (!isPartitionState(state)) return stateToJSON(state as SavedState);
  return JSON.stringify({ format: state.format, members: Object.fromEntries(Object.entries(state.members).map(([key, member]) => [key, stateToJSON(member)])) });
}

/** The inverse of optimizerStateToText; throws (a one-line message) for anything else. */
function optimizerStateFromText(text: string): Checkpoint['optimizer'] {
  if (!text.startsWith(`{"format":"${PARTITION_FORMAT}"`)) {
    const state = stateFromJSON<SavedState>(text);
    // A run's state is one optimizer's, or (--ema) the EMA wrapper's around one or a partition.
    if (isPartitionState(state)) throw new Error('a partition state is {"format":"nesterov/partition-state","members":{KEY: state text, ...}}');
    return state as Checkpoint['optimizer'];
  }
  const parsed = JSON.parse(text) as { format?: unknown; members?: unknown };
  const members = parsed.members;
  if (members === null || typeof members !== 'object' || Array.isArray(members) || Object.keys(parsed).length !== 2) {
    throw new Error('a partition state is {"format":"nesterov/partition-state","members":{KEY: state text, ...}}');
  }
  const states = Object.create(null) as Record<string, OptimizerStateDict>;
  for (const [key, member] of Object.entries(members as Record<string, unknown>)) {
    if (typeof member !== 'string') throw new Error(`member '${key}' is not the text of a state`);
    try {
      states[key] = stateFromJSON(member);
    } catch (error) {
      throw new Error(`member '${key}': ${(error as Error).message.split('\n')[0]}`);
    }
  }
  return { format: PARTITION_FORMAT, members: states };
}

/** The file's bytes for `checkpoint`: header line with the body's SHA-256, then the body. */
export function encodeCheckpoint(checkpoint: Checkpoint): Buffer {
  const body = Buffer.from(
    JSON.stringify({
      runKey: checkpoint.runKey,
      dataSha256: checkpoint.dataSha256,
      config: checkpoint.config,
      epoch: checkpoint.epoch,
      step: checkpoint.step,
      rng: checkpoint.rng,
      indices: bytesToBase64(new Uint8Array(checkpoint.indices.buffer, checkpoint.indices.byteOffset, checkpoint.indices.byteLength)),
      params: bytesToBase64(new Uint8Array(checkpoint.params.buffer, checkpoint.params.byteOffset, checkpoint.params.byteLength)),
      optimizer: optimizerStateToText(checkpoint.optimizer),
      losses: checkpoint.losses,
      testAccuracy: checkpoint.testAccuracy,
      evalLoss: checkpoint.evalLoss,
      ...(checkpoint.ema ? { ema: checkpoint.ema } : {}),
      seconds: checkpoint.seconds,
      optimizerSeconds: checkpoint.optimizerSeconds,
      finished: checkpoint.finished,
      ...(checkpoint.diverged ? { diverged: checkpoint.diverged } : {}),
    }),
    'utf8',
  );
  return Buffer.concat([Buffer.from(`${HEADER_PREFIX}${sha256(body)}"}\n`, 'utf8'), body]);
}

/** Saves atomically; a failed write (full disk, permissions) is a one-line WriteError naming `path`. */
export function saveCheckpoint(path: string, checkpoint: Checkpoint): void {
  const bytes = encodeCheckpoint(checkpoint);
  try {
    writeFileAtomicSync(path, bytes);
  } catch (error) {
    throw writeErrorOf(path, 'cannot write the checkpoint', error);
  }
}

// Canonical base64 (what Buffer writes): Buffer.from(text, 'base64') skips bad characters silently.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const count = z.int().min(0);
const fraction = z.number().min(0).max(1);

const BODY = z.strictObject({
  runKey: z.string(),
  dataSha256: z.string().regex(/^[0-9a-f]{64}$/, 'not a SHA-256 in lowercase hex'),
  config: z.strictObject({
    optimizer: z.string(),
    lr: z.number().positive(),
    epochs: z.int().min(1),
    batch: z.int().min(1),
    seed: count,
    hidden: z.array(z.int().min(1)).min(1),
    validation: z.int().min(1).optional(),
    ema: z.number().min(0).lt(1).optional(),
  }),
  epoch: count,
  step: count,
  rng: z.array(z.int().min(0).max(0xffffffff), 'expected an array of 4 unsigned 32-bit integers').length(4, 'expected 4 unsigned 32-bit integers'),
  indices: z.string().regex(BASE64, 'not canonical base64'),
  params: z.string().regex(BASE64, 'not canonical base64'),
  optimizer: z.string(),
  losses: z.array(z.number()),
  testAccuracy: z.array(fraction),
  // Absent in checkpoints written before --tune; a search run's checkpoint needs it.
  evalLoss: z.array(z.number().min(0)).optional(),
  // --ema: the averaged weights' curves.
  ema: z.strictObject({ decay: z.number().min(0).lt(1), testAccuracy: z.array(fraction), evalLoss: z.array(z.number().min(0)) }).optional(),
  seconds: z.number().min(0),
  optimizerSeconds: z.number().min(0),
  finished: z.boolean(),
  diverged: z.strictObject({ step: z.int().min(1), epoch: z.int().min(1), message: z.string() }).optional(),
});

/** A value for a one-line message: short, JSON-quoted, never a whole array. */
function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function fieldName(path: readonly PropertyKey[]): string {
  return path.map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`)).join('');
}

/**
 * The network's layout as train() saves it: the length of each parameter (W1, b1, W2,
 * b2, ...) and of the store's whole region (the parameters with their alignment gaps).
 */
export function networkLayout(hidden: readonly number[]): { shapes: Map<string, number>; regionLength: number } {
  const { store } = new Network({ inputSize: IMAGE_SIZE, hiddenSizes: hidden, outputSize: 10 });
  return { shapes: new Map(Object.entries(store.params).map(([name, array]) => [name, array.length])), regionLength: store.regionLength };
}

/**
 * Reads and checks a checkpoint for the run `identity` (its key and data) with
 * configuration `expected` on `trainingDigits` training digits (less the validation
 * ones for a search run): the digest, every field's type and range, and every field
 * against the run (position within the epochs, permutation, network size,
 * curve lengths, the optimizer state). Returns undefined when there is no file; throws
 * CheckpointError (one line naming the file and the field) for anything else.
 */
export function loadCheckpoint(path: string, expected: TrainConfig, trainingDigits: number, identity: RunIdentity): Checkpoint | undefined {
  // A search run trains on the training digits minus its validation ones.
  const trainCount = trainingDigits - (expected.validation ?? 0);
  function fail(message: string): never {
    throw new CheckpointError(`${path}: ${message}`);
  }
  const { shapes, regionLength: paramCount } = networkLayout(expected.hidden);
  const stepsPerEpoch = Math.floor(trainCount / expected.batch);
  let size: number;
  try {
    const stats = statSync(path);
    if (!stats.isFile()) fail('not a regular file');
    size = stats.size;
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return fail(`cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  // Room for the params and up to three optimizer buffers in base64, the permutation and the curves.
  const maxSize = (1 << 20) + 32 * paramCount + 16 * trainCount + 32 * expected.epochs * (stepsPerEpoch + 1);
  if (size > maxSize) fail(`${size} bytes, more than a checkpoint of this run can hold (${maxSize}); not a checkpoint`);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    return fail(`cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }

  const newline = bytes.indexOf(0x0a);
  const headerLine = bytes.subarray(0, newline < 0 ? Math.min(bytes.length, HEADER_LENGTH + 1) : newline).toString('latin1');
  const header = HEADER.exec(headerLine);
  if (header === null || newline !== HEADER_LENGTH) {
    let first: unknown;
    try {
      first = JSON.parse(newline < 0 ? bytes.toString('utf8') : headerLine);
    } catch {
      first = undefined;
    }
    const record = typeof first === 'object' && first !== null ? (first as Record<string, unknown>) : {};
    if (record.format === CHECKPOINT_FORMAT && record.version !== CHECKPOINT_VERSION) {
      fail(
        `checkpoint version ${describe(record.version)}, this program reads version ${CHECKPOINT_VERSION} (an older release's checkpoint does not record which run and data split it belongs to, so it cannot be checked against this run; delete it or use another --out)`,
      );
    }
    if (record.format === CHECKPOINT_FORMAT || headerLine.startsWith('{"format":"nesterov/')) fail('corrupt checkpoint (its header line is damaged)');
    fail(`not a checkpoint of this program (format ${describe(record.format)}, expected a first line {"format":"${CHECKPOINT_FORMAT}",...})`);
  }
  const body = bytes.subarray(newline + 1);
  if (sha256(body) !== header[1]) fail('corrupt checkpoint (the SHA-256 of its content does not match its header: the file was changed or damaged)');

  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (error) {
    return fail(`corrupt checkpoint (${(error as Error).message})`);
  }
  const checked = BODY.safeParse(parsed);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0]!;
      const owner = issue.path.length === 0 ? '' : `${fieldName(issue.path)}.`;
      fail(`field '${owner}${key}' is not a field of a checkpoint`);
    }
    let value: unknown = parsed;
    for (const key of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[key];
    const where = issue.path.length === 0 ? 'the content' : `field '${fieldName(issue.path)}'`;
    const problem = issue.message.replace(/^Invalid input: /, '');
    fail(`${where} is ${describe(value)}: ${problem.charAt(0).toLowerCase()}${problem.slice(1)}`);
  }
  const record = checked.data;

  // What it belongs to first: a renamed file can match every flag of the run it poses as.
  if (record.runKey !== identity.runKey) {
    fail(`the checkpoint of run ${record.runKey}, not of ${identity.runKey} (a renamed or copied file; delete it or use another --out)`);
  }
  if (record.dataSha256 !== identity.dataSha256) {
    fail('made on other digits than this run trains and tests on (another --seed splits the embedded digits otherwise; or other --data or --digits): use the same flags, or another --out');
  }
  const config = record.config;
  for (const key of ['optimizer', 'lr', 'epochs', 'batch', 'seed', 'validation', 'ema'] as const) {
    if (config[key] !== expected[key]) {
      fail(`made with ${key} ${JSON.stringify(config[key]) ?? 'none'}, this run has ${JSON.stringify(expected[key]) ?? 'none'} (use the same flags, or another --out)`);
    }
  }
  if (JSON.stringify(config.hidden) !== JSON.stringify(expected.hidden)) {
    fail(`made with hidden ${JSON.stringify(config.hidden)}, this run has ${JSON.stringify(expected.hidden)}`);
  }

  const { epoch, step, diverged } = record;
  const field = (name: string, value: unknown, problem: string): never => fail(`field '${name}' is ${describe(value)}: ${problem}`);
  if (epoch > expected.epochs) field('epoch', epoch, `this run has ${expected.epochs} epochs`);
  if (step >= stepsPerEpoch || (epoch === expected.epochs && step !== 0)) {
    field('step', step, epoch === expected.epochs ? 'a finished run is at step 0' : `an epoch of this run has ${stepsPerEpoch} steps (0 to ${stepsPerEpoch - 1})`);
  }
  // A run that diverged stopped at the step that failed: finished, within its epochs.
  if (diverged !== undefined && epoch === expected.epochs) field('diverged', diverged, `the checkpoint is at the end of the run (epoch ${epoch} of ${expected.epochs})`);
  if (record.finished !== (epoch === expected.epochs || diverged !== undefined)) {
    field('finished', record.finished, diverged === undefined ? `the checkpoint is at epoch ${epoch} of ${expected.epochs}` : 'the run diverged');
  }
  const done = epoch * stepsPerEpoch + step;
  if (diverged !== undefined && (diverged.step !== done + 1 || diverged.epoch !== epoch + 1)) {
    field('diverged', diverged, `the checkpoint is at step ${done + 1} (epoch ${epoch + 1}), the one that failed`);
  }
  // A failed step may have been applied (an overflow is written in the step's pass), to some members of a partition.
  const stepsTaken = diverged === undefined ? [done] : [done, done + 1];
  if (record.losses.length !== done) field('losses', record.losses, `the checkpoint is after ${done} steps`);
  if (record.testAccuracy.length !== epoch) field('testAccuracy', record.testAccuracy, `the checkpoint is after ${epoch} epochs`);
  if (record.evalLoss === undefined && expected.validation !== undefined) field('evalLoss', undefined, 'a run of the learning-rate search records its validation loss');
  if (record.evalLoss !== undefined && record.evalLoss.length !== epoch) field('evalLoss', record.evalLoss, `the checkpoint is after ${epoch} epochs`);
  // --ema: the averaged weights are evaluated after every epoch, at the run's decay.
  if ((record.ema === undefined) !== (expected.ema === undefined)) field('ema', record.ema, expected.ema === undefined ? 'this run has no --ema' : `this run evaluates the EMA (decay ${expected.ema}) after every epoch`);
  if (record.ema !== undefined) {
    if (record.ema.decay !== expected.ema) field('ema.decay', record.ema.decay, `this run has --ema ${expected.ema}`);
    if (record.ema.testAccuracy.length !== epoch) field('ema.testAccuracy', record.ema.testAccuracy, `the checkpoint is after ${epoch} epochs`);
    if (record.ema.evalLoss.length !== epoch) field('ema.evalLoss', record.ema.evalLoss, `the checkpoint is after ${epoch} epochs`);
  }
  if (record.rng.every((word) => word === 0)) field('rng', record.rng, 'an all-zero state is not a state of the generator');

  const indicesBytes = Buffer.from(record.indices, 'base64');
  if (indicesBytes.length !== 4 * trainCount) fail(`field 'indices' holds ${indicesBytes.length} bytes: this run has ${trainCount} training digits (${4 * trainCount} bytes)`);
  const indices = new Uint32Array(new Uint8Array(indicesBytes).buffer);
  const seen = new Uint8Array(trainCount);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i]!;
    if (index >= trainCount || seen[index] === 1) field(`indices[${i}]`, index, `not a permutation of 0..${trainCount - 1}`);
    seen[index] = 1;
  }
  const paramBytes = Buffer.from(record.params, 'base64');
  if (paramBytes.length !== 4 * paramCount) fail(`field 'params' holds ${paramBytes.length} bytes: this network's weights take ${4 * paramCount} bytes (${paramCount} float32 values with the alignment gaps)`);
  const params = new Float32Array(new Uint8Array(paramBytes).buffer);
  // A step that overflowed leaves non-finite weights: a diverged run's last checkpoint may hold them.
  const bad = diverged === undefined ? params.findIndex((value) => !Number.isFinite(value)) : -1;
  if (bad >= 0) field(`params[${bad}]`, params[bad], 'not a finite number');

  let optimizer: Checkpoint['optimizer'];
  try {
    optimizer = optimizerStateFromText(record.optimizer);
    // A diverged run never steps again, and its state may hold the overflow the failed
    // step wrote, which an optimizer refuses to load (it would write NaN into the
    // params): its shape is checked, and the run is reported as it stopped.
    if (diverged === undefined) runOptimizer(expected).optimizer.loadStateDict(optimizer);
    else checkSavedState(optimizer);
    if (isWrapperState(optimizer) !== (expected.ema !== undefined)) throw new Error(expected.ema === undefined ? 'the state of an EMA wrapper, and this run has no --ema' : `this run has --ema ${expected.ema}: its state is an EMA wrapper's`);
  } catch (error) {
    return fail(`field 'optimizer': ${(error as Error).message.split('\n')[0]}`);
  }
  // --ema: the wrapper has taken as many steps, and averaged each parameter of the network.
  let innerState: OptimizerStateDict | PartitionStateDict;
  let innerWhere = 'optimizer';
  if (isWrapperState(optimizer)) {
    const steps = optimizer.counters.steps!;
    if (!stepsTaken.includes(steps)) field('optimizer.counters.steps', steps, `the checkpoint is after ${done} steps${diverged === undefined ? '' : ` (or ${done + 1}: the step that failed)`}`);
    for (const [name, average] of Object.entries(optimizer.buffers)) {
      const length = shapes.get(name);
      if (length === undefined) field('optimizer.buffers', name, `this network's parameters are ${[...shapes.keys()].join(', ')}`);
      if (average.length !== length || !(average instanceof Float32Array)) field(`optimizer.buffers.${name}`, `${average.constructor.name} x ${average.length}`, `this network's ${name} is float32 x ${length}`);
    }
    innerState = optimizer.inner as OptimizerStateDict | PartitionStateDict;
    innerWhere = 'optimizer.inner';
  } else {
    innerState = optimizer;
  }
  // A partition (muon): every member has stepped every step, each on its own parameters.
  const states: [string, OptimizerStateDict][] = isPartitionState(innerState) ? Object.entries(innerState.members).map(([key, state]) => [`${innerWhere}.members.${key}`, state]) : [[innerWhere, innerState]];
  for (const [where, state] of states) {
    if (!stepsTaken.includes(state.stepCount)) field(`${where}.stepCount`, state.stepCount, `the checkpoint is after ${done} steps${diverged === undefined ? '' : ` (or ${done + 1}: the step that failed)`}`);
    for (const [name, param] of Object.entries(state.params)) {
      const length = shapes.get(name);
      if (length === undefined) field(`${where}.params`, name, `this network's parameters are ${[...shapes.keys()].join(', ')}`);
      if (param.length !== length || param.dtype !== 'float32') field(`${where}.params.${name}`, `${param.dtype} x ${param.length}`, `this network's ${name} is float32 x ${length}`);
      if (param.step > stepsTaken[stepsTaken.length - 1]!) field(`${where}.params.${name}.step`, param.step, `the checkpoint is after ${done} steps`);
    }
  }

  return {
    runKey: record.runKey,
    dataSha256: record.dataSha256,
    config: expected,
    epoch,
    step,
    rng: record.rng,
    indices,
    params,
    optimizer,
    losses: record.losses,
    testAccuracy: record.testAccuracy,
    evalLoss: record.evalLoss ?? new Array<number>(epoch).fill(NaN),
    ...(record.ema === undefined ? {} : { ema: record.ema }),
    seconds: record.seconds,
    optimizerSeconds: record.optimizerSeconds,
    finished: record.finished,
    ...(diverged === undefined ? {} : { diverged }),
  };
}
