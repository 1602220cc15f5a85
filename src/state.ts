/**
 * Saved optimizer state: a versioned record, its validation (state/records.ts), and two
 * encodings (state/json.ts, state/safetensors.ts) under one checksum (state/checksum.ts).
 *
 * `optimizer.stateDict()` returns an `OptimizerStateDict` holding copies of the
 * buffers as typed arrays (structured-clone safe). `stateToJSON` / `stateFromJSON`
 * make it a JSON string with the buffers as base64 of their little-endian bytes, so
 * NaN, Infinity and every bit of a double survive. `encodeState` / `decodeState` use
 * the safetensors layout (8-byte little-endian header length, JSON header, raw
 * tensor bytes), so other tools can read the buffers; the rest of the record sits
 * in the header's `__metadata__`.
 *
 * Both encodings carry a CRC-32 (the IEEE 802.3 / zlib one) of their content, so a
 * flipped bit or a swapped character is refused instead of resuming a training from
 * a silently different state. CRC-32 rather than a cryptographic hash: it must be
 * computed synchronously in any JS runtime (the platform's SHA-256 is async in
 * browsers), it detects every error burst up to 32 bits and misses a random
 * corruption with probability 2^-32. It is not a defence against deliberate edits.
 *
 * A wrapper's state (a partition's, a Lookahead's) is a tree: a partition's dict holds
 * its members' dicts by key, a Lookahead's its slow weights and its inner optimizer's
 * dict. Both encodings write the tree as it is, every node with its own format tag, under
 * the one checksum of the file; a node is validated as a single optimizer's dict is, and
 * the nesting is bounded (MAX_STATE_DEPTH), so a hostile file cannot exhaust the stack.
 * A single optimizer's file is a tree of one node: the format of 0.1.0, unchanged.
 *
 * The wrappers that keep one array per parameter beside an inner optimizer (EMA, SWA,
 * GradientAccumulation, and any later one) share one generic node, WRAPPER_STATE_FORMAT:
 * the wrapper's name, its options and counters (numbers), its arrays and counts by
 * parameter name, and its inner optimizer's node. This module checks the node's shape; what the numbers
 * must be for a given wrapper is that wrapper's loadStateDict's to check, as for every node.
 *
 * Parameter names are arbitrary strings ('__proto__', 'constructor' included): every
 * record keyed by names that this module builds has a null prototype.
 */
export {
  MAX_STATE_DEPTH,
  STATE_FORMAT,
  STATE_VERSION,
  WRAPPER_STATE_FORMAT,
  WRAPPER_STATE_VERSION,
  checkSavedState,
  checkStateDict,
  paramsOfSavedState,
  type OptimizerStateDict,
  type ParamStateRecord,
  type SavedState,
  type WrapperStateDict,
} from './state/records.ts';
export { crc32 } from './state/checksum.ts';
export { stateFromJSON, stateToJSON } from './state/json.ts';
export { decodeState, encodeState, readSafetensorsHeader } from './state/safetensors.ts';
