/**
 * Node-only helpers (import from 'nesterov/node'): optimizer state to and from a file
 * in one call, written atomically (temp file, fsync, rename, fsync of the folder),
 * so a crash at any instant leaves either the old file or the new one.
 *
 * The format follows the file name: `.json` writes `stateToJSON` text; anything else
 * (e.g. `.safetensors`) writes the safetensors layout of `encodeState`. Loading reads
 * either, by content, and checks the file before reading it: a regular file, at most
 * `maxBytes`, and for the safetensors layout exactly the size its header declares, so
 * a wrong path (`/dev/zero`, a FIFO, a large unrelated file) fails at once, in bounded
 * memory.
 *
 * Every file-system error names the file the caller asked for (never the temp file),
 * in its message and its `path`, and keeps its `code` (ENOENT, EACCES, ENOSPC...).
 */
import { closeSync, constants, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { constants as bufferConstants } from 'node:buffer';
import { basename, dirname, join } from 'node:path';
import { StateError, optionError } from '../errors.ts';
import { checkSavedState, decodeState, encodeState, readSafetensorsHeader, stateFromJSON, stateToJSON, type SavedState } from '../state.ts';

/**
 * What saveState / loadState need of an optimizer: every optimizer-like object of this
 * library (a rule's optimizer, Muon, a partition, a Lookahead, nested) is one.
 */
export interface StatefulOptimizer {
  /** A saved state (`SavedState`): checked when it is encoded. */
  stateDict(): unknown;
  loadStateDict(state: unknown): void;
}

export interface LoadStateOptions {
  /**
   * The largest file loadState reads, in bytes (default `DEFAULT_MAX_STATE_BYTES`, 1 GiB);
   * a larger file is refused before anything is read. Raise it for larger states.
   */
  maxBytes?: number;
}

/** 1 GiB: Adam's state of 130M float32 parameters in the safetensors layout. */
export const DEFAULT_MAX_STATE_BYTES = 2 ** 30;

/** The safetensors crate's own cap on the header (100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

/** How far format detection looks for the first non-whitespace byte of a JSON file. */
const PROBE_BYTES = 64 * 1024;

// ---------------------------------------------------------------------------------
// Errors naming the target

interface SystemError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
  path?: string;
  dest?: string;
}

function isSystemError(error: unknown): error is SystemError {
  return error instanceof Error && typeof (error as Partial<SystemError>).code === 'string' && typeof (error as Partial<SystemError>).syscall === 'string';
}

/**
 * The same error, about `target`: Node's `CODE: reason, syscall 'path'` with the target
 * as the path (a write's temp file is an implementation detail; a read or write error
 * of Node names no path at all). `code`, `errno`, `syscall` are kept; `cause` is the
 * original error.
 */
function aboutTarget(error: unknown, target: string): unknown {
  if (!isSystemError(error)) return error;
  const head = `${error.code}: `;
  const tail = `, ${error.syscall}`;
  const message = error.message;
  const reason = message.startsWith(head) && message.lastIndexOf(tail) > head.length ? message.slice(head.length, message.lastIndexOf(tail)) : message;
  const wrapped = new Error(`${error.code}: ${reason}, ${error.syscall} '${target}'`, { cause: error }) as SystemError;
  wrapped.code = error.code;
  if (error.errno !== undefined) wrapped.errno = error.errno;
  wrapped.syscall = error.syscall;
  wrapped.path = target;
  return wrapped;
}

function stateFileError(path: string, message: string): StateError {
  return new StateError(`${path}: ${message}`);
}

function withPath<T>(path: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof StateError) throw stateFileError(path, error.message);
    throw error;
  }
}

// ---------------------------------------------------------------------------------
// Writing

let lastStamp = 0;

/**
 * `.<name>.<pid>.<milliseconds>.tmp` next to the target (same file system, so the
 * rename is atomic); the stamp goes up by at least 1 per call, so two writes in one
 * millisecond of one process do not share a temp file.
 */
function temporaryPath(path: string): string {
  lastStamp = Math.max(Date.now(), lastStamp + 1);
  return join(dirname(path), `.${basename(path)}.${process.pid}.${lastStamp}.tmp`);
}

function encodeFor(path: string, dict: unknown): Uint8Array {
  const state = checkSavedState(dict);
  return path.endsWith('.json') ? new TextEncoder().encode(stateToJSON(state)) : encodeState(state);
}

