/**
 * First steps derived by hand, the arithmetic in the comments. Independent of every
 * other reference: if a formula changes, one of these numbers moves.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdaGrad, Adam, AdamW, Momentum, NAdam, Nesterov, RMSProp, SGD } from 'nesterov';
import { assertClose } from './helpers.ts';

type Stepper = { update(p: { x: Float64Array }, g: { x: Float64Array }): boolean };

/** Runs `opt` on a scalar parameter with the given gradients; returns p after each step. */
function steps(opt: Stepper, start: number, gradients: number[]): number[] {
  const p = { x: new Float64Array([start]) };
  return gradients.map((value) => {
    opt.update(p, { x: new Float64Array([value]) });
    return p.x[0]!;
  });
}

describe("the book's test function f(x, y) = x^2/20 + y^2 from (-7, 2), lr 0.1, mu 0.9 (nag.md's table)", () => {
  // grad f = (x / 10, 2 y). Step 1 from (-7, 2): g = (-0.7, 4), v = 0.
  function path(variant: 'nag' | 'pytorch' | 'book'): number[][] {
    const opt = new Nesterov({ lr: 0.1, momentum: 0.9, variant });
    const p = { xy: new Float64Array([-7, 2]) };
    const g = { xy: new Float64Array(2) };
    const out: number[][] = [];
    for (let t = 0; t < 3; t++) {
      g.xy[0] = p.xy[0]! / 10;
      g.xy[1] = 2 * p.xy[1]!;
      opt.update(p, g);
      out.push([p.xy[0]!, p.xy[1]!]);
    }
    return out;
  }
  // NAG: p1 = p0 - (1 + mu) lr g = (-7 + 0.19 * 0.7, 2 - 0.19 * 4) = (-6.867, 1.24)
  //      v1 = -lr g = (0.07, -0.4); g1 = (-0.6867, 2.48)
  //      p2 = p1 + 0.81 v1 - 0.19 g1 = (-6.867 + 0.0567 + 0.130473, 1.24 - 0.324 - 0.4712) = (-6.679827, 0.4448)
  const nag = [
    [-6.867, 1.24],
    [-6.679827, 0.4448],
    [-6.446257587, -0.216704],
  ];
  // The book: p1 = p0 - (1 + mu + mu^2) lr g = (-7 + 0.271 * 0.7, 2 - 0.271 * 4) = (-6.8103, 0.916)
  const book = [
    [-6.8103, 0.916],
    [-6.57471087, 0.127928],
    [-6.300962118423, -0.337401776],
  ];
  for (const [variant, expected] of [['nag', nag], ['pytorch', nag], ['book', book]] as const) {
    it(`variant '${variant}'`, () => {
      path(variant).forEach((point, i) => assertClose(point, expected[i]!, 1e-14, `step ${i + 1}`));
    });
  }
});

