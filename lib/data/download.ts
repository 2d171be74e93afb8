/**
 * HTTP(S) downloads with Node's own `http`/`https`: progress, sha256 check, resume of a partial
 * file with an HTTP `Range` request, connect and stall timeouts, and atomic results (bytes go to
 * `<file>.part`, which is renamed to `<file>` only once complete and verified).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";

/** An error from a download; `url` and `code` say what failed (`status` for an HTTP status). */
export class DownloadError extends Error {
  /** The URL that was being fetched. */
  readonly url: string;
  /** A stable code: `HTTP`, `NETWORK`, `CONNECT_TIMEOUT`, `STALLED`, `TRUNCATED`, `CHECKSUM`, `TOO_LARGE`, `TIMEOUT`. */
  readonly code: string;
  /** HTTP status when `code` is `HTTP`. */
  readonly status?: number;
  constructor(message: string, url: string, code: string, status?: number) {
    super(message);
    this.name = "DownloadError";
    this.url = url;
    this.code = code;
    if (status !== undefined) this.status = status;
  }
}

/** What `onProgress` receives while bytes arrive. */
export interface DownloadProgress {
  url: string;
  /** The final file path (bytes are written to `file + ".part"` first). */
  file: string;
  /** Bytes on disk so far, including a resumed prefix. */
  received: number;
  /** Total size when the server said it, else `undefined`. */
  total?: number;
}

/** Options of `downloadFile`. */
export interface DownloadFileOptions {
  /** Expected sha256 (hex) of the whole file; a mismatch deletes the `.part` and throws. Default: not checked. */
  sha256?: string;
  /** Milliseconds allowed for DNS + TCP/TLS connect. Default 10000. */
  connectTimeoutMs?: number;
  /** Milliseconds without any byte arriving before giving up ("stall"). Default 30000. */
  timeoutMs?: number;
  /** Milliseconds for the whole transfer, per attempt. Default: unlimited. */
  totalTimeoutMs?: number;
  /** Called as bytes arrive (at most every 100 ms, plus once at the end). Default: none. */
  onProgress?: (p: DownloadProgress) => void;
  /** Continue an existing `<file>.part` with a `Range` request. Default true. */
  resume?: boolean;
  /** Extra attempts after a truncated/stalled/network-failed transfer, each resuming. Default 2. */
  retries?: number;
  /** Refuse files larger than this many bytes. Default: unlimited. */
  maxBytes?: number;
  /** Extra request headers. Default none. */
  headers?: Record<string, string>;
  /** Redirects followed before giving up. Default 5. */
  maxRedirects?: number;
}

const DEFAULTS = { connectTimeoutMs: 10_000, timeoutMs: 30_000, retries: 2, maxRedirects: 5 };

/** Fetched response head: status, headers and the (unconsumed) body stream. */
interface Opened {
  res: http.IncomingMessage;
  req: http.ClientRequest;
  finalUrl: string;
  /** Abort the transfer with `err` (remembered, so readers can report it instead of "aborted"). */
  abort(err: DownloadError): void;
  /** The error the transfer was aborted with, if any. */
  failure(): DownloadError | undefined;
}

/**
 * Open a GET request, following redirects; the connect timer covers DNS + connect, the stall
 * timer covers every silence afterwards (socket inactivity).
 */
