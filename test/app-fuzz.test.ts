/**
 * Bounded property-based fuzzing of the main job's file readers, with fixed seeds so
 * that every run tries the same cases:
 *
 * - a checkpoint with a flipped bit, cut short, two bytes swapped or a byte inserted is
 *   always refused with a CheckpointError (the SHA-256); one whose field was replaced
 *   and re-signed (a deliberate edit) is refused with a CheckpointError or loads
 *   faithfully (saving it again gives the same bytes); only the unchanged file loads to
 *   the original. Never another error type.
 * - an IDX file with changed dimensions or bytes, cut short, padded, gzipped (and the
 *   gzip cut short), or a gzip bomb expanding to 64 MB, always either loads data that
 *   agrees with its header and its content, or is refused with a DataError naming it,
 *   while the process's memory stays within a bound far below the bombs' size.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Rng } from '../app/nn/rng.ts';
import { CheckpointError, encodeCheckpoint, loadCheckpoint, saveCheckpoint, type Checkpoint } from '../app/checkpoint.ts';
import { DataError, readIdx, type Digits } from '../app/data.ts';
import { train, type TrainConfig } from '../app/train.ts';

/** The run these checkpoints belong to (its key and its digits' SHA-256), as the CLI records it. */
const ID = { runKey: 'sgd', dataSha256: 'ab'.repeat(32) };

const folder = mkdtempSync(join(tmpdir(), 'nesterov-fuzz-'));

/** Header line + body, the digest computed from the format's definition. */
function sign(body: string): Buffer {
  const digest = createHash('sha256').update(Buffer.from(body, 'utf8')).digest('hex');
  return Buffer.from(`{"format":"nesterov/main-job-checkpoint","version":3,"sha256":"${digest}"}\n${body}`, 'utf8');
}

