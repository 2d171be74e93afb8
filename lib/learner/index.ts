/**
 * The learner floor's public surface (re-exported by name from `lib/index.ts`).
 */
export { Learner, type LearnerOptions, type FitOptions, type FitOneCycleOptions, type FineTuneOptions, type DataLoadersLike, type DataLoaderLike, type BatchLike } from "./learner";
export {
  CancelBatchException,
  CancelTrainException,
  CancelValidException,
  CancelEpochException,
  CancelFitException,
  NonFiniteLossError,
  FitInterruptedError,
  type Callback,
  type EventName,
} from "./callback";
export { type GetPredsOptions, type Preds, type TtaOptions } from "./preds";
export { Recorder, SmoothLoss } from "./recorder";
export { ProgressCallback, type ProgressOptions } from "./progress";
export { EarlyStoppingCallback, SaveModelCallback, CSVLogger, type EarlyStoppingOptions, type SaveModelOptions, type CSVLoggerOptions, type TrackerOptions } from "./callbacks";
export { Adam, SGD, AdamOptimizer, SGDOptimizer, Optimizer, slice, evenMults, type OptFunc, type Hypers, type Param, type Slice, type LrSpec, type AdamOptions, type SGDOptions, type OptimizerState } from "./optimizer";
export { schedLin, schedCos, schedExp, schedNo, combineScheds, combinedCos, ParamScheduler, valley, slide, slideWith, minimum, steep, type Sched, type SuggestFunc, type Suggestion, type SlideOptions } from "./schedule";
export { LRFinder, type LrFindOptions, type LrFindResult } from "./lrfind";
export { CrossEntropyLossFlat, LabelSmoothingCrossEntropy, BCEWithLogitsLossFlat, MSELossFlat, L1LossFlat, type Loss, type Reduction, type CrossEntropyOptions, type LabelSmoothingOptions, type BCEOptions } from "./losses";
export { accuracy, errorRate, accuracyMulti, rmse, F1Score, Precision, Recall, type Metric, type ClassMetricOptions, type AccuracyMultiOptions, type Average } from "./metrics";
export { loadLearner, setInferencePreparer, EXPORT_FORMAT, EXPORT_VERSION, type InferenceLearner, type InferenceInfo, type Prediction, type ExportMeta, type PrepareInferenceBatch } from "./export";
