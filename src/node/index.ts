/**
 * Node-only helpers (import from 'nesterov/node'): optimizer state to and from a file
 * in one call, written atomically (temp file, fsync, rename, fsync of the folder),
 * so a crash at any instant leaves either the old file or the new one.
 *
 * The format follows the file name: `.json` writes `stateToJSON` text; anything else
 * (e.g. `.safetensors`) writes the safetensors layout of `encodeState`. Loading reads
 * either, by content.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { StateError } from '../errors.ts';
import { decodeState, encodeState, stateFromJSON, stateToJSON, type OptimizerStateDict } from '../state.ts';

/** What saveState / loadState need of an optimizer. */
export interface StatefulOptimizer {
  stateDict(): OptimizerStateDict;
  loadStateDict(state: unknown): void;
}

function temporaryPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
}

function encodeFor(path: string, state: OptimizerStateDict): Uint8Array {
  return path.endsWith('.json') ? new TextEncoder().encode(stateToJSON(state)) : encodeState(state);
}

function decodeFrom(path: string, bytes: Uint8Array): OptimizerStateDict {
  try {
    return bytes[0] === 0x7b /* '{' */ ? stateFromJSON(new TextDecoder().decode(bytes)) : decodeState(bytes);
  } catch (error) {
    if (error instanceof StateError) throw new StateError(`${path}: ${error.message}`);
    throw error;
  }
}

/** Writes `data` to `path` atomically. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temporary = temporaryPath(path);
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
}

/** Writes `data` to `path` atomically, synchronously. */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  const temporary = temporaryPath(path);
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
}

/** Saves the optimizer's state to `path` (.json: JSON; otherwise safetensors layout). */
export async function saveState(optimizer: StatefulOptimizer, path: string): Promise<void> {
  await writeFileAtomic(path, encodeFor(path, optimizer.stateDict()));
}

/** Loads a state file written by saveState into the optimizer (validated; on error nothing changes). */
export async function loadState(optimizer: StatefulOptimizer, path: string): Promise<void> {
  optimizer.loadStateDict(decodeFrom(path, new Uint8Array(await readFile(path))));
}

export function saveStateSync(optimizer: StatefulOptimizer, path: string): void {
  writeFileAtomicSync(path, encodeFor(path, optimizer.stateDict()));
}

export function loadStateSync(optimizer: StatefulOptimizer, path: string): void {
  optimizer.loadStateDict(decodeFrom(path, new Uint8Array(readFileSync(path))));
}

export { startThreads, type ThreadPool } from './threads.ts';
