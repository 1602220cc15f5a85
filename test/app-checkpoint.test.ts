/**
 * The main job's checkpoints: a SHA-256 over the content that
 * catches any change, every field checked (schema, then against the run) with one line
 * naming the file and the field, all checkpoints of a run checked before any training,
 * and the stale temp files of killed writes removed at start.
 *
 * The file format (app/checkpoint.ts): a header line
 * {"format":"nesterov/main-job-checkpoint","version":3,"sha256":"<hex of the body>"}
 * then the JSON body. `sign` below writes that header from the spec, so a test can
 * change a field and keep the digest right (a deliberate edit, or a buggy writer).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { Rng } from '../app/nn/rng.ts';
import { CheckpointError, dataSha256, loadCheckpoint, saveCheckpoint, type Checkpoint } from '../app/checkpoint.ts';
import { loadPackageDigits, split, type Digits } from '../app/data.ts';
import { train, type TrainConfig } from '../app/train.ts';

/** The run these checkpoints belong to (its key and its digits' SHA-256), as the CLI records it. */
const ID = { runKey: 'sgd', dataSha256: 'ab'.repeat(32) };

const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));
const run = promisify(execFile);

async function start(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Header line + body, the digest computed here from the format's definition. */
export function sign(body: string): Buffer {
  const digest = createHash('sha256').update(Buffer.from(body, 'utf8')).digest('hex');
  return Buffer.from(`{"format":"nesterov/main-job-checkpoint","version":3,"sha256":"${digest}"}\n${body}`, 'utf8');
}

/** The body of a checkpoint file (after the header line; an old single-line file is all body). */
function bodyOf(file: Buffer): string {
  const text = file.toString('utf8');
  const newline = text.indexOf('\n');
  return newline < 0 ? text : text.slice(newline + 1);
}

/** Writes `body` to `path` in the format of the checkpoint `like` (with a header line or, before checksums, without). */
function writeBodyLike(like: string, path: string, body: string): void {
  writeFileSync(path, readFileSync(like, 'utf8').includes('\n') ? sign(body) : body);
}

/** Rewrites a checkpoint file with `edit` applied to its parsed body, keeping its digest valid. */
function editCheckpoint(path: string, edit: (record: Record<string, unknown>) => unknown): void {
  const file = readFileSync(path);
  const record = JSON.parse(bodyOf(file)) as Record<string, unknown>;
  const replaced = edit(record);
  const edited = JSON.stringify(replaced === undefined ? record : replaced);
  writeFileSync(path, file.toString('utf8').includes('\n') ? sign(edited) : edited);
}

/** A tiny real run (784-3-10, 40 random digits, batch 10, 2 epochs) and every checkpoint it saves. */
function tinyRun(optimizer = 'nesterov'): { config: TrainConfig; saved: Checkpoint[]; trainCount: number } {
  const rng = new Rng(9);
  const make = (count: number): Digits => ({
    images: Float32Array.from({ length: count * 784 }, () => rng.next()),
    labels: Uint8Array.from({ length: count }, () => rng.below(10)),
    count,
  });
  const config: TrainConfig = { optimizer, lr: 0.05, epochs: 2, batch: 10, seed: 3, hidden: [3] };
  const saved: Checkpoint[] = [];
  train(config, { train: make(40), test: make(10) }, () => undefined, { every: 3, identity: ID, save: (c) => saved.push(c) });
  return { config, saved, trainCount: 40 };
}

describe('checkpoint files: SHA-256 and every field checked (function level)', () => {
  const folder = mkdtempSync(join(tmpdir(), 'nesterov-ckpt-unit-'));
  const { config, saved, trainCount } = tinyRun();

  it('the tiny run saves at steps 3 and 6 and after each epoch (4 steps an epoch)', () => {
    assert.deepEqual(
      saved.map((c) => [c.epoch, c.step, c.finished, c.losses.length, c.testAccuracy.length]),
      [
        [0, 3, false, 3, 0],
        [1, 0, false, 4, 1],
        [1, 2, false, 6, 1],
        [2, 0, true, 8, 2],
      ],
    );
  });

  it('every checkpoint loads back deep-equal to what was saved', () => {
    for (const [i, checkpoint] of saved.entries()) {
      const path = join(folder, `roundtrip-${i}.json`);
      saveCheckpoint(path, checkpoint);
      assert.deepEqual(loadCheckpoint(path, config, trainCount, ID), checkpoint);
    }
  });

  it('a missing file is no checkpoint (undefined), not an error', () => {
    assert.equal(loadCheckpoint(join(folder, 'none.json'), config, trainCount, ID), undefined);
  });

  it('refuses every single-bit flip of the header line and of sampled body bytes, naming the file', () => {
    const path = join(folder, 'flip.json');
    saveCheckpoint(path, saved[2]!);
    const good = readFileSync(path);
    const headerLength = good.indexOf(0x0a) + 1;
    assert.equal(headerLength, 130, 'the header line: 63 characters of prefix, 64 of digest, "} and a newline');
    const positions = [...Array.from({ length: headerLength }, (_, i) => i), ...Array.from({ length: 400 }, (_, i) => headerLength + Math.floor((i * (good.length - headerLength)) / 400))];
    for (const position of positions) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = Buffer.from(good);
        bad[position]! ^= 1 << bit;
        writeFileSync(path, bad);
        assert.throws(
          () => loadCheckpoint(path, config, trainCount, ID),
          (e: Error) => e instanceof CheckpointError && e.message.startsWith(`${path}: `) && !e.message.includes('\n'),
          `byte ${position} bit ${bit}`,
        );
      }
    }
  });

  it('a file larger than any checkpoint of the run, or not a regular file, is refused unread', () => {
    // 1 MiB + 32 bytes a weight (2416) + 16 a digit (40) + 32 a loss or accuracy (2 epochs x 5).
    const limit = 1048576 + 32 * 2416 + 16 * 40 + 32 * 2 * 5;
    const path = join(folder, 'huge.json');
    writeFileSync(path, '');
    truncateSync(path, limit + 1);
    assert.throws(() => loadCheckpoint(path, config, trainCount, ID), { message: `${path}: ${limit + 1} bytes, more than a checkpoint of this run can hold (${limit}); not a checkpoint` });
    truncateSync(path, limit);
    assert.throws(() => loadCheckpoint(path, config, trainCount, ID), { message: /not a checkpoint of this program/ });
    const device = join(folder, 'device.json');
    symlinkSync('/dev/zero', device);
    assert.throws(() => loadCheckpoint(device, config, trainCount, ID), { message: `${device}: not a regular file` });
  });

  it('two swapped base64 characters in the params are caught by the digest', () => {
    const path = join(folder, 'swap.json');
    saveCheckpoint(path, saved[2]!);
    const text = readFileSync(path, 'latin1');
    let at = text.indexOf('"params":"') + 20;
    while (text[at] === text[at + 1]) at++;
    writeFileSync(path, Buffer.from(text.slice(0, at) + text[at + 1] + text[at] + text.slice(at + 2), 'latin1'));
    assert.throws(() => loadCheckpoint(path, config, trainCount, ID), {
      name: 'CheckpointError',
      message: `${path}: corrupt checkpoint (the SHA-256 of its content does not match its header: the file was changed or damaged)`,
    });
  });

  it('an old checkpoint without a checksum (version 1) is refused with what to do', () => {
    const path = join(folder, 'v1.json');
    writeFileSync(path, `{"format":"nesterov/main-job-checkpoint","version":1,${bodyOf(readFileSync(join(folder, 'roundtrip-0.json'))).slice(1)}`);
    assert.throws(() => loadCheckpoint(path, config, trainCount, ID), {
      message: `${path}: checkpoint version 1, this program reads version 3 (an older release's checkpoint does not record which run and data split it belongs to, so it cannot be checked against this run; delete it or use another --out)`,
    });
  });

  it('a version 2 checkpoint (checksum, but no run and data split recorded) is refused: a renamed one cannot be told from a genuine one', () => {
    const path = join(folder, 'v2.json');
    const body = JSON.parse(bodyOf(readFileSync(join(folder, 'roundtrip-0.json')))) as Record<string, unknown>;
    delete body.runKey;
    delete body.dataSha256;
    const text = JSON.stringify(body);
    const digest = createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex');
    writeFileSync(path, `{"format":"nesterov/main-job-checkpoint","version":2,"sha256":"${digest}"}\n${text}`);
    assert.throws(() => loadCheckpoint(path, config, trainCount, ID), {
      message: `${path}: checkpoint version 2, this program reads version 3 (an older release's checkpoint does not record which run and data split it belongs to, so it cannot be checked against this run; delete it or use another --out)`,
    });
  });

  // Fields replaced with the digest kept valid: the schema and the run's shape catch them.
  // The weights of 784-3-10, each tensor starting at a multiple of 16 elements:
  // W1 784*3 = 2352, b1 3 -> 16, W2 3*10 = 30 -> 32, b2 10 -> 16: 2416 values, 9664 bytes.
  const spe = 4; // 40 digits / batch 10
  const fields: [string, (r: Record<string, unknown>) => unknown, string][] = [
    ['the whole content null', () => null, 'the content is null: expected object, received null'],
    ['rng null', (r) => void (r.rng = null), "field 'rng' is null: expected an array of 4 unsigned 32-bit integers"],
    ['losses null', (r) => void (r.losses = null), "field 'losses' is null: expected array, received null"],
    ['testAccuracy "x"', (r) => void (r.testAccuracy = 'x'), `field 'testAccuracy' is "x": expected array, received string`],
    ['step -5', (r) => void (r.step = -5), "field 'step' is -5: too small: expected number to be >=0"],
    ['step 1e6', (r) => void (r.step = 1e6), `field 'step' is 1000000: an epoch of this run has ${spe} steps (0 to ${spe - 1})`],
    ['rng [1, 2]', (r) => void (r.rng = [1, 2]), "field 'rng' is an array of 2: expected 4 unsigned 32-bit integers"],
    ['rng all zero', (r) => void (r.rng = [0, 0, 0, 0]), "field 'rng' is an array of 4: an all-zero state is not a state of the generator"],
    ['rng word 2^32', (r) => void ((r.rng as number[])[1] = 2 ** 32), "field 'rng[1]' is 4294967296: too big: expected number to be <=4294967295"],
    ['epoch past the end', (r) => void (r.epoch = 3), "field 'epoch' is 3: this run has 2 epochs"],
    ['finished at epoch 1', (r) => void (r.finished = true), "field 'finished' is true: the checkpoint is at epoch 1 of 2"],
    ['finished "yes"', (r) => void (r.finished = 'yes'), `field 'finished' is "yes": expected boolean, received string`],
    ['a loss too few', (r) => void (r.losses as number[]).pop(), "field 'losses' is an array of 5: the checkpoint is after 6 steps"],
    ['a loss a string', (r) => void ((r.losses as unknown[])[2] = '0.5'), `field 'losses[2]' is "0.5": expected number, received string`],
    ['an accuracy above 1', (r) => void (r.testAccuracy = [1.5]), "field 'testAccuracy[0]' is 1.5: too big: expected number to be <=1"],
    ['negative seconds', (r) => void (r.seconds = -1), "field 'seconds' is -1: too small: expected number to be >=0"],
    ['an unknown field', (r) => void (r.extra = 1), "field 'extra' is not a field of a checkpoint"],
    ['an unknown config field', (r) => void ((r.config as Record<string, unknown>).momentum = 0.9), "field 'config.momentum' is not a field of a checkpoint"],
    ['a missing field', (r) => void delete r.optimizerSeconds, "field 'optimizerSeconds' is missing: expected number, received undefined"],
    ['indices not base64', (r) => void (r.indices = 'AAAA*AAA'), `field 'indices' is "AAAA*AAA": not canonical base64`],
    ['indices one digit short', (r) => void (r.indices = Buffer.from(Uint32Array.from({ length: 39 }, (_, i) => i).buffer).toString('base64')), "field 'indices' holds 156 bytes: this run has 40 training digits (160 bytes)"],
    ['indices not a permutation', (r) => void (r.indices = Buffer.from(new Uint32Array(40).fill(0).buffer).toString('base64')), "field 'indices[1]' is 0: not a permutation of 0..39"],
    ['params of another network', (r) => void (r.params = Buffer.from(new Float32Array(10).buffer).toString('base64')), "field 'params' holds 40 bytes: this network's weights take 9664 bytes (2416 float32 values with the alignment gaps)"],
    ['a NaN parameter', (r) => void (r.params = Buffer.from(new Float32Array(2416).fill(NaN, 7, 8).buffer).toString('base64')), "field 'params[7]' is NaN: not a finite number"],
    ['optimizer state not JSON', (r) => void (r.optimizer = '{'), "field 'optimizer': "],
    ['config of another run', (r) => void ((r.config as { lr: number }).lr = 0.1), 'made with lr 0.1, this run has 0.05 (use the same flags, or another --out)'],
  ];
  for (const [what, edit, message] of fields) {
    it(`refuses ${what}: one line naming the file and the field`, () => {
      const path = join(folder, `field-${what.replace(/\W+/g, '-')}.json`);
      saveCheckpoint(path, saved[2]!);
      editCheckpoint(path, edit);
      assert.throws(
        () => loadCheckpoint(path, config, trainCount, ID),
        (e: Error) => {
          assert.ok(e instanceof CheckpointError, `${e.name}: ${e.message}`);
          if (message.endsWith(': ')) assert.ok(e.message.startsWith(`${path}: ${message}`), e.message);
          else assert.equal(e.message, `${path}: ${message}`);
          assert.ok(!e.message.includes('\n'));
          return true;
        },
      );
    });
  }
  it("the optimizer state must be the run's optimizer's, at the run's step count", () => {
    const path = join(folder, 'other-optimizer.json');
    saveCheckpoint(path, saved[2]!);
    const adam = tinyRun('adam').saved[2]!;
    const adamPath = join(folder, 'adam-state.json');
    saveCheckpoint(adamPath, adam);
    editCheckpoint(path, (r) => void (r.optimizer = (JSON.parse(bodyOf(readFileSync(adamPath))) as { optimizer: string }).optimizer));
    assert.throws(() => loadCheckpoint(path, config, trainCount, ID), { message: `${path}: field 'optimizer': Nesterov.loadStateDict: the state was saved by Adam, not Nesterov` });
    saveCheckpoint(path, { ...saved[2]!, optimizer: saved[1]!.optimizer });
    assert.throws(() => loadCheckpoint(path, config, trainCount, ID), { message: `${path}: field 'optimizer.stepCount' is 4: the checkpoint is after 6 steps` });
  });
});

