/**
 * `--data` against hostile files: gzip bombs are refused in
 * bounded memory with one line naming the file and declared vs actual size or the cap,
 * a plain file's size is checked against its header before it is read, and an empty
 * training or test set is refused.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { DataError, MAX_IDX_ITEMS, readIdx } from '../app/data.ts';

const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));
const run = promisify(execFile);

async function start(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number | null; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** An IDX header (big-endian magic and dimensions, as the format defines). */
function idxHeader(magic: number, dims: number[]): Uint8Array {
  const view = new DataView(new ArrayBuffer(4 + 4 * dims.length));
  view.setUint32(0, magic, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  return new Uint8Array(view.buffer);
}

const MEMBER = 16 << 20;
const zerosMember = gzipSync(new Uint8Array(MEMBER), { level: 9 });

/**
 * A gzip file of `header` followed by `zeros` zero bytes, as concatenated gzip members
 * (RFC 1952 allows several; gunzip decompresses them all): a few bytes per 16 MB.
 */
function gzipBomb(header: Uint8Array, zeros: number): Buffer {
  const parts: Uint8Array[] = [gzipSync(header)];
  for (let left = zeros; left > 0; left -= MEMBER) parts.push(left >= MEMBER ? zerosMember : gzipSync(new Uint8Array(left)));
  return Buffer.concat(parts);
}

function folderWith(files: Record<string, Uint8Array>): string {
  const folder = mkdtempSync(join(tmpdir(), 'nesterov-data-'));
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(folder, name), bytes);
  return folder;
}

const oneImage = Buffer.concat([idxHeader(0x803, [1, 28, 28]), new Uint8Array(784)]);
const oneLabel = Buffer.concat([idxHeader(0x801, [1]), Uint8Array.from([4])]);

describe('readIdx bounds what a file can make it allocate', () => {
  it(`the cap is ${MAX_IDX_ITEMS} images or labels a file`, () => {
    assert.equal(MAX_IDX_ITEMS, 250_000);
  });

  it("a 2 MB .gz whose consistent header declares 2.6M images is refused at the header, in bounded memory", async () => {
    const dims = [2_600_000, 28, 28];
    const bomb = gzipBomb(idxHeader(0x803, dims), 2_600_000 * 784);
    assert.ok(bomb.length < 2.2e6, `${bomb.length} bytes`);
    const path = join(folderWith({ 'bomb.gz': bomb }), 'bomb.gz');
    const before = process.memoryUsage().rss;
    await assert.rejects(readIdx(path), {
      name: 'DataError',
      message: `${path}: the header declares 2600000 images, more than this program reads (at most 250,000 per file)`,
    });
    assert.ok(process.memoryUsage().rss - before < 64e6, 'RSS grew by less than 64 MB');
  });

  it('a 5 MB .gz that declares 60,000 images but expands to 5 GB stops one chunk past the declared 47 MB', async () => {
    const header = idxHeader(0x803, [60_000, 28, 28]);
    const bomb = gzipBomb(header, 5 * 2 ** 30);
    assert.ok(bomb.length < 6e6, `${bomb.length} bytes`);
    const path = join(folderWith({ 'bomb.gz': bomb }), 'bomb.gz');
    const before = process.memoryUsage().rss;
    const started = performance.now();
    await assert.rejects(readIdx(path), {
      name: 'DataError',
      message: `${path}: IDX data longer than its header declares (more than 47040000 bytes; dimensions 60000x28x28 need 47040000)`,
    });
    assert.ok(performance.now() - started < 20_000, 'it does not decompress the 5 GB');
    assert.ok(process.memoryUsage().rss - before < 150e6, 'RSS grew by less than 150 MB (the declared 47 MB and chunks)');
  });

  it('a plain file larger than its header says is refused before it is read (a sparse 1 GB file)', async () => {
    const folder = folderWith({ big: oneImage });
    truncateSync(join(folder, 'big'), 2 ** 30);
    const before = process.memoryUsage().rss;
    await assert.rejects(readIdx(join(folder, 'big')), {
      message: `${join(folder, 'big')}: truncated or padded IDX data (1073741808 bytes, dimensions 1x28x28 need 784)`,
    });
    assert.ok(process.memoryUsage().rss - before < 64e6);
  });

  it('a device or other non-regular file is refused unread', async () => {
    const folder = folderWith({});
    symlinkSync('/dev/zero', join(folder, 'zero'));
    await assert.rejects(readIdx(join(folder, 'zero')), { name: 'DataError', message: `${join(folder, 'zero')}: not a regular file` });
  });

  it('images that are not 28 x 28 are refused at the header (no 1 x 65535 x 65535 allocation)', async () => {
    const path = join(folderWith({ wide: idxHeader(0x803, [1, 65535, 65535]) }), 'wide');
    await assert.rejects(readIdx(path), { message: `${path}: expected N x 28 x 28 images, found 1x65535x65535` });
  });

  it('a gzip file cut short is named as such', async () => {
    const gz = gzipSync(oneImage);
    const path = join(folderWith({ 'cut.gz': gz.subarray(0, gz.length - 12) }), 'cut.gz');
    await assert.rejects(readIdx(path), (e: Error) => e instanceof DataError && e.message.startsWith(`${path}: not a valid gzip file (`));
  });

  it('a good gzip file of one image and a plain file of one label read back exactly', async () => {
    const pixels = Uint8Array.from({ length: 784 }, (_, i) => (i * 7) % 256);
    const folder = folderWith({ 'i.gz': gzipSync(Buffer.concat([idxHeader(0x803, [1, 28, 28]), pixels])), l: oneLabel });
    assert.deepEqual(await readIdx(join(folder, 'i.gz')), { dims: [1, 28, 28], data: pixels });
    assert.deepEqual(await readIdx(join(folder, 'l')), { dims: [1], data: Uint8Array.from([4]) });
  });
});

