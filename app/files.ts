/**
 * The main job's file-system edges: the output folder (checked and made before any
 * training), write failures turned into one-line errors, the stale temp files of killed
 * atomic writes, and the summary/report pair written so that both come from one run.
 */
import { randomUUID } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  statfsSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** A file or folder of the job that cannot be written; the message is one line naming it and the cause. */
export class WriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WriteError';
  }
}

const CAUSES: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'is a folder',
  EEXIST: 'already exists',
  ENOENT: 'no such file or folder',
  EIO: 'input/output error',
  EMFILE: 'too many open files',
};

/** `path: what (CODE: cause)`, one line, for a failed file-system call on `path`. */
export function writeErrorOf(path: string, what: string, error: unknown): WriteError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string') return new WriteError(`${path}: ${what} (${code}: ${CAUSES[code] ?? 'system error'})`);
  return new WriteError(`${path}: ${what} (${(error as Error).message.split('\n')[0]})`);
}

/**
 * File systems that hold no files of ours (statfs magic numbers, linux/magic.h): Node's
 * recursive mkdir spins forever under /proc, and /sys and friends refuse or mislead.
 */
const PSEUDO_FILE_SYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpf'],
  [0x6165676c, 'pstore'],
  [0x62656570, 'configfs'],
  [0x65735543, 'fusectl'],
  [0x42494e4d, 'binfmt_misc'],
  [0x19800202, 'mqueue'],
  [0x50495045, 'pipefs'],
  [0x534f434b, 'sockfs'],
  [0x6e736673, 'nsfs'],
]);

/** The path itself if it exists, else its nearest existing ancestor, and the names still to make below it. */
function nearestExisting(path: string): { existing: string; missing: string[] } {
  const missing: string[] = [];
  let current = path;
  for (;;) {
    try {
      statSync(current);
      return { existing: current, missing };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // ENOTDIR: an ancestor is a file; walking up finds it and says so.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw writeErrorOf(current, 'cannot be used', error);
      const parent = dirname(current);
      if (parent === current) return { existing: current, missing };
      missing.unshift(basename(current));
      current = parent;
    }
  }
}

/**
 * Checks, without changing anything, that `folder` (absolute) can become the output
 * folder: its nearest existing ancestor is a folder on a real file system that this
 * user may write to. Throws WriteError (one line) otherwise.
 */
export function checkOutputFolder(folder: string): void {
  const { existing, missing } = nearestExisting(folder);
  const stats = statSync(existing);
  if (!stats.isDirectory()) throw new WriteError(existing === folder ? `${folder}: is not a folder` : `${folder}: ${existing} is not a folder`);
  const type = PSEUDO_FILE_SYSTEMS.get(Number(statfsSync(existing).type));
  if (type !== undefined) throw new WriteError(`${folder}: ${existing} is on a ${type} file system, which holds no ordinary files; choose another folder`);
  try {
    accessSync(existing, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw writeErrorOf(folder, missing.length > 0 ? `cannot be made in ${existing}` : 'cannot write here', error);
  }
}

/**
 * Makes `folder` (absolute) one level at a time, never recursively (see
 * PSEUDO_FILE_SYSTEMS), and proves it writable by writing, syncing and removing a probe
 * file: root passes every permission check, so only a real write tells (read-only
 * mounts, immutable folders, full disks).
 */
export function prepareOutputFolder(folder: string): void {
  checkOutputFolder(folder);
  const { existing, missing } = nearestExisting(folder);
  let current = existing;
  for (const name of missing) {
    current = join(current, name);
    try {
      mkdirSync(current);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw writeErrorOf(current, 'cannot make this folder', error);
    }
  }
  if (!statSync(folder).isDirectory()) throw new WriteError(`${folder}: is not a folder`);
  const probe = join(folder, `.write-probe.${process.pid}.${Date.now()}.tmp`);
  try {
    const fd = openSync(probe, 'wx');
    try {
      writeSync(fd, 'probe\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    throw writeErrorOf(folder, 'cannot write here', error);
  } finally {
    try {
      unlinkSync(probe);
    } catch {
      // never made
    }
  }
}

/**
 * Matches the temp files of src/node's atomic writer (`.<basename>.<pid>.<time>.tmp`),
 * of writeFilesTogether (the same names) and of the write probe (basename `write-probe`).
 */
const TEMP_FILE = /^\.(.+)\.(\d+)\.(\d+)\.tmp$/;

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes the temp files that killed writes of the files named `targets` left in
 * `folder` (only those: other files are the user's), skipping any whose writer is still
 * running. Returns the names deleted.
 */
export function removeStaleTempFiles(folder: string, targets: ReadonlySet<string>): string[] {
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw writeErrorOf(folder, 'cannot list', error);
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = TEMP_FILE.exec(name);
    if (!match || !targets.has(match[1]!) || isAlive(Number(match[2]))) continue;
    try {
      unlinkSync(join(folder, name));
      removed.push(name);
    } catch (error) {
      throw writeErrorOf(join(folder, name), 'cannot delete this stale temp file', error);
    }
  }
  return removed;
}

/** A fresh identifier for one run, written into both summary.json and report.html. */
export function newRunId(): string {
  return randomUUID();
}

/**
 * Writes several files as one: every temp file is written and synced first (a full
 * disk or a permission error stops here, with every old file untouched and the temp
 * files removed), and only then are they renamed over their targets, in the given
 * order, and the folder synced. A crash during the renames (a few microseconds) can
 * leave the first targets new and the last old; the caller gives them a shared run id
 * so that such a mix is visible, and puts the file it treats as the commit record last.
 */
export function writeFilesTogether(files: { path: string; data: string }[]): void {
  const temps: string[] = [];
  try {
    for (const { path, data } of files) {
      const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
      let fd: number;
      try {
        fd = openSync(temp, 'wx');
      } catch (error) {
        throw writeErrorOf(path, 'cannot write', error);
      }
      temps.push(temp);
      try {
        const bytes = Buffer.from(data, 'utf8');
        let written = 0;
        while (written < bytes.byteLength) written += writeSync(fd, bytes, written);
        fsyncSync(fd);
      } catch (error) {
        throw writeErrorOf(path, 'cannot write', error);
      } finally {
        closeSync(fd);
      }
    }
  } catch (error) {
    for (const temp of temps) {
      try {
        unlinkSync(temp);
      } catch {
        // already gone
      }
    }
    throw error;
  }
  files.forEach(({ path }, i) => {
    try {
      renameSync(temps[i]!, path);
    } catch (error) {
      for (const temp of temps.slice(i)) {
        try {
          unlinkSync(temp);
        } catch {
          // already gone
        }
      }
      throw writeErrorOf(path, 'cannot replace', error);
    }
  });
  for (const folder of new Set(files.map(({ path }) => dirname(path)))) {
    try {
      const fd = openSync(folder, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      throw writeErrorOf(folder, 'cannot sync', error);
    }
  }
}
