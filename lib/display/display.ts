/**
 * The only code that talks to the Jupyter kernel. In a tslab kernel, outputs are rich display
 * bundles (several mime types, the front end picks the best one it can show); anywhere else
 * (tests, scripts, a terminal) the `text/plain` part is printed instead.
 */
import { randomBytes } from "node:crypto";

/** A display bundle: mime type → content (strings; binary types as base64). */
export type MimeBundle = Record<string, string>;

interface TslabJupyter {
  lastWriteDisplayData:
    | null
    | ((data: { data: MimeBundle; metadata: object; transient: { display_id?: string } }, update: boolean) => void);
}

let jupyterModule: TslabJupyter | undefined;

function tslabJupyter(): TslabJupyter {
  // tslab (a dependency) keeps the function that writes display_data on this module once the kernel
  // runs. Loaded on first use: it takes about a second, which scripts that never display should not pay.
  if (!jupyterModule) {
    jupyterModule = require("tslab/dist/jupyter") as TslabJupyter;
    queueKernelSends();
  }
  return jupyterModule;
}

type Send = (this: object, msg: unknown) => unknown;

/**
 * zeromq 6 (under tslab) sends one message per socket at a time: a second `send` while one is in
 * flight throws "Socket is busy writing". tslab does not wait for its sends, so a progress bar updated
 * by fast training steps, or a `console.log` right after one, threw inside the cell (the cell then
 * stopped with no message). Each socket's sends are put in a queue instead, in order.
 */
function queueKernelSends(): void {
  let zmq: { Publisher: { prototype: object } };
  try {
    const tslabDir = require("node:path").dirname(require.resolve("tslab/package.json")) as string;
    zmq = require(require.resolve("zeromq", { paths: [tslabDir] })) as typeof zmq;
  } catch {
    return; // no zeromq: no kernel either
  }
  // tslab's outputs go through its iopub socket, a Publisher; `send` is a read-only accessor of the
  // base class, so the queued one is defined on Publisher's own prototype.
  const proto = zmq.Publisher.prototype as { send: Send; tsfastQueued?: boolean };
  if (proto.tsfastQueued) return;
  const send = proto.send;
  const tails = new WeakMap<object, Promise<unknown>>();
  const queued = function (this: object, msg: unknown): Promise<unknown> {
    const next = (tails.get(this) ?? Promise.resolve()).then(() => send.call(this, msg));
    tails.set(this, next.catch(() => undefined));
    return next;
  };
  Object.defineProperty(proto, "send", { value: queued, writable: true, configurable: true });
  Object.defineProperty(proto, "tsfastQueued", { value: true });
}

/** True inside a running tslab kernel (rich outputs are shown), false in Node scripts and tests. */
export function inKernel(): boolean {
  return tslabJupyter().lastWriteDisplayData != null;
}

function write(bundle: MimeBundle, displayId: string | undefined, update: boolean): void {
  const writer = tslabJupyter().lastWriteDisplayData;
  if (writer) {
    writer({ data: bundle, metadata: {}, transient: displayId ? { display_id: displayId } : {} }, update);
    return;
  }
  const text = bundle["text/plain"];
  if (text !== undefined && text !== "") process.stdout.write(text.endsWith("\n") ? text : text + "\n");
}

/** Show one output made of every mime type in `bundle`. */
export function showBundle(bundle: MimeBundle): void {
  write(bundle, undefined, false);
}

/** A display that can be replaced in place (progress bars, live charts). */
export interface LiveDisplay {
  /** Replace what this display shows (the first call creates it). */
  update(bundle: MimeBundle): void;
}

/** A new display whose contents `update` replaces in place (tslab's `update_display_data`). */
export function newLiveDisplay(): LiveDisplay {
  const id = randomBytes(8).toString("hex");
  let shown = false;
  let lastText = "";
  return {
    update(bundle: MimeBundle): void {
      if (inKernel()) {
        write(bundle, id, shown);
        shown = true;
        return;
      }
      // In a terminal only print when the text changed, so loops do not flood the log.
      const text = bundle["text/plain"] ?? "";
      if (text !== lastText) {
        write({ "text/plain": text }, undefined, false);
        lastText = text;
      }
    },
  };
}

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escape text for HTML element content and quoted attributes (single or double). */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** Show HTML (with `text` as the plain-text version for terminals). */
export function showHtml(html: string, text = ""): void {
  showBundle({ "text/html": html, "text/plain": text });
}

/** Show plain text. */
export function showText(text: string): void {
  showBundle({ "text/plain": text });
}

/** Show Markdown (printed as-is outside a kernel). */
export function showMarkdown(md: string): void {
  showBundle({ "text/markdown": md, "text/plain": md });
}
