/**
 * The wrappers' contract (OptimizerLike): a refused step of a wrapper changes nothing in
 * any member, a member of a partition steps only its own parameters, aliasing is refused
 * across the whole call, and a loaded state is checked value by value.
 *
 * Expected values are the contract itself: after a refusal every param and every
 * member's state dict equals, element for element, what it was before the call; a
 * member's step equals the step the same member takes alone on its own parameters.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Adam,
  AdamW,
  Lookahead,
  Muon,
  ParamStore,
  SGD,
  ScheduleFreeAdamW,
  ScheduleFreeSGD,
  StateError,
  UpdateError,
  partition,
  type FloatArray,
  type OptimizerLike,
  type ParamSet,
} from 'nesterov';

// A type alias, not an interface: an object type alias is assignable to ParamSet's index signature.
type Arrays = { W: Float32Array; b: Float32Array };

function snapshot(set: ParamSet): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const entries = set instanceof Map ? [...set.entries()] : Object.entries(set as Record<string, FloatArray>);
  for (const [name, array] of entries) out[String(name)] = Array.from(array as FloatArray);
  return out;
}

/** The member's state dicts and counters, as plain data. */
function memberState(members: Record<string, OptimizerLike>): unknown {
  return JSON.parse(
    JSON.stringify(
      Object.fromEntries(
        Object.entries(members).map(([key, member]) => [
          key,
          { dict: member.stateDict(), stepCount: (member as { stepCount?: number }).stepCount, skipped: (member as { skippedSteps?: number }).skippedSteps },
        ]),
      ),
      (_key, value: unknown) => (ArrayBuffer.isView(value) ? Array.from(value as FloatArray) : value),
    ),
  );
}

function plainSet(): { params: Arrays; grads: Arrays } {
  return {
    params: { W: new Float32Array([0.5, -0.25, 0.75, 1]), b: new Float32Array([0.1, -0.2]) },
    grads: { W: new Float32Array([0.3, 0.1, -0.2, 0.4]), b: new Float32Array([0.05, -0.5]) },
  };
}

function storeSet(): { store: ParamStore<'W' | 'b'>; params: ParamSet; grads: ParamSet } {
  const store = new ParamStore({ W: [2, 2], b: [2] }, { stateBuffers: 3 });
  store.params.W.set([0.5, -0.25, 0.75, 1]);
  store.params.b.set([0.1, -0.2]);
  store.grads.W.set([0.3, 0.1, -0.2, 0.4]);
  store.grads.b.set([0.05, -0.5]);
  return { store, params: store.params, grads: store.grads };
}

/** Runs `before` (steps that succeed), then expects `refused` to throw an UpdateError and change nothing. */
function expectRefusedChangesNothing(
  members: Record<string, OptimizerLike>,
  params: ParamSet,
  refused: () => unknown,
  message: RegExp,
): void {
  const paramsBefore = snapshot(params);
  const stateBefore = memberState(members);
  assert.throws(refused, (error: unknown) => error instanceof UpdateError && message.test(error.message));
  assert.deepEqual(snapshot(params), paramsBefore, 'no parameter moved');
  assert.deepEqual(memberState(members), stateBefore, 'no member state or count changed');
}

