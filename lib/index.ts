/**
 * tsfast's public API, by name. What is not exported here is private.
 *
 * Sections follow the floors of `lib/README.md`, from the ground up: engine → display → data →
 * learner → models → interpret → serve. Importing this file also runs `lib/wiring.ts`, which
 * registers the upper floors with the lower ones.
 */
import "./wiring";
// ---------------------------------------------------------------- engine
import * as tf from "./engine/tf";
import { startEngine } from "./engine/backend";
export { tf };
export { ready, engineInfo, engineBanner, defaultThreads, tfjsCopies } from "./engine/backend";
// `tf` works the moment tsfast is imported: the engine ladder runs now (only wasm finishes later).
startEngine();
export type { EngineInfo, EngineName } from "./engine/backend";
export { NativeAdamOptimizer } from "./engine/native/optimizer";
// ---------------------------------------------------------------- display
export { inKernel, showBundle, newLiveDisplay, showHtml, showText, showMarkdown, escapeHtml } from "./display/display";
export type { MimeBundle, LiveDisplay } from "./display/display";
export { showPlot, plotBundle } from "./display/plot";
export type { Figure, Trace, Layout, PlotOptions } from "./display/plot";
export { figureToSvg } from "./display/svg";
export { tensorToPng, showImage, showImageGrid, imageGridBundle } from "./display/image";
export type { ImageLike, GridItem, GridOptions } from "./display/image";
export { lossFigure, schedFigure, lrFindFigure } from "./display/charts";
export type { LossData, LossFigureOptions, LrSuggestion, LrFindFigureOptions } from "./display/charts";
// ---------------------------------------------------------------- data: downloads and archives
export { URLs, untarData, tsfastHome, tsfastPath } from "./data/external";
export type { UntarDataOptions } from "./data/external";
export { downloadFile, DownloadError } from "./data/download";
export type { DownloadFileOptions, DownloadProgress } from "./data/download";
export { extractTar, TarError } from "./data/tar";
export { extractZip, ZipError } from "./data/zip";
// ---------------------------------------------------------------- data: datasets
export {
  readIdx,
  loadFashionMnist,
  fashionMnist,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_FOLDERS,
  mnistDigits,
  loadMnistDigits,
} from "./data/datasets/mnist";
export type { IdxArray, ImageArraySplit, FashionMnistOptions, MnistDigitsOptions } from "./data/datasets/mnist";
export { emojiCategories, EMOJI_SKIPPED_CATEGORIES } from "./data/datasets/emoji";
export type { EmojiCategoriesOptions } from "./data/datasets/emoji";
export { penguins, creditG, arffToCsv } from "./data/datasets/tables";
export { emojiScenes, sceneCodes, SCENE_PHOTOS_PACKAGE, SCENE_FACE_CATEGORY } from "./data/datasets/scenes";
export type { EmojiScenesOptions } from "./data/datasets/scenes";
export { DATASET_MARKER } from "./data/datasets/folder";
export type { DatasetFolderOptions } from "./data/datasets/folder";
export { searchImages, downloadImages, verifyImages, verifyImage } from "./data/datasets/web";
export type { SearchImagesOptions, DownloadImagesOptions, DownloadImagesResult } from "./data/datasets/web";
export { humanNumbers, humanNumbersPath, numberWords } from "./data/datasets/human-numbers";
export { spamAssassin, emailCorpus, emailText, spamPart, SPAM_PACKAGE, SPAM_GROUPS, type SpamPart } from "./data/datasets/spam";
export type { SpamAssassinOptions, EmailCorpusOptions } from "./data/datasets/spam";
export { englishCorpus, ENGLISH_SOURCES } from "./data/datasets/english";
export type { EnglishCorpusOptions } from "./data/datasets/english";
// ---------------------------------------------------------------- data: items, blocks, transforms, loaders
export { Rng } from "./data/random";
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
export { DataBlock, ImageBlock, CategoryBlock, MultiCategoryBlock, RegressionBlock, PointBlock, MaskBlock } from "./data/block";
export type { Block, BlockArg, DataBlockOptions, TransformBlock, ImageBlockOptions, MaskBlockOptions } from "./data/block";
export type { ItemContext, BatchContext, ItemGeometry, ShowCell } from "./data/blocks";
export { sortVocab, maskColour } from "./data/blocks";
export { decodeMask, maskToPng, MaskDecodeError } from "./data/mask";
export type { RawMask } from "./data/follow";
export { decodeImage, decoderName, toGrey, sharp, ImageDecodeError, DEFAULT_MAX_PIXELS } from "./data/decode";
export type { DecodeOptions, DecoderName, ImageMode } from "./data/decode";
export type { RawImage } from "./data/pixels";
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
export { DataLoader, DataLoaders, loaderDefaults } from "./data/loader";
export type { Batch, LoaderOptions, ShowBatchOptions } from "./data/loader";
export type { CacheKind } from "./data/cache";
export { ImageDataLoaders, SegmentationDataLoaders } from "./data/factories";
export { TensorDataLoader, tensorDataLoaders } from "./data/tensors";
export type { TensorLoaderOptions } from "./data/tensors";
export type { FactoryOptions, FromFolderOptions, FromCsvOptions, FromListsOptions, SegmentationOptions } from "./data/factories";
export { prepareInferenceBatch } from "./data/inference";
export type { InferenceSpec } from "./data/inference";
// ---------------------------------------------------------------- text: tokenization, numericalization
export {
  UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ, specialTokens, defaultRules, defaultPostRules, registerTextRule,
  fixHtml, replaceRep, replaceWrep, specAddSpaces, rmUselessSpaces, replaceAllCaps, replaceMaj, lowercase, replaceSpace, unescapeHtml,
  decodeSpecTokens,
} from "./text/rules";
export type { TextRule } from "./text/rules";
export { Tokenizer, Numericalize, makeVocab, countTokens, splitWords, numericalizeDefaults } from "./text/tokenize";
export type { TokenizerOptions, VocabOptions } from "./text/tokenize";
export { LMDataLoader, lmDataLoaders, lmLoaderDefaults } from "./text/lm-loader";
export type { LMLoaderOptions } from "./text/lm-loader";
export { TextDataLoaders, SortedDL, padInputChunk, decodeUtf8, textDataDefaults, prepareTextInputs, isTextSpec } from "./text/data";
export type { TextDataLoadersOptions, TextFrameOptions, SortedDLOptions, TextInferenceSpec } from "./text/data";
// ---------------------------------------------------------------- learner: the contracts between floors
export type {
  BatchLike,
  DataLoaderLike,
  DataLoadersLike,
  VisionDataLoaders,
  LoaderLike,
  InterpretableLearner,
  CamLearner,
  LearnerLike,
  Preds,
  Prediction,
} from "./learner/contracts";
// ---------------------------------------------------------------- learner: training loop, callbacks, optimizers, schedules, losses, metrics
export { Learner, fitOneCycleDefaults, fineTuneDefaults } from "./learner/learner";
export type { LearnerOptions, FitOptions, FitOneCycleOptions, FineTuneOptions } from "./learner/learner";
export {
  CancelException,
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
export type { GetPredsOptions, TtaOptions, TtaSplit, TtaSplitOptions } from "./learner/preds";
export { Recorder, SmoothLoss } from "./learner/recorder";
export { ProgressCallback } from "./learner/progress";
export type { ProgressOptions } from "./learner/progress";
export { EarlyStoppingCallback, SaveModelCallback, CSVLogger } from "./learner/callbacks";
export { MixUp, CutMix, MixHandler, cutMixBox, sampleBeta } from "./learner/mixup";
export type { MixUpOptions, CutMixOptions, MixOptions, MixUpDraw, CutMixDraw } from "./learner/mixup";
export { GradientAccumulation } from "./learner/grad-accum";
export { Hook, Hooks, HookBwd, hookOutput, hookOutputs, hookGrad, findLayer } from "./learner/hooks";
export type { HookFunc, HookOptions } from "./learner/hooks";
export { ActivationStats, activationStatsDefaults } from "./learner/activation-stats";
export type { ActivationStatsOptions, LayerStats } from "./learner/activation-stats";
export type { EarlyStoppingOptions, SaveModelOptions, CSVLoggerOptions, TrackerOptions } from "./learner/callbacks";
export { Adam, SGD, RMSProp, AdamOptimizer, SGDOptimizer, RMSPropOptimizer, Optimizer, hyperDefaults, slice, evenMults } from "./learner/optimizer";
export type {
  OptFunc,
  Hypers,
  Param,
  ParamsArg,
  GradsArg,
  Slice,
  LrSpec,
  AdamOptions,
  SGDOptions,
  RMSPropOptions,
  BaseOptimizerOptions,
  OptimizerOptions,
  OptimizerState,
} from "./learner/optimizer";
export { sgdStep, weightDecay, l2Reg, averageGrad, averageSqrGrad, stepStat, momentumStep, rmsPropStep, adamStep, partial } from "./learner/steppers";
export type { Stepper, StepArgs, StepUpdate } from "./learner/steppers";
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
export { LRFinder, lrFindDefaults } from "./learner/lrfind";
export type { LrFindOptions, LrFindResult } from "./learner/lrfind";
export { CrossEntropyLossFlat, LabelSmoothingCrossEntropy, BCEWithLogitsLossFlat, MSELossFlat, L1LossFlat } from "./learner/losses";
export type { Loss, Reduction, CrossEntropyOptions, LabelSmoothingOptions, BCEOptions, BCEWithLogitsLoss } from "./learner/losses";
export { accuracy, errorRate, perplexity, accuracyMulti, rmse, F1Score, Precision, Recall, F1ScoreMulti, PrecisionMulti, RecallMulti, foregroundAcc, Dice, DiceMulti, JaccardCoeff } from "./learner/metrics";
export type { Metric, ClassMetricOptions, AccuracyMultiOptions, Average, AverageMulti, MultiMetricOptions, ForegroundAccOptions } from "./learner/metrics";
export { modelSummary } from "./learner/summary";
// ---------------------------------------------------------------- learner: export, prediction
export { loadLearner, EXPORT_FORMAT, EXPORT_VERSION } from "./learner/export";
export type { InferenceLearner, ExportMeta } from "./learner/export";
export { setInferencePreparer } from "./learner/predict";
export type { InferenceInfo, PrepareInferenceBatch } from "./learner/predict";
// ---------------------------------------------------------------- models
export { resnet18, resnet34, resnet50, resnet101, xresnet18, xresnet34, xresnet50, archMeta } from "./models/archs";
export type { Arch, ArchMeta, Stats } from "./models/archs";
export { buildResNet } from "./models/resnet";
export type { ArchOptions } from "./models/resnet";
export { ConvLayer, ResBlock, LinBnDrop, Flatten, PoolFlatten, sequential, simpleCnn, BatchNorm, BN_EPS, BN_MOMENTUM } from "./models/blocks";
export type {
  ModelBlock,
  BuildContext,
  Activation,
  ConvLayerOptions,
  ResBlockOptions,
  LinBnDropOptions,
  SequentialOptions,
  SimpleCnnOptions,
} from "./models/blocks";
export { visionLearner, createVisionModel, createHead, visionSplit, shippedDefault, isGreyBatch } from "./models/vision";
export type { VisionLearnerOptions, VisionModelOptions, HeadOptions } from "./models/vision";
export { AdaptiveAvgPool2d, AdaptiveConcatPool2d, PaddedConv2D, PaddedMaxPool2D, SigmoidRange } from "./models/layers";
export { fuseBatchNorm } from "./models/fuse";
// ---------------------------------------------------------------- collaborative filtering (fastai's collab.py)
export { CollabDataLoaders, collabDefaults, encodeCollabRows } from "./collab/data";
export type { CollabOptions, CollabRow, CollabInferenceSpec } from "./collab/data";
export { collabLearner, collabLearnerDefaults, CollabLearner, embeddingDotBias, embeddingNN, asCollabModel, ColumnEmbedding, DotBias } from "./models/collab";
export type { CollabModel, CollabModelOptions, CollabLearnerOptions } from "./models/collab";
export { movieLens, MOVIELENS_ROWS } from "./data/datasets/movielens";
export { unetLearner, createUnetModel, dynamicUnet, unetSplit } from "./models/unet";
export type { UnetLearnerOptions, UnetModelOptions, UnetOptions } from "./models/unet";
export { PixelShuffle, ReplicationPad2d, ResizeToOrig, SelfAttention } from "./models/unet-layers";
export { saveWeights, loadWeights, loadStateDict, modelStateDict } from "./models/weights";
export { readSafetensors, writeSafetensors, parseSafetensors, serializeSafetensors } from "./models/safetensors";
export type { SafetensorsFile, SafeTensor } from "./models/safetensors";
export { KNOWN_WEIGHTS, modelsCacheDir, shippedCheckpoint, SHIPPED_GREY, SHIPPED_COLOUR, SHIPPED_LM, SHIPPED_EMAIL_LM } from "./models/pretrained";
// ---------------------------------------------------------------- tables: frames, procs, TabularPandas, loaders, TabularModel
export { readCsv, frameFromRows, column, isMissing, DEFAULT_NA_VALUES } from "./tabular/frame";
export type { DataFrame, Cell, ReadCsvOptions } from "./tabular/frame";
export { ColumnVocab, NA_TOKEN } from "./tabular/categorify";
// `Normalize` (above) doubles as the tabular proc in `procs: [Categorify, FillMissing, Normalize]`, as in fastai
export { Categorify, FillMissing, Normalize as TabularNormalize, median, NA_SUFFIX } from "./tabular/procs";
export type { TabularProc, ProcState, ProcLike } from "./tabular/procs";
export { TabularPandas, processRows } from "./tabular/core";
export type { TabularPandasOptions, TabularYBlock, TabularSplits, TabularRow, TabularState } from "./tabular/core";
export { TabularDataLoaders, tabularDefaults, prepareTabularRows, isTabularSpec } from "./tabular/data";
export type { TabularDataLoadersOptions, TabularInferenceSpec, ShowBatchOptions as TabularShowBatchOptions } from "./tabular/data";
export { DecisionTreeClassifier, DecisionTreeRegression, RandomForestClassifier, RandomForestRegression, PCA } from "./tabular/ml";
export type { DecisionTreeOptions, RandomForestOptions, TabularEstimator, RandomForest } from "./tabular/ml";
export { tabularLearner, tabularModel, tabularModelDefaults, embSzRule, TabularLearner, TabularColumns } from "./models/tabular";
export type { TabularModelOptions, TabularPrediction } from "./models/tabular";
// ---------------------------------------------------------------- models: recurrent networks by hand (the book's chapter 12)
export { Module, Linear, Embedding, RNN, LSTM, dropout, zeroStates, CarriedState, ModelResetter, RNNRegularizer } from "./models/rnn";
export type { ModuleOptions, RegularizedActivations } from "./models/rnn";
// ---------------------------------------------------------------- models: ULMFiT (fastai's text/models and text/learner.py)
export {
  AwdLstm, AwdLstmLM, AwdLstmClassifierEncoder, awdLstmLmConfig, awdLstmClasConfig, scaleDropouts, rnnDropout, stopGradient, maskedConcatPool,
  awdLstmLmSplit, awdLstmClasSplit, languageModel, textClassifierModel, textClassifierDefaults,
  awdLstmStateDict, loadAwdLstmStateDict, awdLstmLMStateDict, loadAwdLstmLMStateDict, ParamHolder,
} from "./models/awd-lstm";
export type { AwdLstmOptions, AwdLstmLMConfig, AwdLstmClassifierConfig, TextClassifierModelOptions } from "./models/awd-lstm";
export { AWD_LSTM, languageModelLearner, textClassifierLearner, LMLearner, TextClassifierLearner, matchEmbeds } from "./models/text";
export type { TextArch, GenerateOptions, GeneratedText, LanguageModelLearnerOptions, TextClassifierLearnerOptions } from "./models/text";
// ---------------------------------------------------------------- interpret
export { ClassificationInterpretation } from "./interpret/interpretation";
export type { InterpretationData, FromLearnerOptions, PlotTopLossesOptions, TopLossCell } from "./interpret/interpretation";
export { confusionMatrixFigure } from "./interpret/charts";
export type { ConfusionMatrixFigureOptions } from "./interpret/charts";
export type { ClassificationReport, ClassScores } from "./interpret/report";
export { showResults, resultCells } from "./interpret/results";
export { showBlockResults, blockResultCells, blockTopLosses, plotBlockTopLosses, Interpretation } from "./interpret/block-results";
export type { BlockTopLoss } from "./interpret/block-results";
export type { ShowResultsOptions, ResultCell } from "./interpret/results";
export { camFor, camPng, showCam } from "./interpret/cam";
export type { CamOptions, CamResult, ShowCamOptions } from "./interpret/cam";
export { ImageClassifierCleaner, applyDecisions, readDecisionsFile } from "./interpret/cleaner";
export type {
  CleanerDecision,
  CleanerOptions,
  CleanerShowOptions,
  ApplyOptions,
  CleanerReport,
  ApplyDecisionsOptions,
} from "./interpret/cleaner";
// ---------------------------------------------------------------- serve: put a model in production
export { serve, serveDefaults } from "./serve/server";
export type { ServeOptions, ServeHandle, PredictResponse } from "./serve/server";
export { setPredictorLoader } from "./serve/predictor";
export type { Predictor, PredictorLoader } from "./serve/predictor";
