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
