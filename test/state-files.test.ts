/**
 * loadState checks the file before reading it (a regular file, at
 * most maxBytes, for the safetensors layout exactly the size its header declares),
 * tells JSON from safetensors by content whatever whitespace or BOM precedes the JSON,
 * and every file-system error of saveState / loadState / writeFileAtomic(Sync) names
 * the file asked for, never the temp file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Adam, encodeState, StateError } from 'nesterov';
import { DEFAULT_MAX_STATE_BYTES, loadState, loadStateSync, saveState, saveStateSync, writeFileAtomic, writeFileAtomicSync } from 'nesterov/node';
import { assertSameState } from './state-helpers.ts';

const folder = mkdtempSync(join(tmpdir(), 'nesterov-state-files-'));

function trained() {
  const opt = new Adam({ lr: 0.01 });
  opt.update({ w: new Float32Array([1, 2, 3]) }, { w: new Float32Array([0.5, -1, 2]) });
  return opt;
}

/** Both loaders refuse `path` with exactly `message` (a StateError), and the optimizer keeps its state. */
async function refusesToLoad(path: string, message: string, options?: { maxBytes?: number }): Promise<void> {
  const check = (error: Error) => {
    assert.ok(error instanceof StateError, `a StateError, got ${error.name}: ${error.message}`);
    assert.equal(error.message, message);
    return true;
  };
  const opt = trained();
  const before = opt.stateDict();
  await assert.rejects(loadState(opt, path, options), check);
  assert.throws(() => loadStateSync(opt, path, options), check);
  assertSameState(opt.stateDict(), before);
}

describe('loadState checks the file before reading it', () => {
  it('/dev/zero is refused as a character device, without reading', { skip: !existsSync('/dev/zero') }, async () => {
    await refusesToLoad('/dev/zero', '/dev/zero: not a regular file (a character device): a state file is a regular file');
  });

  it('a directory is refused as such', async () => {
    await refusesToLoad(folder, `${folder}: not a regular file (a directory): a state file is a regular file`);
  });

  it('a FIFO is refused at once (opening it does not wait for a writer)', { skip: process.platform === 'win32', timeout: 10_000 }, async () => {
    const fifo = join(folder, 'fifo');
    execFileSync('mkfifo', [fifo]);
    await refusesToLoad(fifo, `${fifo}: not a regular file (a FIFO): a state file is a regular file`);
  });

  it('a 1.5 GB file is refused by its size, before reading: no time, no memory', async () => {
    const big = join(folder, 'big.safetensors');
    writeFileSync(big, '');
    truncateSync(big, 1_500_000_000); // sparse: no disk used
    const peakBefore = process.resourceUsage().maxRSS;
    const start = performance.now();
    await refusesToLoad(big, `${big}: the file has 1500000000 bytes, more than maxBytes 1073741824: not read (pass a larger maxBytes to load a larger state)`);
    const milliseconds = performance.now() - start;
    assert.equal(DEFAULT_MAX_STATE_BYTES, 2 ** 30);
    // and with the cap lifted, its (zero) header length refuses it after 8 bytes
    await refusesToLoad(big, `${big}: invalid optimizer state: the safetensors header (bytes 8..8) is empty`, { maxBytes: Infinity });
    const grownKiB = process.resourceUsage().maxRSS - peakBefore;
    assert.ok(grownKiB < 100_000, `peak memory grew by ${grownKiB} KiB`);
    assert.ok(milliseconds < 5_000, `${milliseconds} ms`);
  });

  it('maxBytes refuses a state file larger than it, and is validated', async () => {
    const path = join(folder, 'capped.safetensors');
    await saveState(trained(), path);
    const size = readFileSync(path).byteLength;
    await refusesToLoad(path, `${path}: the file has ${size} bytes, more than maxBytes ${size - 1}: not read (pass a larger maxBytes to load a larger state)`, { maxBytes: size - 1 });
    const exact = new Adam();
    await loadState(exact, path, { maxBytes: size });
    assertSameState(exact.stateDict(), trained().stateDict());
    await assert.rejects(loadState(new Adam(), path, { maxBytes: -1 }), (error: Error) => error instanceof RangeError && error.message === 'loadState: invalid maxBytes: -1 (expected an integer number of bytes >= 0, or Infinity)');
  });

  it('a safetensors file longer than its header declares is refused before its data is read', async () => {
    const file = encodeState(trained().stateDict());
    const path = join(folder, 'long.safetensors');
    writeFileSync(path, Buffer.concat([file, Buffer.alloc(8)]));
    const headerEnd = 8 + Number(Buffer.from(file).readBigUInt64LE(0));
    await refusesToLoad(
      path,
      `${path}: invalid optimizer state: the header describes a file of ${file.byteLength} bytes (${headerEnd} of header, ${file.byteLength - headerEnd} of tensors), the file has ${file.byteLength + 8} bytes`,
    );
  });

  it('a header length past the end, or above the 100 MB header cap, is refused after 8 bytes', async () => {
    const path = join(folder, 'header.safetensors');
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(2n ** 40n);
    writeFileSync(path, Buffer.concat([prefix, Buffer.from('{}')]));
    await refusesToLoad(path, `${path}: invalid optimizer state: header length 1099511627776 runs past the end of the 10 bytes`);
    prefix.writeBigUInt64LE(150_000_000n);
    writeFileSync(path, prefix);
    truncateSync(path, 200_000_000);
    await refusesToLoad(path, `${path}: invalid optimizer state: header length 150000000 is more than the 100000000 bytes a safetensors header may have`);
  });

  it('junk is refused by its first bytes', async () => {
    const path = join(folder, 'junk.state');
    writeFileSync(path, 'not a state file at all');
    await refusesToLoad(path, `${path}: not an optimizer state file: neither the safetensors layout nor JSON text (byte 0 is 0x6e)`);
    writeFileSync(path, '');
    await refusesToLoad(path, `${path}: not an optimizer state file: neither the safetensors layout nor JSON text (the file is empty)`);
  });
});

