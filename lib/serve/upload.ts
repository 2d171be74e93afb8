/**
 * Reading an uploaded image out of a request: a `multipart/form-data` field, or the raw body.
 *
 * The body is streamed and counted; past `maxBytes` the read stops at once (413) — a declared
 * `Content-Length` over the cap is refused before a byte is read. A body that takes longer than
 * `timeoutMs`, or arrives slower than `minBytesPerSecond` once `RATE_GRACE_MS` have passed, is
 * refused with a 408, so a slow client cannot hold a prediction slot for long.
 */
import type { IncomingMessage } from "node:http";
import { HttpError, formatBytes } from "./errors";
import { MultipartParser, boundaryOf } from "./multipart";

/** An image upload, before it is decoded. */
export interface Upload {
  /** The image bytes. */
  data: Buffer;
  /** File name the client gave (multipart only). */
  filename?: string;
  /** How it came: a multipart field, the whole body, or a JSON row for a table model (`application/json`). */
  via: "multipart" | "raw" | "json";
}

/** Options of `readUpload`. */
export interface UploadOptions {
  /** Most bytes the request body may have. */
  maxBytes: number;
  /** Multipart field that holds the image. Default `"file"`. */
  field?: string;
  /** Called once the request passed its header checks, just before the body is read (sends `100 Continue`). */
  beforeRead?: () => void;
  /** What to tell a client whose body is refused (default: how to send an image, or a JSON row). */
  how?: string;
  /** Milliseconds the whole body may take. Default 30000. */
  timeoutMs?: number;
  /** Slowest accepted rate once `RATE_GRACE_MS` have passed, in bytes per second (0 = none). Default 1024. */
  minBytesPerSecond?: number;
}

/** Time an upload may take before its rate is checked (a slow start is normal). */
export const RATE_GRACE_MS = 5000;

const HOW =
  'send the image as multipart/form-data field "file" (curl -F file=@cat.jpg) or as the raw body with ' +
  "Content-Type image/* or application/octet-stream (curl --data-binary @cat.jpg -H 'Content-Type: image/jpeg')";

/** Read the image a `POST /predict` carries; throws an `HttpError` (400, 413, 415) saying what is wrong. */
export async function readUpload(req: IncomingMessage, opts: UploadOptions): Promise<Upload> {
  const field = opts.field ?? "file";
  const contentType = (req.headers["content-type"] ?? "").trim();
  const mime = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > opts.maxBytes) {
    throw tooLarge(opts.maxBytes, Number(declared), true);
  }

  if (mime === "multipart/form-data") {
    const parser = new MultipartParser(boundaryOf(contentType));
    opts.beforeRead?.();
    const total = await readBody(req, opts, (chunk) => parser.write(chunk));
    if (total === 0) throw new HttpError(400, "empty_body", `the request body is empty; ${opts.how ?? HOW}`);
    const parts = parser.end();
    const matching = parts.filter((p) => p.name === field);
    if (matching.length > 1) {
      throw new HttpError(400, "duplicate_field", `multipart body has ${matching.length} "${field}" fields; send one image per request`);
    }
    const part = matching[0];
    if (!part) {
      const names = parts.map((p) => `"${p.name}"`).join(", ") || "none";
      throw new HttpError(400, "missing_field", `multipart body has no field "${field}" (fields given: ${names}); ${opts.how ?? HOW}`);
    }
    if (part.data.length === 0) {
      throw new HttpError(400, "empty_file", `multipart field "${field}" is empty (no file chosen?)`);
    }
    const upload: Upload = { data: part.data, via: "multipart" };
    if (part.filename !== undefined) upload.filename = part.filename;
    return upload;
  }

  // ---- tables: a JSON row ({ "column": value, ... }) for a tabular export, checked by `checkedBatchPredict`
  if (mime === "application/json") {
    const chunks: Buffer[] = [];
    opts.beforeRead?.();
    const total = await readBody(req, opts, (chunk) => chunks.push(chunk));
    if (total === 0) throw new HttpError(400, "empty_body", `the request body is empty; ${opts.how ?? 'send a JSON row such as {"age": 39, "workclass": "Private"}'}`);
    return { data: Buffer.concat(chunks, total), via: "json" };
  }
  // ---- end tables

  // An absent Content-Type is accepted: the bytes are sniffed when decoded.
  if (mime !== "" && !mime.startsWith("image/") && mime !== "application/octet-stream") {
    throw new HttpError(415, "unsupported_media_type", `Content-Type "${mime}" is not accepted; ${opts.how ?? HOW}`);
  }
  const chunks: Buffer[] = [];
  opts.beforeRead?.();
  const total = await readBody(req, opts, (chunk) => chunks.push(chunk));
  if (total === 0) throw new HttpError(400, "empty_body", `the request body is empty; ${opts.how ?? HOW}`);
  return { data: Buffer.concat(chunks, total), via: "raw" };
}

function tooLarge(maxBytes: number, seen: number, declared: boolean): HttpError {
  return new HttpError(
    413,
    "payload_too_large",
    declared
      ? `upload of ${formatBytes(seen)} (Content-Length) exceeds the limit of ${formatBytes(maxBytes)} (maxBytes)`
      : `upload exceeds the limit of ${formatBytes(maxBytes)} (maxBytes); reading stopped after ${formatBytes(seen)}`,
  );
}

/**
 * Stream the body into `onChunk`, counting bytes; rejects with 413 the moment the count passes
 * `maxBytes` (and stops reading), with 408 when it is too slow (see the module comment), or with
 * whatever `onChunk` throws. Resolves with the byte count.
 */
function readBody(req: IncomingMessage, opts: UploadOptions, onChunk: (chunk: Buffer) => void): Promise<number> {
  const maxBytes = opts.maxBytes;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const minRate = opts.minBytesPerSecond ?? 1024;
  return new Promise((resolve, reject) => {
    let total = 0;
    let settled = false;
    const t0 = Date.now();
    const deadline = setTimeout(
      () => finish(new HttpError(408, "request_timeout", `the upload did not arrive within ${timeoutMs} ms (${formatBytes(total)} received); send it in one go`)),
      timeoutMs,
    );
    const rateCheck =
      minRate > 0
        ? setInterval(() => {
            const ms = Date.now() - t0;
            if (ms >= RATE_GRACE_MS && (total * 1000) / ms < minRate) {
              finish(new HttpError(408, "request_timeout", `the upload is arriving too slowly (${formatBytes(total)} in ${(ms / 1000).toFixed(1)} s; at least ${formatBytes(minRate)}/s is needed)`));
            }
          }, 1000)
        : undefined;
    const finish = (err: unknown, n?: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (rateCheck) clearInterval(rateCheck);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("aborted", onAborted);
      if (err) {
        req.pause(); // stop reading: the server answers and closes the connection
        reject(err);
      } else resolve(n ?? 0);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > maxBytes) return finish(tooLarge(maxBytes, total, false));
      try {
        onChunk(chunk);
      } catch (e) {
        finish(e);
      }
    };
    const onEnd = (): void => finish(undefined, total);
    const onError = (e: Error): void => finish(new HttpError(400, "bad_request", `reading the request failed: ${e.message}`));
    const onAborted = (): void => finish(new HttpError(400, "aborted", "the client aborted the upload"));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("aborted", onAborted);
  });
}
