/**
 * `serve(exportDir | learner)`: an HTTP server (Node's `http`, nothing else) that puts a model in
 * production — an upload page at `/` and a JSON API.
 *
 *   GET  /          upload page (choose or drop an image; label + top probabilities as bars)
 *   POST /predict   image as multipart field `file` or as the raw body (image/*, octet-stream)
 *                   → { label, index, probability, top: [{ label, index, probability }], probs, ms }
 *   GET  /health    { status: "ok", uptimeS, served, active, queued, tensors }
 *   GET  /info      { vocab, nClasses, isMultiLabel, model, limits, engine }
 *
 * Every failure is a JSON `{ error, code, status }` with the right status: 400 malformed request,
 * 404 unknown path, 405 wrong method, 408 upload too slow, 413 upload over `maxBytes`, 415 not an
 * image, 422 truncated or corrupt image, 429 too many connections from one address, 500 a model
 * that answers NaN, 503 queue full.
 *
 * Slow clients cannot hold the prediction slots: an upload must arrive within `bodyTimeoutMs` and,
 * after its first seconds, at `minBytesPerSecond` or faster (else 408), and one client address may
 * hold at most `maxConnectionsPerClient` connections (more are answered 429 and closed).
 * Predictions run through a bounded FIFO queue that groups waiting images into batches when the
 * model has `predictBatch` (a `Learner` does).
 */
import * as http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { engineInfo, ready } from "../engine/backend";
import * as tf from "../engine/tf";
import { HttpError } from "./errors";
import { uploadPage } from "./page";
import { asPredictor, checkedBatchPredict, loadPredictor, modelInfo, specKind, TEXT_HOW, topK, type LearnerLike, type Prediction, type Predictor } from "./predictor";
import { BatchQueue } from "./queue";
import { send, sendError, sendJson } from "./respond";
import { readUpload } from "./upload";

/** Options of `serve`. */
export interface ServeOptions {
  /** TCP port; 0 picks a free one (read it from `handle.port`). Default 8000. */
  port?: number;
  /** Interface to listen on; `"0.0.0.0"` serves the whole network. Default `"127.0.0.1"`. */
  host?: string;
  /** Largest request body accepted, in bytes; bigger uploads get a 413. Default 10 MB. */
  maxBytes?: number;
  /** Batches computed at once; the rest wait in a FIFO queue. Default 1 (tfjs computes on one thread). */
  concurrency?: number;
  /** Waiting images predicted together, when the model has `predictBatch`. Default 8. */
  maxBatch?: number;
  /** Requests allowed to wait for a prediction; one more gets a 503. Default 256. */
  maxQueue?: number;
  /** Classes listed in `top` of each answer (the client may ask `?topk=N`). Default 5. */
  topK?: number;
  /** Largest image accepted, in pixels (width × height), checked before decoding. Default 40,000,000. */
  maxPixels?: number;
  /** Milliseconds a request body may take to arrive in full; a slower upload gets a 408. Default 30000. */
  bodyTimeoutMs?: number;
  /** Slowest accepted upload rate in bytes per second, checked from 5 s on (0 = no check). Default 1024. */
  minBytesPerSecond?: number;
  /**
   * Open connections one client address may hold; more are answered 429 and closed. Default: half
   * the prediction slots, (concurrency × maxBatch + maxQueue) / 2 (132 with the other defaults), so
   * one client can never take them all.
   */
  maxConnectionsPerClient?: number;
  /** Heading of the upload page. Default `"tsfast: <export folder name>"`. */
  title?: string;
  /** Called with one line per request (method, path, status, ms); default: no logging. */
  log?: (line: string) => void;
}

/** A running server, as `serve` returns it. */
export interface ServeHandle {
  /** Base URL, e.g. `http://127.0.0.1:8000/`. */
  url: string;
  /** The port listened on (useful with `port: 0`). */
  port: number;
  /** The interface listened on. */
  host: string;
  /** The model answering predictions. */
  predictor: Predictor;
  /** The underlying Node server. */
  server: http.Server;
  /** Stop accepting requests, finish those in flight, and free a model the server loaded itself. */
  close(): Promise<void>;
}

