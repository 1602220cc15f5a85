/**
 * The fair comparison of the main job (`--seeds`, `--tune`): which runs there are, what
 * each one trains on, and how the learning-rate search picks its rate.
 *
 * The search never sees the test set, by construction: a search run's data is made by
 * `dataFor` from the training digits alone (the first 80% fit, the last 20% validate),
 * and its `test` member is that validation slice. The test set is only read by the full
 * runs at the chosen rate.
 */
import type { Digits } from './data.ts';
import { IMAGE_SIZE } from './data.ts';
import type { SearchPoint, TrainConfig } from './types.ts';

export type { SearchPoint } from './types.ts';

/** The first grid: 7 rates, a third of a decade apart, from default/10 to default*10. */
export const GRID_STEPS = [-3, -2, -1, 0, 1, 2, 3];
/** Grid spacing in decades. */
export const GRID_SPACING = 1 / 3;

/** A rate `decades` decades from `center`, rounded to 4 significant digits (so it prints and reads back exactly). */
export function rateAt(center: number, decades: number): number {
  return Number((center * 10 ** decades).toPrecision(4));
}

/** The first stage of the search around `center` (the default or --lr rate). */
export function firstGrid(center: number): number[] {
  return GRID_STEPS.map((k) => rateAt(center, k * GRID_SPACING));
}

/**
 * The second stage: the two rates half a grid step either side of the first stage's
 * best (by validation loss), so the chosen rate is known to within a sixth of a decade.
 */
export function refinedGrid(center: number, losses: readonly number[]): number[] {
  const best = argmin(losses);
  const decades = GRID_STEPS[best]! * GRID_SPACING;
  return [rateAt(center, decades - GRID_SPACING / 2), rateAt(center, decades + GRID_SPACING / 2)];
}

/**
 * Every rate the search around `center` can try: the first grid, and both rates of
 * every second stage it can choose (half a step either side of each first-grid rate).
 * The CLI checks them all before anything trains, so a centre near the ends of the
 * doubles (5e-324, 1e308) is refused instead of training at 0 or Infinity.
 */
export function searchRates(center: number): number[] {
  return GRID_STEPS.flatMap((k) => [-1, 0, 1].map((half) => rateAt(center, k * GRID_SPACING + (half * GRID_SPACING) / 2)));
}

/** Index of the smallest value; NaN (a diverged run) counts as +Infinity; ties go to the first. */
export function argmin(values: readonly number[]): number {
  let best = -1;
  let bestValue = Infinity;
  values.forEach((value, i) => {
    const v = Number.isNaN(value) ? Infinity : value;
    if (best < 0 || v < bestValue) {
      best = i;
      bestValue = v;
    }
  });
  return best;
}

/** The chosen rate: the point with the lowest validation loss over both stages. */
export function chooseRate(points: readonly SearchPoint[]): number {
  return points[argmin(points.map((p) => p.validationLoss ?? Infinity))]!.lr;
}

/** How many training digits the search holds out for validation: a fifth. */
export function validationCount(trainCount: number): number {
  return Math.floor(trainCount / 5);
}

/** Rows [from, to) of `digits`, as views (no copy). */
function rows(digits: Digits, from: number, to: number): Digits {
  return { images: digits.images.subarray(from * IMAGE_SIZE, to * IMAGE_SIZE), labels: digits.labels.subarray(from, to), count: to - from };
}

/**
 * The digits a run trains and evaluates on. A search run (config.validation set) gets
 * only the training digits: the first count - validation fit, the last `validation`
 * are its evaluation set; `data.test` is not read. Any other run gets `data` as it is.
 */
export function dataFor(config: TrainConfig, data: { train: Digits; test: Digits }): { train: Digits; test: Digits } {
  if (config.validation === undefined) return data;
  const { train } = data;
  if (config.validation < 1 || config.validation >= train.count) {
    throw new RangeError(`a search run holds out ${config.validation} of ${train.count} training digits for validation (expected 1 to ${train.count - 1})`);
  }
  const fit = train.count - config.validation;
  return { train: rows(train, 0, fit), test: rows(train, fit, train.count) };
}

/** The seed of run `k` (0-based) of `--seeds`: run 0 is the --seed run; the others step by 2 (each run uses seed and seed + 1). */
export function seedOf(base: number, k: number): number {
  return base + 2 * k;
}

export interface Job {
  /** Names the run's checkpoint file (OUT/checkpoints/KEY.json) and its progress line. */
  key: string;
  config: TrainConfig;
}

/** The checkpoint key of a full run: `name` for run 0 of the default comparison (as before --seeds), else name.run-K or name.tuned-K. */
export function runKey(name: string, k: number, tuned: boolean): string {
  if (tuned) return `${name}.tuned-${k}`;
  return k === 0 ? name : `${name}.run-${k}`;
}

export function searchKey(name: string, stage: 1 | 2, index: number): string {
  return `${name}.search-${stage}-${index}`;
}
