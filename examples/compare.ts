/**
 * The seed post's comparison, on the book's test function f(x, y) = x^2/20 + y^2 from
 * (-7, 2): every optimizer of the family, a few steps of each path, and how many steps
 * each needs to come within 1e-3 of the minimum. Uses only the public API.
 *
 *     npm start            (until the MNIST main job lands, this is what it runs)
 */
import { AdaGrad, Adam, AdamW, Momentum, NAdam, Nesterov, RMSProp, SGD } from 'nesterov';

type Step = { update(p: { xy: Float64Array }, g: { xy: Float64Array }): boolean };

// The learning rates the book uses for this picture (ch. 6.1.7), NAG beside the book's variant.
const optimizers: [string, () => Step][] = [
  ['SGD (lr 0.95)', () => new SGD({ lr: 0.95 })],
  ['Momentum (lr 0.1)', () => new Momentum({ lr: 0.1 })],
  ['Nesterov NAG (lr 0.1)', () => new Nesterov({ lr: 0.1 })],
  ["Nesterov 'book' (lr 0.1)", () => new Nesterov({ lr: 0.1, variant: 'book' })],
  ['AdaGrad (lr 1.5)', () => new AdaGrad({ lr: 1.5 })],
  ['RMSProp (lr 0.1)', () => new RMSProp({ lr: 0.1 })],
  ['Adam (lr 0.3)', () => new Adam({ lr: 0.3 })],
  ['AdamW (lr 0.3)', () => new AdamW({ lr: 0.3, weightDecay: 0 })],
  ['NAdam (lr 0.3)', () => new NAdam({ lr: 0.3 })],
];

console.log("f(x, y) = x^2/20 + y^2 from (-7, 2): position after 1, 2, 3 and 30 steps; steps until |(x, y)| < 1e-3\n");
for (const [name, make] of optimizers) {
  const optimizer = make();
  const params = { xy: new Float64Array([-7, 2]) };
  const grads = { xy: new Float64Array(2) };
  const shown: string[] = [];
  let reached = -1;
  for (let step = 1; step <= 2000; step++) {
    grads.xy[0] = params.xy[0]! / 10;
    grads.xy[1] = 2 * params.xy[1]!;
    optimizer.update(params, grads);
    if (step <= 3 || step === 30) shown.push(`(${params.xy[0]!.toFixed(4)}, ${params.xy[1]!.toFixed(4)})`);
    if (reached < 0 && Math.hypot(params.xy[0]!, params.xy[1]!) < 1e-3) reached = step;
  }
  console.log(`${name.padEnd(26)} ${shown.join(' ')}  ${reached < 0 ? 'not within 2000' : `${reached} steps`}`);
}
