/** The digits: the mnist package's raw arrays, the seeded split, and the IDX reader on files written here. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { Rng } from '../app/nn/rng.ts';
import { DataError, loadIdxFolder, loadPackageDigits, readIdx, split } from '../app/data.ts';

function idx(magic: number, dims: number[], data: Uint8Array): Uint8Array {
  const header = new DataView(new ArrayBuffer(4 + 4 * dims.length));
  header.setUint32(0, magic, false);
  dims.forEach((d, i) => header.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(header.byteLength + data.length);
  out.set(new Uint8Array(header.buffer), 0);
  out.set(data, header.byteLength);
  return out;
}

describe('the mnist package digits', () => {
  const digits = loadPackageDigits();
  it('are 10,000 real 28x28 digits, 863 to 1,127 of each, pixels in [0, 1]', () => {
    assert.equal(digits.count, 10000);
    for (let d = 0; d < 10; d++) {
      const n = digits.labels.filter((l) => l === d).length;
      assert.ok(n >= 800 && n <= 1200, `digit ${d}: ${n}`);
    }
    let min = Infinity;
    let max = -Infinity;
    for (const v of digits.images) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.equal(min, 0);
    assert.ok(max > 0.99 && max <= 1);
  });
  it('split the same way for the same seed, and differently for another', () => {
    const a = split(digits, 2000, new Rng(5));
    const b = split(digits, 2000, new Rng(5));
    const c = split(digits, 2000, new Rng(6));
    assert.equal(a.train.count, digits.count - 2000);
    assert.equal(a.test.count, 2000);
    assert.deepEqual(a.test.labels, b.test.labels);
    assert.notDeepEqual(a.test.labels, c.test.labels);
    // a shuffle: the test set holds every digit
    for (let d = 0; d < 10; d++) assert.ok(a.test.labels.includes(d));
  });
});

describe('IDX files', () => {
  const folder = mkdtempSync(join(tmpdir(), 'nesterov-idx-'));
  const pixels = Uint8Array.from({ length: 2 * 784 }, (_, i) => i % 256);
  writeFileSync(join(folder, 'train-images-idx3-ubyte'), idx(0x803, [2, 28, 28], pixels));
  writeFileSync(join(folder, 'train-labels-idx1-ubyte.gz'), gzipSync(idx(0x801, [2], Uint8Array.from([7, 3]))));
  writeFileSync(join(folder, 't10k-images-idx3-ubyte.gz'), gzipSync(idx(0x803, [1, 28, 28], pixels.subarray(0, 784))));
  writeFileSync(join(folder, 't10k-labels-idx1-ubyte'), idx(0x801, [1], Uint8Array.from([9])));

  it('reads plain and gzipped files into pixels / 255 and labels', async () => {
    const data = await loadIdxFolder(folder);
    assert.equal(data.train.count, 2);
    assert.deepEqual(Array.from(data.train.labels), [7, 3]);
    assert.equal(data.train.images[255], 1);
    assert.equal(data.train.images[1], Math.fround(1 / 255));
    assert.deepEqual(Array.from(data.test.labels), [9]);
  });

  const bad: [string, Uint8Array | string, RegExp][] = [
    ['bad magic', idx(0x804, [1], Uint8Array.from([1])), /not an IDX file of unsigned bytes \(magic 00000804/],
    ['truncated data', idx(0x803, [2, 28, 28], pixels.subarray(0, 100)), /truncated or padded IDX data \(100 bytes, dimensions 2x28x28 need 1568\)/],
    ['truncated header', Uint8Array.from([0, 0, 8, 3, 0]), /truncated IDX header/],
    ['a broken gzip', Uint8Array.from([0x1f, 0x8b, 1, 2, 3]), /not a valid gzip file/],
  ];
  for (const [what, bytes, message] of bad) {
    it(`names the file and the problem: ${what}`, async () => {
      const path = join(folder, `bad-${what.replace(/ /g, '-')}`);
      writeFileSync(path, bytes);
      await assert.rejects(readIdx(path), (e: Error) => e instanceof DataError && e.message.startsWith(path) && message.test(e.message));
    });
  }
  it('a missing folder or file is named', async () => {
    await assert.rejects(loadIdxFolder(join(folder, 'nope')), /nope: no such folder/);
    const empty = mkdtempSync(join(tmpdir(), 'nesterov-idx-empty-'));
    await assert.rejects(loadIdxFolder(empty), /no train-images-idx3-ubyte \(or train-images-idx3-ubyte\.gz\) in this folder/);
    await assert.rejects(readIdx(join(folder, 'missing')), /missing: cannot read \(ENOENT\)/);
  });
  it('labels that are not digits are refused', async () => {
    const other = mkdtempSync(join(tmpdir(), 'nesterov-idx-labels-'));
    writeFileSync(join(other, 'train-images-idx3-ubyte'), idx(0x803, [1, 28, 28], pixels.subarray(0, 784)));
    writeFileSync(join(other, 'train-labels-idx1-ubyte'), idx(0x801, [1], Uint8Array.from([12])));
    await assert.rejects(loadIdxFolder(other), /label 12 at index 0 is not a digit/);
  });
});