describe('the format is told by content', () => {
  const state = trained().stateDict();

  for (const [what, prefix, suffix] of [
    ['a UTF-8 BOM', '\uFEFF', ''],
    ['a newline', '\n', '\n'],
    ['spaces and tabs', '  \t ', ' \n'],
    ['a BOM and CRLF', '\uFEFF\r\n', '\r\n'],
  ] as const) {
    it(`a JSON state file starting with ${what} is JSON`, async () => {
      const path = join(folder, 'prefixed.json');
      await saveState(trained(), path);
      writeFileSync(path, prefix + readFileSync(path, 'utf8') + suffix);
      const opt = new Adam();
      await loadState(opt, path);
      assertSameState(opt.stateDict(), state);
      const again = new Adam();
      loadStateSync(again, path);
      assertSameState(again.stateDict(), state);
    });
  }

  it("a safetensors file whose header length starts with a space and a '{' (0x7B20 = 31520) is safetensors", async () => {
    // encodeState's own output: a parameter name long enough to make the header 31520 bytes
    const headerLength = (file: Uint8Array) => Number(Buffer.from(file).readBigUInt64LE(0));
    const withName = (name: string) => {
      const opt = new Adam();
      opt.update({ [name]: new Float32Array([1, 2]) }, { [name]: new Float32Array([0.5, 0.25]) });
      return opt;
    };
    const base = headerLength(encodeState(withName('').stateDict()));
    const perCharacter = (headerLength(encodeState(withName('p'.repeat(400)).stateDict())) - base) / 400;
    let length = Math.floor((0x7b20 - base) / perCharacter) - 16;
    let opt = withName('p'.repeat(length));
    assert.ok(headerLength(encodeState(opt.stateDict())) < 0x7b20);
    while (headerLength(encodeState(opt.stateDict())) < 0x7b20) opt = withName('p'.repeat(++length));
    const file = encodeState(opt.stateDict());
    assert.deepEqual([file[0], file[1], file[2]], [0x20, 0x7b, 0]);
    const path = join(folder, 'brace.safetensors');
    writeFileSync(path, file);
    const loaded = new Adam();
    await loadState(loaded, path);
    assertSameState(loaded.stateDict(), opt.stateDict());
  });
});

describe('file-system errors name the target, never the temp file', () => {
  const missing = join(folder, 'no-such-folder');

  function namesTarget(target: string, code: string, message: string) {
    return (error: Error & { code?: string; path?: string }) => {
      assert.equal(error.message, message);
      assert.equal(error.code, code);
      assert.equal(error.path, target);
      return true;
    };
  }

  it('writeFileAtomic / writeFileAtomicSync / saveState / saveStateSync into a missing folder', async () => {
    const target = join(missing, 'opt.json');
    const expected = namesTarget(target, 'ENOENT', `ENOENT: no such file or directory, open '${target}'`);
    await assert.rejects(writeFileAtomic(target, 'x'), expected);
    assert.throws(() => writeFileAtomicSync(target, 'x'), expected);
    await assert.rejects(saveState(trained(), target), expected);
    assert.throws(() => saveStateSync(trained(), target), expected);
  });

  it('a target that is a folder: the rename fails, naming the target, and no temp file is left', async () => {
    const target = join(folder, 'a-folder.safetensors');
    mkdirSync(target);
    writeFileSync(join(target, 'inside'), 'x');
    const before = readdirSync(folder).sort();
    const expected = namesTarget(target, 'EISDIR', `EISDIR: illegal operation on a directory, rename '${target}'`);
    await assert.rejects(saveState(trained(), target), expected);
    assert.throws(() => saveStateSync(trained(), target), expected);
    assert.deepEqual(readdirSync(folder).sort(), before);
  });

  it('concurrent writes of one file in one millisecond each get their own temp file', async () => {
    const target = join(folder, 'concurrent.json');
    const texts = Array.from({ length: 20 }, (_, i) => `write ${i}`);
    await Promise.all(texts.map((text) => writeFileAtomic(target, text)));
    assert.ok(texts.includes(readFileSync(target, 'utf8')));
    assert.deepEqual(readdirSync(folder).filter((name) => name.startsWith('.concurrent.json.')), []);
  });

  it('a missing file to load names itself', async () => {
    const target = join(missing, 'opt.safetensors');
    const expected = namesTarget(target, 'ENOENT', `ENOENT: no such file or directory, open '${target}'`);
    await assert.rejects(loadState(new Adam(), target), expected);
    assert.throws(() => loadStateSync(new Adam(), target), expected);
  });
});
