/**
 * No allocation in a step after the first. Each registry entry runs in a child process
 * (test/allocation-probe.ts): 20,000 warm-up steps, then 50,000 steps with an lr
 * schedule, for an object of Float32Arrays and then a Map of Float64Arrays in the same
 * process. The young generation's used size must not grow by more than a few KiB
 * (what the measurement itself allocates; one 16-byte boxed number per step would be 800 KB) and no
 * garbage collection may run.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { REGISTRY } from './registry.ts';

const run = promisify(execFile);
const probe = fileURLToPath(new URL('./allocation-probe.ts', import.meta.url));

interface ProbeResult {
  kind: string;
  dtype: string;
  steps: number;
  youngBytes: number;
  collections: number;
}

it('a step allocates nothing, for every rule and variant', { timeout: 300_000 }, async () => {
  const results: [string, ProbeResult[]][] = [];
  const queue = REGISTRY.map((entry) => entry.id);
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      const { stdout } = await run(process.execPath, ['--import', 'tsx', probe, id]);
      results.push([id, JSON.parse(stdout) as ProbeResult[]]);
    }
  };
  await Promise.all([worker(), worker()]);
  assert.equal(results.length, REGISTRY.length);
  for (const [id, runs] of results) {
    for (const r of runs) {
      const label = `${id} (${r.kind} of ${r.dtype}): ${r.youngBytes} bytes, ${r.collections} collections in ${r.steps} steps`;
      assert.equal(r.collections, 0, label);
      assert.ok(r.youngBytes < 16 * 1024, label);
    }
  }
});
