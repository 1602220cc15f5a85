/**
 * The page of `npm run bench:webgpu` (bundled by esbuild, run in Chromium by
 * bench/webgpu/run.ts): for each rule and size of /config.json, one step of our
 * GPUOptimizer over a GPUParamStore, a copy kernel that moves the same bytes (the
 * device's streaming bound for that traffic) and, where it has the rule, TF.js's own
 * optimizer on its webgpu backend, in interleaved rounds, so that the three see the same
 * noise. A sample is `steps` steps submitted back to back, then waited for (the queue's
 * onSubmittedWorkDone for ours and the bound, a one-element read of the variable for
 * TF.js, whose commands are batched and submitted by TF.js): nothing else is read back.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { GPUOptimizer, GPUParamStore, GPU_KERNELS } from 'nesterov/webgpu';
import { BENCH_RULES, bytesPerElement, type BenchRule } from '../rules.ts';
import { tfjsOptimizer } from '../tfjs-optimizers.ts';
import type { BenchConfig, BenchReport, BenchRow } from './shape.ts';

/** Workgroup size and the most workgroups per dimension of one dispatch (as src/webgpu/kernel.ts). */
const WORKGROUP = 64;
const MAX_GROUPS = 65535;

function grid(n: number): { x: number; y: number; stride: number } {
  const groups = Math.max(1, Math.ceil(n / WORKGROUP));
  const x = Math.min(groups, MAX_GROUPS);
  return { x, y: Math.ceil(groups / x), stride: x * WORKGROUP };
}

/** Deterministic numbers in [-scale, scale) (mulberry32). */
function numbers(count: number, seed: number, scale: number): Float32Array<ArrayBuffer> {
  let a = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One timed thing: `run(steps)` submits that many steps and resolves when they are done. */
interface Timed {
  readonly impl: BenchRow['impl'];
  run(steps: number): Promise<void>;
  destroy(): void;
}

/**
 * The copy kernel of a rule's traffic: reads `reads` arrays and writes `writes` of them
 * (the rule's arrays, as its kernel layout names them: p, g and its state), one float
 * each per element, their sum written so that no read can be dropped. The same bytes as
 * one step, no arithmetic to speak of: the fastest any one-pass step can be.
 */
function boundKernel(device: GPUDevice, rule: BenchRule, n: number): Timed {
  const names = [...new Set([...rule.reads, ...rule.writes])];
  const buffers = names.map((name, k) => {
    const buffer = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(buffer, 0, numbers(n, 11 + k, 0.01));
    return { name, buffer };
  });
  const ident = (k: number): string => `a${k}`;
  const bindings = names.map((_, k) => `@group(0) @binding(${k + 1}) var<storage, read_write> ${ident(k)}: array<f32>;`).join('\n');
  const sum = rule.reads.map((name) => `${ident(names.indexOf(name))}[i]`).join(' + ');
  const stores = rule.writes.map((name, k) => `${ident(names.indexOf(name))}[i] = x${k === 0 ? '' : ` + ${k}.0`};`).join('\n  ');
  const code = `struct S { n: u32, stride: u32 }
@group(0) @binding(0) var<uniform> s: S;
${bindings}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.y * s.stride + id.x;
  if (i >= s.n) { return; }
  let x = ${sum};
  ${stores}
}`;
  const { x, y, stride } = grid(n);
  const uniforms = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(uniforms, 0, new Uint32Array([n, stride, 0, 0]));
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: uniforms } }, ...buffers.map(({ buffer }, k) => ({ binding: k + 1, resource: { buffer } }))],
  });
  return {
    impl: 'bound',
    async run(steps) {
      for (let s = 0; s < steps; s++) {
        // One submit per step, as GPUOptimizer.update does.
        const encoder = device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(x, y);
        pass.end();
        device.queue.submit([encoder.finish()]);
      }
      await device.queue.onSubmittedWorkDone();
    },
    destroy() {
      for (const { buffer } of buffers) buffer.destroy();
      uniforms.destroy();
    },
  };
}

