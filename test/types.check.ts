/**
 * The names and the dtype flow through the types. Not run: `npm run
 * typecheck` (part of `npm test`) compiles it, so each `@ts-expect-error` must be an
 * error and every other line must compile, as a user's strict project would see it.
 */
import { Adam, AdamW, EMA, GradientAccumulation, Lookahead, Muon, Nesterov, ParamStore, SGD, ScheduleFreeAdamW, partition, zerosLike, type AnyOptimizer, type FloatArray } from 'nesterov';
import { tfOptimizer } from 'nesterov/tfjs';

// An interface of typed arrays is a parameter set (no index signature needed).
interface Params {
  W1: Float32Array;
  b1: Float32Array;
}
const params: Params = { W1: new Float32Array(6), b1: new Float32Array(2) };
const grads = zerosLike(params);
const w1: Float32Array = grads.W1; // the names and the array type survive zerosLike
new Adam().update(params, grads);
// @ts-expect-error -- no parameter W2
void grads.W2;

// A class instance whose fields are the arrays, too.
class Layer {
  weight = new Float64Array(3);
  bias = new Float64Array(1);
}
const layer = new Layer();
new SGD().update(layer, zerosLike(layer));
const bias: Float64Array = zerosLike(layer).bias;

// A Map keeps its key type.
const map = new Map([['w', new Float32Array(2)]] as const);
const mapGrads: Map<'w', Float32Array> = zerosLike(map);
new Nesterov().update(map, mapGrads);

// A store knows its names and its dtype.
const store = new ParamStore({ W1: [784, 100], b1: 100 });
const storeW1: Float32Array = store.params.W1;
// @ts-expect-error -- no parameter W2 in this store
void store.params.W2;
const f64 = new ParamStore({ w: 3 }, { dtype: 'float64' });
const f64w: Float64Array = f64.params.w;
// @ts-expect-error -- a float64 store holds Float64Arrays
const wrong: Float32Array = f64.params.w;

// Any optimizer fits one type.
const optimizers: AnyOptimizer[] = [new SGD(), new Nesterov(), new Adam(), new AdamW({ weightDecay: 0.1 })];
function train(opt: AnyOptimizer, p: Params, g: Params): boolean {
  return opt.update(p, g);
}
train(optimizers[0]!, params, grads);

// Nesterov.step's closure sees the look-ahead point under the same names.
new Nesterov().step(params, grads, (at) => {
  const point: FloatArray = at.W1;
  return point.length;
});

export { w1, bias, storeW1, f64w, wrong };

// nesterov/tfjs: the adapter keeps the type of what it wraps (Muon included, which is
// not an Optimizer of one rule), so its own methods are there without a cast.
const tfSchedule: ScheduleFreeAdamW = tfOptimizer(new ScheduleFreeAdamW()).optimizer;
void tfSchedule.mode;
const tfMuon: Muon = tfOptimizer(new Muon()).optimizer;
void tfMuon.stateOf('W1');
// A partition is wrapped as one tf.Optimizer whose members are typed adapters.
const partitioned = tfOptimizer(partition((name) => (name.endsWith('kernel') ? 'muon' : 'adamw'), { muon: new Muon(), adamw: new AdamW() }));
const partMuon: Muon = partitioned.members.muon.optimizer;
void partMuon;
// @ts-expect-error -- no member 'adam'
void partitioned.members.adam;
// A wrapper keeps its type too, its inner optimizer's with it; and a partition's member may be one.
const tfEma: EMA<AdamW> = tfOptimizer(new EMA(new AdamW(), { decay: 0.99 })).optimizer;
void tfEma.inner.defaults.weightDecay;
const wrappedMembers = tfOptimizer(partition(() => 'adamw', { muon: new Lookahead(new Muon()), adamw: new GradientAccumulation(new AdamW(), { steps: 2 }) }));
const partAccumulation: GradientAccumulation<AdamW> = wrappedMembers.members.adamw.optimizer;
void partAccumulation.pendingSteps;
// @ts-expect-error -- a wrapper around a partition is not wrapped (wrap each member)
void tfOptimizer(new EMA(partition(() => 'a', { a: new AdamW() })));
