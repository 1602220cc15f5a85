/**
 * The TF.js ops path against the registry (src/rules/index.ts): every registered rule has
 * its ops in src/tfjs/rules/ (one file per rule) or is listed as kernel-path-only with
 * the reason, the ops table holds no key the registry lacks, and each registered
 * optimizer is found by `tfOptimizer` through its rule's key and runs on the path its
 * entry allows (through 'nesterov/tfjs', as a user makes it).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RULES } from 'nesterov';
// The table itself (not part of the package's API): read to check it against the registry.
import { KERNEL_ONLY, RULE_OPS } from '../src/tfjs/rules/index.ts';
import { tfOptimizer, type TfWrappable } from 'nesterov/tfjs';
import { tf, useBackend } from './tfjs-helpers.ts';

describe('every registered rule has TF.js ops or a stated reason to run on the kernel path only', () => {
  for (const entry of RULES) {
    it(`${entry.key} (${entry.name})`, () => {
      const ops = Object.hasOwn(RULE_OPS, entry.key);
      const reason = Object.hasOwn(KERNEL_ONLY, entry.key) ? KERNEL_ONLY[entry.key] : undefined;
      assert.ok(ops || (typeof reason === 'string' && reason.length > 0), `${entry.key}: no ops in src/tfjs/rules/ and no reason in KERNEL_ONLY`);
      assert.ok(!(ops && reason !== undefined), `${entry.key}: both ops and a kernel-only reason`);
      // As a user sees it: the ops path is taken, or refused with the reason.
      const make = (): unknown => tfOptimizer(entry.make() as TfWrappable, { path: 'ops' });
      if (ops) assert.equal((make() as { path: string }).path, 'ops');
      else assert.throws(make, { message: new RegExp(reason!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) });
    });
  }

  it('the ops table and KERNEL_ONLY name only registered keys', () => {
    const keys = new Set(RULES.map((entry) => entry.key));
    assert.deepEqual([...Object.keys(RULE_OPS), ...Object.keys(KERNEL_ONLY)].filter((key) => !keys.has(key)), []);
  });
});

describe("tfOptimizer finds each registered optimizer by its rule's key", () => {
  for (const entry of RULES) {
    const paths = Object.hasOwn(RULE_OPS, entry.key) ? (['kernel', 'ops'] as const) : (['kernel'] as const);
    for (const path of paths) {
      it(`${entry.key}, path '${path}': one step moves a 2-D variable and names the rule in its config`, async () => {
        await useBackend('cpu');
        const v = tf.variable(tf.tensor([[1, -2], [3, -4]]), true, `registry_${entry.key}_${path}`);
        const opt = tfOptimizer(entry.make({ lr: 0.1 }) as TfWrappable, { path });
        const g = tf.tensor([[0.5, -0.5], [1, 2]]);
        opt.applyGradients({ [v.name]: g });
        assert.equal(opt.path, path);
        assert.equal(opt.getConfig().optimizer, entry.name);
        assert.notDeepEqual(Array.from(v.dataSync()), [1, -2, 3, -4]);
        opt.dispose();
        tf.dispose([v, g]);
      });
    }
  }
});
