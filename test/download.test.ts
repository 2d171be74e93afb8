import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { DownloadError, downloadFile } from "../lib/data/download";
import { startServer, serveBytes, tmpHome, type TestServer } from "./helpers/download-server";

// 300 kB of deterministic bytes (a sha256 chain), so resumes cross several chunks.
function payload(n: number): Buffer {
  const parts: Buffer[] = [];
  let h = Buffer.from("tsfast");
  let len = 0;
  while (len < n) {
    h = crypto.createHash("sha256").update(h).digest();
    parts.push(h);
    len += h.length;
  }
  return Buffer.concat(parts).subarray(0, n);
}
const body = payload(300_000);
const sha = crypto.createHash("sha256").update(body).digest("hex");

let srv: TestServer;
let dir: string;
before(async () => {
  srv = await startServer();
  dir = tmpHome("download");
  srv.route("/good.bin", serveBytes(body));
  // First plain GET: promise the whole length, send 100 kB, then cut the connection.
  // Range GETs are served properly, so a resume completes the file.
  srv.route("/truncated.bin", (req, res) => {
    if (req.headers.range) return serveBytes(body)(req, res);
    res.writeHead(200, { "content-length": body.length });
    res.write(body.subarray(0, 100_000), () => setTimeout(() => res.destroy(), 20));
  });
  // Sends headers and 10 bytes, then nothing.
  srv.route("/slow.bin", (_req, res) => {
    res.writeHead(200, { "content-length": body.length });
    res.write(body.subarray(0, 10));
  });
  // A server that ignores Range and always sends the whole file with 200.
  srv.route("/norange.bin", (_req, res) => {
    res.writeHead(200, { "content-length": body.length });
    res.end(body);
  });
  srv.route("/moved", (_req, res) => {
    res.writeHead(302, { location: "/good.bin" });
    res.end();
  });
});
after(async () => {
  await srv.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("downloadFile saves a verified file, reports progress and leaves no .part", async () => {
  const file = path.join(dir, "a", "good.bin");
  const seen: number[] = [];
  const out = await downloadFile(`${srv.url}/good.bin`, file, { sha256: sha, onProgress: (p) => seen.push(p.received) });
  assert.equal(out, file);
  assert.ok(fs.readFileSync(file).equals(body));
  assert.equal(fs.existsSync(file + ".part"), false);
  assert.equal(seen.at(-1), body.length);
});

test("downloadFile follows a redirect", async () => {
  const file = path.join(dir, "moved.bin");
  await downloadFile(`${srv.url}/moved`, file, { sha256: sha });
  assert.ok(fs.readFileSync(file).equals(body));
});

test("a wrong checksum names url, file, expected and actual hashes and leaves nothing behind", async () => {
  const file = path.join(dir, "bad.bin");
  const wrong = "0".repeat(64);
  await assert.rejects(downloadFile(`${srv.url}/good.bin`, file, { sha256: wrong }), (e: unknown) => {
    assert.ok(e instanceof DownloadError);
    assert.equal(e.code, "CHECKSUM");
    assert.match(e.message, new RegExp(`${srv.url}/good.bin`));
    assert.ok(e.message.includes(wrong) && e.message.includes(sha) && e.message.includes(file));
    return true;
  });
  assert.equal(fs.existsSync(file), false);
  assert.equal(fs.existsSync(file + ".part"), false);
});

test("a truncated download keeps only the .part, and the next call resumes it with a Range request", async () => {
  const file = path.join(dir, "trunc1.bin");
  const url = `${srv.url}/truncated.bin`;
  await assert.rejects(downloadFile(url, file, { sha256: sha, retries: 0 }), (e: unknown) => {
    assert.ok(e instanceof DownloadError);
    assert.equal(e.code, "TRUNCATED");
    assert.ok(e.message.includes(url));
    return true;
  });
  assert.equal(fs.existsSync(file), false, "no half-written file under the final name");
  // what arrived before the cut at 100,000 bytes (a reset can drop some in flight)
  const partSize = fs.statSync(file + ".part").size;
  assert.ok(partSize > 0 && partSize <= 100_000, `.part holds ${partSize} bytes`);
  const before = srv.requests.length;
  await downloadFile(url, file, { sha256: sha, retries: 0 });
  assert.ok(fs.readFileSync(file).equals(body));
  assert.equal(fs.existsSync(file + ".part"), false);
  assert.deepEqual(srv.requests.slice(before), [{ path: "/truncated.bin", range: `bytes=${partSize}-` }]);
});

test("with retries a truncated download resumes automatically within one call", async () => {
  const file = path.join(dir, "trunc2.bin");
  const before = srv.requests.length;
  await downloadFile(`${srv.url}/truncated.bin`, file, { sha256: sha });
  assert.ok(fs.readFileSync(file).equals(body));
  // The second request resumes where the first one's bytes ended. The server cuts the connection
  // after 100,000 bytes; a reset can drop some still in flight (CI once saw 65,409), so the offset
  // is any prefix of that, never 0 (a restart) or past the cut.
  const ranges = srv.requests.slice(before).map((r) => r.range ?? "none");
  assert.equal(ranges.length, 2, `requests: ${ranges.join(", ")}`);
  assert.equal(ranges[0], "none");
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1]!)?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= 100_000, `the retry asked for ${ranges[1]}`);
});

