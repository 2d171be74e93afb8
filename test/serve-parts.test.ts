import { test } from "node:test";
import assert from "node:assert/strict";
import { HttpError } from "../lib/serve/errors";
import { BatchQueue } from "../lib/serve/queue";
import { MultipartParser, boundaryOf, parseParams, type FormPart } from "../lib/serve/multipart";

const B = "----tsfastBoundary7MA4YWxk";

function body(parts: string[], opts: { preamble?: string; epilogue?: string; close?: boolean } = {}): Buffer {
  let s = opts.preamble ?? "";
  for (const p of parts) s += `--${B}\r\n${p}\r\n`;
  if (opts.close !== false) s += `--${B}--${opts.epilogue ?? "\r\n"}`;
  return Buffer.from(s, "latin1");
}

function parseAll(buf: Buffer, chunk = buf.length): FormPart[] {
  const p = new MultipartParser(B);
  for (let i = 0; i < buf.length; i += chunk) p.write(buf.subarray(i, i + chunk));
  return p.end();
}

function assertHttp400(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof HttpError && e.status === 400 && pattern.test(e.message));
}

// File bytes that contain CR, LF, a bare "--boundary" (not after CRLF) and a near-miss delimiter.
const tricky = Buffer.concat([
  Buffer.from([0, 13, 10, 13, 10, 255]),
  Buffer.from(`--${B}\r\n`, "latin1"),
  Buffer.from(`\r\n--${B.slice(0, -1)}X`, "latin1"),
  Buffer.from([13]),
]);

const trickyBody = Buffer.concat([
  Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n`, "latin1"),
  Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="file"; filename="a \\"b\\".png"\r\nContent-Type: image/png\r\n\r\n`, "latin1"),
  tricky,
  Buffer.from(`\r\n--${B}--\r\n`, "latin1"),
]);

test("multipart parser returns each field's name, filename, type and exact bytes", () => {
  const parts = parseAll(trickyBody);
  assert.equal(parts.length, 2);
  assert.deepEqual({ ...parts[0], data: parts[0]!.data.toString() }, { name: "note", data: "hello" });
  assert.equal(parts[1]!.name, "file");
  assert.equal(parts[1]!.filename, 'a "b".png');
  assert.equal(parts[1]!.contentType, "image/png");
  assert.ok(parts[1]!.data.equals(tricky));
});

test("multipart parser gives the same parts whatever the chunk size, down to one byte", () => {
  // the bytes the body was built from, not the one-chunk parse (which could be wrong the same way)
  const want = [Buffer.from("hello"), tricky];
  for (const chunk of [1, 2, 3, 5, 7, 11, 31, 64]) {
    const parts = parseAll(trickyBody, chunk);
    assert.equal(parts.length, want.length, `chunk ${chunk}`);
    parts.forEach((p, i) => assert.ok(p.data.equals(want[i]!), `chunk ${chunk}, part ${i}`));
  }
});

test("multipart parser reads what fetch's FormData serialises, byte for byte", async () => {
  const png = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 37) % 256));
  const form = new FormData();
  form.append("comment", "ünïcode ✓");
  form.append("file", new Blob([png], { type: "image/png" }), "pic.png");
  const res = new Response(form);
  const raw = Buffer.from(await res.arrayBuffer());
  const boundary = boundaryOf(res.headers.get("content-type")!);
  const p = new MultipartParser(boundary);
  for (let i = 0; i < raw.length; i += 100) p.write(raw.subarray(i, i + 100));
  const parts = p.end();
  assert.deepEqual(parts.map((x) => x.name), ["comment", "file"]);
  assert.equal(parts[0]!.data.toString("utf8"), "ünïcode ✓");
  assert.equal(parts[1]!.filename, "pic.png");
  assert.equal(parts[1]!.contentType, "image/png");
  assert.ok(parts[1]!.data.equals(png));
});

test("multipart parser skips the preamble, transport padding and epilogue", () => {
  const buf = Buffer.from(
    `this is a preamble\r\n--${B}  \t\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--${B}--\r\nepilogue --${B}\r\n`,
    "latin1",
  );
  const parts = parseAll(buf, 4);
  assert.equal(parts.length, 1);
  assert.equal(parts[0]!.name, "x");
  assert.equal(parts[0]!.data.toString(), "1");
});

