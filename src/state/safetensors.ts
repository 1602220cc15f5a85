/**
 * safetensors layout
 *
 * [8-byte LE header length N][N bytes: JSON header, then spaces to align the data to 8]
 * [data]. The header starts `{"__metadata__":{"checksum":"crc32:XXXXXXXX",...`: the
 * checksum covers every byte of the file (length, header, padding, data) except its
 * own 8 hex digits, which sit at a fixed offset.
 */
import { describeValue } from '../errors.ts';
import { dtypeOf, type Dtype } from '../types.ts';
import { LOOKAHEAD, type OptimizerStateDict, PARTITION, STATE_FORMAT, type SavedState, WRAPPER, checkSavedState, fail, isCount, isRecord, nameRecord } from './records.ts';
import { CHECKSUM_DIGITS, checkChecksum, crcWithout, hex8 } from './checksum.ts';
import { arrayFromBytes, bytesOf } from './bytes.ts';
import { refuseVersion1, stateFromRecord, treeMetadata } from './metadata.ts';
import { CHECKSUM_PATTERN } from './json.ts';


const SAFETENSORS_DTYPE: Record<Dtype, string> = { float32: 'F32', float64: 'F64' };
const SAFETENSORS_SIZE: { [dtype: string]: number } = { F32: 4, F64: 8 };
const SAFETENSORS_CHECKSUM_LEAD = '{"__metadata__":{"checksum":"crc32:';
const SAFETENSORS_DIGITS_AT = 8 + SAFETENSORS_CHECKSUM_LEAD.length;
const SPACE = 0x20;

/**
 * The state in the safetensors layout: tensors named `<param>/<buffer>`, the record
 * (with tensor names in place of buffers) as JSON text in `__metadata__.nesterov`.
 */
