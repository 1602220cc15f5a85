/**
 * clipGradValue against torch 1.13's clip_grad_value_ (test/fixtures/generate_schedules.py),
 * float64 and float32, with NaN, +-inf and -0; and its argument errors.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { clipGradValue, UpdateError } from 'nesterov';

type Encoded = number | 'NaN' | 'Infinity' | '-Infinity' | '-0';
interface ClipCase {
  dtype: 'float32' | 'float64';
  max: number;
  input: Encoded[];
  output: Encoded[];
}

const reference = JSON.parse(readFileSync(fileURLToPath(new URL('./fixtures/reference-schedules.json', import.meta.url)), 'utf8')) as {
  versions: Record<string, string>;
  clipGradValue: ClipCase[];
};
const decode = (v: Encoded): number => (typeof v === 'number' ? v : Number(v));

describe(`clipGradValue = torch ${reference.versions.torch} clip_grad_value_`, () => {
  for (const c of reference.clipGradValue) {
    it(`${c.dtype}, max ${c.max}: every element, in place, bit for bit (NaN stays NaN, -0 stays -0)`, () => {
      const Array_ = c.dtype === 'float64' ? Float64Array : Float32Array;
      const g = Array_.from(c.input.map(decode));
      const copy = Array_.from(g);
      const grads = new Map([['w', g]]);
      clipGradValue(grads, c.max);
      assert.equal(grads.get('w'), g, 'the same array');
      // Object.is: NaN equals NaN and -0 differs from 0.
      c.output.map(decode).forEach((want, i) => assert.ok(Object.is(g[i], c.dtype === 'float32' ? Math.fround(want) : want), `[${i}] ${copy[i]} -> ${g[i]}, torch ${want}`));
    });
  }
  it('clamps every array of an object', () => {
    const grads = { a: new Float64Array([2, -2]), b: new Float32Array([0.25, -9]) };
    clipGradValue(grads, 1);
    assert.deepEqual([...grads.a, ...grads.b], [1, -1, 0.25, -1]);
  });
  it('a bad max names it and the value, and changes nothing', () => {
    for (const max of [0, -1, NaN, Infinity, '1', undefined]) {
      const g = new Float64Array([5, -5]);
      assert.throws(
        () => clipGradValue({ g }, max as never),
        (e: Error) => e instanceof RangeError && e.message.startsWith(`clipGradValue: invalid max: ${typeof max === 'string' ? '"1"' : String(max)} (expected a finite number > 0)`),
      );
      assert.deepEqual([...g], [5, -5]);
    }
  });
  it('a gradient that is not a float array is an UpdateError naming it, before any array is changed', () => {
    const first = new Float64Array([5]);
    assert.throws(
      () => clipGradValue({ first, second: [1, 2] as never }, 1),
      (e: Error) => e instanceof UpdateError && e.param === 'second' && /gradient 'second' must be a Float32Array or Float64Array, got an Array of length 2/.test(e.message),
    );
    assert.equal(first[0], 5);
    assert.throws(() => clipGradValue(null as never, 1), /^TypeError: clipGradValue: grads must be an object or a Map, got null/);
  });
});
