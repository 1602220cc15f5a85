/**
 * nesterov/webgpu against the registry: every elementwise rule has a GPU kernel for each
 * of its wasm kernels (src/webgpu/rules/<key>.ts) or is listed in GPU_MISSING with the
 * reason; each GPU kernel's uniforms read only scalars its rule's layout names; every
 * kernel variant runs in the browser test's cases; and importing 'nesterov' alone loads
 * nothing of nesterov/webgpu.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { build } from 'esbuild';
import { Muon, Prodigy, RULES } from 'nesterov';
import { GPU_KERNELS, GPU_MISSING, GPU_MODES, GPU_PROGRAMS, GPUOptimizer, GPUParamStore, type ScalarValues } from 'nesterov/webgpu';
import { GPU_CASES } from './webgpu-cases.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const elementwise = RULES.filter((entry) => entry.rule !== undefined);

describe('nesterov/webgpu: the registry', () => {
  it('every elementwise rule has a GPU kernel for each wasm kernel, or a reason in GPU_MISSING', () => {
    for (const entry of elementwise) {
      const gpu = GPU_KERNELS[entry.key];
      const missing = GPU_MISSING[entry.key];
      if (gpu === undefined) {
        assert.ok(typeof missing === 'string' && missing.length > 0, `${entry.name} has no GPU kernel (src/webgpu/rules/${entry.key}.ts) and no reason in GPU_MISSING`);
        continue;
      }
      assert.equal(missing, undefined, `${entry.name} has a GPU kernel and is listed in GPU_MISSING`);
      for (const layout of Object.values(entry.rule!.kernels ?? {})) {
        assert.ok(gpu[layout.entry] !== undefined, `${entry.name}: no GPU kernel for its wasm kernel '${layout.entry}'`);
      }
    }
    const keys = new Set(elementwise.map((entry) => entry.key));
    for (const key of [...Object.keys(GPU_KERNELS), ...Object.keys(GPU_MISSING)]) assert.ok(keys.has(key), `${key} is not a registered elementwise rule`);
  });

  it("each GPU kernel's uniforms read every scalar of its rule's layout (but those it says why it ignores), and no other", () => {
    for (const [key, kernels] of Object.entries(GPU_KERNELS)) {
      const rule = RULES.find((entry) => entry.key === key)!.rule!;
      for (const [entryName, kernel] of Object.entries(kernels)) {
        const layout = Object.values(rule.kernels ?? {}).find((candidate) => candidate.entry === entryName);
        assert.ok(layout !== undefined, `${key}: GPU kernel '${entryName}' stands in for no wasm kernel of the rule`);
        const read: string[] = [];
        const scalars = new Proxy({} as ScalarValues, {
          get: (_target, name) => {
            read.push(String(name));
            return 0.5;
          },
        });
        for (const uniform of Object.values(kernel.uniforms)) assert.ok(Number.isFinite(uniform(scalars)), `${key} ${entryName}: a uniform is not a number`);
        for (const name of read) assert.ok(layout.scalars.includes(name), `${key} ${entryName}: a uniform reads '${name}', not a scalar of [${layout.scalars.join(', ')}]`);
        for (const name of layout.scalars) {
          const reason = kernel.ignores?.[name];
          assert.ok(read.includes(name) !== (reason !== undefined), `${key} ${entryName}: scalar '${name}' of the layout is ${read.includes(name) ? 'read and listed in ignores' : 'read by no uniform and not listed in ignores with a reason'}`);
        }
      }
    }
  });

  it("every GPU kernel variant is one of the browser test's cases (eval and train's run in each case of their rule)", () => {
    for (const [key] of Object.entries(GPU_KERNELS)) {
      const entry = RULES.find((candidate) => candidate.key === key)!;
      // A program's kernels all run at every step: a case of the rule runs them.
      if (GPU_PROGRAMS[key] !== undefined) {
        assert.ok(GPU_CASES.some((c) => c.key === key), `${entry.name}: no case in test/webgpu-cases.ts`);
        continue;
      }
      for (const [variant, layout] of Object.entries(entry.rule!.kernels ?? {})) {
        if (GPU_MODES[key]?.entry === layout.entry) {
          assert.ok(GPU_CASES.some((c) => c.key === key), `${entry.name}: no case runs its eval and train`);
          continue;
        }
        const covered = GPU_CASES.some((c) => {
          if (c.key !== key) return false;
          const made = entry.make(c.options) as unknown as { defaults: { variant?: string } };
          const ran = made.defaults.variant !== undefined && made.defaults.variant in entry.rule!.kernels! ? made.defaults.variant : 'step';
          return ran === variant;
        });
        assert.ok(covered, `${entry.name} variant '${variant}' has no case in test/webgpu-cases.ts`);
      }
    }
  });

  it('GPUOptimizer refuses, naming why, what it cannot run: a rule without a GPU kernel, Muon; GPUParamStore a non-device', () => {
    // Refused before the store is touched: no device needed.
    const store = {} as GPUParamStore;
    assert.throws(() => new GPUOptimizer(new Prodigy(), store), /GPUOptimizer.*Prodigy: its step needs sums over the parameter/);
    assert.throws(() => new GPUOptimizer(new Muon() as never, store), /GPUOptimizer: invalid optimizer.*elementwise rules/);
    assert.throws(() => new GPUParamStore({} as GPUDevice, { w: 1 }), /GPUParamStore: invalid device.*a GPUDevice/);
  });

  it("importing 'nesterov' alone loads nothing of nesterov/webgpu", async () => {
    const result = await build({
      stdin: { contents: "export * from 'nesterov';", resolveDir: root, loader: 'ts' },
      bundle: true, format: 'esm', platform: 'neutral', conditions: ['nesterov-source'], write: false, metafile: true, logLevel: 'silent', absWorkingDir: root,
    });
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.some((path) => path.startsWith('src/rules/')), `the bundle's inputs look wrong: ${inputs.slice(0, 5).join(', ')}`);
    assert.deepEqual(inputs.filter((path) => path.includes('webgpu')), []);
  });
});
