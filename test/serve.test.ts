import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as http from "node:http";
import * as net from "node:net";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { serve, type ServeHandle, type PredictResponse } from "../lib/serve/server";
import { setPredictorLoader } from "../lib/serve/predictor";
import { COLOURS, colourImage, meanColourPredictor } from "./fixtures/serve/fake-predictor";

process.env["TSFAST_BACKEND"] ??= "cpu";

let h: ServeHandle;
let fake: ReturnType<typeof meanColourPredictor>;
let red: Buffer, green: Buffer, blue: Buffer, blueJpeg: Buffer;

before(async () => {
  await ready();
  fake = meanColourPredictor();
  h = await serve(fake, { port: 0 });
  red = await colourImage([220, 30, 30]);
  green = await colourImage([20, 200, 40]);
  blue = await colourImage([10, 40, 230]);
  blueJpeg = await colourImage([10, 40, 230], { format: "jpeg", size: 64 });
});

after(async () => {
  await h.close();
});

function form(field: string, data: Buffer | string, filename = "img.png", type = "image/png"): FormData {
  const f = new FormData();
  f.append(field, new Blob([typeof data === "string" ? data : new Uint8Array(data)], { type }), filename);
  return f;
}

async function postPredict(body: Buffer | string | FormData, headers: Record<string, string> = {}, query = ""): Promise<{ status: number; json: any; headers: Headers }> {
  const init = Buffer.isBuffer(body) ? new Uint8Array(body) : body; // fetch's types want an ArrayBuffer-backed view
  const res = await fetch(`${h.url}predict${query}`, { method: "POST", body: init, headers });
  return { status: res.status, json: await res.json(), headers: res.headers };
}

test("POST /predict with a multipart field `file` answers the label, index, sorted top-k, probs and ms", async () => {
  const direct = await fake.predict(red);
  const { status, json } = await postPredict(form("file", red, "red.png"));
  assert.equal(status, 200);
  const r = json as PredictResponse;
  assert.equal(r.label, "red");
  assert.equal(r.index, 0);
  assert.deepEqual(r.probs, direct.probs); // exactly what the model said, in vocab order
  assert.equal(r.probability, direct.probs[0]);
  assert.deepEqual(
    r.top.map((t) => t.label),
    [...COLOURS].sort((a, b) => direct.probs[COLOURS.indexOf(b)]! - direct.probs[COLOURS.indexOf(a)]!),
  );
  for (let i = 1; i < r.top.length; i++) assert.ok(r.top[i - 1]!.probability >= r.top[i]!.probability);
  assert.ok(Math.abs(r.probs.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  assert.ok(Number.isFinite(r.ms) && r.ms >= 0 && r.ms < 60_000, `ms ${r.ms}`);
});

test("POST /predict accepts the raw image body as image/* or application/octet-stream, or untyped", async () => {
  const a = await postPredict(green, { "Content-Type": "image/png" });
  assert.equal(a.status, 200);
  assert.equal(a.json.label, "green");
  const b = await postPredict(blueJpeg, { "Content-Type": "application/octet-stream" });
  assert.equal(b.status, 200);
  assert.equal(b.json.label, "blue");
  const c = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(`${h.url}predict`, { method: "POST" }, (res) => {
      let s = "";
      res.on("data", (d) => (s += d));
      res.on("end", () => resolve({ status: res.statusCode!, body: s }));
    });
    req.on("error", reject);
    req.end(blue);
  });
  assert.equal(c.status, 200);
  assert.equal(JSON.parse(c.body).label, "blue");
});

test("?topk=N limits the top list and a bad topk is a 400", async () => {
  const r = await postPredict(red, { "Content-Type": "image/png" }, "?topk=2");
  assert.equal(r.json.top.length, 2);
  assert.equal(r.json.probs.length, 3);
  const bad = await postPredict(red, { "Content-Type": "image/png" }, "?topk=0");
  assert.equal(bad.status, 400);
  assert.equal(bad.json.code, "bad_topk");
});

test("GET /health and GET /info describe the server and the model", async () => {
  const health = await (await fetch(`${h.url}health`)).json();
  assert.equal(health.status, "ok");
  assert.ok(Number.isInteger(health.served) && health.served >= 1, `served ${health.served}`); // earlier tests predicted
  // one more prediction counts exactly one more
  assert.equal((await postPredict(red, { "Content-Type": "image/png" })).status, 200);
  const later = await (await fetch(`${h.url}health`)).json();
  assert.equal(later.served, health.served + 1);
  const info = await (await fetch(`${h.url}info`)).json();
  assert.deepEqual(info.vocab, COLOURS);
  assert.equal(info.nClasses, 3);
  assert.equal(info.isMultiLabel, false);
  assert.equal(info.limits.maxBytes, 10 * 1024 * 1024);
  assert.equal(info.engine.backend, "cpu");
});