export function openUrl(
  url: string,
  opts: { headers?: Record<string, string>; connectTimeoutMs?: number; timeoutMs?: number; maxRedirects?: number } = {},
): Promise<Opened> {
  const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
  const timeoutMs = opts.timeoutMs ?? DEFAULTS.timeoutMs;
  let redirectsLeft = opts.maxRedirects ?? DEFAULTS.maxRedirects;
  const go = (current: string): Promise<Opened> =>
    new Promise((resolve, reject) => {
      let u: URL;
      try {
        u = new URL(current);
      } catch {
        reject(new DownloadError(`invalid URL: ${JSON.stringify(current)}`, current, "NETWORK"));
        return;
      }
      const lib = u.protocol === "https:" ? https : u.protocol === "http:" ? http : null;
      if (!lib) {
        reject(new DownloadError(`unsupported protocol ${u.protocol} in ${current} (use http: or https:)`, current, "NETWORK"));
        return;
      }
      const req = lib.get(u, { headers: { "user-agent": "tsfast", ...opts.headers } });
      let failure: DownloadError | undefined;
      const abort = (err: DownloadError) => {
        failure ??= err;
        req.destroy(err);
      };
      let connected = false;
      const connectTimer = setTimeout(() => {
        abort(
          new DownloadError(
            `could not connect to ${u.host} within ${connectTimeoutMs} ms for ${current} (no network?)`,
            current,
            "CONNECT_TIMEOUT",
          ),
        );
      }, connectTimeoutMs);
      req.on("socket", (sock) => {
        const onConnect = () => {
          connected = true;
          clearTimeout(connectTimer);
        };
        // A reused keep-alive socket is already connected.
        if (!sock.connecting) onConnect();
        else sock.once(u.protocol === "https:" ? "secureConnect" : "connect", onConnect);
      });
      req.setTimeout(timeoutMs, () => {
        if (!connected) return; // the connect timer owns that phase
        abort(new DownloadError(`download stalled: no data for ${timeoutMs} ms from ${current}`, current, "STALLED"));
      });
      req.on("error", (err: NodeJS.ErrnoException) => {
        clearTimeout(connectTimer);
        if (err instanceof DownloadError) reject(err);
        else
          reject(
            new DownloadError(`cannot fetch ${current}: ${err.code ?? ""} ${err.message} (no network?)`.replace(/  +/g, " "), current, "NETWORK"),
          );
      });
      req.on("response", (res) => {
        clearTimeout(connectTimer);
        connected = true;
        const status = res.statusCode ?? 0;
        if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
          res.resume();
          req.destroy();
          if (redirectsLeft-- <= 0) {
            reject(new DownloadError(`too many redirects fetching ${url}`, url, "HTTP", status));
            return;
          }
          resolve(go(new URL(res.headers.location, current).toString()));
          return;
        }
        resolve({ res, req, finalUrl: current, abort, failure: () => failure });
      });
    });
  return go(url);
}

/** Read a small response body fully (for JSON APIs); refuses more than `maxBytes`. */
export async function readBody(o: Opened, maxBytes = 16 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of o.res as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > maxBytes) {
      o.req.destroy();
      throw new DownloadError(`response from ${o.finalUrl} is larger than ${maxBytes} bytes`, o.finalUrl, "TOO_LARGE");
    }
    chunks.push(chunk);
  }
  if (!o.res.complete) throw new DownloadError(`connection closed early by ${o.finalUrl}`, o.finalUrl, "TRUNCATED");
  return Buffer.concat(chunks);
}

/** sha256 (hex) of a file on disk. */
export async function sha256File(file: string): Promise<string> {
  const h = crypto.createHash("sha256");
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest("hex");
}

function isRetryable(e: unknown): boolean {
  return e instanceof DownloadError && ["NETWORK", "STALLED", "TRUNCATED", "CONNECT_TIMEOUT"].includes(e.code);
}

/**
 * Download `url` to `file`: bytes go to `file + ".part"` and are renamed to `file` only when the
 * transfer completed and (if given) the sha256 matched. A `.part` left by an interrupted call is
 * resumed with an HTTP `Range` request. Returns `file`.
 */
export async function downloadFile(url: string, file: string, opts: DownloadFileOptions = {}): Promise<string> {
  const retries = opts.retries ?? DEFAULTS.retries;
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      await downloadOnce(url, file, opts);
      return file;
    } catch (e) {
      if (attempt >= retries || !isRetryable(e)) throw e;
    }
  }
}