test("a stale .part is replaced, not appended to, when the server ignores Range", async () => {
  const file = path.join(dir, "norange.bin");
  fs.writeFileSync(file + ".part", Buffer.alloc(5000, 9));
  await downloadFile(`${srv.url}/norange.bin`, file, { sha256: sha });
  assert.ok(fs.readFileSync(file).equals(body));
  assert.equal(srv.requests.filter((r) => r.path === "/norange.bin").at(-1)?.range, "bytes=5000-");
});

test("a stalled download fails after timeoutMs with a STALLED error", async () => {
  const file = path.join(dir, "slow.bin");
  const t0 = Date.now();
  await assert.rejects(downloadFile(`${srv.url}/slow.bin`, file, { timeoutMs: 300, retries: 0 }), (e: unknown) => {
    assert.ok(e instanceof DownloadError);
    assert.equal(e.code, "STALLED");
    assert.match(e.message, /no data for 300 ms/);
    return true;
  });
  const dt = Date.now() - t0;
  assert.ok(dt >= 250 && dt < 3000, `took ${dt} ms`);
  assert.equal(fs.existsSync(file), false);
});

test("a 404 fails at once with the status and the URL, without retrying", async () => {
  const file = path.join(dir, "missing.bin");
  const before = srv.requests.length;
  await assert.rejects(downloadFile(`${srv.url}/missing.bin`, file), (e: unknown) => {
    assert.ok(e instanceof DownloadError);
    assert.equal(e.status, 404);
    assert.match(e.message, /HTTP 404/);
    assert.ok(e.message.includes(`${srv.url}/missing.bin`));
    return true;
  });
  assert.equal(srv.requests.length - before, 1);
  assert.equal(fs.existsSync(file), false);
  assert.equal(fs.existsSync(file + ".part"), false);
});

test("maxBytes refuses a larger file and deletes what was written", async () => {
  const file = path.join(dir, "big.bin");
  await assert.rejects(downloadFile(`${srv.url}/good.bin`, file, { maxBytes: 1000 }), /maxBytes=1000/);
  assert.equal(fs.existsSync(file + ".part"), false);
});

test("an unreachable host fails fast with a NETWORK error", async () => {
  // Grab a free port, then close it so nothing listens there.
  const s2 = await startServer();
  const url = `${s2.url}/x.bin`;
  await s2.close();
  const t0 = Date.now();
  await assert.rejects(downloadFile(url, path.join(dir, "x.bin"), { retries: 0 }), (e: unknown) => {
    assert.ok(e instanceof DownloadError);
    assert.equal(e.code, "NETWORK");
    assert.ok(e.message.includes(url));
    return true;
  });
  assert.ok(Date.now() - t0 < 2000);
});

test("a TLS server that never completes the handshake trips connectTimeoutMs", async () => {
  // Accepts TCP and then says nothing, so https never reaches "secureConnect".
  const sockets: net.Socket[] = [];
  const mute = net.createServer((s) => sockets.push(s));
  await new Promise<void>((r) => mute.listen(0, "127.0.0.1", r));
  const port = (mute.address() as net.AddressInfo).port;
  const t0 = Date.now();
  try {
    await assert.rejects(downloadFile(`https://127.0.0.1:${port}/x.bin`, path.join(dir, "tls.bin"), { connectTimeoutMs: 300, retries: 0 }), (e: unknown) => {
      assert.ok(e instanceof DownloadError);
      assert.equal(e.code, "CONNECT_TIMEOUT");
      assert.match(e.message, /could not connect to 127\.0\.0\.1:\d+ within 300 ms/);
      return true;
    });
    assert.ok(Date.now() - t0 < 2000);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => mute.close(() => r()));
  }
});
