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
  TrainingDivergedError,
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
// serve: put a model in production
export { serve, serveDefaults } from "./serve/server";
export type { ServeOptions, ServeHandle, PredictResponse } from "./serve/server";
export { setPredictorLoader } from "./serve/predictor";
export type { Predictor, PredictorLoader, LearnerLike } from "./serve/predictor";
// data: blocks, loaders, transforms
export { Rng } from "./data/random";
export { Resize, RandomResizedCrop } from "./data/transforms";
export type {
  ItemTfm,
  ResizeTfm,
  RandomResizedCropTfm,
  ResizeOptions,
  RandomResizedCropOptions,
  ResizeMethod,
  PadMode,
  SizeArg,
} from "./data/transforms";
export { augTransforms, Normalize, imagenetStats } from "./data/augment";
export type { BatchTfm, AffineAugTfm, LightingAugTfm, NormalizeTfm, AugTransformsOptions } from "./data/augment";
export { decodeImage, decoderName, ImageDecodeError, DEFAULT_MAX_PIXELS } from "./data/decode";
export type { DecodeOptions, DecoderName } from "./data/decode";
export type { RawImage } from "./data/pixels";
export {
  getFiles,
  getImageFiles,
  imageExtensions,
  RandomSplitter,
  GrandparentSplitter,
  FuncSplitter,
  IndexSplitter,
  ColSplitter,
  parentLabel,
  RegexLabeller,
} from "./data/items";
export type { Splitter, GetFilesOptions } from "./data/items";
export { DataBlock, ImageBlock, CategoryBlock, MultiCategoryBlock } from "./data/block";
export type { Block, BlockArg, DataBlockOptions } from "./data/block";
export { DataLoader, DataLoaders, prepareInferenceBatch } from "./data/loader";
export type { Batch, InferenceSpec, LoaderOptions, ShowBatchOptions } from "./data/loader";
export { ImageDataLoaders } from "./data/factories";
export type { FactoryOptions, FromFolderOptions, FromCsvOptions, FromListsOptions } from "./data/factories";
export type { CacheKind } from "./data/cache";
// models
export { resnet18, resnet34, resnet50, resnet101, xresnet18, xresnet34, xresnet50, archMeta } from "./models/archs";
export type { Arch, ArchMeta, Stats } from "./models/archs";
export { simpleCnn, buildResNet } from "./models/resnet";
export type { ArchOptions, SimpleCnnOptions } from "./models/resnet";
export { visionLearner, createVisionModel, createHead, visionSplit } from "./models/vision";
export type { VisionLearnerOptions, VisionModelOptions, HeadOptions } from "./models/vision";
export { AdaptiveConcatPool2d, SigmoidRange } from "./models/layers";
export { modelSummary } from "./learner/summary";
export { saveWeights, loadWeights, loadStateDict, modelStateDict } from "./models/weights";
export { readSafetensors, writeSafetensors, parseSafetensors, serializeSafetensors } from "./models/safetensors";
export type { SafetensorsFile, SafeTensor } from "./models/safetensors";
export { KNOWN_WEIGHTS, modelsCacheDir, shippedCheckpoint } from "./models/pretrained";
// engine: the native CPU engine's fused optimizer
export { NativeAdamOptimizer } from "./engine/native/optimizer";
