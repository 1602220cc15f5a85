/**
 * Issue 10 item 8 (state files): both encodings carry a CRC-32 of their content, and a
 * single flipped bit anywhere, or two swapped base64 characters, is refused with a
 * StateError. The CRC-32 is checked against its published check values and against
 * node:zlib; where the checksum sits is checked from the bytes, as a reader of the
 * format would find it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { Adam, decodeState, encodeState, NAdam, STATE_VERSION, stateFromJSON, stateToJSON, StateError } from 'nesterov';
import { crc32 } from '../src/state.ts';
import { assertSameState, crcWithout, joinSafetensors, metadataRecord, resealText, splitSafetensors, withMetadataRecord } from './state-helpers.ts';

const utf8 = (text: string) => new TextEncoder().encode(text);

function refusedWith(run: () => unknown, message: string): void {
  assert.throws(run, (error: Error) => {
    assert.ok(error instanceof StateError, `a StateError, got ${error.name}: ${error.message}`);
    assert.equal(error.message, message);
    return true;
  });
}

function small() {
  const opt = new Adam({ lr: 0.01 });
  opt.update({ w: new Float64Array([1, -2]) }, { w: new Float64Array([0.5, 0.25]) });
  return opt.stateDict();
}

describe('CRC-32 (IEEE 802.3 / zlib)', () => {
  it('gives the published check values', () => {
    assert.equal(crc32(utf8('123456789')), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0)), 0);
    assert.equal(crc32(utf8('The quick brown fox jumps over the lazy dog')), 0x414fa339);
    assert.equal(crc32(new Uint8Array(32)), 0x190a55ad); // 32 zero bytes (as Python's zlib.crc32 gives)
  });

  it('equals node:zlib crc32 for every length 0..40 and for 100,000 bytes, and continues like it', () => {
    const bytes = new Uint8Array(100_000);
    let x = 12345;
    for (let i = 0; i < bytes.length; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      bytes[i] = x >>> 24;
    }
    for (let n = 0; n <= 40; n++) assert.equal(crc32(bytes.subarray(0, n)), zlibCrc32(bytes.subarray(0, n)), `length ${n}`);
    assert.equal(crc32(bytes), zlibCrc32(bytes));
    assert.equal(crc32(bytes.subarray(777), crc32(bytes.subarray(0, 777))), zlibCrc32(bytes));
  });
});

describe('where the checksum is', () => {
  const state = small();

  it('JSON: the first member "checksum": "crc32:<8 hex>", over the text without its 8 digits', () => {
    const text = stateToJSON(state);
    const lead = '{"checksum":"crc32:';
    assert.ok(text.startsWith(lead), text.slice(0, 40));
    const digits = text.slice(lead.length, lead.length + 8);
    assert.equal(digits, crcWithout(utf8(text), lead.length));
    const parsed = JSON.parse(text) as Record<string, unknown>;
    assert.equal(parsed.checksum, `crc32:${digits}`);
    assert.equal(parsed.version, 2);
    assert.equal(STATE_VERSION, 2);
  });

  it('safetensors: __metadata__.checksum, first in the header, over the whole file without its 8 digits', () => {
    const file = encodeState(state);
    const { header } = splitSafetensors(file);
    const metadata = header.__metadata__ as Record<string, string>;
    assert.deepEqual(Object.keys(header)[0], '__metadata__');
    assert.deepEqual(Object.keys(metadata), ['checksum', 'format', 'nesterov']);
    const at = Buffer.from(file).indexOf('"checksum":"crc32:') + '"checksum":"crc32:'.length;
    assert.equal(at, 8 + '{"__metadata__":{"checksum":"crc32:'.length);
    assert.equal(metadata.checksum, `crc32:${crcWithout(file, at)}`);
  });
});

describe('a single flipped bit, anywhere, is refused', () => {
  const state = small();
  const text = stateToJSON(state);
  const file = encodeState(state);

  it(`every one of the ${utf8(text).length * 8} bit flips of a JSON text`, () => {
    const bytes = utf8(text);
    let refused = 0;
    for (let i = 0; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const flipped = bytes.slice();
        flipped[i]! ^= 1 << bit;
        try {
          stateFromJSON(new TextDecoder().decode(flipped));
          assert.fail(`byte ${i} bit ${bit} (${JSON.stringify(text[i])}) was accepted`);
        } catch (error) {
          assert.ok(error instanceof StateError, `byte ${i} bit ${bit}: ${(error as Error).name}: ${(error as Error).message}`);
          refused++;
        }
      }
    }
    assert.equal(refused, bytes.length * 8);
  });

  it(`every one of the ${file.length * 8} bit flips of a safetensors file`, () => {
    let refused = 0;
    for (let i = 0; i < file.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const flipped = file.slice();
        flipped[i]! ^= 1 << bit;
        try {
          decodeState(flipped);
          assert.fail(`byte ${i} bit ${bit} was accepted`);
        } catch (error) {
          assert.ok(error instanceof StateError, `byte ${i} bit ${bit}: ${(error as Error).name}: ${(error as Error).message}`);
          refused++;
        }
      }
    }
    assert.equal(refused, file.length * 8);
  });

  it('a flipped bit in a tensor says checksum mismatch, with both checksums', () => {
    const flipped = file.slice();
    flipped[flipped.length - 1]! ^= 0x01;
    const at = 8 + '{"__metadata__":{"checksum":"crc32:'.length;
    const written = Buffer.from(file.subarray(at, at + 8)).toString('latin1');
    refusedWith(
      () => decodeState(flipped),
      `invalid optimizer state: checksum mismatch: the file says crc32:${written}, its content has crc32:${crcWithout(flipped, at)}: the file is corrupt (or was edited)`,
    );
  });

  it('two swapped base64 characters are refused, with both checksums', () => {
    const parsed = JSON.parse(text) as { params: { w: { buffers: { expAvg: string } } } };
    const base64 = parsed.params.w.buffers.expAvg;
    const k = [...base64].findIndex((c, i) => i > 0 && c !== base64[i - 1]);
    const swapped = base64.slice(0, k - 1) + base64[k] + base64[k - 1] + base64.slice(k + 1);
    assert.notEqual(swapped, base64);
    const corrupt = text.replace(base64, swapped);
    const lead = '{"checksum":"crc32:';
    refusedWith(
      () => stateFromJSON(corrupt),
      `invalid optimizer state: checksum mismatch: the text says crc32:${text.slice(lead.length, lead.length + 8)}, its content has crc32:${crcWithout(utf8(corrupt), lead.length)}: the text is corrupt (or was edited)`,
    );
  });

  it('an edited number is refused (the checksum covers the whole record, not only the buffers)', () => {
    const edited = text.replace('"stepCount":1', '"stepCount":2');
    assert.notEqual(edited, text);
    assert.throws(() => stateFromJSON(edited), (error: Error) => error instanceof StateError && /^invalid optimizer state: checksum mismatch: /.test(error.message));
  });

  it('checksum digits in upper case are refused (the writer writes lower case)', () => {
    const lead = '{"checksum":"crc32:';
    const upper = lead + text.slice(lead.length, lead.length + 8).toUpperCase() + text.slice(lead.length + 8);
    if (upper === text) return; // all eight digits were 0-9: nothing to test for this state
    refusedWith(() => stateFromJSON(upper), `invalid optimizer state: the checksum of the text is "crc32:${upper.slice(lead.length, lead.length + 8)}", expected crc32: and 8 lowercase hex digits: the text is corrupt`);
  });
});

describe('files without a checksum', () => {
  const state = small();

  it('version 1 JSON (pre-release, no checksum) is refused, saying so', () => {
    const record = JSON.parse(stateToJSON(state)) as Record<string, unknown>;
    delete record.checksum;
    record.version = 1;
    refusedWith(
      () => stateFromJSON(JSON.stringify(record)),
      'invalid optimizer state: version 1 (a pre-release format without a checksum) is not supported: this library reads version 2',
    );
  });

  it('version 1 safetensors (pre-release, no checksum) is refused, saying so', () => {
    const { header, data } = splitSafetensors(encodeState(state));
    const record = metadataRecord(header);
    record.version = 1;
    const metadata = { ...(header.__metadata__ as Record<string, string>) };
    delete (metadata as Partial<typeof metadata>).checksum;
    const unchecked = withMetadataRecord({ ...header, __metadata__: metadata }, record);
    refusedWith(
      () => decodeState(joinSafetensors(unchecked, data)),
      'invalid optimizer state: version 1 (a pre-release format without a checksum) is not supported: this library reads version 2',
    );
  });

  it('a version 2 JSON text without the checksum is refused', () => {
    const record = JSON.parse(stateToJSON(state)) as Record<string, unknown>;
    delete record.checksum;
    refusedWith(() => stateFromJSON(JSON.stringify(record)), 'invalid optimizer state: the text has no checksum: not written by stateToJSON');
  });

  it('a checksum moved from the first member is refused', () => {
    const record = JSON.parse(stateToJSON(state)) as Record<string, unknown>;
    const { checksum, ...rest } = record;
    refusedWith(
      () => stateFromJSON(JSON.stringify({ ...rest, checksum })),
      `invalid optimizer state: the checksum "${checksum as string}" is not the first member, where stateToJSON writes it`,
    );
  });

  it('a safetensors file without the checksum is refused', () => {
    const { header, data } = splitSafetensors(encodeState(state));
    const metadata = { ...(header.__metadata__ as Record<string, string>) };
    delete (metadata as Partial<typeof metadata>).checksum;
    refusedWith(
      () => decodeState(joinSafetensors({ ...header, __metadata__: metadata }, data)),
      'invalid optimizer state: the safetensors header has no checksum where encodeState writes it (first in __metadata__)',
    );
  });
});

describe('what the checksum does not cover', () => {
  it('a byte order mark, leading and trailing whitespace around the JSON text are not content', () => {
    const opt = new NAdam({ nonFinite: 'ignore' });
    opt.update({ w: new Float64Array([1, 2]) }, { w: new Float64Array([NaN, Infinity]) });
    const text = stateToJSON(opt.stateDict());
    for (const wrapped of [`\uFEFF${text}`, `\n${text}\n`, ` \t\r\n${text} \r\n\t`, `\uFEFF\n${text}\n`]) {
      assertSameState(stateFromJSON(wrapped), opt.stateDict());
    }
  });

  it('a re-sealed text with other content decodes to that content (the checksum is the only guard, and it is exact)', () => {
    const text = stateToJSON(small());
    const edited = resealText(text.replace('"stepCount":1', '"stepCount":2'));
    assert.equal(stateFromJSON(edited).stepCount, 2);
  });
});
