/**
 * tsfast's public API, by name. What is not exported here is private.
 */
// engine
import * as tf from "./engine/tf";
export { tf };
export { ready, engineInfo, engineBanner, defaultThreads, tfjsCopies } from "./engine/backend";
export type { EngineInfo, EngineName } from "./engine/backend";
// display
export { inKernel, showBundle, newLiveDisplay, showHtml, showText, showMarkdown, escapeHtml } from "./display/display";
export type { MimeBundle, LiveDisplay } from "./display/display";
export { showPlot, plotBundle } from "./display/plot";
export type { Figure, Trace, Layout, PlotOptions } from "./display/plot";
export { figureToSvg } from "./display/svg";
export { tensorToPng, showImage, showImageGrid, imageGridBundle } from "./display/image";
export type { ImageLike, GridItem, GridOptions } from "./display/image";
// data: downloads, datasets, web images
export { URLs, untarData, tsfastHome, tsfastPath } from "./data/external";
export type { UntarDataOptions } from "./data/external";
export { downloadFile, DownloadError } from "./data/download";
export type { DownloadFileOptions, DownloadProgress } from "./data/download";
export { extractTar, TarError } from "./data/datasets-tar";
export {
  readIdx,
  loadFashionMnist,
  fashionMnist,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_FOLDERS,
  mnistDigits,
  loadMnistDigits,
  emojiCategories,
  EMOJI_SKIPPED_CATEGORIES,
  DATASET_MARKER,
} from "./data/datasets";
export type {
  IdxArray,
  ImageArraySplit,
  FashionMnistOptions,
  MnistDigitsOptions,
  EmojiCategoriesOptions,
  DatasetFolderOptions,
} from "./data/datasets";
export { searchImages, downloadImages, verifyImages, verifyImage } from "./data/datasets-web";
export type { SearchImagesOptions, DownloadImagesOptions, DownloadImagesResult } from "./data/datasets-web";
// interpret
export { ClassificationInterpretation } from "./interpret/interpretation";
export type { InterpretationData, FromLearnerOptions, PlotTopLossesOptions, TopLossCell } from "./interpret/interpretation";
export { confusionMatrixFigure } from "./interpret/charts";
export type { ConfusionMatrixFigureOptions } from "./interpret/charts";
export type { ClassificationReport, ClassScores } from "./interpret/metrics";
export { showResults, resultCells } from "./interpret/results";
export type { ShowResultsOptions, ResultCell } from "./interpret/results";
export { ImageClassifierCleaner, applyDecisions, readDecisionsFile } from "./interpret/cleaner";
export type {
  CleanerDecision,
  CleanerOptions,
  CleanerShowOptions,
  ApplyOptions,
  CleanerReport,
  ApplyDecisionsOptions,
} from "./interpret/cleaner";
// display: training chart builders (pure plotly figures)
export { lossFigure, schedFigure, lrFindFigure } from "./display/charts";
export type { LossData, LossFigureOptions, LrSuggestion, LrFindFigureOptions } from "./display/charts";
// learner: training loop, callbacks, optimizers, schedules, losses, metrics, export
export { Learner } from "./learner/learner";
export type { LearnerOptions, FitOptions, FitOneCycleOptions, FineTuneOptions, DataLoadersLike, DataLoaderLike, BatchLike } from "./learner/learner";
export {
  CancelBatchException,
  CancelTrainException,
  CancelValidException,
  CancelEpochException,
  CancelFitException,
  NonFiniteLossError,
  FitInterruptedError,
} from "./learner/callback";
export type { Callback, EventName } from "./learner/callback";
export type { GetPredsOptions, Preds, TtaOptions } from "./learner/preds";
export { Recorder, SmoothLoss } from "./learner/recorder";
export { ProgressCallback } from "./learner/progress";
export type { ProgressOptions } from "./learner/progress";
export { EarlyStoppingCallback, SaveModelCallback, CSVLogger } from "./learner/callbacks";
export type { EarlyStoppingOptions, SaveModelOptions, CSVLoggerOptions, TrackerOptions } from "./learner/callbacks";
export { Adam, SGD, AdamOptimizer, SGDOptimizer, Optimizer, slice, evenMults } from "./learner/optimizer";
export type { OptFunc, Hypers, Param, Slice, LrSpec, AdamOptions, SGDOptions, OptimizerState } from "./learner/optimizer";
export {
  schedLin,
  schedCos,
  schedExp,
  schedNo,
  combineScheds,
  combinedCos,
  ParamScheduler,
  valley,
  slide,
  slideWith,
  minimum,
  steep,
} from "./learner/schedule";
export type { Sched, SuggestFunc, Suggestion, SlideOptions } from "./learner/schedule";
export { LRFinder } from "./learner/lrfind";
export type { LrFindOptions, LrFindResult } from "./learner/lrfind";
export { CrossEntropyLossFlat, LabelSmoothingCrossEntropy, BCEWithLogitsLossFlat, MSELossFlat, L1LossFlat } from "./learner/losses";
export type { Loss, Reduction, CrossEntropyOptions, LabelSmoothingOptions, BCEOptions } from "./learner/losses";
export { accuracy, errorRate, accuracyMulti, rmse, F1Score, Precision, Recall } from "./learner/metrics";
export type { Metric, ClassMetricOptions, AccuracyMultiOptions, Average } from "./learner/metrics";
export { loadLearner, setInferencePreparer, EXPORT_FORMAT, EXPORT_VERSION } from "./learner/export";
export type { InferenceLearner, InferenceInfo, Prediction, ExportMeta, PrepareInferenceBatch } from "./learner/export";
