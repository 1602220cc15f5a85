/**
 * No allocation in a step after the first. Each registry entry runs in a child process
 * (test/allocation-probe.ts): 60,000 warm-up steps (with a pause for background compilation), then 50,000 steps with an lr
 * schedule, for an object of Float32Arrays, a Map of Float64Arrays and a ParamStore
 * (JS and WebAssembly kernels), one after another in the same process. The young generation's used size must not grow by more than a few KiB
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
  const clean = (r: ProbeResult) => r.collections === 0 && r.youngBytes < 16 * 1024;
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      let runs: ProbeResult[] = [];
      // Three processes at most: on this 2-core machine a probe now and then runs while
      // its own functions wait for the background compiler, and unoptimized code boxes
      // doubles (with 24 rules' probes, two tries were not always enough: a different
      // rule failed both now and then, and passed on rerun). A real per-step allocation
      // fails every try.
      for (let attempt = 0; attempt < 3; attempt++) {
        const { stdout } = await run(process.execPath, ['--import', 'tsx', probe, id]);
        runs = JSON.parse(stdout) as ProbeResult[];
        if (runs.every(clean)) break;
      }
      results.push([id, runs]);
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