describe('first steps of every rule on p = 1, g = 0.5', () => {
  it('SGD: 1 - 0.1 * 0.5 = 0.95', () => {
    assert.deepEqual(steps(new SGD({ lr: 0.1 }), 1, [0.5]), [0.95]);
  });
  it('SGD with weight decay 0.2: g = 0.5 + 0.2 * 1 = 0.7, p = 1 - 0.07 = 0.93', () => {
    assertClose(steps(new SGD({ lr: 0.1, weightDecay: 0.2 }), 1, [0.5]), [0.93], 1e-15, 'p');
  });
  it("Momentum 'classic': v = -0.05, p = 0.95; v = 0.9 * -0.05 - 0.05 = -0.095, p = 0.855", () => {
    assertClose(steps(new Momentum({ lr: 0.1, momentum: 0.9 }), 1, [0.5, 0.5]), [0.95, 0.855], 1e-15, 'p');
  });
  it("Momentum 'pytorch' with dampening 0.5: b = g = 0.5 (undamped first), p = 0.95; b = 0.45 + 0.25 = 0.7, p = 0.88", () => {
    const opt = new Momentum({ lr: 0.1, momentum: 0.9, dampening: 0.5, variant: 'pytorch' });
    assertClose(steps(opt, 1, [0.5, 0.5]), [0.95, 0.88], 1e-15, 'p');
  });
  it("Nesterov 'nag': p = 1 - 1.9 * 0.05 = 0.905; p = 0.905 + 0.81 * -0.05 - 0.095 = 0.7695", () => {
    assertClose(steps(new Nesterov({ lr: 0.1, momentum: 0.9 }), 1, [0.5, 0.5]), [0.905, 0.7695], 1e-15, 'p');
  });
  it("Nesterov 'pytorch': b = 0.5, p = 1 - 0.1 * (0.5 + 0.45) = 0.905; b = 0.95, p = 0.905 - 0.1 * 1.355 = 0.7695", () => {
    assertClose(steps(new Nesterov({ lr: 0.1, momentum: 0.9, variant: 'pytorch' }), 1, [0.5, 0.5]), [0.905, 0.7695], 1e-15, 'p');
  });
  it("Nesterov 'book': v = -0.05, p = 1 + 0.81 * -0.05 - 1.9 * 0.05 = 0.8645 (mu^2 on the NEW velocity)", () => {
    assertClose(steps(new Nesterov({ lr: 0.1, momentum: 0.9, variant: 'book' }), 1, [0.5]), [0.8645], 1e-15, 'p');
  });
  it('AdaGrad: h = 0.25, p = 1 - 0.05 / (0.5 + 1e-10) = 0.90000000002; h = 0.5, p = 0.90000000002 - 0.05 / 0.70710678 = 0.82928932191', () => {
    assertClose(steps(new AdaGrad({ lr: 0.1 }), 1, [0.5, 0.5]), [0.90000000002, 0.8292893219113453], 1e-14, 'p');
  });
  it('AdaGrad lrDecay 0.1: the second step uses lr / (1 + 0.1) = 0.0909..., p = 0.8357175653757685', () => {
    assertClose(steps(new AdaGrad({ lr: 0.1, lrDecay: 0.1 }), 1, [0.5, 0.5]), [0.90000000002, 0.8357175653757685], 1e-14, 'p');
  });
  it('AdaGrad initialAccumulatorValue 0.75: h = 0.75 + 0.25 = 1, p = 1 - 0.1 * 0.5 / (1 + 1e-10)', () => {
    assertClose(steps(new AdaGrad({ lr: 0.1, initialAccumulatorValue: 0.75 }), 1, [0.5]), [0.950000000005], 1e-14, 'p');
  });
  it('RMSProp: s = 0.01 * 0.25 = 0.0025, p = 1 - 0.01 * 0.5 / (0.05 + 1e-8) = 0.90000002', () => {
    assertClose(steps(new RMSProp({ lr: 0.01 }), 1, [0.5]), [0.900000019999996], 1e-14, 'p');
  });
  it('RMSProp centered: c = 0.005, d = sqrt(0.0025 - 0.000025) = 0.0497494, p = 1 - 0.005 / d = 0.8994962', () => {
    assertClose(steps(new RMSProp({ lr: 0.01, centered: true }), 1, [0.5]), [0.899496238676095], 1e-14, 'p');
  });
  it('Adam: m_hat = 0.5, v_hat = 0.25, p = 1 - 0.001 * 0.5 / (0.5 + 1e-8) = 0.99900000002', () => {
    assertClose(steps(new Adam(), 1, [0.5]), [0.99900000002], 1e-14, 'p');
  });
  it("Adam on a tiny gradient 1e-6: 'pytorch' steps 0.001 / 1.01, 'book' (eps outside the bias correction) 0.00024", () => {
    // pytorch: m_hat = 1e-6, sqrt(v_hat) = 1e-6, step = lr * 1e-6 / (1e-6 + 1e-8) = 0.00099009901
    assertClose(steps(new Adam(), 0, [1e-6]), [-0.0009900990099009903], 1e-12, 'pytorch');
    // book: lr_t = 0.001 * sqrt(0.001) / 0.1 = 3.1623e-4, m = 1e-7, sqrt(v) = 3.1623e-8,
    //       step = 3.1623e-4 * 1e-7 / (3.1623e-8 + 1e-7) = 2.4025e-4
    assertClose(steps(new Adam({ variant: 'book' }), 0, [1e-6]), [-0.00024025307335204216], 1e-12, 'book');
  });
  it('AdamW: p = 1 * (1 - 0.001 * 0.01) - 0.001 * 0.5 / (0.5 + 1e-8) = 0.99899000002', () => {
    assertClose(steps(new AdamW(), 1, [0.5]), [0.99899000002], 1e-14, 'p');
  });
  it('NAdam: mu1 = 0.9 (1 - 0.5 * 0.96^0.004) = 0.4500735, mu2 = 0.4501469, p = 1 - 0.002 - 0.0011290 * 0.1', () => {
    // (1 - mu1) / (1 - P1) = 1 with P1 = mu1, so the gradient term is lr * g / d = 0.002 * 0.5 / (0.5 + 1e-8);
    // the momentum term is lr * mu2 / (1 - mu1 mu2) * m / d = 0.0011290355671 * 0.05 / (0.5 + 1e-8).
    assertClose(steps(new NAdam(), 1, [0.5]), [0.9978870964855473], 1e-14, 'p');
  });
  it('maximize ascends: SGD p = 1 + 0.1 * 0.5 = 1.05', () => {
    assert.deepEqual(steps(new SGD({ lr: 0.1, maximize: true }), 1, [0.5]), [1.05]);
  });
});
