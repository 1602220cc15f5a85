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

describe("each registered rule's ops path follows the core optimizer (30 steps, float32)", () => {
  // The core run on the same gradients is the reference: the ops are the rule's formula in
  // TF.js ops, rounded to float32 per op where the core's JS loop rounds once per stored
  // value (1e-6 relative, as in tfjs-lion-lamb-schedulefree-muon.test.ts); Muon's matrix
  // products are summed in another order (1e-5).
  const toleranceOf = (key: string): number => (key === 'muon' ? 1e-5 : 1e-6);
  const shapes: Record<string, [number, number] | [number]> = { W: [2, 3], b: [3] };
  const gradientAt = (name: string, i: number, t: number, p: number): number => 0.3 * p + Math.sin(1 + i + 7 * t + (name === 'b' ? 5 : 0)) / 2;
  for (const entry of RULES.filter((candidate) => Object.hasOwn(RULE_OPS, candidate.key))) {
    const TOLERANCE = toleranceOf(entry.key);
    it(`${entry.key}: the ops path within ${TOLERANCE} of ${entry.name} run directly`, async () => {
      await useBackend('cpu');
      const names = entry.key === 'muon' ? ['W'] : ['W', 'b']; // Muon: 2-D parameters only
      const start = (name: string): number[] => Array.from({ length: name === 'W' ? 6 : 3 }, (_, i) => Math.cos(i + (name === 'b' ? 3 : 0)));
      const options = entry.key === 'muon' ? { lr: 0.02, shapes: { W: [2, 3] } } : { lr: 0.1 };
      const core = entry.make(options);
      const params = Object.fromEntries(names.map((name) => [name, Float32Array.from(start(name))]));
      const grads = Object.fromEntries(names.map((name) => [name, new Float32Array(params[name]!.length)]));
      const variables = Object.fromEntries(names.map((name) => [name, tf.variable(tf.tensor(start(name), shapes[name]), true, `follows_${entry.key}_${name}`)]));
      const opt = tfOptimizer(entry.make(entry.key === 'muon' ? { lr: 0.02 } : options) as TfWrappable, { path: 'ops' });
      for (let t = 0; t < 30; t++) {
        const tensors: Record<string, tf.Tensor> = {};
        for (const name of names) {
          const values = Array.from(variables[name]!.dataSync(), (p, i) => gradientAt(name, i, t, p));
          grads[name]!.set(Array.from(params[name]!, (p, i) => gradientAt(name, i, t, p)));
          tensors[variables[name]!.name] = tf.tensor(values, shapes[name]);
        }
        opt.applyGradients(tensors);
        core.update(params, grads);
        tf.dispose(Object.values(tensors));
      }
      for (const name of names) {
        const ops = variables[name]!.dataSync();
        const ours = params[name]!;
        for (let i = 0; i < ours.length; i++) {
          assert.ok(Math.abs(ops[i]! - ours[i]!) <= TOLERANCE * (1 + Math.abs(ours[i]!)), `${name}[${i}]: ops ${ops[i]}, core ${ours[i]}`);
        }
      }
      opt.dispose();
      tf.dispose(Object.values(variables));
    });
  }
});