async function downloadOnce(url: string, file: string, opts: DownloadFileOptions): Promise<void> {
  const part = file + ".part";
  const resume = opts.resume ?? true;
  let have = 0;
  if (resume) {
    try {
      have = (await fs.promises.stat(part)).size;
    } catch {
      have = 0;
    }
  }
  const headers: Record<string, string> = { ...opts.headers };
  if (have > 0) headers["range"] = `bytes=${have}-`;
  const o = await openUrl(url, { ...opts, headers });
  const { res } = o;
  const status = res.statusCode ?? 0;
  let append = false;
  let total: number | undefined;
  const contentLength = res.headers["content-length"] !== undefined ? Number(res.headers["content-length"]) : undefined;
  if (status === 206 && have > 0) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers["content-range"] ?? "");
    if (m && Number(m[1]) === have) {
      append = true;
      if (m[3] !== "*") total = Number(m[3]);
    } else {
      res.resume();
      o.req.destroy();
      // An unexpected range: start again from zero on the next attempt.
      await fs.promises.rm(part, { force: true });
      throw new DownloadError(`server sent an unexpected Content-Range for ${url}; restarting`, url, "NETWORK");
    }
  } else if (status === 416 && have > 0) {
    // Our .part is already as long as (or longer than) the file: start over.
    res.resume();
    o.req.destroy();
    await fs.promises.rm(part, { force: true });
    throw new DownloadError(`range not satisfiable for ${url}; restarting`, url, "NETWORK");
  } else if (status === 200) {
    total = contentLength;
  } else {
    res.resume();
    o.req.destroy();
    throw new DownloadError(`HTTP ${status} ${res.statusMessage ?? ""} for ${url}`.trimEnd(), url, "HTTP", status);
  }
  if (opts.maxBytes !== undefined && total !== undefined && total > opts.maxBytes) {
    res.resume();
    o.req.destroy();
    throw new DownloadError(`${url} is ${total} bytes, more than maxBytes=${opts.maxBytes}`, url, "TOO_LARGE");
  }
  const out = await fs.promises.open(part, append ? "a" : "w");
  let received = append ? have : 0;
  let lastReport = 0;
  const report = (force: boolean) => {
    if (!opts.onProgress) return;
    const now = Date.now();
    if (!force && now - lastReport < 100) return;
    lastReport = now;
    opts.onProgress({ url, file, received, ...(total !== undefined ? { total } : {}) });
  };
  let totalTimer: NodeJS.Timeout | undefined;
  if (opts.totalTimeoutMs !== undefined) {
    totalTimer = setTimeout(
      () => o.abort(new DownloadError(`download of ${url} took longer than ${opts.totalTimeoutMs} ms`, url, "TIMEOUT")),
      opts.totalTimeoutMs,
    );
  }
  try {
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (opts.maxBytes !== undefined && received > opts.maxBytes) {
          o.req.destroy();
          throw new DownloadError(`${url} is larger than maxBytes=${opts.maxBytes}`, url, "TOO_LARGE");
        }
        await out.write(chunk);
        report(false);
      }
    } catch (e) {
      if (e instanceof DownloadError) throw e;
      const err = o.failure() ?? e;
      if (err instanceof DownloadError) throw err;
      throw new DownloadError(
        `connection to ${url} failed after ${received} bytes: ${(err as Error).message}; the partial file ${part} is kept to resume`,
        url,
        "TRUNCATED",
      );
    }
    // A destroyed request (stall/total timeout) can end the iteration without throwing.
    const reqErr = o.failure();
    if (reqErr) throw reqErr;
    if (!res.complete || (total !== undefined && received !== total)) {
      throw new DownloadError(
        `connection closed early: got ${received} of ${total ?? "?"} bytes of ${url}; the partial file ${part} is kept to resume`,
        url,
        "TRUNCATED",
      );
    }
  } catch (e) {
    if (e instanceof DownloadError && e.code === "TOO_LARGE") {
      await out.close();
      await fs.promises.rm(part, { force: true });
    }
    throw e;
  } finally {
    if (totalTimer) clearTimeout(totalTimer);
    await out.close().catch(() => undefined);
  }
  report(true);
  if (opts.sha256) {
    const actual = await sha256File(part);
    if (actual !== opts.sha256.toLowerCase()) {
      await fs.promises.rm(part, { force: true });
      throw new DownloadError(
        `checksum mismatch for ${url} (file ${file}): expected sha256 ${opts.sha256.toLowerCase()}, got ${actual}; the download was deleted`,
        url,
        "CHECKSUM",
      );
    }
  }
  await fs.promises.rename(part, file);
}
