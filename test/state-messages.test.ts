/**
 * Issue 10 item 18 (the loadStateDict side): a long string is described by its length,
 * not copied into the message; a string where a state dict belongs points to
 * stateFromJSON, and so does the JSON.parse of a stateToJSON text. The optimizer keeps
 * its state.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, checkStateDict, stateToJSON, StateError } from 'nesterov';
import { describeValue } from '../src/errors.ts';
import { assertSameState } from './state-helpers.ts';

function trained() {
  const opt = new Adam({ lr: 0.01 });
  opt.update({ w: new Float64Array([1, 2]) }, { w: new Float64Array([0.1, 0.2]) });
  return opt;
}

function refusedWith(value: unknown, message: string): void {
  const opt = trained();
  const before = opt.stateDict();
  assert.throws(
    () => opt.loadStateDict(value),
    (error: Error) => {
      assert.ok(error instanceof StateError, `a StateError, got ${error.name}`);
      assert.equal(error.message, message);
      return true;
    },
  );
  assertSameState(opt.stateDict(), before);
}

describe('describeValue abbreviates long strings', () => {
  it('a string of 10,485,760 characters is "a string of 10485760 characters"', () => {
    assert.equal(describeValue('x'.repeat(10_485_760)), 'a string of 10485760 characters');
  });

  it('strings up to 200 characters are quoted as before; 201 are described', () => {
    assert.equal(describeValue('abc'), '"abc"');
    assert.equal(describeValue(''), '""');
    assert.equal(describeValue('a'.repeat(200)), `"${'a'.repeat(200)}"`);
    assert.equal(describeValue('a'.repeat(201)), 'a string of 201 characters');
  });
});

describe('loadStateDict of text points to stateFromJSON', () => {
  it('a 10 MB JSON text: the message has its length, not its content', () => {
    const big = new Adam();
    big.update({ w: new Float64Array(786_432) }, { w: new Float64Array(786_432).fill(0.5) });
    const text = stateToJSON(big.stateDict());
    assert.ok(text.length > 10_000_000, `${text.length}`);
    refusedWith(text, `invalid optimizer state: expected an object, got a string of ${text.length} characters: to load the text of stateToJSON, pass stateFromJSON(text)`);
  });

  it('a short string is quoted, with the same pointer', () => {
    refusedWith('{}', 'invalid optimizer state: expected an object, got "{}": to load the text of stateToJSON, pass stateFromJSON(text)');
  });

  it('JSON.parse of a stateToJSON text', () => {
    refusedWith(
      JSON.parse(stateToJSON(trained().stateDict())),
      'invalid optimizer state: this looks like the text of stateToJSON parsed with JSON.parse: decode the text with stateFromJSON(text) instead',
    );
  });

  it('the same without its checksum: the base64 buffer points to stateFromJSON', () => {
    const parsed = JSON.parse(stateToJSON(trained().stateDict())) as { checksum?: string; params: { w: { buffers: { expAvg: string } } } };
    delete parsed.checksum;
    const base64 = parsed.params.w.buffers.expAvg;
    assert.equal(base64, Buffer.from(trained().stateDict().params.w!.buffers.expAvg!.buffer).toString('base64'));
    refusedWith(
      parsed,
      `invalid optimizer state: params['w'].buffers.expAvg is "${base64}", expected a Float64Array: this looks like the text of stateToJSON parsed with JSON.parse: decode the text with stateFromJSON(text) instead`,
    );
  });

  it('checkStateDict says the same', () => {
    assert.throws(() => checkStateDict('x'.repeat(300)), {
      name: 'StateError',
      message: 'invalid optimizer state: expected an object, got a string of 300 characters: to load the text of stateToJSON, pass stateFromJSON(text)',
    });
  });
});