describe('fuzz: mutated checkpoints', () => {
  const rng = new Rng(9);
  const make = (count: number): Digits => ({
    images: Float32Array.from({ length: count * 784 }, () => rng.next()),
    labels: Uint8Array.from({ length: count }, () => rng.below(10)),
    count,
  });
  const config: TrainConfig = { optimizer: 'adam', lr: 0.001, epochs: 2, batch: 10, seed: 3, hidden: [2] };
  const saved: Checkpoint[] = [];
  train(config, { train: make(40), test: make(10) }, () => undefined, { every: 3, identity: ID, save: (c) => saved.push(c) });
  const originals = [saved[2]!, saved[3]!].map((checkpoint, i) => {
    const path = join(folder, `original-${i}.json`);
    saveCheckpoint(path, checkpoint);
    return { checkpoint, bytes: readFileSync(path) };
  });

  type Mutation =
    | { kind: 'none' }
    | { kind: 'flip'; at: number; bit: number }
    | { kind: 'truncate'; at: number }
    | { kind: 'swap'; at: number; other: number }
    | { kind: 'insert'; at: number; byte: number }
    | { kind: 'replace'; field: string; value: unknown }
    | { kind: 'delete'; field: string };
  const fraction = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
  const fields = ['', 'config', 'config.optimizer', 'config.lr', 'config.epochs', 'config.batch', 'config.seed', 'config.hidden', 'config.hidden.0', 'epoch', 'step', 'rng', 'rng.0', 'rng.3', 'indices', 'params', 'optimizer', 'losses', 'losses.0', 'testAccuracy', 'testAccuracy.0', 'seconds', 'optimizerSeconds', 'finished'];
  const values = fc.oneof(
    fc.constantFrom(null, 'x', '', -5, -1, 0, 1, 2, 3, 4, 0.5, 1.5, 1e6, 1e308, -1e308, 2 ** 32, true, false, [], [1, 2], [1, 2, 3, 4], [0, 0, 0, 0], {}, 'AAAA', 'AAAA*AAA', [0.5]),
    fc.string({ maxLength: 8 }),
    fc.double(),
    fc.array(fc.integer(), { maxLength: 5 }),
  );
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.constant<Mutation>({ kind: 'none' }),
    fc.record({ kind: fc.constant('flip' as const), at: fraction, bit: fc.integer({ min: 0, max: 7 }) }).map((m) => m as Mutation),
    fc.record({ kind: fc.constant('truncate' as const), at: fraction }).map((m) => m as Mutation),
    fc.record({ kind: fc.constant('swap' as const), at: fraction, other: fraction }).map((m) => m as Mutation),
    fc.record({ kind: fc.constant('insert' as const), at: fraction, byte: fc.integer({ min: 0, max: 255 }) }).map((m) => m as Mutation),
    fc.record({ kind: fc.constant('replace' as const), field: fc.constantFrom(...fields), value: values }).map((m) => m as Mutation),
    fc.record({ kind: fc.constant('delete' as const), field: fc.constantFrom(...fields.slice(1)) }).map((m) => m as Mutation),
  );

  function setPath(record: unknown, field: string, value: unknown, remove: boolean): unknown {
    if (field === '') return value;
    const keys = field.split('.');
    let owner = record as Record<string, unknown>;
    for (const key of keys.slice(0, -1)) owner = owner[key] as Record<string, unknown>;
    if (remove) delete owner[keys[keys.length - 1]!];
    else owner[keys[keys.length - 1]!] = value;
    return record;
  }

  function apply(bytes: Buffer, m: Mutation): Buffer {
    const index = (f: number) => Math.floor(f * bytes.length);
    switch (m.kind) {
      case 'none':
        return bytes;
      case 'flip': {
        const out = Buffer.from(bytes);
        out[index(m.at)]! ^= 1 << m.bit;
        return out;
      }
      case 'truncate':
        return bytes.subarray(0, index(m.at));
      case 'swap': {
        const out = Buffer.from(bytes);
        const [a, b] = [index(m.at), index(m.other)];
        [out[a], out[b]] = [out[b]!, out[a]!];
        return out;
      }
      case 'insert':
        return Buffer.concat([bytes.subarray(0, index(m.at)), Uint8Array.from([m.byte]), bytes.subarray(index(m.at))]);
      case 'replace':
      case 'delete': {
        const text = bytes.toString('utf8');
        const body = JSON.parse(text.slice(text.indexOf('\n') + 1)) as unknown;
        return sign(JSON.stringify(setPath(body, m.field, m.kind === 'replace' ? m.value : undefined, m.kind === 'delete')));
      }
    }
  }

  it('refused with a CheckpointError, loaded faithfully after a re-signed edit, or (unchanged) equal to the original', (t) => {
    const path = join(folder, 'mutated.json');
    let refused = 0;
    let loaded = 0;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1 }), mutation, (which, m) => {
        const original = originals[which]!;
        const bytes = apply(original.bytes, m);
        writeFileSync(path, bytes);
        let result: Checkpoint | undefined;
        try {
          result = loadCheckpoint(path, config, 40, ID);
        } catch (error) {
          assert.ok(error instanceof CheckpointError, `${(error as Error).name}: ${(error as Error).message}`);
          assert.ok(error.message.startsWith(`${path}: `) && !error.message.includes('\n'), error.message);
          assert.ok(!bytes.equals(original.bytes), `the unchanged file was refused: ${error.message}`);
          refused++;
          return;
        }
        loaded++;
        if (bytes.equals(original.bytes)) {
          assert.deepEqual(result, original.checkpoint);
        } else {
          assert.equal(m.kind, 'replace', 'only a re-signed edit can load');
          assert.ok(encodeCheckpoint(result!).equals(bytes), 'an edited checkpoint loads exactly as written');
        }
      }),
      { seed: 20261126, numRuns: 600 },
    );
    t.diagnostic(`refused ${refused}, loaded ${loaded}`);
    assert.ok(refused > 400 && loaded > 20, `refused ${refused}, loaded ${loaded}`);
  });
});