describe('--data: bombs and empty sets refused with exit 2 and one line (CLI)', () => {
  const cases: [string, Record<string, Uint8Array>, (folder: string) => string][] = [
    [
      'a gzip bomb declaring 2.6M images',
      { 'train-images-idx3-ubyte.gz': gzipBomb(idxHeader(0x803, [2_600_000, 28, 28]), 2_600_000 * 784), 'train-labels-idx1-ubyte': oneLabel },
      (f) => `error: --data: ${join(f, 'train-images-idx3-ubyte.gz')}: the header declares 2600000 images, more than this program reads (at most 250,000 per file)`,
    ],
    [
      'a gzip bomb expanding past its header',
      { 'train-images-idx3-ubyte.gz': gzipBomb(idxHeader(0x803, [60_000, 28, 28]), 5 * 2 ** 30), 'train-labels-idx1-ubyte': oneLabel },
      (f) => `error: --data: ${join(f, 'train-images-idx3-ubyte.gz')}: IDX data longer than its header declares (more than 47040000 bytes; dimensions 60000x28x28 need 47040000)`,
    ],
    [
      'an empty training set',
      { 'train-images-idx3-ubyte': idxHeader(0x803, [0, 28, 28]), 'train-labels-idx1-ubyte': idxHeader(0x801, [0]), 't10k-images-idx3-ubyte': oneImage, 't10k-labels-idx1-ubyte': oneLabel },
      (f) => `error: --data: ${join(f, 'train-images-idx3-ubyte')}: holds no images (0x28x28)`,
    ],
    [
      'an empty test set',
      { 'train-images-idx3-ubyte': oneImage, 'train-labels-idx1-ubyte': oneLabel, 't10k-images-idx3-ubyte': idxHeader(0x803, [0, 28, 28]), 't10k-labels-idx1-ubyte': idxHeader(0x801, [0]) },
      (f) => `error: --data: ${join(f, 't10k-images-idx3-ubyte')}: holds no images (0x28x28)`,
    ],
  ];
  for (const [what, files, message] of cases) {
    it(what, { timeout: 90_000 }, async () => {
      const folder = folderWith(files);
      const result = await start(['--data', folder, '--out', join(folder, 'out'), '--epochs', '1']);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stderr, `${message(folder)}\n`);
    });
  }

  it('/dev/zero as a data file', { timeout: 90_000 }, async () => {
    const folder = folderWith({ 'train-labels-idx1-ubyte': oneLabel });
    symlinkSync('/dev/zero', join(folder, 'train-images-idx3-ubyte'));
    const result = await start(['--data', folder, '--out', join(folder, 'out')]);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stderr, `error: --data: ${join(folder, 'train-images-idx3-ubyte')}: not a regular file\n`);
  });
});
