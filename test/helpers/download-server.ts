/**
 * Test fixtures for the download/dataset tests: a local HTTP server on 127.0.0.1 with per-path
 * handlers, a temporary TSFAST_HOME, and a minimal tar writer for hand-made (malicious) archives.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { tempDir } from "./tmp";

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface TestServer {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** Every request seen: path and its `range` header. */
  requests: { path: string; range?: string }[];
  route(p: string, h: Handler): void;
  close(): Promise<void>;
}

/** Start an HTTP server on 127.0.0.1 with an ephemeral port; unknown paths get 404. */
export async function startServer(): Promise<TestServer> {
  const routes = new Map<string, Handler>();
  const requests: { path: string; range?: string }[] = [];
  const sockets = new Set<import("node:net").Socket>();
  const server = http.createServer((req, res) => {
    const p = new URL(req.url ?? "/", "http://x").pathname;
    requests.push({ path: p, ...(req.headers.range ? { range: req.headers.range } : {}) });
    const h = routes.get(p);
    if (h) h(req, res);
    else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
    }
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    route: (p, h) => routes.set(p, h),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Serve `body` with `Range` support (206 + Content-Range) like a static file server. */
export function serveBytes(body: Buffer, contentType = "application/octet-stream"): Handler {
  return (req, res) => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (m) {
      const start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { "content-range": `bytes */${body.length}` });
        res.end();
        return;
      }
      res.writeHead(206, {
        "content-type": contentType,
        "content-length": body.length - start,
        "content-range": `bytes ${start}-${body.length - 1}/${body.length}`,
      });
      res.end(body.subarray(start));
      return;
    }
    res.writeHead(200, { "content-type": contentType, "content-length": body.length });
    res.end(body);
  };
}

/** A fresh temporary folder; also sets `TSFAST_HOME` to a folder inside it. */
export function tmpHome(label: string): string {
  const dir = tempDir(`tsfast-${label}-`);
  process.env.TSFAST_HOME = path.join(dir, "home");
  return dir;
}

/** Every file under `dir` (relative, sorted), including dot files. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out.push(path.relative(dir, p) + (e.isDirectory() ? "/" : e.isSymbolicLink() ? "@" : ""));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** One ustar entry (header + padded data), written by hand so tests can make hostile archives. */
export function tarEntry(name: string, opts: { type?: string; data?: Buffer; linkname?: string; mode?: number } = {}): Buffer {
  const data = opts.data ?? Buffer.alloc(0);
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, "utf8");
  h.write(((opts.mode ?? 0o644) & 0o7777).toString(8).padStart(7, "0") + "\0", 100, "ascii");
  h.write("0000000\0", 108, "ascii");
  h.write("0000000\0", 116, "ascii");
  h.write(data.length.toString(8).padStart(11, "0") + "\0", 124, "ascii");
  h.write("00000000000\0", 136, "ascii");
  h.write(opts.type ?? "0", 156, "ascii");
  h.write(opts.linkname ?? "", 157, 100, "utf8");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  h.fill(32, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([h, data, pad]);
}

/** A whole tar from entries (adds the two zero end blocks). */
export function tarOf(entries: Buffer[]): Buffer {
  return Buffer.concat([...entries, Buffer.alloc(1024)]);
}