test("GET / serves the upload page with a file input and no external resources", async () => {
  const res = await fetch(h.url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /^text\/html/);
  const html = await res.text();
  assert.match(html, /<input type="file" id="file"/);
  assert.match(html, /red, green, blue/);
  assert.doesNotMatch(html, /(src|href)="https?:/);
});

test("an empty body, a multipart body without `file`, or an empty file is a 400", async () => {
  const empty = await postPredict(Buffer.alloc(0), { "Content-Type": "image/png" });
  assert.equal(empty.status, 400);
  assert.equal(empty.json.code, "empty_body");
  const missing = await postPredict(form("picture", red));
  assert.equal(missing.status, 400);
  assert.equal(missing.json.code, "missing_field");
  assert.match(missing.json.error, /no field "file" \(fields given: "picture"\)/);
  const emptyFile = await postPredict(form("file", Buffer.alloc(0)));
  assert.equal(emptyFile.status, 400);
  assert.equal(emptyFile.json.code, "empty_file");
});

test("malformed multipart bodies are a 400 naming the problem", async () => {
  const noBoundary = await postPredict("abc", { "Content-Type": "multipart/form-data" });
  assert.equal(noBoundary.status, 400);
  assert.match(noBoundary.json.error, /no boundary parameter/);
  const truncated = await postPredict(`--XyZ\r\nContent-Disposition: form-data; name="file"\r\n\r\n${"a".repeat(100)}`, {
    "Content-Type": "multipart/form-data; boundary=XyZ",
  });
  assert.equal(truncated.status, 400);
  assert.match(truncated.json.error, /ended before the closing boundary/);
  const wrongBoundary = await postPredict(`--other\r\n\r\nabc\r\n--other--`, { "Content-Type": "multipart/form-data; boundary=XyZ" });
  assert.equal(wrongBoundary.status, 400);
  assert.equal(wrongBoundary.json.code, "bad_multipart");
});

test("a 50 MB upload with Content-Length is refused with 413 before it is read", async () => {
  const big = Buffer.alloc(50 * 1024 * 1024, 7);
  const r = await postPredict(big, { "Content-Type": "image/png" });
  assert.equal(r.status, 413);
  assert.equal(r.json.code, "payload_too_large");
  assert.match(r.json.error, /50 MB .* exceeds the limit of 10 MB/);
});

test("Expect: 100-continue gets a go-ahead for a small upload and a bare 413 for a large one", async () => {
  const exchange = (head: string, body?: Buffer): Promise<string> =>
    new Promise((resolve, reject) => {
      const sock = net.connect(h.port, "127.0.0.1", () => sock.write(head));
      let s = "";
      sock.on("data", (d) => {
        s += d.toString("latin1");
        if (body && s.startsWith("HTTP/1.1 100 Continue\r\n\r\n") && s.length === 25) sock.write(body);
      });
      sock.on("close", () => resolve(s));
      sock.on("error", reject);
    });
  const big = await exchange(
    "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 52428800\r\nExpect: 100-continue\r\n\r\n",
  );
  assert.match(big, /^HTTP\/1.1 413 /);
  assert.doesNotMatch(big, /100 Continue/);
  const small = await exchange(
    `POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${red.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    red,
  );
  assert.match(small, /^HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 200 OK/);
  assert.match(small, /"label":"red"/);
});

test("a streamed 50 MB upload gets its 413 while the client is still sending", async () => {
  const chunk = Buffer.alloc(1024 * 1024, 3);
  const result = await new Promise<{ status: number; body: string; sentWhenAnswered: number }>((resolve, reject) => {
    let sent = 0;
    let stop = false;
    const req = http.request(`${h.url}predict`, { method: "POST", headers: { "Content-Type": "image/jpeg" } }, (res) => {
      const sentWhenAnswered = sent;
      stop = true;
      let s = "";
      res.on("data", (d) => (s += d));
      res.on("end", () => resolve({ status: res.statusCode!, body: s, sentWhenAnswered }));
    });
    req.on("error", reject);
    // Send 1 MB at a time, letting the event loop run between chunks so the answer can arrive.
    const pump = (): void => {
      if (stop || sent >= 50 * chunk.length) return void req.end();
      sent += chunk.length;
      req.write(chunk, () => setTimeout(pump, 2));
    };
    pump();
  });
  assert.equal(result.status, 413);
  assert.match(JSON.parse(result.body).error, /reading stopped after 1\d(\.\d)? MB/);
  assert.ok(result.sentWhenAnswered < 50 * chunk.length, `answered only after ${result.sentWhenAnswered} bytes`);
});

test("a text file is a 415, both as a multipart file and as a raw body", async () => {
  const text = "name,label\ncat.jpg,cat\n";
  const a = await postPredict(form("file", text, "notes.csv", "text/csv"));
  assert.equal(a.status, 415);
  assert.equal(a.json.code, "not_an_image");
  assert.match(a.json.error, /"notes.csv" .* is not an image/);
  const b = await postPredict(text, { "Content-Type": "text/plain" });
  assert.equal(b.status, 415);
  assert.equal(b.json.code, "unsupported_media_type");
  const c = await postPredict(text, { "Content-Type": "application/octet-stream" });
  assert.equal(c.status, 415);
  assert.equal(c.json.code, "not_an_image");
});

test("a truncated JPEG or PNG is a 422 saying it is truncated or corrupt", async () => {
  const jpeg = await postPredict(form("file", blueJpeg.subarray(0, Math.floor(blueJpeg.length / 2)), "cut.jpg", "image/jpeg"));
  assert.equal(jpeg.status, 422);
  assert.equal(jpeg.json.code, "corrupt_image");
  assert.match(jpeg.json.error, /"cut.jpg" is a jpeg file that cannot be decoded \(truncated or corrupt\)/);
  const png = await postPredict(red.subarray(0, red.length - 30), { "Content-Type": "image/png" });
  assert.equal(png.status, 422);
});

test("an image over maxPixels is refused from its header with a 422", async () => {
  const small = await serve(meanColourPredictor(), { port: 0, maxPixels: 32 * 32 - 1 });
  try {
    const res = await fetch(`${small.url}predict`, { method: "POST", body: new Uint8Array(red), headers: { "Content-Type": "image/png" } });
    assert.equal(res.status, 422);
    assert.match((await res.json()).error, /32×32 = 1024 pixels, over the limit of 1023/);
  } finally {
    await small.close();
  }
});

test("a wrong method is a 405 with Allow, an unknown path a 404", async () => {
  const get = await fetch(`${h.url}predict`);
  assert.equal(get.status, 405);
  assert.equal(get.headers.get("allow"), "POST");
  assert.equal((await get.json()).code, "method_not_allowed");
  const del = await fetch(h.url, { method: "DELETE" });
  assert.equal(del.status, 405);
  assert.equal(del.headers.get("allow"), "GET, HEAD");
  const post = await fetch(`${h.url}health`, { method: "POST", body: "x" });
  assert.equal(post.status, 405);
  const head = await fetch(h.url, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
  const missing = await fetch(`${h.url}nope`);
  assert.equal(missing.status, 404);
  assert.match((await missing.json()).error, /no such path "\/nope"/);
});

test("garbage that is not HTTP gets a 400 and the server keeps serving", async () => {
  const reply = await new Promise<string>((resolve, reject) => {
    const sock = net.connect(h.port, "127.0.0.1", () => sock.write("HELLO THERE\r\n\r\n"));
    let s = "";
    sock.on("data", (d) => (s += d));
    sock.on("end", () => resolve(s));
    sock.on("error", reject);
  });
  assert.match(reply, /^HTTP\/1.1 400/);
  const ok = await postPredict(red, { "Content-Type": "image/png" });
  assert.equal(ok.status, 200);
});

test("100 concurrent requests all succeed, run one at a time, and leak no tensors", async () => {
  const images = [red, green, blue, blueJpeg];
  const expected = ["red", "green", "blue", "blue"];
  await postPredict(red, { "Content-Type": "image/png" }); // warm-up
  const tensorsBefore = tf.memory().numTensors;
  fake.maxInFlight = 0;
  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      i % 2 === 0
        ? postPredict(form("file", images[i % 4]!, `img${i}.png`))
        : postPredict(images[i % 4]!, { "Content-Type": "application/octet-stream" }),
    ),
  );
  results.forEach((r, i) => {
    assert.equal(r.status, 200, `request ${i}: ${JSON.stringify(r.json)}`);
    assert.equal(r.json.label, expected[i % 4], `request ${i}`);
  });
  assert.equal(fake.maxInFlight, 1); // concurrency: 1 (the default)
  assert.equal(tf.memory().numTensors, tensorsBefore);
  const health = await (await fetch(`${h.url}health`)).json();
  assert.equal(health.active, 0);
  assert.equal(health.queued, 0);
  assert.equal(health.tensors, tensorsBefore);
});

test("concurrency lets that many predictions run at once and a full queue answers 503", async () => {
  const slow = meanColourPredictor({ delayMs: 40 });
  // One client fills the queue on purpose here, so the per-address cap (half the slots) is lifted.
  const s = await serve(slow, { port: 0, concurrency: 2, maxBatch: 1, maxQueue: 3, maxConnectionsPerClient: 100 });
  try {
    const statuses = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const res = await fetch(`${s.url}predict`, { method: "POST", body: new Uint8Array(red), headers: { "Content-Type": "image/png" } });
        const body = await res.json();
        if (res.status === 503) {
          assert.equal(res.headers.get("retry-after"), "1");
          assert.equal(body.code, "busy");
        }
        return res.status;
      }),
    );
    assert.equal(slow.maxInFlight, 2);
    assert.ok(statuses.filter((x) => x === 200).length >= 5, statuses.join(","));
    assert.ok(statuses.includes(503), statuses.join(","));
    assert.ok(statuses.every((x) => x === 200 || x === 503), statuses.join(","));
  } finally {
    await s.close();
  }
});

test("waiting requests are predicted together through predictBatch, and a bad image fails alone", async () => {
  const batching = meanColourPredictor({ batch: true, delayMs: 30 });
  const s = await serve(batching, { port: 0, maxBatch: 4 });
  try {
    const cut = blueJpeg.subarray(0, Math.floor(blueJpeg.length / 2));
    const bodies = Array.from({ length: 13 }, (_, i) => (i === 6 ? cut : [red, green, blue][i % 3]!));
    const results = await Promise.all(
      bodies.map(async (b) => {
        const res = await fetch(`${s.url}predict`, { method: "POST", body: new Uint8Array(b), headers: { "Content-Type": "image/png" } });
        return { status: res.status, json: await res.json() };
      }),
    );
    results.forEach((r, i) => {
      if (i === 6) {
        assert.equal(r.status, 422);
        assert.equal(r.json.code, "corrupt_image");
      } else {
        assert.equal(r.status, 200, JSON.stringify(r.json));
        assert.equal(r.json.label, COLOURS[i % 3]);
      }
    });
    assert.ok(Math.max(...batching.batchSizes) > 1, `batch sizes ${batching.batchSizes}`);
    assert.ok(Math.max(...batching.batchSizes) <= 4, `batch sizes ${batching.batchSizes}`);
    assert.equal(batching.calls, 12);
  } finally {
    await s.close();
  }
});

test("serve(learner) takes the vocabulary from learn.dls and uses learn.predictBatch", async () => {
  const inner = meanColourPredictor({ batch: true });
  const learn = { dls: { vocab: COLOURS, isMultiLabel: false }, predict: inner.predict, predictBatch: inner.predictBatch!, model: undefined };
  const s = await serve(learn, { port: 0 });
  try {
    const info = await (await fetch(`${s.url}info`)).json();
    assert.deepEqual(info.vocab, COLOURS);
    const res = await fetch(`${s.url}predict`, { method: "POST", body: new Uint8Array(green), headers: { "Content-Type": "image/png" } });
    assert.equal((await res.json()).label, "green");
    await assert.rejects(serve({ dls: {} } as never, { port: 0 }), /must be an export folder path, a Learner, or an object with `vocab`/);
  } finally {
    await s.close();
  }
});

test("a model that throws gives a 500 JSON error and the server keeps serving", async () => {
  const broken = { vocab: ["a", "b"], predict: async (): Promise<never> => Promise.reject(new Error("weights missing")) };
  const s = await serve(broken, { port: 0 });
  try {
    const res = await fetch(`${s.url}predict`, { method: "POST", body: new Uint8Array(red), headers: { "Content-Type": "image/png" } });
    assert.equal(res.status, 500);
    assert.match((await res.json()).error, /prediction failed: weights missing/);
    assert.equal((await fetch(`${s.url}health`)).status, 200);
  } finally {
    await s.close();
  }
});

test("serve(exportDir) loads through the predictor loader and close() disposes the model", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-serve-"));
  let disposed = 0;
  let loadedFrom = "";
  setPredictorLoader(async (d) => {
    loadedFrom = d;
    return { ...meanColourPredictor(), dispose: () => void disposed++ };
  });
  try {
    const s = await serve(dir, { port: 0 });
    assert.equal(loadedFrom, dir);
    const info = await (await fetch(`${s.url}info`)).json();
    assert.equal(info.source, dir);
    assert.match(await (await fetch(s.url)).text(), new RegExp(`<title>tsfast: ${path.basename(dir)}</title>`));
    await s.close();
    assert.equal(disposed, 1);
  } finally {
    setPredictorLoader(undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("serve() names a missing export folder and a port already in use", async () => {
  await assert.rejects(serve("/no/such/export", { port: 0 }), /export folder "\/no\/such\/export" does not exist/);
  await assert.rejects(serve(meanColourPredictor(), { port: h.port }), new RegExp(`port ${h.port} on 127.0.0.1 is already in use`));
  await assert.rejects(serve(meanColourPredictor(), { port: 70000 }), /port must be an integer from 0 to 65535, got 70000/);
  await assert.rejects(serve(meanColourPredictor(), { port: 0, host: "203.0.113.7" }), /cannot listen on host "203.0.113.7" \(EADDRNOTAVAIL\)/);
});
