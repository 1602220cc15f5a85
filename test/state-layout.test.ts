/**
 * decodeState requires the tensors to tile the data exactly (no gap,
 * no overlap, no two tensors on one range, no trailing bytes), each tensor's shape to
 * match its byte length, each tensor to be used by exactly one buffer, and the
 * header's padding to be spaces only, as the safetensors format specifies. Every file
 * here carries a correct checksum (re-sealed with node:zlib), so that the structure,
 * not the checksum, is what refuses it.
 *
 * The state: Adam on w (2 float64) and b (1 float64), so the tensors are, in order,
 * w/expAvg at data bytes 0..16, w/expAvgSq 16..32, b/expAvg 32..40, b/expAvgSq 40..48.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, decodeState, encodeState, StateError } from 'nesterov';
import { assertSameState, joinSafetensors, metadataRecord, splitSafetensors, withMetadataRecord } from './state-helpers.ts';

function trained() {
  const opt = new Adam({ lr: 0.01 });
  opt.update({ w: new Float64Array([1, 2]), b: new Float64Array([3]) }, { w: new Float64Array([0.1, 0.2]), b: new Float64Array([0.3]) });
  return opt;
}

const state = trained().stateDict();
const file = encodeState(state);
const { header, headerText, data } = splitSafetensors(file);
const jsonLength = Buffer.byteLength(JSON.stringify(header));
/** The spaces after the JSON that put the data at a multiple of 8 (the safetensors writer's rule). */
const padding = (8 - ((8 + jsonLength) % 8)) % 8;
const dataStart = 8 + jsonLength + padding;

type Tensor = { dtype: string; shape: number[]; data_offsets: [number, number] };
function withTensor(name: string, change: Partial<Tensor> | undefined): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...header };
  if (change === undefined) delete copy[name];
  else copy[name] = { ...(header[name] as Tensor), ...change };
  return copy;
}
const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

function refuses(bytes: Uint8Array, message: string): void {
  assert.throws(
    () => decodeState(bytes),
    (error: Error) => {
      assert.ok(error instanceof StateError, `a StateError, got ${error.name}: ${error.message}`);
      assert.equal(error.message, `invalid optimizer state: ${message}`);
      return true;
    },
  );
}