export function encodeState(state: SavedState): Uint8Array {
  checkSavedState(state);
  const tensors = nameRecord<unknown>();
  const owners = new Map<string, string>();
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const meta = treeMetadata(state, '', '', (tensor, owner, array) => {
    const other = owners.get(tensor);
    if (other !== undefined) {
      fail(`${other} and ${owner} would both be stored as tensor '${tensor}' ${state.format === STATE_FORMAT ? '(names <param>/<buffer> must differ)' : '(tensor names, paths of member keys, parameter and buffer names, must differ)'}`);
    }
    owners.set(tensor, owner);
    const bytes = bytesOf(array);
    tensors[tensor] = { dtype: SAFETENSORS_DTYPE[dtypeOf(array)], shape: [array.length], data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
    return tensor;
  });
  const metadata = { checksum: `crc32:${'0'.repeat(CHECKSUM_DIGITS)}`, format: state.format, nesterov: JSON.stringify(meta) };
  const json = new TextEncoder().encode(JSON.stringify({ __metadata__: metadata, ...tensors }));
  const headerBytes = new Uint8Array(Math.ceil((8 + json.byteLength) / 8) * 8 - 8).fill(SPACE); // spaces align the data to 8 bytes
  headerBytes.set(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let position = 8 + headerBytes.byteLength;
  for (const chunk of chunks) {
    out.set(chunk, position);
    position += chunk.byteLength;
  }
  out.set(new TextEncoder().encode(hex8(crcWithout(out, SAFETENSORS_DIGITS_AT))), SAFETENSORS_DIGITS_AT);
  return out;
}

interface TensorEntry {
  name: string;
  dtype: string;
  begin: number;
  end: number;
}

interface SafetensorsHeader {
  /** Where the data starts: 8 + the header length. */
  dataStart: number;
  header: { [key: string]: unknown };
  tensors: TensorEntry[];
  /** The data length the tensors declare (the largest end offset). */
  dataLength: number;
}

/**
 * Parses the header of a safetensors file from its first `8 + N` bytes (more may
 * follow): the JSON, its space padding, and each tensor's dtype, shape and offsets.
 * The padding must be the one encodeState (and the safetensors reference writer)
 * writes: 0 to 7 spaces, so that the data starts at a multiple of 8. That makes the
 * header length a function of the JSON, so a header length off by any amount is
 * refused by the layout alone, even without the checksum.
 * `fileLength` is the whole file's length, for the header-length check.
 */
export function readSafetensorsHeader(bytes: Uint8Array, fileLength = bytes.byteLength): SafetensorsHeader {
  if (fileLength < 8) fail(`${fileLength} bytes is too short for a safetensors header`);
  const declared = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(fileLength - 8)) fail(`header length ${declared} runs past the end of the ${fileLength} bytes`);
  const dataStart = 8 + Number(declared);
  if (dataStart > bytes.byteLength) fail(`header length ${declared} runs past the ${bytes.byteLength} bytes read`);
  let jsonEnd = dataStart;
  while (jsonEnd > 8 && bytes[jsonEnd - 1] === SPACE) jsonEnd--;
  if (jsonEnd === 8) fail(`the safetensors header (bytes 8..${dataStart}) is ${dataStart === 8 ? 'empty' : 'only spaces'}`);
  if (bytes[8] !== 0x7b || bytes[jsonEnd - 1] !== 0x7d) {
    const at = bytes[8] !== 0x7b ? 8 : jsonEnd - 1;
    fail(
      `the safetensors header (bytes 8..${dataStart}) must be a JSON object followed by spaces only; ` +
        `byte ${at} is 0x${bytes[at]!.toString(16).padStart(2, '0')}`,
    );
  }
  const aligned = Math.ceil(jsonEnd / 8) * 8;
  if (dataStart !== aligned) {
    fail(`the data starts at byte ${dataStart}, expected ${aligned}: the first multiple of 8 after the header's JSON (bytes 8..${jsonEnd}), as encodeState and the safetensors writer pad it`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, jsonEnd)));
  } catch (error) {
    fail(`the safetensors header is not JSON (${(error as Error).message})`);
  }
  if (!isRecord(header)) fail('the safetensors header is not a JSON object');
  const tensors: TensorEntry[] = [];
  let dataLength = 0;
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const what = `tensor '${name}'`;
    if (!isRecord(info)) fail(`${what} is ${describeValue(info)}, expected {dtype, shape, data_offsets}`);
    const size = typeof info.dtype === 'string' ? SAFETENSORS_SIZE[info.dtype] : undefined;
    if (size === undefined) fail(`${what} has dtype ${describeValue(info.dtype)}, expected F32 or F64`);
    // one dimension, as encodeState writes every buffer
    if (!Array.isArray(info.shape) || info.shape.length !== 1 || !isCount(info.shape[0])) fail(`${what} has shape ${JSON.stringify(info.shape) ?? 'undefined'}, expected [length]`);
    const offsets: unknown = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !isCount(offsets[0]) || !isCount(offsets[1]) || offsets[0] > offsets[1]) {
      fail(`${what} has data_offsets ${JSON.stringify(offsets) ?? 'undefined'}, expected [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    const elements = (info.shape as number[]).reduce((product, n) => product * n, 1);
    if (!Number.isSafeInteger(elements * size) || elements * size !== end - begin) {
      fail(`${what} has shape [${(info.shape as number[]).join(', ')}] of ${info.dtype} (${elements * size} bytes) but data offsets ${begin}..${end} (${end - begin} bytes)`);
    }
    tensors.push({ name, dtype: info.dtype as string, begin, end });
    dataLength = Math.max(dataLength, end);
  }
  return { dataStart, header, tensors, dataLength };
}

/**
 * Requires the tensors to tile the data exactly: sorted by offset, the first begins
 * at 0, each begins where the previous one ends, the last ends at the end of the
 * data; so no gap, no overlap, no two tensors on one range, no trailing bytes.
 */
function checkTiling(tensors: TensorEntry[], dataLength: number): void {
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let position = 0;
  let previous: TensorEntry | undefined;
  for (const tensor of sorted) {
    const range = `tensor '${tensor.name}' (data bytes ${tensor.begin}..${tensor.end})`;
    if (tensor.begin < position) fail(`${range} overlaps tensor '${previous!.name}' (data bytes ${previous!.begin}..${previous!.end})`);
    if (tensor.begin > position) fail(`no tensor covers data bytes ${position}..${tensor.begin}, before ${range}`);
    if (tensor.end > dataLength) fail(`${range} ends past the ${dataLength} data bytes`);
    position = tensor.end;
    previous = tensor;
  }
  if (position !== dataLength) fail(`the tensors cover data bytes 0..${position} but the data has ${dataLength} bytes (${dataLength - position} trailing)`);
}

/**
 * Reads and validates what `encodeState` wrote: checksum, exact layout, then the record.
 * The type parameter is the state the caller expects, as for stateFromJSON.
 */
export function decodeState<S extends SavedState = OptimizerStateDict>(bytes: Uint8Array): S {
  if (!(bytes instanceof Uint8Array)) fail(`expected a Uint8Array, got ${describeValue(bytes)}`);
  if (bytes.byteLength < 8) fail(`${bytes.byteLength} bytes is too short for a safetensors header`);
  const declared = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(bytes.byteLength - 8)) fail(`header length ${declared} runs past the end of the ${bytes.byteLength} bytes`);
  const lead = new TextEncoder().encode(SAFETENSORS_CHECKSUM_LEAD);
  const hasChecksum = Number(declared) >= lead.length + CHECKSUM_DIGITS && lead.every((b, i) => bytes[8 + i] === b);
  if (hasChecksum) checkChecksum(bytes, SAFETENSORS_DIGITS_AT, 'file');
  const { dataStart, header, tensors } = readSafetensorsHeader(bytes);
  const metadata = header.__metadata__;
  if (!isRecord(metadata) || typeof metadata.nesterov !== 'string') fail('the safetensors header has no nesterov metadata: not an optimizer state file');
  let meta: unknown;
  try {
    meta = JSON.parse(metadata.nesterov);
  } catch (error) {
    fail(`the nesterov metadata is not JSON (${(error as Error).message})`);
  }
  refuseVersion1(meta);
  if (!hasChecksum) fail('the safetensors header has no checksum where encodeState writes it (first in __metadata__)');
  if (typeof metadata.checksum !== 'string' || !CHECKSUM_PATTERN.test(metadata.checksum)) {
    fail(`__metadata__.checksum is ${describeValue(metadata.checksum)}, expected crc32: and 8 lowercase hex digits`);
  }
  // The root's format, repeated where other tools look (a single optimizer's: STATE_FORMAT).
  const rootFormat = isRecord(meta) && (meta.format === PARTITION || meta.format === LOOKAHEAD || meta.format === WRAPPER) ? meta.format : STATE_FORMAT;
  if (metadata.format !== rootFormat) fail(`__metadata__.format is ${describeValue(metadata.format)}, expected "${rootFormat}"`);
  checkTiling(tensors, bytes.byteLength - dataStart);

  const byName = new Map(tensors.map((tensor) => [tensor.name, tensor]));
  const usedBy = new Map<string, string>();
  const state = stateFromRecord(meta, (where, dtype, tensorName) => {
    if (typeof tensorName !== 'string') fail(`${where} is ${describeValue(tensorName)}, expected a tensor name`);
    const tensor = byName.get(tensorName);
    if (tensor === undefined) fail(`${where}: tensor '${tensorName}' is missing from the header`);
    const other = usedBy.get(tensorName);
    if (other !== undefined) fail(`tensor '${tensorName}' is used by both ${other} and ${where}`);
    usedBy.set(tensorName, where);
    if (tensor.dtype !== SAFETENSORS_DTYPE[dtype]) fail(`${where}: tensor '${tensorName}' has dtype ${describeValue(tensor.dtype)}, expected ${SAFETENSORS_DTYPE[dtype]}`);
    return arrayFromBytes(dtype, bytes.subarray(dataStart + tensor.begin, dataStart + tensor.end), where);
  });
  for (const tensor of tensors) {
    if (!usedBy.has(tensor.name)) fail(`tensor '${tensor.name}' (data bytes ${tensor.begin}..${tensor.end}) is used by no buffer of the metadata`);
  }
  return state as S;
}
