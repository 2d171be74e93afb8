/**
 * The learner's door to the display floor: charts and live progress in a tslab kernel, plain text in
 * a terminal. The learner draws nothing itself; it hands plotly figures to `lib/display`.
 */
import { inKernel, newLiveDisplay, showText, type LiveDisplay } from "../display/display";
import type { Figure, Trace } from "../display/plot";

export type { Figure, Trace, LiveDisplay as Live };
export { inKernel, showText };

/** A live display in a kernel; undefined in a terminal (callers print text lines instead). */
export function liveDisplay(): LiveDisplay | undefined {
  return inKernel() ? newLiveDisplay() : undefined;
}
