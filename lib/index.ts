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