describe('--resume: checkpoints checked before any training (CLI)', () => {
  it('a flipped bit in a checkpoint refuses the run with exit 2, one line, the checkpoint unchanged', { timeout: 120_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'nesterov-ckpt-flip-'));
    const made = await start(['--optimizers', 'sgd', '--epochs', '1', '--out', out, '--checkpoint-every', '40']);
    assert.equal(made.code, 0, made.stderr);
    const path = join(out, 'checkpoints', 'sgd.json');
    const file = readFileSync(path);
    // One bit of one base64 character of the weights: 'A' (0x41) <-> 'C' (0x43) are both base64.
    let at = file.indexOf('"params":"') + 5000;
    while (file[at] !== 0x41 && file[at] !== 0x43) at++;
    file[at]! ^= 0x02;
    writeFileSync(path, file);
    const summary = readFileSync(join(out, 'summary.json'));
    const result = await start(['--optimizers', 'sgd', '--epochs', '1', '--out', out, '--resume']);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stderr, `error: --resume: ${path}: corrupt checkpoint (the SHA-256 of its content does not match its header: the file was changed or damaged)\n`);
    assert.deepEqual(readFileSync(path), file);
    assert.deepEqual(readFileSync(join(out, 'summary.json')), summary);
  });

  it("a bad checkpoint of the 2nd optimizer refuses the run before the 1st trains or writes; stale temp files go only when the run starts", { timeout: 120_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'nesterov-ckpt-second-'));
    mkdirSync(join(out, 'checkpoints'));
    // An unfinished sgd checkpoint of exactly the run below (the 8,000 / 2,000 split of seed 1).
    const { train: trainSet, test } = split(loadPackageDigits(), 2000, new Rng(1));
    const config: TrainConfig = { optimizer: 'sgd', lr: 0.1, epochs: 1, batch: 100, seed: 1, hidden: [100] };
    const sgdPath = join(out, 'checkpoints', 'sgd.json');
    assert.throws(() =>
      train(config, { train: trainSet, test }, () => undefined, {
        every: 10,
        identity: { runKey: 'sgd', dataSha256: dataSha256({ train: trainSet, test }) },
        save: (c) => {
          saveCheckpoint(sgdPath, c);
          throw new Error('stop after the first checkpoint');
        },
      }),
    );
    const sgdBefore = readFileSync(sgdPath);
    const adamPath = join(out, 'checkpoints', 'adam.json');
    writeBodyLike(sgdPath, adamPath, 'null');
    // What killed atomic writes leave (pid 999999999 is not running), and a file of the user's.
    const stale = ['.sgd.json.999999999.1700000000000.tmp', '.summary.json.999999999.1700000000000.tmp', '.write-probe.999999999.1700000000000.tmp'];
    writeFileSync(join(out, 'checkpoints', stale[0]!), 'half a checkpoint');
    writeFileSync(join(out, stale[1]!), 'half a summary');
    writeFileSync(join(out, stale[2]!), 'probe');
    writeFileSync(join(out, '.notes.999999999.1.tmp'), 'the user keeps this');
    const args = ['--optimizers', 'sgd,adam', '--epochs', '1', '--workers', '1', '--out', out, '--checkpoint-every', '10'];

    const refused = await start([...args, '--resume']);
    assert.equal(refused.code, 2, refused.stderr);
    assert.equal(refused.stderr, `error: --resume: ${adamPath}: the content is null: expected object, received null\n`);
    assert.deepEqual(readFileSync(sgdPath), sgdBefore, 'sgd did not train or write');
    assert.ok(!existsSync(join(out, 'summary.json')));
    assert.ok(existsSync(join(out, 'checkpoints', stale[0]!)), 'a refused run changes nothing on disk');

    writeFileSync(adamPath, 'x');
    const notCheckpoint = await start([...args, '--resume']);
    assert.equal(notCheckpoint.stderr, `error: --resume: ${adamPath}: not a checkpoint of this program (format missing, expected a first line {"format":"nesterov/main-job-checkpoint",...})\n`);

    editCheckpoint(sgdPath, (r) => void (r.rng = [1, 2]));
    const badFirst = await start([...args, '--resume']);
    assert.equal(badFirst.stderr, `error: --resume: ${sgdPath}: field 'rng' is an array of 2: expected 4 unsigned 32-bit integers\n`);
    writeFileSync(sgdPath, sgdBefore);

    writeBodyLike(sgdPath, adamPath, '{}');
    const emptyRecord = await start([...args, '--resume']);
    assert.equal(emptyRecord.code, 2);
    assert.equal(emptyRecord.stderr, `error: --resume: ${adamPath}: field 'runKey' is missing: expected string, received undefined\n`);

    // Without adam's bad file the run resumes sgd, trains adam, and clears the stale temp files.
    writeFileSync(adamPath, '');
    const emptyFile = await start([...args, '--resume']);
    assert.equal(emptyFile.stderr, `error: --resume: ${adamPath}: not a checkpoint of this program (format missing, expected a first line {"format":"nesterov/main-job-checkpoint",...})\n`);
    unlinkSync(adamPath);
    const resumed = await start([...args, '--resume']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(readdirSync(join(out, 'checkpoints')).sort(), ['adam.json', 'sgd.json']);
    assert.deepEqual(readdirSync(out).sort(), ['.notes.999999999.1.tmp', 'checkpoints', 'report.html', 'summary.json']);
  });
});