/** Every default of `ServeOptions`, in one place. */
export const serveDefaults = {
  port: 8000,
  host: "127.0.0.1",
  maxBytes: 10 * 1024 * 1024,
  concurrency: 1,
  maxBatch: 8,
  maxQueue: 256,
  topK: 5,
  maxPixels: 40_000_000,
  bodyTimeoutMs: 30_000,
  minBytesPerSecond: 1024,
} as const;

/** The JSON body of a successful `POST /predict`. */
export interface PredictResponse {
  /** Predicted class. */
  label: string;
  /** Its index in `vocab` (see `GET /info`). */
  index: number;
  /** Its probability. */
  probability: number;
  /** The `topK` most probable classes, most probable first. */
  top: { label: string; index: number; probability: number }[];
  /** Every class's probability, in `vocab` order. */
  probs: number[];
  /** Multi-label models: every predicted class. */
  labels?: string[];
  /** Key-point models: each point in pixels of the uploaded image (then `top` is empty). */
  points?: [number, number][];
  /** Segmentation models: class indices per pixel at the model's input size, and their grey PNG (base64). */
  mask?: { width: number; height: number; indices: number[]; png: string };
  /** Regression models: the predicted numbers (then `top` is empty). */
  values?: number[];
  /** Milliseconds spent checking and predicting the batch this image was in (queue wait excluded). */
  ms: number;
}

type Route = { methods: string[]; handler: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<void> };

/**
 * Serve the model exported to `source` (a folder written by `learn.export`) or a `Learner`/`Predictor`
 * in memory, over HTTP; resolves once listening.
 */
