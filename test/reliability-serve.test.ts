/**
 * Attacks on `serve` (issue 20, item 8, and the NaN answers of item 4), each against a server on
 * 127.0.0.1 started here: slow uploads holding every prediction slot, oversized part headers in
 * one chunk, two `file` parts, `POST //predict`, a model answering NaN; and `cleaner.apply({})`.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { ready } from "../lib/engine/backend";
import { serve, ImageClassifierCleaner } from "../lib/index";
import { MultipartParser } from "../lib/serve/multipart";
import type { Predictor } from "../lib/serve/predictor";
import { colourImage, meanColourPredictor } from "./fixtures/serve/fake-predictor";

process.env["TSFAST_BACKEND"] ??= "cpu";

let red: Buffer;
before(async () => {
  await ready();
  red = await colourImage([220, 30, 30]);
});

/** POST `body` to `url` from the local address `from` (127.0.0.x: loopback, a different client to the server). */
function post(url: string, body: Buffer, headers: Record<string, string>, from = "127.0.0.1"): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers: { ...headers, "Content-Length": String(body.length) }, localAddress: from, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString() || "null") }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error("no answer within 10 s")));
    req.on("error", reject);
    req.end(body);
  });
}

function multipart(parts: { name: string; data: Buffer; extraHeader?: string }[], boundary = "XyZ"): { body: Buffer; type: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"; filename="a.png"\r\n${p.extraHeader ?? ""}Content-Type: image/png\r\n\r\n`));
    chunks.push(p.data, Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

/** Open a connection that sends a POST's headers and 4 of its 1000 body bytes, then stalls. */
function slowUpload(port: number, from: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: "127.0.0.1", localAddress: from }, () => {
      s.write("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nabcd");
      resolve(s);
    });
    s.on("error", () => undefined);
    s.once("error", reject);
  });
}

test("slow uploads from one address cannot take every prediction slot: another client is still answered", async () => {
  // Slots: concurrency × maxBatch + maxQueue = 3; one address may hold 2 connections.
  const h = await serve(meanColourPredictor(), { port: 0, concurrency: 1, maxBatch: 1, maxQueue: 2, maxConnectionsPerClient: 2 });
  const attackers: net.Socket[] = [];
  try {
    for (let i = 0; i < 8; i++) attackers.push(await slowUpload(h.port, "127.0.0.1"));
    await new Promise((r) => setTimeout(r, 300));
    const r = await post(`${h.url}predict`, red, { "Content-Type": "image/png" }, "127.0.0.2");
    assert.equal(r.status, 200, `the honest client got ${r.status}: ${JSON.stringify(r.json)}`);
    assert.equal(r.json.label, "red");
  } finally {
    for (const s of attackers) s.destroy();
    await h.close();
  }
});

test("an upload that does not finish within bodyTimeoutMs is answered 408, and one too slow (minBytesPerSecond) too", async () => {
  const h = await serve(meanColourPredictor(), { port: 0, bodyTimeoutMs: 1000, minBytesPerSecond: 0 });
  const h2 = await serve(meanColourPredictor(), { port: 0, bodyTimeoutMs: 60_000, minBytesPerSecond: 500 });
  const answer = async (port: number, waitMs: number): Promise<string> => {
    const s = await slowUpload(port, "127.0.0.3");
    try {
      return await new Promise<string>((resolve) => {
        let got = "";
        const t = setTimeout(() => resolve(got || "(no answer)"), waitMs);
        s.on("data", (c: Buffer) => {
          got += c.toString();
          if (got.includes("}")) {
            clearTimeout(t);
            resolve(got);
          }
        });
      });
    } finally {
      s.destroy();
    }
  };
  try {
    const t0 = Date.now();
    const a = await answer(h.port, 5000);
    assert.match(a, /^HTTP\/1\.1 408 /, a);
    assert.match(a, /"code":"request_timeout"/);
    assert.ok(Date.now() - t0 < 4000);
    // 4 bytes in 5 s is under 500 B/s: refused once the grace period is over (about 6 s).
    const b = await answer(h2.port, 9000);
    assert.match(b, /^HTTP\/1\.1 408 /, b);
    assert.match(b, /arriving too slowly/);
  } finally {
    await h.close();
    await h2.close();
  }
});

test("a 20 KB part header is refused even when it arrives in one chunk", async () => {
  const big = `X-Pad: ${"a".repeat(20_000)}\r\n`;
  const { body, type } = multipart([{ name: "file", data: red, extraHeader: big }]);
  const p = new MultipartParser("XyZ");
  assert.throws(() => p.write(body), /part headers exceed 8192 bytes/);
  const h = await serve(meanColourPredictor(), { port: 0 });
  try {
    const r = await post(`${h.url}predict`, body, { "Content-Type": type });
    assert.equal(r.status, 400);
    assert.match(r.json.error, /part headers exceed/);
  } finally {
    await h.close();
  }
});

test("two `file` parts are answered 400; POST //predict names the path it was sent to", async () => {
  const h = await serve(meanColourPredictor(), { port: 0 });
  try {
    const { body, type } = multipart([{ name: "file", data: red }, { name: "file", data: red }]);
    const r = await post(`${h.url}predict`, body, { "Content-Type": type });
    assert.equal(r.status, 400);
    assert.equal(r.json.code, "duplicate_field");
    const s = await post(`http://127.0.0.1:${h.port}//predict`, red, { "Content-Type": "image/png" });
    assert.equal(s.status, 404, JSON.stringify(s.json));
    assert.match(s.json.error, /"\/\/predict"/);
  } finally {
    await h.close();
  }
});

test("serve refuses to answer NaN probabilities: a 500 that says the model is broken", async () => {
  const broken: Predictor = { vocab: ["a", "b"], predict: async () => ({ label: "a", index: 0, probs: [NaN, NaN] }) };
  const h = await serve(broken, { port: 0 });
  try {
    const r = await post(`${h.url}predict`, red, { "Content-Type": "image/png" });
    assert.equal(r.status, 500);
    assert.equal(r.json.code, "non_finite_output");
    assert.match(r.json.error, /NaN/);
  } finally {
    await h.close();
  }
});

test("cleaner.apply({}) says what it expects", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-reliab-cleaner-"));
  try {
    const cleaner = new ImageClassifierCleaner({ dls: { vocab: ["a", "b"] }, predict: async () => ({}) } as never, { root });
    await assert.rejects(cleaner.apply({} as never), /apply expects an array of decisions like \[\{ path: .*got an empty object \{\}/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
