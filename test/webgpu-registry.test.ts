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
import { Muon, RULES } from 'nesterov';
import { GPU_GLOBAL, GPU_KERNELS, GPU_MISSING, GPU_MODES, GPU_PROGRAMS, GPUOptimizer, GPUParamStore, type ScalarValues } from 'nesterov/webgpu';
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
        // A global rule's kernels may also read the step's lr (the weight of a parameter's sums).
        const known = GPU_GLOBAL[key] === undefined ? layout.scalars : [...layout.scalars, 'lr'];
        for (const name of read) assert.ok(known.includes(name), `${key} ${entryName}: a uniform reads '${name}', not a scalar of [${known.join(', ')}]`);
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
        if (GPU_MODES[key]?.entry === layout.entry || entry.rule!.global !== undefined) {
          // Eval and train's kernel, and a global rule's passes (each step runs all): a case of the rule runs them.
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

  it('GPUOptimizer refuses, naming why, what it cannot run: Muon (not an elementwise rule); GPUParamStore a non-device', () => {
    // Refused before the store is touched: no device needed.
    const store = {} as GPUParamStore;
    assert.throws(() => new GPUOptimizer(new Muon() as never, store), /GPUOptimizer: invalid optimizer.*elementwise rules/);
    assert.throws(() => new GPUParamStore({} as GPUDevice, { w: 1 }), /GPUParamStore: invalid device.*a GPUDevice/);
  });

  it("a global rule's GPU twin: every rule with a global phase and a GPU kernel has one; each scalar its kernels read is free of d or linear in it (the blocks are captured at d = 1)", () => {
    for (const entry of elementwise) {
      const rule = entry.rule!;
      if (rule.global === undefined || GPU_KERNELS[entry.key] === undefined) continue;
      const spec = GPU_GLOBAL[entry.key];
      assert.ok(spec !== undefined, `${entry.name} has a global phase and a GPU kernel but no GPU_GLOBAL entry`);
      assert.equal(spec.totals.length, rule.global.sumCount, `${entry.name}: its GPU twin names ${spec.totals.length} totals, the rule sums ${rule.global.sumCount}`);
      // The rule's own passes against a stand-in for the wasm kernels, at d = 1 and at d = 3.
      const capture = (d: number, step: number): { entry: string; scalars: Record<string, number> }[] => {
        const made = entry.make({ lr: 0.7, weightDecay: 0.1 }) as unknown as { defaults: never };
        const hyper = made.defaults;
        const block = new Float64Array(64);
        const calls: string[] = [];
        const exports = new Proxy({}, { get: (_target, name) => () => (calls.push(String(name)), 0) });
        const kernels = { exports, scalars: block, address: 0 } as never;
        const state = rule.init(0, 'float32', hyper) as never as { step: number };
        state.step = step - 1;
        const empty = new Float32Array(0);
        const globals = new Float64Array(rule.global!.scalarNames.length).fill(d);
        const out: { entry: string; scalars: Record<string, number> }[] = [];
        const record = (): void => {
          const layout = Object.values(rule.kernels!).find((candidate) => candidate.entry === calls.at(-1))!;
          out.push({ entry: layout.entry, scalars: Object.fromEntries(layout.scalars.map((name, k) => [name, block[k]!])) });
        };
        block.fill(0);
        rule.global!.accumulate(empty, empty, state as never, hyper, { lr: 0.7 }, globals, new Float64Array(rule.global!.sumCount), kernels);
        record();
        block.fill(0);
        rule.global!.apply(empty, empty, state as never, hyper, { lr: 0.7 }, globals, globals, kernels);
        record();
        return out;
      };
      for (const step of [1, 5]) {
        const unit = capture(1, step);
        const tripled = capture(3, step);
        unit.forEach((pass, k) => {
          const kernel = GPU_KERNELS[entry.key]![pass.entry]!;
          let scaled = 0;
          for (const [name, uniform] of Object.entries(kernel.uniforms)) {
            const a = uniform({ ...pass.scalars, lr: 0.7 });
            const b = uniform({ ...tripled[k]!.scalars, lr: 0.7 });
            const linear = Math.abs(b - 3 * a) <= 1e-12 * Math.abs(b);
            if (linear && a !== 0) scaled += 1;
            assert.ok(b === a || linear, `${entry.name} ${pass.entry}: uniform ${name} is ${a} at d = 1 and ${b} at d = 3: neither free of d nor linear in it`);
          }
          assert.ok(scaled > 0, `${entry.name} ${pass.entry}: no uniform scales with d`);
        });
      }
    }
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