export async function serve(source: string | Predictor | LearnerLike, opts: ServeOptions = {}): Promise<ServeHandle> {
  const o = { ...serveDefaults, ...definedOnly(opts) };
  checkPositive("maxBytes", o.maxBytes);
  checkPositive("topK", o.topK);
  checkPositive("maxPixels", o.maxPixels);
  checkPositive("bodyTimeoutMs", o.bodyTimeoutMs);
  const maxPerClient = o.maxConnectionsPerClient ?? Math.max(1, Math.floor((o.concurrency * o.maxBatch + o.maxQueue) / 2));
  checkPositive("maxConnectionsPerClient", maxPerClient);
  if (!(o.minBytesPerSecond >= 0)) throw new Error(`minBytesPerSecond must be 0 or more, got ${o.minBytesPerSecond}`);
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw new Error(`port must be an integer from 0 to 65535, got ${o.port}`);
  }
  const owned = typeof source === "string";
  if (owned) await ready();
  const predictor = owned ? await loadPredictor(source) : asPredictor(source);
  const title = o.title ?? (owned ? `tsfast: ${path.basename(path.resolve(source))}` : "tsfast model");
  const page = uploadPage({ title, vocab: predictor.vocab, maxBytes: o.maxBytes, topK: o.topK, text: specKind(predictor) === "text" });
  const how = specKind(predictor) === "text" ? TEXT_HOW : undefined;
  const queue = new BatchQueue(checkedBatchPredict(predictor, o.maxPixels), o.concurrency, o.maxBatch, o.maxQueue);
  const started = Date.now();
  let served = 0;
  let predictRequests = 0;

  const routes: Record<string, Route> = {
    "/": {
      methods: ["GET", "HEAD"],
      handler: async (_req, res) => send(res, 200, page, "text/html; charset=utf-8"),
    },
    "/health": {
      methods: ["GET", "HEAD"],
      handler: async (_req, res) =>
        sendJson(res, 200, {
          status: "ok",
          uptimeS: Math.round((Date.now() - started) / 1000),
          served,
          active: queue.active,
          queued: queue.pending,
          tensors: tf.memory().numTensors,
        }),
    },
    "/info": {
      methods: ["GET", "HEAD"],
      handler: async (_req, res) =>
        sendJson(res, 200, {
          vocab: predictor.vocab,
          nClasses: predictor.vocab.length,
          isMultiLabel: predictor.isMultiLabel ?? false,
          model: modelInfo(predictor),
          source: owned ? path.resolve(source) : null,
          limits: { maxBytes: o.maxBytes, maxPixels: o.maxPixels, concurrency: o.concurrency, maxBatch: o.maxBatch, maxQueue: o.maxQueue, topK: o.topK, bodyTimeoutMs: o.bodyTimeoutMs, minBytesPerSecond: o.minBytesPerSecond, maxConnectionsPerClient: maxPerClient },
          engine: engineSummary(),
        }),
    },
    "/predict": {
      methods: ["POST"],
      handler: async (req, res, url) => {
        const k = parseTopK(url.searchParams.get("topk"), o.topK, predictor.vocab.length);
        // Uploads being read count too, so memory stays under (concurrency × maxBatch + maxQueue) × maxBytes.
        if (predictRequests >= o.concurrency * o.maxBatch + o.maxQueue) throw busy(predictRequests);
        predictRequests++;
        let pred: Prediction;
        let ms: number;
        try {
          // A client that sent `Expect: 100-continue` waits for our go-ahead: given only once the headers pass.
          const beforeRead = awaitingContinue.has(req) ? () => res.writeContinue() : undefined;
          const upload = await readUpload(req, { maxBytes: o.maxBytes, beforeRead, timeoutMs: o.bodyTimeoutMs, minBytesPerSecond: o.minBytesPerSecond, how });
          ({ pred, ms } = await queue.push(upload));
        } finally {
          predictRequests--;
        }
        if (!Array.isArray(pred.probs) || !pred.probs.every(Number.isFinite)) {
          throw new HttpError(
            500,
            "non_finite_output",
            "the model answered NaN or infinite probabilities, so no label can be trusted; it is broken (e.g. exported after training diverged): retrain it and export again",
          );
        }
        // points and numbers have no classes to rank
        const top = pred.points || pred.values ? [] : topK(pred.probs, predictor.vocab, k);
        const body: PredictResponse = {
          label: pred.label,
          index: pred.index,
          probability: pred.probs[pred.index] ?? NaN,
          top,
          probs: pred.probs,
          ms: Math.round(ms * 100) / 100,
        };
        if (pred.labels) body.labels = pred.labels;
        if (pred.points) body.points = pred.points;
        if (pred.mask) body.mask = pred.mask;
        if (pred.values) body.values = pred.values;
        served++;
        sendJson(res, 200, body);
      },
    },
  };

  const awaitingContinue = new WeakSet<http.IncomingMessage>();
  const refused = new WeakSet<Socket>();
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const t0 = performance.now();
    res.on("finish", () => o.log?.(`${req.method} ${req.url} ${res.statusCode} ${(performance.now() - t0).toFixed(1)}ms`));
    if (refused.has(req.socket)) {
      res.shouldKeepAlive = false;
      const addr = req.socket.remoteAddress ?? "?";
      const msg = `too many connections from ${addr} (maxConnectionsPerClient ${maxPerClient}); close some and retry`;
      sendError(req, res, new HttpError(429, "too_many_connections", msg, { "Retry-After": "1" }));
      return;
    }
    handle(req, res, routes).catch((e) => {
      // handle() answers every error itself; this is a last line of defence against a crash.
      o.log?.(`internal error: ${e instanceof Error ? e.stack : String(e)}`);
      if (!res.headersSent) sendJson(res, 500, { error: "internal server error", code: "internal", status: 500 });
      else res.destroy();
    });
  };
  const server = http.createServer({ requestTimeout: 60_000, headersTimeout: 30_000 }, onRequest);
  server.on("checkContinue", (req: http.IncomingMessage, res: http.ServerResponse) => {
    awaitingContinue.add(req);
    onRequest(req, res);
  });
  // One address may not hold every slot: past maxConnectionsPerClient its new connections get a 429.
  const perClient = new Map<string, number>();
  server.on("connection", (socket: Socket) => {
    const addr = socket.remoteAddress ?? "?";
    const n = (perClient.get(addr) ?? 0) + 1;
    if (n > maxPerClient) {
      refused.add(socket);
      return;
    }
    perClient.set(addr, n);
    socket.once("close", () => {
      const left = (perClient.get(addr) ?? 1) - 1;
      if (left > 0) perClient.set(addr, left);
      else perClient.delete(addr);
    });
  });
  // Unparseable HTTP (bad request line, oversized headers): answer 400 and drop the socket.
  server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable && err.code !== "ECONNRESET") {
      const body = JSON.stringify({ error: `malformed HTTP request: ${err.message}`, code: "bad_request", status: 400 });
      socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    } else socket.destroy();
  });

  await listen(server, o.port, o.host).catch((e: unknown) => {
    if (owned) predictor.dispose?.();
    throw e;
  });
  server.on("error", (e) => o.log?.(`server error: ${e.message}`));
  const port = (server.address() as AddressInfo).port;
  const urlHost = o.host.includes(":") ? `[${o.host}]` : o.host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}/`,
    port,
    host: o.host,
    predictor,
    server,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), 2000);
        server.close(() => {
          clearTimeout(force);
          if (owned) predictor.dispose?.();
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

// Listen, turning the usual failures into sentences that say what to change.
function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        e.code === "EADDRINUSE"
          ? new Error(`port ${port} on ${host} is already in use; choose another with the port option (--port on the command line)`)
          : e.code === "EADDRNOTAVAIL" || e.code === "ENOTFOUND"
            ? new Error(`cannot listen on host "${host}" (${e.code}); use an address of this machine, e.g. 127.0.0.1 or 0.0.0.0`)
            : e,
      ),
    );
    server.listen(port, host, () => {
      server.removeAllListeners("error");
      resolve();
    });
  });
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, routes: Record<string, Route>): Promise<void> {
  try {
    let url: URL;
    try {
      // An origin-form path is appended, never parsed alone: "//predict" would read as a host name.
      const raw = req.url ?? "/";
      url = raw.startsWith("/") ? new URL(`http://localhost${raw}`) : new URL(raw, "http://localhost");
    } catch {
      throw new HttpError(400, "bad_request", `cannot parse the request path "${req.url}"`);
    }
    const route = Object.prototype.hasOwnProperty.call(routes, url.pathname) ? routes[url.pathname] : undefined;
    if (!route) {
      throw new HttpError(404, "not_found", `no such path "${url.pathname}"; try GET /, POST /predict, GET /health, GET /info`);
    }
    const method = req.method ?? "GET";
    if (!route.methods.includes(method)) {
      throw new HttpError(405, "method_not_allowed", `${method} is not allowed on ${url.pathname}; use ${route.methods.join(" or ")}`, {
        Allow: route.methods.join(", "),
      });
    }
    await route.handler(req, res, url);
  } catch (e) {
    const err = e instanceof HttpError ? e : new HttpError(500, "predict_failed", `prediction failed: ${e instanceof Error ? e.message : String(e)}`);
    sendError(req, res, err);
  }
}

function busy(n: number): HttpError {
  return new HttpError(503, "busy", `the server is busy with ${n} prediction requests (concurrency × maxBatch + maxQueue); retry shortly`, { "Retry-After": "1" });
}

function parseTopK(raw: string | null, dflt: number, nClasses: number): number {
  if (raw === null || raw === "") return Math.min(dflt, nClasses);
  const k = Number(raw);
  if (!Number.isInteger(k) || k < 1) throw new HttpError(400, "bad_topk", `topk must be a positive integer, got "${raw}"`);
  return Math.min(k, nClasses);
}

function checkPositive(name: string, v: number): void {
  if (!(typeof v === "number" && v > 0 && Number.isFinite(v))) throw new Error(`${name} must be a positive number, got ${v}`);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function engineSummary(): unknown {
  try {
    // The server never starts the engine itself (the model's loader does); it only reports it.
    const e = engineInfo();
    return { engine: e.engine, backend: e.backend, threads: e.threads };
  } catch {
    return null;
  }
}
