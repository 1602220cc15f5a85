/**
 * The playground's Korean strings, for the seed post's readers: written in the post's
 * own words (관성, 기울기, 실제 이동) rather than rendered word for word from en.ts.
 * Same keys as en.ts; the numbers in them come formatted from the page.
 */
import type { Strings } from './index.ts';

type V = string | number;

export const ko: Strings = {
  lang: 'ko',
  pageTitle: 'nesterov 플레이그라운드: NAG와 그 가족을 직접 움직여 보기',
  skip: '그래프로 건너뛰기',
  heading: 'NAG 플레이그라운드',
  introHtml:
    '<code>nesterov</code> 라이브러리의 모든 옵티마이저가, 테스트로 검증한 바로 그 코드로 브라우저에서 돌아갑니다. 처음 화면은 블로그 글의 비교 그대로입니다. <code>x^2/20 + y^2</code>에서 (-7, 2)로 출발해 lr 0.1, 관성계수 0.9로 네스테로프의 방법(NAG)과 책의 코드를 나란히 움직입니다. 책의 코드는 μ²를 갱신된 속도에 곱하기 때문에 첫 스텝부터 경로가 갈라집니다.',
  language: '언어',
  settings: '설정',
  functionLegend: '함수',
  functionLabel: '함수',
  kappaLabel: '조건수 κ',
  exprLabelHtml: 'x와 y로 된 수식 (mathjs 문법, 최대 <span id="expr-max">500</span>자)',
  knobs: '하이퍼파라미터',
  lrLabel: '학습률',
  momentumLabel: '관성계수 μ',
  beta1Label: 'β1 (Adam 계열)',
  beta2Label: 'β2 (Adam 계열)',
  stepsLabel: '스텝 수',
  startLegend: '출발점',
  startHint: '그래프를 클릭하거나 끌어서 정할 수도 있습니다. 그래프 밖의 출발점은 가장자리로 옮겨집니다.',
  resetStart: '함수의 기본 출발점으로',
  playLegend: '재생',
  shownLabel: '보여 줄 스텝',
  play: '재생',
  pause: '일시 정지',
  stepBack: '−1 스텝',
  stepBackName: '−1 스텝 (한 스텝 뒤로)',
  stepForward: '+1 스텝',
  stepForwardName: '+1 스텝 (한 스텝 앞으로)',
  optimizersLegend: '옵티마이저',
  shareLegend: '공유',
  shareHint: '주소창에 지금 화면이 모두 담겨 있습니다. 복사해서 공유하세요.',
  copyLink: '링크 복사',
  download: '경로 내려받기 (JSON)',
  pathsList: '경로',
  pictureHeading: '한 스텝, 블로그 글의 그림처럼',
  pictureOptimizer: '옵티마이저',
  pictureStep: '스텝',
  pictureNesterov: 'nesterov (NAG)',
  pictureMomentum: 'momentum',
  pictureBook: 'nesterov-book (책의 코드)',
  key: '범례',
  keyMomentum: '관성만큼 이동 (momentum step)',
  keyGradient: '기울기 반대 방향으로 이동 (gradient step)',
  keyActual: '실제 이동 (actual step)',
  keyGradientAt: '기울기를 구하는 위치',
  errorHeading: '스텝에 따른 f − f*',
  ratesHeading: 'minimize의 수렴 속도: 조건수에 따른 반복 횟수',
  ratesHintHtml:
    '고윳값이 1 … κ인 20차원 이차함수에서 <code>minimize</code>가 f − f*를 1e-8 f(x0) 아래로 내리는 데 필요한 반복 횟수를, 지금 이 브라우저에서 계산합니다. 이론상 경사하강법은 κ에 비례해(기울기 1), 가속 방법은 √κ에 비례해(기울기 ½) 늘어납니다.',
  ratesRun: '다시 계산',

  fnBook: '책의 함수 x^2/20 + y^2',
  fnRosenbrock: 'Rosenbrock 함수 (1 - x)^2 + 100 (y - x^2)^2',
  fnBeale: 'Beale 함수',
  fnSaddle: '안장점: x^2 + y^4/4 - y^2/2',
  fnHimmelblau: 'Himmelblau 함수 (x^2 + y - 11)^2 + (x + y^2 - 7)^2',
  fnQuadratic: '이차함수 x^2/kappa + y^2 (조건수 kappa)',
  fnCustom: '직접 입력한 x, y의 수식',
  quadraticTitle: (v: { kappa: V }) => `이차함수 x^2/${v.kappa} + y^2 (조건수 ${v.kappa})`,
  customTitle: (v: { text: V }) => `f(x, y) = ${v.text}`,

  optSgd: 'SGD',
  optMomentum: 'Momentum (고전적 형태)',
  optNesterov: 'Nesterov (NAG)',
  optNesterovBook: 'Nesterov, 책의 코드',
  optAdagrad: 'AdaGrad',
  optRmsprop: 'RMSProp',
  optAdam: 'Adam',
  optAdamw: 'AdamW (가중치 감쇠 0.01)',
  optNadam: 'NAdam',
  optMomentumPytorch: 'Momentum, PyTorch의 형태',
  optNesterovPytorch: 'Nesterov, PyTorch의 형태',
  optAdagradBook: 'AdaGrad, 책의 코드',
  optRmspropBook: 'RMSProp, 책의 코드',
  optAdamBook: 'Adam, 책의 코드',
  optAdamwBook: 'AdamW, 책의 형태',

  workingOut: '수식의 도함수를 구하는 중입니다 …',
  plotWorking: '수식의 도함수를 구하는 중입니다.',
  plotFixFormula: '그릴 함수가 없습니다. 수식을 고쳐 주세요.',
  noFunction: '그릴 함수가 없습니다.',
  plotTitle: (v: { title: V; x: V; y: V; count: number; shown: V; steps: V }) =>
    `${v.title}, (${v.x}, ${v.y})에서 출발, 옵티마이저 ${v.count}개, ${v.steps}스텝 중 ${v.shown}스텝 표시.`,
  legendItem: (v: { name: V; step: V; x: V; y: V }) => `${v.name}: ${v.step}스텝에서 (${v.x}, ${v.y})`,
  legendStopped: (v: { step: V }) => `; ${v.step}스텝에서 멈춤`,
  stopNote: (v: { name: V; step: V; steps: V; reason: V }) => `${v.name}은(는) ${v.steps}스텝 중 ${v.step}스텝에서 멈췄습니다: ${v.reason}.`,
  drawnUpTo: (v: { count: number }) => `${v.count === 1 ? '경로는' : '각 경로는'} 마지막 유한한 점까지 그렸습니다.`,
  stopStart: (v: { point: V; value: V }) => `출발점 ${v.point}에서 f가 ${v.value}로, 유한한 수가 아닙니다`,
  stopGradient: (v: { point: V; gradient: V }) => `${v.point}에서 기울기가 ${v.gradient}로, 유한하지 않습니다`,
  stopOverflow: (v: { step: V; point: V }) => `${v.step}번째 스텝이 ${v.point}로, 유한한 수의 범위를 벗어납니다`,
  stopValue: (v: { step: V; point: V; value: V }) => `${v.step}번째 스텝이 ${v.point}로 가는데, 거기서 f가 ${v.value}입니다`,
  startMoved: (v: { start: V; x0: V; x1: V; y0: V; y1: V; moved: V }) =>
    `출발점 ${v.start}이(가) 그래프 밖에 있어서(x는 ${v.x0}부터 ${v.x1}, y는 ${v.y0}부터 ${v.y1}까지) ${v.moved}(으)로 옮겼습니다.`,

  pictureNotFinite: '이 스텝은 유한하지 않아 경로가 그 앞에서 멈춥니다 (어디서, 왜 멈췄는지는 그래프 아래에 있습니다).',
  pictureCaption: (v: { step: number; text: V }) => `스텝 ${v.step} → ${v.step + 1}. ${v.text}`,
  captionNag: (v: { mu: V; lr: V }) =>
    `NAG: v ← μv − lr·∇f(θ + μv), θ ← θ + v (μ = ${v.mu}, lr = ${v.lr}). 먼저 관성만큼 간 위치 θ + μv에서 기울기를 구합니다. 라이브러리가 저장하고 경로에 그려지는 점이 바로 이 위치입니다.`,
  captionMomentum: (v: { mu: V; lr: V }) =>
    `Momentum: v ← μv − lr·∇f(p), p ← p + v (μ = ${v.mu}, lr = ${v.lr}). 관성만큼 가기 전, 지금 위치에서 기울기를 구합니다.`,
  captionBook: (v: { mu: V; lr: V }) =>
    `책의 코드: v ← μv − lr·∇f(p); p ← p + μ²v − (1+μ)·lr·∇f(p), 즉 p + μ³v_old − (1+μ+μ²)·lr·∇f(p) (μ = ${v.mu}, lr = ${v.lr}). 지금 위치에서 기울기를 구하므로 NAG가 아닙니다.`,

  chooseOptimizer: '옵티마이저를 고르면 오차가 보입니다.',
  noFiniteValue: '경로를 따라 그릴 수 있는 유한한 f 값이 없습니다.',
  fStarEstimated: (v: { value: V }) =>
    `이 수식의 f*는 알려져 있지 않아, 지금까지 본 가장 작은 값(${v.value})으로 어림했습니다. 그래서 가장 좋은 경로는 바닥에서 끝납니다. 로그 눈금.`,
  fStarKnown: (v: { value: V; floor: V }) => `f* = ${v.value}. 로그 눈금이며, 오차가 정확히 0이면 바닥(${v.floor})에 놓입니다.`,
  axisStep: '스텝',
  axisIterations: '반복 횟수',
  ratesComputing: (v: { method: V; kappa: V }) => `κ = ${v.kappa}에서 ${v.method} 계산 중 …`,
  ratesComputed: (v: { seconds: V; slopes: V }) => `${v.seconds}초 걸렸습니다. 로그-로그 기울기: ${v.slopes}.`,
  ratesSlope: (v: { method: V; slope: V }) => `${v.method} ${v.slope}`,
  ratesDiverged: (v: { method: V }) => `${v.method}: 수렴하지 않음`,
  timing: (v: { ms: V; count: V; steps: V }) => `경로를 ${v.ms} ms 만에 다시 계산했습니다 (옵티마이저 ${v.count}개 × ${v.steps}스텝).`,

  linkCopied: '링크를 복사했습니다.',
  copyRefused: '브라우저가 복사를 허용하지 않았습니다. 주소창을 직접 복사해 주세요.',
  downloadPending: '아직 내려받을 것이 없습니다. 수식의 도함수를 구하는 중입니다.',
  downloadNothing: '내려받을 것이 없습니다. 먼저 수식을 고쳐 주세요.',
  downloadSaved: (v: { file: V }) => `${v.file}을(를) 저장했습니다.`,

  formulaEmpty: '수식이 비어 있습니다. x와 y로 된 식을 입력하세요. 예: x^2 + 3*sin(y)',
  formulaTooLong: (v: { length: V; max: V }) => `수식이 ${v.length}자입니다. 최대 ${v.max}자까지 받습니다.`,
  formulaUnreadable: (v: { text: V; detail: V }) => `수식 "${v.text}"을(를) 읽을 수 없습니다: ${v.detail}.`,
  formulaStatements: (v: { text: V }) => `수식 "${v.text}"에 대입이나 여러 문장이 있습니다. x와 y로 된 식 하나만 입력하세요.`,
  formulaUnknown: (v: { text: V; names: V }) => `수식 "${v.text}"에 ${v.names}이(가) 있습니다. 쓸 수 있는 이름은 x, y, pi, e뿐입니다.`,
  formulaNotDifferentiable: (v: { text: V; detail: V }) => `수식 "${v.text}"을(를) 미분할 수 없습니다: ${v.detail}.`,
  formulaNotReal: (v: { text: V }) => `수식 "${v.text}"은(는) 시험해 본 어느 점에서도 실수가 아닙니다 (예: x = 0.5, y = 0.5).`,
  formulaDerivativesTooLong: (v: { text: V; length: V; max: V }) =>
    `"${v.text}"의 도함수가 ${v.length}자로, 매 스텝 계산하기에는 너무 깁니다 (최대 ${v.max}자). 더 간단한 수식을 써 보세요.`,
  formulaTooSlow: (v: { text: V; ms: V; max: V }) =>
    `수식 "${v.text}"은(는) 한 점에서 값과 기울기를 구하는 데 ${v.ms} ms가 걸립니다. 화면을 한 번 그릴 때 수천 번 계산하므로 최대 ${v.max} ms까지만 받습니다. 더 간단한 수식을 써 보세요.`,
  workerFailed: (v: { detail: V }) => `수식을 미분할 수 없습니다. 페이지가 작업자(worker)를 시작하지 못했습니다 (${v.detail || '이유가 주어지지 않음'}).`,
  workerSlowStart: (v: { seconds: V }) => `수식을 미분할 수 없습니다. 페이지의 작업자(worker)가 ${v.seconds}초 안에 시작되지 않았습니다.`,
  formulaTimeout: (v: { text: V; seconds: V }) =>
    `수식 "${v.text}"을(를) 검사하고 도함수를 구하는 데 ${v.seconds}초가 넘게 걸려 멈췄습니다. 더 짧거나 간단한 수식을 써 보세요.`,
};
