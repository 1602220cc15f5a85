/**
 * Property-based: `setWeights` of a TfOptimizer and a TfPartition, plain or with wrappers
 * (EMA, SWA, GradientAccumulation, Lookahead), given a corrupted copy of `getWeights()`
 * (fast-check, fixed seed). Every outcome is one of two: refused with
 * an Error, the optimizer's exported weights and iterations exactly as before; or
 * accepted, and the optimizer then exports exactly what it was given (nothing converted
 * or changed silently). Never a crash of another kind, never a half-loaded state.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Adam, AdamW, EMA, GradientAccumulation, Lookahead, Muon, SWA, partition, type AnyOptimizer, type Partition } from 'nesterov';
import { tfOptimizer, type NamedTensor, type TfMembers, type TfWrappable } from 'nesterov/tfjs';
import { batches, exportedBits, lossFn, smallModel, tf, useBackend } from './tfjs-helpers.ts';

/** One corruption of a list of weights: which weight, and what is done to it. */
type Mutation =
  | { kind: 'drop'; at: number }
  | { kind: 'rename'; at: number; name: string }
  | { kind: 'dtype'; at: number; dtype: 'int32' | 'bool' | 'string' }
  | { kind: 'shape'; at: number; extra: number }
  | { kind: 'value'; at: number; index: number; value: number }
  | { kind: 'text'; at: number; index: number; char: string }
  | { kind: 'duplicate'; at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat(40) }),
  fc.record({ kind: fc.constant('rename' as const), at: fc.nat(40), name: fc.constantFrom('__proto__', 'iter', 'x', 'nesterov/state', '') }),
  fc.record({ kind: fc.constant('dtype' as const), at: fc.nat(40), dtype: fc.constantFrom('int32' as const, 'bool' as const, 'string' as const) }),
  fc.record({ kind: fc.constant('shape' as const), at: fc.nat(40), extra: fc.integer({ min: -1, max: 2 }) }),
  fc.record({ kind: fc.constant('value' as const), at: fc.nat(40), index: fc.nat(64), value: fc.constantFrom(NaN, Infinity, -Infinity, -1, 0.5, 1e30, 2 ** 31) }),
  fc.record({ kind: fc.constant('text' as const), at: fc.nat(40), index: fc.nat(400), char: fc.constantFrom('"', '{', '1', 'x', '-', ']') }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(40) }),
);

/** The weights with one mutation applied (new tensors; the caller disposes the list's own). */
function mutate(saved: readonly NamedTensor[], m: Mutation): NamedTensor[] {
  const at = m.at % saved.length;
  const target = saved[at]!;
  const out = saved.slice();
  switch (m.kind) {
    case 'drop':
      out.splice(at, 1);
      return out;
    case 'duplicate':
      out.push({ name: target.name, tensor: target.tensor.clone() });
      return out;
    case 'rename':
      out[at] = { name: m.name, tensor: target.tensor.clone() };
      return out;
    case 'dtype': {
      if (target.tensor.dtype === 'string') return out;
      const values = Array.from(target.tensor.dataSync() as Float32Array);
      out[at] = { name: target.name, tensor: m.dtype === 'string' ? tf.tensor(values.map(String), target.tensor.shape, 'string') : tf.tensor(values, target.tensor.shape, m.dtype) };
      return out;
    }
    case 'shape': {
      const size = Math.max(0, target.tensor.size + m.extra);
      const values = target.tensor.dtype === 'string' ? Array.from({ length: size }, () => '') : Array.from({ length: size }, (_, i) => i / 7);
      out[at] = { name: target.name, tensor: tf.tensor(values, [size], target.tensor.dtype) };
      return out;
    }
    case 'value': {
      if (target.tensor.dtype === 'string') return out;
      const values = Array.from(target.tensor.dataSync() as Float32Array);
      if (values.length === 0) return out;
      values[m.index % values.length] = m.value;
      out[at] = { name: target.name, tensor: tf.tensor(values, target.tensor.shape, target.tensor.dtype) };
      return out;
    }
    case 'text': {
      if (target.tensor.dtype !== 'string') return out;
      const text = String(target.tensor.dataSync()[0]);
      const i = m.index % Math.max(1, text.length);
      out[at] = { name: target.name, tensor: tf.scalar(text.slice(0, i) + m.char + text.slice(i + 1), 'string') };
      return out;
    }
  }
}