describe('a refused partition step changes nothing in any member (every member checked before any writes)', () => {
  for (const where of ['plain', 'store'] as const) {
    const setOf = () => (where === 'plain' ? plainSet() : storeSet());

    it(`${where}: a later member's lr schedule returns NaN: Muon's W and its step count stay`, () => {
      const { params, grads } = setOf();
      const members = { muon: new Muon({ shapes: { W: [2, 2] } }), adamw: new AdamW({ lr: (t: number) => (t < 1 ? 1e-3 : NaN) }) };
      const opt = partition({ W: 'muon', b: 'adamw' }, members);
      assert.equal(opt.update(params, grads), true);
      expectRefusedChangesNothing(members, params, () => opt.update(params, grads), /lr schedule.*NaN/);
      assert.equal(members.muon.stepCount, 1);
    });

    it(`${where}: a later member in eval mode (Schedule-Free): nothing moves`, () => {
      const { params, grads } = setOf();
      const members = { muon: new Muon({ shapes: { W: [2, 2] } }), sf: new ScheduleFreeAdamW({ lr: 0.01 }) };
      const opt = partition({ W: 'muon', b: 'sf' }, members);
      opt.update(params, grads);
      members.sf.eval(params);
      expectRefusedChangesNothing(members, params, () => opt.update(params, grads), /eval mode/);
    });

    it(`${where}: a later member's override matches no parameter: nothing moves`, () => {
      const { params, grads } = setOf();
      const members = { muon: new Muon({ shapes: { W: [2, 2] } }), z: new AdamW({ overrides: [{ params: 'nope', lr: 0 }] }) };
      const opt = partition({ W: 'muon', b: 'z' }, members);
      expectRefusedChangesNothing(members, params, () => opt.update(params, grads), /overrides\[0\] matches no parameter/);
    });
  }

  it('plain: a later Muon member without a shape for its parameter: the earlier member does not step', () => {
    const { params, grads } = plainSet();
    const members = { adamw: new AdamW(), muon: new Muon() };
    const opt = partition({ W: 'muon', b: 'adamw' }, members);
    expectRefusedChangesNothing(members, params, () => opt.update(params, grads), /has no shape/);
  });

  it("plain: a parameter of one member aliases another member's gradient: refused before anything moves", () => {
    const { params } = plainSet();
    const grads = { W: new Float32Array([0.3, 0.1, -0.2, 0.4]), b: params.W.subarray(2, 4) };
    const members = { muon: new Muon({ shapes: { W: [2, 2] } }), adamw: new AdamW() };
    const opt = partition({ W: 'muon', b: 'adamw' }, members);
    expectRefusedChangesNothing(members, params, () => opt.update(params, grads), /gradient 'b' shares memory with parameter 'W'/);
  });

  it("plain: a later member's parameter changed length: the earlier member does not step", () => {
    const { params, grads } = plainSet();
    const members = { muon: new Muon({ shapes: { W: [2, 2] } }), adamw: new AdamW() };
    const opt = partition({ W: 'muon', b: 'adamw' }, members);
    opt.update(params, grads);
    const longer = { W: params.W, b: new Float32Array(3) };
    const longerGrads = { W: grads.W, b: new Float32Array(3) };
    expectRefusedChangesNothing(members, longer, () => opt.update(longer, longerGrads), /state was made for length 2/);
  });

  it('a non-string Map key is refused (it would name the state "1")', () => {
    const opt = partition(() => 'sgd', { sgd: new SGD({ lr: 0.1 }) });
    const p = new Map<unknown, FloatArray>([[1, new Float32Array(2)]]);
    const g = new Map<unknown, FloatArray>([[1, new Float32Array([1, 1])]]);
    assert.throws(() => opt.update(p as never, g as never), (error: unknown) => error instanceof UpdateError && /names must be strings/.test(error.message));
    assert.deepEqual(Array.from(p.get(1)!), [0, 0]);
  });
});

describe('a member of a partition over a ParamStore steps only its own parameters', () => {
  const cases: [string, () => OptimizerLike][] = [
    ['ScheduleFreeSGD', () => new ScheduleFreeSGD({ lr: 0.1 })],
    ['ScheduleFreeAdamW', () => new ScheduleFreeAdamW({ lr: 0.1 })],
    ['Lookahead(SGD)', () => new Lookahead(new SGD({ lr: 0.1 }), { k: 1 })],
  ];
  for (const [label, make] of cases) {
    it(`${label} for b, SGD lr 0 for W: W does not move, b moves as the member alone moves it`, () => {
      const { params, grads } = storeSet();
      const opt = partition({ W: 'frozen', b: 'member' }, { frozen: new SGD({ lr: 0 }), member: make() });
      const W = Array.from((params as Record<string, FloatArray>).W!);
      opt.update(params, grads);
      opt.update(params, grads);
      assert.deepEqual(Array.from((params as Record<string, FloatArray>).W!), W);
      // The same member alone, on a store of b alone (the same kernels).
      const alone = new ParamStore({ b: [2] }, { stateBuffers: 3 });
      alone.params.b.set([0.1, -0.2]);
      alone.grads.b.set([0.05, -0.5]);
      const member = make();
      member.update(alone.params, alone.grads);
      member.update(alone.params, alone.grads);
      assert.deepEqual(Array.from((params as Record<string, FloatArray>).b!), Array.from(alone.params.b));
    });
  }
});

