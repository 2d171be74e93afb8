import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { searchImages, downloadImages, verifyImages, verifyImage } from "../lib/data/datasets/web";
import { DownloadError } from "../lib/data/download";
import { startServer, serveBytes, tmpHome, type TestServer } from "./helpers/download-server";

let srv: TestServer;
let dir: string;
let jpeg: Buffer;
let png: Buffer;
let truncatedJpeg: Buffer;
let inFlight = 0;
let maxInFlight = 0;

before(async () => {
  dir = tmpHome("web");
  // Deterministic noise so the JPEG has real entropy-coded data to cut.
  const px = Buffer.alloc(64 * 48 * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 7919) % 251;
  jpeg = await sharp(px, { raw: { width: 64, height: 48, channels: 3 } }).jpeg().toBuffer();
  png = await sharp(px, { raw: { width: 64, height: 48, channels: 3 } }).png().toBuffer();
  truncatedJpeg = jpeg.subarray(0, Math.floor(jpeg.length * 0.6));

  srv = await startServer();
  srv.route("/img/a.jpg", serveBytes(jpeg, "image/jpeg"));
  srv.route("/img/b.png", serveBytes(png, "image/png"));
  srv.route("/img/noext", serveBytes(jpeg, "image/jpeg"));
  srv.route("/img/trunc.jpg", serveBytes(truncatedJpeg, "image/jpeg"));
  srv.route("/img/page.txt", serveBytes(Buffer.from("<html>not an image</html>"), "text/html"));
  srv.route("/img/huge.jpg", serveBytes(Buffer.alloc(50_000, 1), "image/jpeg"));
  // No Content-Length: the size limit must trip while streaming.
  srv.route("/img/stream-huge.jpg", (_req, res) => {
    res.writeHead(200, { "content-type": "image/jpeg" });
    const timer = setInterval(() => res.write(Buffer.alloc(8192, 2)), 1);
    res.on("close", () => clearInterval(timer));
  });
  srv.route("/img/slow.jpg", (_req, res) => {
    res.writeHead(200, { "content-type": "image/jpeg", "content-length": jpeg.length });
    res.write(jpeg.subarray(0, 10)); // then silence
  });

  // A search API in DuckDuckGo's shape, two pages of 3, with a duplicate across pages.
  srv.route("/ddg", (req, res) => {
    const u = new URL(req.url ?? "", srv.url);
    const term = u.searchParams.get("q");
    const page = u.searchParams.get("page") ?? "1";
    const results =
      page === "1"
        ? [{ image: `${srv.url}/img/a.jpg`, title: `${term} 1` }, { image: `${srv.url}/img/b.png` }, { image: `${srv.url}/img/noext` }]
        : [{ image: `${srv.url}/img/a.jpg` }, { image: `${srv.url}/img/trunc.jpg` }, { image: `${srv.url}/img/page.txt` }];
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(page === "1" ? { results, next: `ddg?q=${term}&page=2` } : { results }));
  });
  srv.route("/bing", (req, res) => {
    if (req.headers.authorization !== "Bearer sekrit") {
      res.writeHead(401);
      res.end();
      return;
    }
    const offset = Number(new URL(req.url ?? "", srv.url).searchParams.get("offset") ?? "0");
    const value = [0, 1].map((k) => ({ contentUrl: `${srv.url}/img/${offset + k}.jpg` }));
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ value, nextOffset: offset + 2 }));
  });
  // Holds each response 40 ms and records how many are in flight at once.
  srv.route("/img/held.jpg", (_req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    setTimeout(() => {
      inFlight--;
      res.writeHead(200, { "content-type": "image/jpeg", "content-length": jpeg.length });
      res.end(jpeg);
    }, 40);
  });
  srv.route("/notjson", (_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<html>captcha</html>");
  });
});
after(async () => {
  await srv.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("searchImages follows `next` pages of DuckDuckGo-shaped results and returns unique URLs", async () => {
  const urls = await searchImages("grizzly bear", { endpoint: `${srv.url}/ddg` });
  assert.deepEqual(urls, [`${srv.url}/img/a.jpg`, `${srv.url}/img/b.png`, `${srv.url}/img/noext`, `${srv.url}/img/trunc.jpg`, `${srv.url}/img/page.txt`]);
  const first = srv.requests.filter((r) => r.path === "/ddg");
  assert.equal(first.length, 2);
  assert.deepEqual(await searchImages("grizzly bear", { endpoint: `${srv.url}/ddg`, max: 2 }), [`${srv.url}/img/a.jpg`, `${srv.url}/img/b.png`]);
});

test("searchImages reads Bing-shaped results, sends the API key, and takes the endpoint from TSFAST_SEARCH_ENDPOINT", async () => {
  process.env.TSFAST_SEARCH_ENDPOINT = `${srv.url}/bing`;
  try {
    const urls = await searchImages("teddy", { apiKey: "sekrit", max: 5 });
    assert.deepEqual(urls, [0, 1, 2, 3, 4].map((k) => `${srv.url}/img/${k}.jpg`));
    await assert.rejects(searchImages("teddy", { apiKey: "wrong" }), /HTTP 401 .*check apiKey/);
  } finally {
    delete process.env.TSFAST_SEARCH_ENDPOINT;
  }
});

test("searchImages without an endpoint, without network, or with a non-JSON answer fails fast with a catchable error", async () => {
  delete process.env.TSFAST_SEARCH_ENDPOINT;
  await assert.rejects(searchImages("bear"), (e: unknown) => e instanceof DownloadError && e.code === "NO_ENDPOINT" && /TSFAST_SEARCH_ENDPOINT/.test(e.message));
  const dead = await startServer();
  const url = `${dead.url}/search`;
  await dead.close();
  const t0 = Date.now();
  await assert.rejects(searchImages("bear", { endpoint: url }), (e: unknown) => e instanceof DownloadError && e.code === "NETWORK" && e.message.includes(url));
  // A name that cannot resolve here (no DNS / no network): also a quick NETWORK or CONNECT_TIMEOUT error.
  await assert.rejects(searchImages("bear", { endpoint: "http://tsfast-no-such-host.invalid/search", timeoutMs: 1500 }), (e: unknown) => e instanceof DownloadError && ["NETWORK", "CONNECT_TIMEOUT"].includes(e.code));
  assert.ok(Date.now() - t0 < 3000);
  await assert.rejects(searchImages("bear", { endpoint: `${srv.url}/notjson` }), (e: unknown) => e instanceof DownloadError && e.code === "BAD_RESPONSE");
});

test("downloadImages saves good images, reports 404/slow/oversized ones, and never leaves partial files", async () => {
  const dest = path.join(dir, "bears");
  const urls = [
    `${srv.url}/img/a.jpg`,
    `${srv.url}/img/missing.jpg`,
    `${srv.url}/img/b.png`,
    `${srv.url}/img/slow.jpg`,
    `${srv.url}/img/huge.jpg`,
    `${srv.url}/img/stream-huge.jpg`,
    `${srv.url}/img/noext`,
    `${srv.url}/img/page.txt`,
    `${srv.url}/img/trunc.jpg`,
  ];
  const t0 = Date.now();
  const r = await downloadImages(urls, dest, { timeoutMs: 500, maxBytes: 20_000, concurrency: 4 });
  assert.ok(Date.now() - t0 < 3000, "the slow file is cut off by timeoutMs");
  assert.deepEqual(
    r.saved.map((f) => path.basename(f)),
    ["00000001.jpg", "00000003.png", "00000007.jpg", "00000008.jpg", "00000009.jpg"],
  );
  assert.ok(fs.readFileSync(r.saved[0]!).equals(jpeg));
  assert.ok(fs.readFileSync(r.saved[1]!).equals(png));
  const reasons = Object.fromEntries(r.failed.map((f) => [path.basename(new URL(f.url).pathname), f.error]));
  assert.deepEqual(Object.keys(reasons).sort(), ["huge.jpg", "missing.jpg", "slow.jpg", "stream-huge.jpg"]);
  assert.match(reasons["missing.jpg"]!, /HTTP 404/);
  assert.match(reasons["slow.jpg"]!, /stalled|took longer/);
  assert.match(reasons["huge.jpg"]!, /maxBytes=20000/);
  assert.match(reasons["stream-huge.jpg"]!, /maxBytes=20000/);
  assert.deepEqual(fs.readdirSync(dest).sort(), ["00000001.jpg", "00000003.png", "00000007.jpg", "00000008.jpg", "00000009.jpg"]);

  // A second call continues the numbering instead of overwriting; maxPics caps the count.
  const r2 = await downloadImages(urls, dest, { maxPics: 1 });
  assert.deepEqual(r2.saved.map((f) => path.basename(f)), ["00000010.jpg"]);
});

test("downloadImages keeps at most `concurrency` downloads in flight", async () => {
  const urls = Array.from({ length: 10 }, (_, i) => `${srv.url}/img/held.jpg?n=${i}`);
  const r = await downloadImages(urls, path.join(dir, "held"), { concurrency: 3 });
  assert.equal(r.saved.length, 10);
  assert.equal(maxInFlight, 3);
  assert.equal(new Set(r.saved).size, 10, "unique file names");
});

test("verifyImages returns the text file, the truncated JPEG and an empty file, and keeps good images", async () => {
  const d = path.join(dir, "verify");
  fs.mkdirSync(path.join(d, "sub"), { recursive: true });
  const files = {
    good: path.join(d, "good.jpg"),
    goodPng: path.join(d, "sub", "good.png"),
    text: path.join(d, "page.jpg"),
    trunc: path.join(d, "trunc.jpg"),
    empty: path.join(d, "sub", "empty.png"),
  };
  fs.writeFileSync(files.good, jpeg);
  fs.writeFileSync(files.goodPng, png);
  fs.writeFileSync(files.text, "<html>not an image</html>");
  fs.writeFileSync(files.trunc, truncatedJpeg);
  fs.writeFileSync(files.empty, "");
  // The truncated JPEG still has a readable header: only a full decode finds it.
  assert.equal((await sharp(files.trunc).metadata()).width, 64);
  assert.deepEqual(await verifyImages(Object.values(files)), [files.text, files.trunc, files.empty]);
  assert.deepEqual(await verifyImages(d), [files.text, files.empty, files.trunc].sort());
  assert.equal(await verifyImage(files.good), true);
  assert.equal(await verifyImage(path.join(d, "does-not-exist.jpg")), false);
});
