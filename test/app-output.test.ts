/**
 * The output folder and write failures: the folder is checked before
 * any training, pseudo file systems are refused up front, a full disk or a denied write
 * is one line with exit 2, and summary.json and report.html are replaced together or not
 * at all.
 *
 * Full disks are tiny tmpfs mounts and read-only folders read-only mounts (we may be
 * root, for whom permission bits do not apply); a permission error is produced by
 * running the job as the unprivileged user `nobody` when we are root. Where mount or
 * setuid is not available the test is skipped and says why.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it, type TestContext } from 'node:test';
import { WriteError, writeFilesTogether } from '../app/files.ts';

const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));
const run = promisify(execFile);
const QUICK = ['--optimizers', 'sgd', '--epochs', '1', '--workers', '1'];

async function start(args: string[], options: { uid?: number; gid?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8', timeout: 60_000, ...options });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number | null; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A fresh tmpfs mounted with `options`, or undefined (the test skipped, with the reason) where mounting is not allowed. */
function tmpfs(t: TestContext, options: string): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'nesterov-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const reason = `cannot mount a tmpfs here: ${String((error as { stderr?: Buffer }).stderr ?? (error as Error).message).trim()}`;
    process.stdout.write(`# skipped: ${reason}\n`);
    t.skip(reason);
    return undefined;
  }
  t.after(() => execFileSync('umount', [dir]));
  return dir;
}

function oneLine(result: { code: number | null; stderr: string }, expected: string): void {
  assert.equal(result.code, 2, result.stderr);
  assert.equal(result.stderr, `error: ${expected}\n`);
}

describe('--out is checked before any training', () => {
  it('/proc/x is refused at once (Node\'s recursive mkdir spins forever there)', { timeout: 90_000 }, async () => {
    oneLine(await start([...QUICK, '--out', '/proc/nesterov-x/y']), '--out: /proc/nesterov-x/y: /proc is on a proc file system, which holds no ordinary files; choose another folder');
    oneLine(await start([...QUICK, '--out', '/sys/kernel/nesterov-x']), '--out: /sys/kernel/nesterov-x: /sys/kernel is on a sysfs file system, which holds no ordinary files; choose another folder');
  });

  it('a path through a file is refused, naming the file', { timeout: 60_000 }, async () => {
    const folder = mkdtempSync(join(tmpdir(), 'nesterov-out-file-'));
    writeFileSync(join(folder, 'file'), 'x');
    oneLine(await start([...QUICK, '--out', join(folder, 'file', 'out')]), `--out: ${join(folder, 'file', 'out')}: ${join(folder, 'file')} is not a folder`);
    oneLine(await start([...QUICK, '--out', join(folder, 'file')]), `--out: ${join(folder, 'file')}: is not a folder`);
  });

  it('a read-only folder is refused before training (EROFS), even for root', { timeout: 60_000 }, async (t) => {
    const dir = tmpfs(t, 'size=1m,ro');
    if (dir === undefined) return;
    const result = await start([...QUICK, '--out', dir]);
    oneLine(result, `--out: ${dir}: cannot write here (EROFS: read-only file system)`);
    assert.equal(result.stdout, '', 'no training started');
  });

  it('a folder this user may not write to is refused before training (EACCES)', { timeout: 60_000 }, async (t) => {
    const parent = mkdtempSync(join(tmpdir(), 'nesterov-out-denied-'));
    mkdirSync(join(parent, 'locked'));
    chmodSync(parent, 0o755);
    chmodSync(join(parent, 'locked'), 0o555);
    // Root passes every permission check; run as `nobody` then.
    const user = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const made = await start([...QUICK, '--out', join(parent, 'locked')], user);
    if (made.code === null || /EPERM.*spawn|spawn.*EPERM/.test(made.stderr)) {
      t.skip(`cannot run as nobody here: ${made.stderr}`);
      return;
    }
    oneLine(made, `--out: ${join(parent, 'locked')}: cannot write here (EACCES: permission denied)`);
    assert.equal(made.stdout, '', 'no training started');
    oneLine(await start([...QUICK, '--out', join(parent, 'locked', 'out')], user), `--out: ${join(parent, 'locked', 'out')}: cannot be made in ${join(parent, 'locked')} (EACCES: permission denied)`);
    assert.deepEqual(readdirSync(join(parent, 'locked')), []);
  });

  it('a missing folder is made one level at a time', { timeout: 90_000 }, async () => {
    const parent = mkdtempSync(join(tmpdir(), 'nesterov-out-deep-'));
    const out = join(parent, 'a', 'b', 'c');
    const result = await start([...QUICK, '--out', out]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['report.html', 'summary.json']);
    // Both files of one run carry its id.
    const id = (JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { run: string }).run;
    assert.match(readFileSync(join(out, 'report.html'), 'utf8'), new RegExp(`<meta name="nesterov-run" content="${id}">`));
  });
});

describe('write failures during the run: one line, exit 2, the old files kept', () => {
  it('a full disk at a checkpoint (ENOSPC)', { timeout: 90_000 }, async (t) => {
    // 300 KB: the folder and the probe fit, sgd's checkpoint (about 470 KB) does not.
    const dir = tmpfs(t, 'size=300k');
    if (dir === undefined) return;
    const result = await start([...QUICK, '--out', dir, '--checkpoint-every', '40']);
    oneLine(result, `${join(dir, 'checkpoints', 'sgd.json')}: cannot write the checkpoint (ENOSPC: no space left on the device)`);
    assert.deepEqual(readdirSync(join(dir, 'checkpoints')), [], 'no temp file left');
  });

  it('a full disk at the report: summary.json and report.html both stay the old ones (ENOSPC)', { timeout: 90_000 }, async (t) => {
    // 200 KB: the old pair fits, the new report (about 240 KB) does not.
    const dir = tmpfs(t, 'size=200k');
    if (dir === undefined) return;
    writeFileSync(join(dir, 'summary.json'), '{"old":true}\n');
    writeFileSync(join(dir, 'report.html'), '<p>old</p>\n');
    const result = await start([...QUICK, '--out', dir]);
    oneLine(result, `${join(dir, 'report.html')}: cannot write (ENOSPC: no space left on the device)`);
    assert.equal(readFileSync(join(dir, 'summary.json'), 'utf8'), '{"old":true}\n');
    assert.equal(readFileSync(join(dir, 'report.html'), 'utf8'), '<p>old</p>\n');
    assert.deepEqual(readdirSync(dir).sort(), ['report.html', 'summary.json'], 'no temp file left');
  });

  it('writeFilesTogether: when the second file cannot be written, the first keeps its old content', () => {
    const folder = mkdtempSync(join(tmpdir(), 'nesterov-pair-'));
    writeFileSync(join(folder, 'report.html'), 'old report');
    assert.throws(
      () =>
        writeFilesTogether([
          { path: join(folder, 'report.html'), data: 'new report' },
          { path: join(folder, 'missing', 'summary.json'), data: 'new summary' },
        ]),
      (e: Error) => e instanceof WriteError && e.message === `${join(folder, 'missing', 'summary.json')}: cannot write (ENOENT: no such file or folder)`,
    );
    assert.equal(readFileSync(join(folder, 'report.html'), 'utf8'), 'old report');
    assert.deepEqual(readdirSync(folder), ['report.html']);
  });
});
