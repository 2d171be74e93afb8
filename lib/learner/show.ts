/**
 * The learner's only door to the display floor (`lib/display`): charts and live progress in a tslab
 * kernel, plain text in a terminal. Loaded lazily so the training loop never needs a kernel.
 */

/** A plotly.js trace (the subset the learner draws). */
export interface Trace {
  x?: number[];
  y?: number[];
  type?: string;
  mode?: string;
  name?: string;
  [k: string]: unknown;
}

/** A plotly.js figure: traces and layout. */
export interface Figure {
  data: Trace[];
  layout?: Record<string, unknown>;
}

/** A display that can be replaced in place. */
export interface Live {
  update(bundle: Record<string, string>): void;
}

interface DisplayModule {
  inKernel(): boolean;
  newLiveDisplay(): Live;
  showHtml?(s: string): void;
  showText?(s: string): void;
}
interface PlotModule {
  showPlot(fig: Figure, opts?: { width?: number; height?: number; live?: unknown }): unknown;
  plotBundle(fig: Figure): Record<string, string> | Promise<Record<string, string>>;
}

function load<T>(path: string): T | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(path) as T;
  } catch {
    return undefined;
  }
}

let displayMod: DisplayModule | undefined | null = null;
let plotMod: PlotModule | undefined | null = null;

function display(): DisplayModule | undefined {
  if (displayMod === null) displayMod = load<DisplayModule>("../display/display");
  return displayMod;
}
function plots(): PlotModule | undefined {
  if (plotMod === null) plotMod = load<PlotModule>("../display/plot");
  return plotMod;
}

/** True inside a tslab kernel with the display layer present. */
export function inKernel(): boolean {
  const d = display();
  return !!d && typeof d.inKernel === "function" && d.inKernel();
}

/** A live display (kernel) or undefined (terminal). */
export function liveDisplay(): Live | undefined {
  return inKernel() ? display()!.newLiveDisplay() : undefined;
}

/** Show a chart (kernel: plotly + SVG fallback; terminal: a one-line summary of the traces). */
export function showFigure(fig: Figure, opts: { width?: number; height?: number } = {}): void {
  const p = plots();
  if (p) {
    void p.showPlot(fig, opts);
    return;
  }
  const title = (fig.layout?.["title"] as string | { text?: string } | undefined) ?? "chart";
  const t = typeof title === "string" ? title : title.text ?? "chart";
  console.log(`[${t}: ${fig.data.map((d) => `${d.name ?? "trace"} (${d.y?.length ?? 0} points)`).join(", ")}]`);
}

/** The mime bundle of a chart for a live display, or undefined without the display layer. */
export async function figureBundle(fig: Figure): Promise<Record<string, string> | undefined> {
  const p = plots();
  return p ? await p.plotBundle(fig) : undefined;
}

/** Print text (kernel: a text display; terminal: stdout). */
export function showText(s: string): void {
  const d = display();
  if (d?.showText && inKernel()) d.showText(s);
  else console.log(s);
}