test("multipart parser accepts an empty part", () => {
  const parts = parseAll(body(['Content-Disposition: form-data; name="file"; filename=""\r\n\r\n']));
  assert.equal(parts.length, 1);
  assert.equal(parts[0]!.data.length, 0);
});

test("multipart parser refuses a body without its closing boundary", () => {
  const buf = body(['Content-Disposition: form-data; name="file"\r\n\r\nabc'], { close: false });
  assertHttp400(() => parseAll(buf), /ended before the closing boundary/);
  assertHttp400(() => parseAll(buf.subarray(0, 60)), /ended before the closing boundary/);
});

test("multipart parser refuses a body that never shows the boundary", () => {
  assertHttp400(() => parseAll(Buffer.from("just some text, no boundary at all")), /no "--.*" boundary line/);
});

test("multipart parser refuses parts without a form-data Content-Disposition", () => {
  assertHttp400(() => parseAll(body(["Content-Type: image/png\r\n\r\nabc"])), /no Content-Disposition/);
  assertHttp400(() => parseAll(body(['Content-Disposition: attachment; name="f"\r\n\r\nabc'])), /expected "form-data"/);
  assertHttp400(() => parseAll(body(["Content-Disposition: form-data\r\n\r\nabc"])), /has no name/);
  assertHttp400(() => parseAll(body(["garbage header line\r\n\r\nabc"])), /no "name: value" form/);
});

test("multipart parser refuses oversized part headers and junk after a boundary", () => {
  const long = `Content-Disposition: form-data; name="f"\r\nX-Pad: ${"a".repeat(9000)}\r\n\r\nabc`;
  assertHttp400(() => parseAll(body([long]), 512), /headers exceed 8192 bytes/);
  const junk = Buffer.from(`--${B}xyz\r\nContent-Disposition: form-data; name="f"\r\n\r\n1\r\n--${B}--`, "latin1");
  assertHttp400(() => parseAll(junk), /unexpected characters after the boundary/);
});

test("boundaryOf reads plain and quoted boundaries and refuses missing or invalid ones", () => {
  assert.equal(boundaryOf("multipart/form-data; boundary=abc123"), "abc123");
  assert.equal(boundaryOf('multipart/form-data; charset=utf-8; boundary="a b:c"'), "a b:c");
  assertHttp400(() => boundaryOf("multipart/form-data"), /no boundary parameter/);
  assertHttp400(() => boundaryOf(`multipart/form-data; boundary=${"x".repeat(71)}`), /not valid/);
  assertHttp400(() => boundaryOf("multipart/form-data; boundary=bad\u0001"), /not valid/);
});

test("parseParams unescapes quoted values and lower-cases keys", () => {
  assert.deepEqual(parseParams('; Name="a\\"b"; filename=c.png'), { name: 'a"b', filename: "c.png" });
});

test("BatchQueue runs items first-in first-out in batches of at most maxBatch, `concurrency` batches at once", async () => {
  const batches: number[][] = [];
  let running = 0;
  let peak = 0;
  const q = new BatchQueue<number, number>(
    async (items) => {
      running++;
      peak = Math.max(peak, running);
      batches.push(items);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      return items.map((i) => (i === 4 ? new Error("four is bad") : i * 10));
    },
    2,
    3,
    5,
  );
  const all = [0, 1, 2, 3, 4, 5, 6].map((i) => q.push(i).then((v) => v, (e: Error) => e.message));
  await assert.rejects(q.push(7), (e: unknown) => e instanceof HttpError && e.status === 503 && e.headers["Retry-After"] === "1");
  assert.deepEqual(await Promise.all(all), [0, 10, 20, 30, "four is bad", 50, 60]);
  // The first two items start at once (nothing waits yet); the other five are batched as they free up.
  assert.deepEqual(batches, [[0], [1], [2, 3, 4], [5, 6]]);
  assert.equal(peak, 2);
  assert.equal(q.active, 0);
  assert.equal(q.pending, 0);
});

test("BatchQueue rejects every item of a batch whose computation throws", async () => {
  const q = new BatchQueue<number, number>(async () => Promise.reject(new Error("model gone")), 1, 4, 10);
  await assert.rejects(q.push(1), /model gone/);
});
