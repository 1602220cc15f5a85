/**
 * `npm run bench`'s argument validation and its table of rules (bench/rules.ts): the
 * bench itself is not a unit test, but what it accepts, what it refuses (with which
 * message) and the bytes it holds each rule to are.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RULES } from 'nesterov';
import { BENCH_RULES, boundKernelFor, bytesPerElement, parseBenchArgs, trafficLabel } from '../bench/rules.ts';

// Every registered rule with a WebAssembly kernel, in the registry's order (not Muon, a
// matrix iteration; not Adafactor, JS only): a rule added to the registry joins the bench.
const ALL_IDS = RULES.filter((entry) => entry.rule?.kernels !== undefined)
  .map((entry) => entry.key)
  .join(', ');

test('bench args: no flags select the rules a user compares first at 1e5 and 1.6e7; --full the whole matrix', () => {
  const args = parseBenchArgs({});
  assert.deepEqual(
    args.rules.map((r) => r.id),
    ['nesterov', 'adam', 'adamw', 'lion'],
  );
  assert.deepEqual(args.sizes, [100000, 16000000]);
  assert.deepEqual(parseBenchArgs({ quick: true }).sizes, [100000]);
  const full = parseBenchArgs({ full: true });
  assert.deepEqual(
    full.rules.map((r) => r.id),
    ['nesterov', 'adam', 'adamw', 'lion', 'schedulefree-adamw'],
  );
  assert.deepEqual(full.sizes, [1000, 100000, 1000000, 16000000]);
  assert.deepEqual(parseBenchArgs({ full: true, quick: true }).sizes, [1000, 100000, 1000000]);
  // --sizes and --rules choose over either mode.
  assert.deepEqual(parseBenchArgs({ full: true, sizes: '1e4', rules: 'sgd' }).sizes, [10000]);
  assert.deepEqual(parseBenchArgs({ full: true, sizes: '1e4', rules: 'sgd' }).rules.map((r) => r.id), ['sgd']);
});

test('bench args: --rules picks rules in the order given; all picks every one', () => {
  assert.deepEqual(
    parseBenchArgs({ rules: 'schedulefree-adamw,lion' }).rules.map((r) => r.id),
    ['schedulefree-adamw', 'lion'],
  );
  assert.equal(parseBenchArgs({ rules: 'all' }).rules.map((r) => r.id).join(', '), ALL_IDS);
});

test('bench args: --sizes takes exponent notation and refuses what is not an integer from 16 to 2^28', () => {
  assert.deepEqual(parseBenchArgs({ sizes: '1e5,1.6e7,1500' }).sizes, [100000, 16000000, 1500]);
  for (const [sizes, bad] of [
    ['1e5,8', '8'],
    ['1e5,,1e6', ''],
    ['1.5', '1.5'],
    ['abc', 'abc'],
    ['1e9', '1e9'],
  ] as const) {
    assert.throws(() => parseBenchArgs({ sizes }), {
      name: 'RangeError',
      message: `--sizes: '${bad}' is not an integer from 16 to 2^28 (in --sizes '${sizes}'; e.g. --sizes 1e5,1.6e7)`,
    });
  }
});

test('bench args: an unknown or repeated --rules name is refused, naming it and the known ones', () => {
  assert.throws(() => parseBenchArgs({ rules: 'lion,muon' }), {
    name: 'RangeError',
    message: `--rules: unknown rule 'muon' (in --rules 'lion,muon'); known: ${ALL_IDS}, or all`,
  });
  assert.throws(() => parseBenchArgs({ rules: 'lion,adam,lion' }), {
    name: 'RangeError',
    message: "--rules: 'lion' is listed twice (in --rules 'lion,adam,lion')",
  });
  assert.throws(() => parseBenchArgs({ rules: '' }), { message: `--rules: unknown rule '' (in --rules ''); known: ${ALL_IDS}, or all` });
});

test('bench rules: every registered rule with a wasm kernel is benchable, with its key, name and peers', () => {
  const withKernel = RULES.filter((entry) => entry.rule?.stepWasm !== undefined);
  assert.deepEqual(
    BENCH_RULES.map((r) => [r.id, r.label, r.peers]),
    withKernel.map((entry) => [entry.key, entry.name, Object.fromEntries((['torch', 'optax', 'tfjs'] as const).flatMap((peer) => (entry.peers[peer] === undefined ? [] : [[peer, entry.peers[peer]]])))]),
  );
  assert.equal(BENCH_RULES.some((r) => r.id === 'muon'), false);
});

test('bench rules: bytes per element from the arrays each kernel reads and writes (float32)', () => {
  const rule = (id: string) => BENCH_RULES.find((r) => r.id === id)!;
  // Lion (its kernel lion(p, g, m), as src/rules/lion.ts declares it): reads p, g, m and writes p, m: 5 x 4 B.
  assert.equal(bytesPerElement(rule('lion')), 20);
  assert.equal(trafficLabel(rule('lion')), 'reads p, g, m; writes p, m = 20 B/el');
  assert.equal(boundKernelFor(rule('lion')), 'stream3to2');
  // Schedule-Free AdamW (scheduleFreeAdamw(p, g, z, v)), after its first step: 7 x 4 B.
  assert.equal(bytesPerElement(rule('schedulefree-adamw')), 28);
  assert.equal(boundKernelFor(rule('schedulefree-adamw')), 'stream4to3');
  // Nesterov reads p, g, v and writes p, v; Adam (no amsgrad) reads p, g, m, v, writes p, m, v.
  assert.equal(bytesPerElement(rule('nesterov')), 20);
  assert.equal(bytesPerElement(rule('adam')), 28);
  // SGD's 12 B (read 2, write 1) has no streaming kernel: no bound row rather than a wrong one.
  assert.equal(bytesPerElement(rule('sgd')), 12);
  assert.equal(boundKernelFor(rule('sgd')), undefined);
  // LAMB's step is two passes (its trust ratio needs the norms first): no one-pass bound.
  assert.equal(boundKernelFor(rule('lamb')), undefined);
  // Adan (adan(p, g, m, v, sq, prev)) reads six arrays and writes five: 11 x 4 B; QHAdam moves Adam's 28.
  assert.equal(bytesPerElement(rule('adan')), 44);
  assert.equal(boundKernelFor(rule('adan')), 'stream6to5');
  assert.equal(bytesPerElement(rule('qhadam')), 28);
  assert.equal(boundKernelFor(rule('qhadam')), 'stream4to3');
  assert.match(trafficLabel(rule('lamb')), /^at least: .* = 28 B\/el, in two passes over the tensor$/);
});

test('bench rules: torch 1.13 peers only where torch has the rule', () => {
  const peers = Object.fromEntries(BENCH_RULES.map((r) => [r.id, r.peers.torch !== undefined]));
  // torch 1.13 has no Lion (2023) and no Schedule-Free (a separate package).
  assert.equal(peers.lion, false);
  assert.equal(peers['schedulefree-adamw'], false);
  assert.equal(peers['schedulefree-sgd'], false);
  assert.equal(peers.nesterov, true);
  assert.equal(peers.rprop, true);
});