describe('Muon refuses aliasing, as every optimizer does', () => {
  it("a gradient that is another parameter's array", () => {
    const W = new Float32Array([0.5, -0.25, 0.75, 1]);
    const V = new Float32Array([0.1, 0.2, 0.3, 0.4]);
    const opt = new Muon({ shapes: { W: [2, 2], V: [2, 2] } });
    const before = [Array.from(W), Array.from(V)];
    assert.throws(() => opt.update({ W, V }, { W: V, V: new Float32Array(4).fill(0.1) }), (error: unknown) => error instanceof UpdateError && /shares memory/.test(error.message));
    assert.deepEqual([Array.from(W), Array.from(V)], before);
    assert.equal(opt.stepCount, 0);
  });

  it('two parameters that overlap', () => {
    const buffer = new Float32Array(6).fill(0.5);
    const opt = new Muon({ shapes: { W: [2, 2], V: [2, 2] } });
    const params = { W: buffer.subarray(0, 4), V: buffer.subarray(2, 6) };
    const grads = { W: new Float32Array(4).fill(0.1), V: new Float32Array(4).fill(0.2) };
    assert.throws(() => opt.update(params, grads), (error: unknown) => error instanceof UpdateError && /parameter 'V' shares memory with parameter 'W'|parameter 'W' shares memory with parameter 'V'/.test(error.message));
    assert.deepEqual(Array.from(buffer), [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
  });
});

describe('a loaded state is checked value by value: what would write NaN into params is refused, nothing changes', () => {
  /** A state dict after two steps, edited by `edit`, must be refused by a fresh optimizer holding its own state. */
  function refuses(make: () => OptimizerLike, edit: (dict: { stepCount: number; variant: unknown; params: Record<string, { step: number; scalars: Record<string, number>; buffers: Record<string, FloatArray> }> }) => void, message: RegExp): void {
    const source = make();
    const { params, grads } = plainSet();
    source.update(params, grads);
    source.update(params, grads);
    const dict = source.stateDict() as Parameters<typeof edit>[0];
    edit(dict);
    const target = make();
    const p2 = plainSet();
    target.update(p2.params, p2.grads);
    const before = JSON.stringify(target.stateDict(), (_k, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as FloatArray) : v));
    assert.throws(() => target.loadStateDict(dict), (error: unknown) => error instanceof StateError && message.test(error.message));
    assert.equal(JSON.stringify(target.stateDict(), (_k, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as FloatArray) : v)), before);
  }

  it("Schedule-Free: lrMax NaN", () => refuses(() => new ScheduleFreeSGD({ lr: 0.1 }), (d) => (d.params.b!.scalars.lrMax = NaN), /lrMax/));
  it('Schedule-Free: weightSum -5', () => refuses(() => new ScheduleFreeAdamW({ lr: 0.1 }), (d) => (d.params.W!.scalars.weightSum = -5), /weightSum/));
  it('Adam: a negative second moment', () => refuses(() => new Adam(), (d) => (d.params.W!.buffers.expAvgSq![1] = -1e-3), /expAvgSq.*index 1/));
  it('Adam: a NaN second moment', () => refuses(() => new Adam(), (d) => (d.params.b!.buffers.expAvgSq![0] = NaN), /expAvgSq.*not finite at index 0/));
  it("a parameter's step beyond the optimizer's step count", () => refuses(() => new Adam(), (d) => (d.params.W!.step = 7), /step 7, more than the optimizer's stepCount 2/));
  it("Muon with variant 'book'", () => refuses(() => new Muon({ shapes: { W: [2, 2], b: [1, 2] } }), (d) => (d.variant = 'book'), /variant/));
  it('Muon: a NaN momentum', () => refuses(() => new Muon({ shapes: { W: [2, 2], b: [1, 2] } }), (d) => (d.params.W!.buffers.momentumBuffer![2] = NaN), /momentumBuffer.*not finite at index 2/));
});

describe('Lookahead.reset forgets a parameter in the inner optimizer too', () => {
  it("reset('w') after a length change lets the new w train, and the state dict loads back", () => {
    // k 5: no sync in these two steps, so w shows Adam's own step.
    const opt = new Lookahead(new Adam({ lr: 0.1 }), { k: 5 });
    opt.update({ w: new Float32Array([1, 2, 3]), v: new Float32Array([1]) }, { w: new Float32Array([0.1, 0.2, 0.3]), v: new Float32Array([1]) });
    opt.reset('w');
    const p = { w: new Float32Array([1, 2]), v: new Float32Array([1]) };
    opt.update(p, { w: new Float32Array([0.5, -0.5]), v: new Float32Array([1]) });
    // Adam's first step of a fresh w moves each element by lr (m / sqrt(v) = sign(g)).
    assert.ok(Math.abs(p.w[0]! - 0.9) < 1e-6 && Math.abs(p.w[1]! - 2.1) < 1e-6, `${Array.from(p.w)}`);
    const copy = new Lookahead(new Adam({ lr: 0.1 }), { k: 5 });
    copy.loadStateDict(opt.stateDict());
    assert.equal(copy.inner.stateOf('w')!.step, 1);
    assert.equal(copy.inner.stateOf('v')!.step, 2);
  });
});
