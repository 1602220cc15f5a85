export { SGD, sgdRule, type SGDOptions, type SGDHyper, type SGDState } from './rules/sgd.ts';
export { Momentum, momentumRule, type MomentumOptions, type MomentumHyper, type MomentumState, type MomentumVariant } from './rules/momentum.ts';
export { Nesterov, nesterovRule, type NesterovOptions, type NesterovHyper, type NesterovState, type NesterovVariant } from './rules/nesterov.ts';
export { AdaGrad, adagradRule, type AdaGradOptions, type AdaGradHyper, type AdaGradState, type AdaGradVariant } from './rules/adagrad.ts';
export { RMSProp, rmspropRule, type RMSPropOptions, type RMSPropHyper, type RMSPropState, type RMSPropVariant } from './rules/rmsprop.ts';
export { Adam, adamRule, type AdamOptions, type AdamHyper, type AdamState, type AdamVariant } from './rules/adam.ts';
export { AdamW, adamwRule, type AdamWOptions } from './rules/adamw.ts';
export { NAdam, nadamRule, type NAdamOptions, type NAdamHyper, type NAdamState } from './rules/nadam.ts';
export { NAdamW, nadamwRule, type NAdamWOptions } from './rules/nadamw.ts';
export { ParamStore, type AnyParamStore, type ParamStoreOptions, type Shape, type StateSizer } from './store.ts';
export { loadKernels, wasmSimdSupported, wasmUnavailableReason } from './wasm/kernels.ts';
export { AUTO_MIN_ELEMENTS, threadSupport } from './threads.ts';
export { Optimizer, type AnyOptimizer, type Backend, type NonFinitePolicy, type OptimizerOptions, type Override, type ParamMatcher, type Schedulable } from './optimizer.ts';
export type { CommonOptions, CommonHyper, RuleDescription, RuleState, UpdateRule, GlobalPhase, WeightDecayKind } from './rule.ts';
export type { OptimizerLike } from './contract.ts';
export { RULES, registered, type AnyUpdateRule, type RegisteredOptimizer } from './rules/index.ts';
export * from './schedules.ts';
export { minimize, softThreshold, type LineSearch, type Prox, type MinimizeOptions, type MinimizeResult, type Method, type Restart, type StopReason, type ValueAndGradient } from './minimize.ts';
export { clipGradNorm, zeroGrads, zerosLike, type ClipOptions } from './grads.ts';
export {
  STATE_FORMAT,
  STATE_VERSION,
  MAX_STATE_DEPTH,
  checkSavedState,
  checkStateDict,
  decodeState,
  encodeState,
  stateFromJSON,
  stateToJSON,
  type OptimizerStateDict,
  type ParamStateRecord,
  type SavedState,
} from './state.ts';
export { StateError, UpdateError } from './errors.ts';
export type { ArrayOf, Dtype, FloatArray, LearningRate, ParamSet, Schedule } from './types.ts';
export { RAdam, radamRule, type RAdamOptions, type RAdamHyper, type RAdamState } from './rules/radam.ts';
export { Adamax, adamaxRule, type AdamaxOptions, type AdamaxHyper, type AdamaxState } from './rules/adamax.ts';
export { Adadelta, adadeltaRule, type AdadeltaOptions, type AdadeltaHyper, type AdadeltaState } from './rules/adadelta.ts';
export { Rprop, rpropRule, type RpropOptions, type RpropHyper, type RpropState } from './rules/rprop.ts';
export { ScheduleFreeSGD, ScheduleFreeOptimizer, scheduleFreeSgdRule, type ScheduleFreeSGDOptions, type ScheduleFreeSGDHyper, type ScheduleFreeSGDState, type ScheduleFreeState } from './rules/schedulefree-sgd.ts';
export { ScheduleFreeAdamW, scheduleFreeAdamwRule, type ScheduleFreeAdamWOptions, type ScheduleFreeAdamWHyper, type ScheduleFreeAdamWState } from './rules/schedulefree-adamw.ts';
export { Lion, lionRule, type LionOptions, type LionHyper, type LionState } from './rules/lion.ts';
export { LAMB, lambRule, type LAMBOptions, type LAMBHyper, type LAMBState } from './rules/lamb.ts';
export { Lookahead, LOOKAHEAD_FORMAT, type LookaheadOptions, type LookaheadStateDict, type WrappableOptimizer } from './lookahead.ts';
export { Muon, NEWTON_SCHULZ_COEFFICIENTS, type MuonOptions, type MuonHyper, type MuonState } from './rules/muon.ts';
export { QHM, qhmRule, type QHMOptions, type QHMHyper, type QHMState } from './rules/qhm.ts';
export { Adan, adanRule, type AdanOptions, type AdanHyper, type AdanState } from './rules/adan.ts';
export { QHAdam, qhadamRule, type QHAdamOptions, type QHAdamHyper, type QHAdamState } from './rules/qhadam.ts';
export { Prodigy, prodigyRule, type ProdigyOptions, type ProdigyHyper, type ProdigyState } from './rules/prodigy.ts';
export { DAdaptAdamW, dadaptAdamwRule, type DAdaptAdamWOptions, type DAdaptAdamWHyper, type DAdaptAdamWState } from './rules/dadapt-adamw.ts';
export { Adafactor, adafactorRule, type AdafactorOptions, type AdafactorHyper, type AdafactorState } from './rules/adafactor.ts';
export { partition, PARTITION_FORMAT, type Assignment, type Partition, type PartitionMember, type PartitionStateDict } from './partition.ts';
export { clipGradValue } from './grads.ts';
export { EMA, SWA, type EMAOptions, type EMAWarmup, type SWAOptions } from './averaging.ts';
export { GradientAccumulation, type GradientAccumulationOptions } from './accumulation.ts';
export { WRAPPER_STATE_FORMAT, WRAPPER_STATE_VERSION, type WrapperStateDict } from './state.ts';