/** Writes `data` to `path` atomically. Errors name `path`, never the temp file. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temporary = temporaryPath(path);
  try {
    try {
      const file = await open(temporary, 'w');
      try {
        await file.writeFile(data);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temporary, path);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
    const folder = await open(dirname(path), 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  } catch (error) {
    throw aboutTarget(error, path);
  }
}

/** Writes `data` to `path` atomically, synchronously. Errors name `path`, never the temp file. */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  const temporary = temporaryPath(path);
  try {
    try {
      const fd = openSync(temporary, 'w');
      try {
        const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
        let written = 0;
        while (written < bytes.byteLength) written += writeSync(fd, bytes, written);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temporary, path);
    } catch (error) {
      try {
        unlinkSync(temporary);
      } catch {
        // the temp file was never made or is already renamed
      }
      throw error;
    }
    const folder = openSync(dirname(path), 'r');
    try {
      fsyncSync(folder);
    } finally {
      closeSync(folder);
    }
  } catch (error) {
    throw aboutTarget(error, path);
  }
}

// ---------------------------------------------------------------------------------
// Reading: one plan, driven synchronously or asynchronously. The plan yields the
// reads it needs (fill `into` from file offset `position`) and returns the state.

interface Read {
  into: Uint8Array;
  position: number;
}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

function checkMaxBytes(options: LoadStateOptions | undefined): number {
  const maxBytes = options?.maxBytes ?? DEFAULT_MAX_STATE_BYTES;
  if (typeof maxBytes !== 'number' || !(maxBytes >= 0) || (!Number.isSafeInteger(maxBytes) && maxBytes !== Infinity)) {
    throw optionError('loadState', 'maxBytes', maxBytes, 'an integer number of bytes >= 0, or Infinity');
  }
  return maxBytes;
}

function isJsonWhitespace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

function* readPlan(path: string, stats: Stats, maxBytes: number): Generator<Read, SavedState, void> {
  if (!stats.isFile()) throw stateFileError(path, `not a regular file (${kindOf(stats)}): a state file is a regular file`);
  const size = stats.size;
  if (size > maxBytes) {
    throw stateFileError(path, `the file has ${size} bytes, more than maxBytes ${maxBytes}: not read (pass a larger maxBytes to load a larger state)`);
  }
  const probe = new Uint8Array(Math.min(size, PROBE_BYTES));
  yield { into: probe, position: 0 };

  // A JSON text never holds a NUL byte, and the safetensors length of any file under
  // 2^56 bytes has a NUL as its 8th byte: so this tells the two apart whatever the
  // header length is (its low byte may well be a space or a '{').
  if (size >= 8 && probe[7] === 0) {
    const declared = Number(new DataView(probe.buffer, 0, 8).getBigUint64(0, true));
    if (declared > size - 8) throw stateFileError(path, `invalid optimizer state: header length ${declared} runs past the end of the ${size} bytes`);
    if (declared > MAX_HEADER_BYTES) throw stateFileError(path, `invalid optimizer state: header length ${declared} is more than the ${MAX_HEADER_BYTES} bytes a safetensors header may have`);
    const head = new Uint8Array(8 + declared);
    head.set(probe.subarray(0, head.byteLength));
    if (head.byteLength > probe.byteLength) yield { into: head.subarray(probe.byteLength), position: probe.byteLength };
    const { dataStart, dataLength } = withPath(path, () => readSafetensorsHeader(head, size));
    if (dataStart + dataLength !== size) {
      throw stateFileError(
        path,
        `invalid optimizer state: the header describes a file of ${dataStart + dataLength} bytes (${dataStart} of header, ${dataLength} of tensors), the file has ${size} bytes`,
      );
    }
    const file = new Uint8Array(size);
    file.set(head);
    if (size > head.byteLength) yield { into: file.subarray(head.byteLength), position: head.byteLength };
    return withPath(path, () => decodeState<SavedState>(file));
  }

  let first = probe[0] === 0xef && probe[1] === 0xbb && probe[2] === 0xbf ? 3 : 0; // UTF-8 byte order mark
  while (isJsonWhitespace(probe[first])) first++;
  if (probe[first] !== 0x7b /* '{' */) {
    const what = first < probe.byteLength ? `byte ${first} is 0x${probe[first]!.toString(16).padStart(2, '0')}` : size === 0 ? 'the file is empty' : `its first ${first} bytes are whitespace`;
    throw stateFileError(path, `not an optimizer state file: neither the safetensors layout nor JSON text (${what})`);
  }
  if (size > bufferConstants.MAX_STRING_LENGTH) {
    throw stateFileError(path, `a JSON state file of ${size} bytes is longer than this runtime's longest string (${bufferConstants.MAX_STRING_LENGTH}): save large states as .safetensors`);
  }
  const file = new Uint8Array(size);
  file.set(probe);
  if (size > probe.byteLength) yield { into: file.subarray(probe.byteLength), position: probe.byteLength };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(file);
  } catch (error) {
    throw stateFileError(path, `invalid optimizer state: not UTF-8 text (${(error as Error).message})`);
  }
  return withPath(path, () => stateFromJSON<SavedState>(text));
}