/** The bits a list of weights holds, as exportedBits reads an optimizer's. */
async function bitsOf(weights: readonly NamedTensor[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const w of weights) {
    const data = await w.tensor.data();
    out.set(w.name, w.tensor.dtype === 'string' ? String(data[0]) : Buffer.from((data as Float32Array).buffer, (data as Float32Array).byteOffset, (data as Float32Array).byteLength).toString('hex'));
  }
  return out;
}

const isKernel = (name: string): boolean => /kernel(_\d+)?$/.test(name);

for (const [kind, make] of [
  ['TfOptimizer (Adam)', () => tfOptimizer(new Adam({ lr: 0.01 }) as unknown as AnyOptimizer)],
  ['TfPartition (Muon + AdamW)', () => tfOptimizer(partition((name) => (isKernel(name) ? 'muon' : 'rest'), { muon: new Muon({ lr: 0.02 }) as TfWrappable, rest: new AdamW({ lr: 0.01 }) as unknown as AnyOptimizer }) as unknown as Partition<TfMembers>)],
  // The wrappers' state rides in the weight 'nesterov/wrappers' beside the base's.
  ['TfOptimizer (EMA around GradientAccumulation of Adam)', () => tfOptimizer(new EMA(new GradientAccumulation(new Adam({ lr: 0.01 }), { steps: 2 }), { decay: 0.9 }))],
  ['TfPartition (SWA of Muon + Lookahead of AdamW)', () => tfOptimizer(partition((name) => (isKernel(name) ? 'muon' : 'rest'), { muon: new SWA(new Muon({ lr: 0.02 })), rest: new Lookahead(new AdamW({ lr: 0.01 }), { k: 2 }) }))],
] as const) {
  describe(`setWeights of ${kind} given corrupted weights`, () => {
    it('refuses and changes nothing, or loads exactly what it was given', async () => {
      await useBackend('cpu');
      const model = smallModel();
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { xs, ys } = batches(3);
      const source = make() as tf.Optimizer;
      source.minimize(lossFn(model, xs, ys, 0), false, vars);
      const saved = await source.getWeights();
      const target = make() as tf.Optimizer;
      for (let step = 0; step < 3; step++) target.minimize(lossFn(model, xs, ys, step), false, vars);
      let refused = 0;
      let accepted = 0;
      await fc.assert(
        fc.asyncProperty(mutationArb, async (m) => {
          const given = mutate(saved, m);
          const before = await exportedBits(target);
          const iterations = target.iterations;
          let error: unknown;
          try {
            await target.setWeights(given);
          } catch (caught) {
            error = caught;
          }
          if (error !== undefined) {
            refused += 1;
            assert.ok(error instanceof Error && !(error instanceof RangeError && /call stack/.test(error.message)), `not an ordinary refusal: ${String(error)}`);
            assert.equal(target.iterations, iterations);
            assert.deepEqual(await exportedBits(target), before, `${JSON.stringify(m)}: refused, but the state changed`);
          } else {
            accepted += 1;
            // Accepted: what it exports now is what it was given, bit for bit (a mutation
            // that changes nothing, such as a different but valid iteration count, is fine).
            const now = await exportedBits(target);
            const expected = await bitsOf(given);
            for (const [name, bits] of now) assert.equal(bits, expected.get(name), `${JSON.stringify(m)}: accepted, but '${name}' differs from what was given`);
            await target.setWeights(saved); // back to a known state for the next case
          }
          for (const w of given) if (!saved.includes(w)) w.tensor.dispose();
        }),
        { seed: 20261206, numRuns: 60 },
      );
      assert.ok(refused > 0 && accepted > 0, `refused ${refused}, accepted ${accepted}: the corruptions should include both kinds`);
      source.dispose();
      target.dispose();
      model.dispose();
      tf.dispose([xs, ys]);
    });
  });
}
