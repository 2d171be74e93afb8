/**
 * Writing answers: JSON and HTML bodies, errors as `{ error, code, status }`, and the "lingering
 * close" after refusing an upload that is still arriving.
 */
import type * as http from "node:http";
import { HttpError } from "./errors";

/** Answer `err` as JSON; after a body left unread, discard the rest before closing (see `linger`). */
export function sendError(req: http.IncomingMessage, res: http.ServerResponse, err: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  // A body we stopped reading (413, bad multipart) is answered at once; see `linger`.
  const hasBody = req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
  if (hasBody && !req.complete) res.on("finish", () => linger(req));
  sendJson(res, err.status, { error: err.message, code: err.code, status: err.status });
}

const LINGER_MS = 2000;
const LINGER_BYTES = 64 * 1024 * 1024;

/**
 * After answering a request whose body was not read to the end: discard (never buffer) what the
 * client is still sending, for at most `LINGER_MS` and `LINGER_BYTES`, then drop the connection.
 * Closing at once would make the kernel reset the connection while the client is still writing,
 * and most clients then report a broken pipe instead of the 413 they were sent.
 */
function linger(req: http.IncomingMessage): void {
  const socket = req.socket;
  let bytes = 0;
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  socket.once("close", () => clearTimeout(timer));
  req.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > LINGER_BYTES) socket.destroy();
  });
  req.on("end", () => {
    clearTimeout(timer);
    socket.destroy();
  });
  req.resume();
}

/** Answer `body` with `status` and `Content-Type: type`, never cached. */
export function send(res: http.ServerResponse, status: number, body: string, type: string): void {
  res.writeHead(status, {
    "Content-Type": type,
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
  });
  res.end(body);
}

/** Answer `value` as JSON. */
export function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value), "application/json; charset=utf-8");
}
