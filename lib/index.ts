/**
 * tsfast's public API, by name. What is not exported here is private.
 */
// engine
import * as tf from "./engine/tf";
export { tf };
export { ready, engineInfo, engineBanner, defaultThreads } from "./engine/backend";
export type { EngineInfo, EngineName } from "./engine/backend";