/** Ours: the rule with its defaults, nonFinite 'error' (the default: the scan pass included) or 'ignore'. */
function ours(device: GPUDevice, rule: BenchRule, n: number, nonFinite: BenchConfig['nonFinite']): Timed {
  const store = new GPUParamStore(device, { p: n });
  store.write('p', numbers(n, 1, 1));
  store.writeGrad('p', numbers(n, 2, 0.01));
  const opt = new GPUOptimizer(rule.make('js', nonFinite) as never, store);
  return {
    impl: 'ours',
    async run(steps) {
      for (let s = 0; s < steps; s++) opt.update();
      await device.queue.onSubmittedWorkDone();
    },
    destroy() {
      opt.destroy();
      store.destroy();
    },
  };
}

function tfjs(rule: BenchRule, n: number): Timed | undefined {
  const optimizer = tfjsOptimizer(rule);
  if (optimizer === undefined) return undefined;
  const variable = tf.variable(tf.tensor1d(numbers(n, 1, 1)), true, `p${rule.id}${n}`);
  const grad = tf.tensor1d(numbers(n, 2, 0.01));
  return {
    impl: 'tfjs',
    async run(steps) {
      for (let s = 0; s < steps; s++) optimizer.applyGradients({ [variable.name]: grad });
      // TF.js batches its commands: reading one element submits them and waits for them.
      const probe = variable.slice(0, 1);
      await probe.data();
      probe.dispose();
    },
    destroy() {
      optimizer.dispose();
      variable.dispose();
      grad.dispose();
    },
  };
}

async function main(): Promise<BenchReport> {
  const config = (await (await fetch('/config.json')).json()) as BenchConfig;
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) throw new Error(`no WebGPU adapter (navigator.gpu ${navigator.gpu === undefined ? 'undefined' : 'present'})`);
  // adapter.info (newer than the WebGPU typings here): vendor, architecture, device, description.
  const info = (adapter as GPUAdapter & { readonly info?: Record<'vendor' | 'architecture' | 'device' | 'description', string> }).info ?? { vendor: '', architecture: '', device: '', description: '' };
  const adapterName = [info.vendor, info.architecture, info.device, info.description].filter((part) => part !== '').join(' ') || 'unknown';
  const device = await adapter.requestDevice({
    requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize },
  });
  device.pushErrorScope('validation');
  if (config.tfjs) {
    if (!(await tf.setBackend('webgpu'))) throw new Error("tf.setBackend('webgpu') returned false");
    await tf.ready();
  }
  const rows: BenchRow[] = [];
  for (const id of config.rules) {
    const rule = BENCH_RULES.find((r) => r.id === id)!;
    if (GPU_KERNELS[id] === undefined) throw new Error(`${id} has no GPU kernel`);
    for (const n of config.sizes) {
      const timed: Timed[] = [ours(device, rule, n, config.nonFinite), boundKernel(device, rule, n)];
      const peer = config.tfjs ? tfjs(rule, n) : undefined;
      if (peer !== undefined) timed.push(peer);
      // Steps per sample: enough that the wait at its end is a small part of it.
      const steps = Math.max(2, Math.min(50, Math.round(2e7 / n)));
      const times: number[][] = timed.map(() => []);
      for (const t of timed) await t.run(steps); // warm-up: pipelines compiled, buffers touched
      for (let round = 0; round < config.rounds; round++) {
        for (const [k, t] of timed.entries()) {
          const start = performance.now();
          await t.run(steps);
          times[k]!.push(((performance.now() - start) * 1e6) / steps / n);
        }
      }
      for (const [k, t] of timed.entries()) {
        const nsPerElement = median(times[k]!);
        rows.push({ rule: id, size: n, impl: t.impl, nsPerElement, gbPerSecond: bytesPerElement(rule) / nsPerElement });
        t.destroy();
      }
      console.log(`progress ${JSON.stringify(rows.slice(-timed.length))}`);
    }
  }
  const invalid = await device.popErrorScope();
  if (invalid !== null) throw new Error(`GPU validation: ${invalid.message}`);
  device.destroy();
  return { adapter: adapterName, rows };
}

main().then(
  (result) => console.log(`result ${JSON.stringify(result)}`),
  (error: unknown) => console.log(`result ${JSON.stringify({ failed: String((error as Error).stack ?? error) })}`),
);