function shrank(path: string): StateError {
  return stateFileError(path, 'the file became shorter while it was read (is another process writing it?)');
}

/** O_NONBLOCK: opening a FIFO must not wait for a writer before fstat can refuse it. */
const OPEN_FOR_CHECKING = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

async function readStateFile(path: string, options: LoadStateOptions | undefined): Promise<SavedState> {
  const maxBytes = checkMaxBytes(options);
  let file: FileHandle;
  try {
    file = await open(path, OPEN_FOR_CHECKING);
  } catch (error) {
    throw aboutTarget(error, path);
  }
  try {
    let stats: Stats;
    try {
      stats = await file.stat();
    } catch (error) {
      throw aboutTarget(error, path);
    }
    const plan = readPlan(path, stats, maxBytes);
    for (let step = plan.next(); ; ) {
      if (step.done === true) return step.value;
      const { into, position } = step.value;
      for (let filled = 0; filled < into.byteLength; ) {
        let bytesRead: number;
        try {
          ({ bytesRead } = await file.read(into, filled, into.byteLength - filled, position + filled));
        } catch (error) {
          throw aboutTarget(error, path);
        }
        if (bytesRead === 0) throw shrank(path);
        filled += bytesRead;
      }
      step = plan.next();
    }
  } finally {
    await file.close().catch(() => undefined);
  }
}

function readStateFileSync(path: string, options: LoadStateOptions | undefined): SavedState {
  const maxBytes = checkMaxBytes(options);
  let fd: number;
  try {
    fd = openSync(path, OPEN_FOR_CHECKING);
  } catch (error) {
    throw aboutTarget(error, path);
  }
  try {
    let stats: Stats;
    try {
      stats = fstatSync(fd);
    } catch (error) {
      throw aboutTarget(error, path);
    }
    const plan = readPlan(path, stats, maxBytes);
    for (let step = plan.next(); ; ) {
      if (step.done === true) return step.value;
      const { into, position } = step.value;
      for (let filled = 0; filled < into.byteLength; ) {
        let bytesRead: number;
        try {
          bytesRead = readSync(fd, into, filled, into.byteLength - filled, position + filled);
        } catch (error) {
          throw aboutTarget(error, path);
        }
        if (bytesRead === 0) throw shrank(path);
        filled += bytesRead;
      }
      step = plan.next();
    }
  } finally {
    try {
      closeSync(fd);
    } catch {
      // nothing was written; a failed close of a read-only file loses nothing
    }
  }
}

// ---------------------------------------------------------------------------------

/** Saves the optimizer's state to `path` (.json: JSON; otherwise safetensors layout). */
export async function saveState(optimizer: StatefulOptimizer, path: string): Promise<void> {
  await writeFileAtomic(path, encodeFor(path, optimizer.stateDict()));
}

/**
 * Loads a state file written by saveState into the optimizer (checked before it is
 * read, validated; on any error the optimizer keeps its state).
 */
export async function loadState(optimizer: StatefulOptimizer, path: string, options?: LoadStateOptions): Promise<void> {
  const state = await readStateFile(path, options);
  withPath(path, () => optimizer.loadStateDict(state));
}

export function saveStateSync(optimizer: StatefulOptimizer, path: string): void {
  writeFileAtomicSync(path, encodeFor(path, optimizer.stateDict()));
}

export function loadStateSync(optimizer: StatefulOptimizer, path: string, options?: LoadStateOptions): void {
  const state = readStateFileSync(path, options);
  withPath(path, () => optimizer.loadStateDict(state));
}

export { startThreads, type ThreadPool } from './threads.ts';