describe('decodeState requires exact, non-overlapping coverage', () => {
  it('the layout this test assumes is the one written', () => {
    assert.deepEqual(
      Object.entries(header)
        .filter(([key]) => key !== '__metadata__')
        .map(([key, info]) => [key, (info as Tensor).data_offsets]),
      [
        ['w/expAvg', [0, 16]],
        ['w/expAvgSq', [16, 32]],
        ['b/expAvg', [32, 40]],
        ['b/expAvgSq', [40, 48]],
      ],
    );
    assert.equal(data.byteLength, 48);
    // the JSON, then the spaces that align the data to 8 (a file rebuilt from its parts is the same file)
    assert.equal(headerText.length - jsonLength, padding);
    assert.ok(padding >= 1, 'this state has padding, so the next test reads a space as data');
    assertSameState(decodeState(joinSafetensors(header, data)), state);
    assert.deepEqual(joinSafetensors(header, data), file);
  });

  it('refuses a header length one less than written (one padding space read as data: garbage values before)', () => {
    refuses(
      joinSafetensors(header, data, { lengthDelta: -1 }),
      `the data starts at byte ${dataStart - 1}, expected ${dataStart}: the first multiple of 8 after the header's JSON (bytes 8..${8 + jsonLength}), as encodeState and the safetensors writer pad it`,
    );
  });

  it('refuses more padding than aligns the data to 8 (the header length is a function of the JSON)', () => {
    refuses(
      joinSafetensors(header, data, { padding: padding + 8 }),
      `the data starts at byte ${dataStart + 8}, expected ${dataStart}: the first multiple of 8 after the header's JSON (bytes 8..${8 + jsonLength}), as encodeState and the safetensors writer pad it`,
    );
  });

  it('refuses a header length one more than written (the first data byte read as padding)', () => {
    const first = data[0]!;
    refuses(
      joinSafetensors(header, data, { lengthDelta: 1 }),
      `the safetensors header (bytes 8..${dataStart + 1}) must be a JSON object followed by spaces only; byte ${dataStart} is 0x${first.toString(16).padStart(2, '0')}`,
    );
  });

  it('refuses trailing bytes after the last tensor', () => {
    refuses(joinSafetensors(header, concat(data, new Uint8Array(8))), 'the tensors cover data bytes 0..48 but the data has 56 bytes (8 trailing)');
  });

  it('refuses two tensors on one range', () => {
    refuses(
      joinSafetensors(withTensor('b/expAvgSq', { data_offsets: [32, 40] }), data.subarray(0, 40)),
      "tensor 'b/expAvgSq' (data bytes 32..40) overlaps tensor 'b/expAvg' (data bytes 32..40)",
    );
  });

  it('refuses one tensor used by two buffers', () => {
    const record = metadataRecord(header) as { params: Record<string, { buffers: Record<string, string> }> };
    record.params.b!.buffers.expAvgSq = 'b/expAvg';
    refuses(
      joinSafetensors(withMetadataRecord(withTensor('b/expAvgSq', undefined), record), data.subarray(0, 40)),
      "tensor 'b/expAvg' is used by both params['b'].buffers.expAvg and params['b'].buffers.expAvgSq",
    );
  });

  it('refuses overlapping offsets', () => {
    refuses(
      joinSafetensors(withTensor('w/expAvgSq', { data_offsets: [8, 24] }), data),
      "tensor 'w/expAvgSq' (data bytes 8..24) overlaps tensor 'w/expAvg' (data bytes 0..16)",
    );
  });

  it('refuses a gap between tensors', () => {
    refuses(
      joinSafetensors(withTensor('b/expAvgSq', { data_offsets: [48, 56] }), concat(data, new Uint8Array(8))),
      "no tensor covers data bytes 40..48, before tensor 'b/expAvgSq' (data bytes 48..56)",
    );
  });

  it('refuses data before the first tensor', () => {
    const shifted: Record<string, unknown> = { __metadata__: header.__metadata__ };
    for (const [key, info] of Object.entries(header)) {
      if (key === '__metadata__') continue;
      const [begin, end] = (info as Tensor).data_offsets;
      shifted[key] = { ...(info as Tensor), data_offsets: [begin + 8, end + 8] };
    }
    refuses(joinSafetensors(shifted, concat(new Uint8Array(8), data)), "no tensor covers data bytes 0..8, before tensor 'w/expAvg' (data bytes 8..24)");
  });

  it('refuses a shape that disagrees with the byte length', () => {
    refuses(joinSafetensors(withTensor('w/expAvg', { shape: [3] }), data), "tensor 'w/expAvg' has shape [3] of F64 (24 bytes) but data offsets 0..16 (16 bytes)");
  });

  it('refuses a shape of other than one dimension, though its product is right', () => {
    refuses(joinSafetensors(withTensor('w/expAvg', { shape: [1, 2] }), data), "tensor 'w/expAvg' has shape [1,2], expected [length]");
    refuses(joinSafetensors(withTensor('b/expAvg', { shape: [] }), data), "tensor 'b/expAvg' has shape [], expected [length]");
  });

  it('refuses a tensor that no buffer uses', () => {
    const extra = { ...header, extra: { dtype: 'F64', shape: [1], data_offsets: [48, 56] } };
    refuses(joinSafetensors(extra, concat(data, new Uint8Array(8))), "tensor 'extra' (data bytes 48..56) is used by no buffer of the metadata");
  });

  it('refuses padding other than spaces', () => {
    refuses(
      joinSafetensors(header, data, { paddingChar: '\n' }),
      `the safetensors header (bytes 8..${dataStart}) must be a JSON object followed by spaces only; byte ${dataStart - 1} is 0x0a`,
    );
  });

  it('refuses a tensor past the end of the data', () => {
    refuses(joinSafetensors(withTensor('b/expAvgSq', { data_offsets: [40, 56], shape: [2] }), data), "tensor 'b/expAvgSq' (data bytes 40..56) ends past the 48 data bytes");
  });

  it('aligns the data to 8 bytes of UTF-8, not 8 characters, for non-ASCII names (was misaligned)', () => {
    for (const name of ['ü', 'üü', '€', '😀', 'ü€😀x']) {
      const opt = new Adam();
      opt.update({ [name]: new Float32Array([1]) }, { [name]: new Float32Array([1]) });
      const written = encodeState(opt.stateDict());
      const headerBytes = Number(Buffer.from(written).readBigUInt64LE(0));
      assert.equal((8 + headerBytes) % 8, 0, name);
      const parts = splitSafetensors(written);
      assert.equal(parts.data.byteLength, 8, name);
      assert.match(parts.headerText, /^\{.*\} {0,7}$/s, name);
      assertSameState(decodeState(written), opt.stateDict());
    }
  });

  it('refuses a dtype other than F32 and F64, naming the tensor', () => {
    refuses(joinSafetensors(withTensor('w/expAvg', { dtype: 'BF16' }), data), 'tensor \'w/expAvg\' has dtype "BF16", expected F32 or F64');
  });
});