describe('fuzz: mutated IDX files and gzip bombs', () => {
  const MAX_ITEMS = 1000;
  const MEMBER = 16 << 20;
  const zerosMember = gzipSync(new Uint8Array(MEMBER), { level: 9 });

  function idx(magic: number, dims: number[], data: Uint8Array): Buffer {
    const header = Buffer.alloc(4 + 4 * dims.length);
    header.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => header.writeUInt32BE(d >>> 0, 4 + 4 * i));
    return Buffer.concat([header, data]);
  }

  const base = fc.oneof(
    fc.integer({ min: 1, max: 3 }).chain((n) => fc.uint8Array({ minLength: n * 784, maxLength: n * 784 }).map((data) => idx(0x803, [n, 28, 28], data))),
    fc.integer({ min: 1, max: 6 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n, max: 9 }).map((data) => idx(0x801, [n], data))),
  );
  const dim = fc.oneof(fc.integer({ min: 0, max: 10 }), fc.constantFrom(28, 27, 29, 999, 1000, 1001, 250_001, 2 ** 31, 2 ** 32 - 1), fc.nat());
  type Edit = { kind: 'none' } | { kind: 'dim'; index: number; value: number } | { kind: 'byte'; at: number; value: number } | { kind: 'truncate'; at: number } | { kind: 'append'; bytes: Uint8Array };
  const edit: fc.Arbitrary<Edit> = fc.oneof(
    fc.constant<Edit>({ kind: 'none' }),
    fc.record({ kind: fc.constant('dim' as const), index: fc.integer({ min: 0, max: 2 }), value: dim }).map((e) => e as Edit),
    fc.record({ kind: fc.constant('byte' as const), at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), value: fc.integer({ min: 0, max: 255 }) }).map((e) => e as Edit),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }) }).map((e) => e as Edit),
    fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }).map((e) => e as Edit),
  );
  type Wrap = { kind: 'plain' } | { kind: 'gzip'; cut: number } | { kind: 'bomb'; members: number };
  const wrap: fc.Arbitrary<Wrap> = fc.oneof(
    fc.constant<Wrap>({ kind: 'plain' }),
    fc.record({ kind: fc.constant('gzip' as const), cut: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })) }).map((w) => w as Wrap),
    fc.record({ kind: fc.constant('bomb' as const), members: fc.integer({ min: 1, max: 4 }) }).map((w) => w as Wrap),
  );

  function applyEdit(bytes: Buffer, e: Edit): Buffer {
    const out = Buffer.from(bytes);
    switch (e.kind) {
      case 'none':
        return out;
      case 'dim': {
        const rank = out[3]!;
        if (e.index < rank) out.writeUInt32BE(e.value >>> 0, 4 + 4 * e.index);
        return out;
      }
      case 'byte':
        out[Math.floor(e.at * out.length)] = e.value;
        return out;
      case 'truncate':
        return out.subarray(0, Math.floor(e.at * out.length));
      case 'append':
        return Buffer.concat([out, e.bytes]);
    }
  }

  it('each file loads data consistent with its header and content, or is refused with a DataError naming it, in bounded memory', async (t) => {
    const path = join(folder, 'mutated-idx');
    const baseline = process.memoryUsage().rss;
    let peak = 0;
    let loaded = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(base, edit, wrap, async (original, e, w) => {
        const plain = applyEdit(original, e);
        let file: Buffer;
        if (w.kind === 'plain') file = plain;
        else if (w.kind === 'gzip') file = gzipSync(plain).subarray(0, w.cut === 0 ? undefined : -w.cut);
        else file = Buffer.concat([gzipSync(plain), ...Array.from({ length: w.members }, () => zerosMember)]);
        writeFileSync(path, file);
        try {
          const { dims, data } = await readIdx(path, MAX_ITEMS);
          loaded++;
          assert.equal(data.length, dims.reduce((a, b) => a * b, 1));
          assert.ok(dims[0]! <= MAX_ITEMS);
          assert.ok(dims.length === 1 || (dims.length === 3 && dims[1] === 28 && dims[2] === 28), dims.join('x'));
          // The content is the file's (decompressed) bytes after the header, all of them.
          const content = w.kind === 'plain' ? file : gunzipSync(file);
          assert.ok(Buffer.from(data).equals(content.subarray(4 + 4 * dims.length)));
        } catch (error) {
          if (error instanceof assert.AssertionError) throw error;
          assert.ok(error instanceof DataError, `${(error as Error).name}: ${(error as Error).message}`);
          assert.ok(error.message.startsWith(`${path}: `) && !error.message.includes('\n'), error.message);
          refused++;
        }
        peak = Math.max(peak, process.memoryUsage().rss - baseline);
      }),
      { seed: 20261126, numRuns: 250 },
    );
    t.diagnostic(`loaded ${loaded}, refused ${refused}, RSS grew by at most ${(peak / 1e6).toFixed(1)} MB`);
    assert.ok(loaded > 20 && refused > 100, `loaded ${loaded}, refused ${refused}`);
    // Bombs expand to up to 64 MB (4 members); reading never holds more than the declared 784 KB and a few chunks.
    assert.ok(peak < 48e6, `RSS grew by ${(peak / 1e6).toFixed(1)} MB`);
  });
});
