/**
 * The .safetensors reader and writer: byte layout by hand, dtypes, and PyTorch's own files.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat, parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors } from "../lib/models/safetensors";

const dir = mkdtempSync(path.join(os.tmpdir(), "tsfast-st-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

test("a hand-built file decodes: header length, JSON header, little-endian data", () => {
  const header = JSON.stringify({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, n: { dtype: "I64", shape: [], data_offsets: [8, 16] }, __metadata__: { format: "pt" } });
  const bytes = new Uint8Array(8 + header.length + 16);
  const dv = new DataView(bytes.buffer);
  dv.setBigUint64(0, BigInt(header.length), true);
  bytes.set(new TextEncoder().encode(header), 8);
  dv.setFloat32(8 + header.length, 1.5, true);
  dv.setFloat32(8 + header.length + 4, -2, true);
  dv.setBigInt64(8 + header.length + 8, 7n, true);
  const f = parseSafetensors(bytes);
  assert.deepEqual(Array.from(f.tensors.get("w")!.data), [1.5, -2]);
  assert.deepEqual(f.tensors.get("n")!.shape, []);
  assert.deepEqual(Array.from(f.tensors.get("n")!.data), [7]);
  assert.deepEqual(f.metadata, { format: "pt" });
});

test("half and bfloat16 conversions are exact on representable values and round to nearest", () => {
  // IEEE half bits by hand: sign | 5-bit exponent (bias 15) | 10-bit fraction
  const halves: [number, number][] = [
    [0, 0x0000],
    [1, 0x3c00], // 2^0: exponent 15
    [-2, 0xc000], // sign, 2^1: exponent 16
    [0.5, 0x3800], // 2^-1: exponent 14
    [65504, 0x7bff], // largest: (2 − 2^-10)·2^15
    [6.103515625e-5, 0x0400], // smallest normal 2^-14
    [5.960464477539063e-8, 0x0001], // smallest subnormal 2^-24
    [-0.0999755859375, 0xae66], // −(1 + 614/1024)·2^-4
  ];
  for (const [v, bits] of halves) {
    assert.equal(floatToHalf(v), bits, `floatToHalf(${v})`);
    assert.equal(halfToFloat(bits), v, `halfToFloat(0x${bits.toString(16)})`);
  }
  assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00, "ties go to even");
  assert.equal(floatToHalf(1e6), 0x7c00, "overflow is infinity");
  assert.ok(Number.isNaN(halfToFloat(floatToHalf(NaN))));
  // bfloat16 = the top 16 bits of the float32: sign | 8-bit exponent (bias 127) | 7-bit fraction
  const bf16s: [number, number][] = [
    [0, 0x0000],
    [1, 0x3f80], // exponent 127
    [-3, 0xc040], // −1.5·2^1: exponent 128, fraction .1000000
    [0.15625, 0x3e20], // 1.25·2^-3: exponent 124, fraction .0100000
    [2 ** 100, 0x7180], // exponent 227
  ];
  for (const [v, bits] of bf16s) {
    assert.equal(floatToBf16(v), bits, `floatToBf16(${v})`);
    assert.equal(bf16ToFloat(bits), v, `bf16ToFloat(0x${bits.toString(16)})`);
  }
  assert.equal(bf16ToFloat(floatToBf16(1.00390625)), 1, "1 + 2^-8 rounds to even (1)");
});

test("the writer's files round-trip every dtype and align data to 8 bytes", async () => {
  const p = path.join(dir, "t.safetensors");
  await writeSafetensors(p, {
    a: { shape: [2, 2], data: new Float32Array([1, 2, 3, 4.25]) },
    h: { shape: [3], data: [0.5, -1, 2], dtype: "F16" },
    b: { shape: [2], data: [1, -0.15625], dtype: "BF16" },
    i: { shape: [1], data: new Int32Array([123456]) },
  }, { arch: "x" });
  const raw = readFileSync(p);
  assert.equal((8 + Number(raw.readBigUInt64LE(0))) % 8, 0);
  const f = await readSafetensors(p);
  assert.deepEqual(Array.from(f.tensors.get("a")!.data), [1, 2, 3, 4.25]);
  assert.deepEqual(Array.from(f.tensors.get("h")!.data), [0.5, -1, 2]);
  assert.deepEqual(Array.from(f.tensors.get("b")!.data), [1, -0.15625]);
  assert.equal(f.tensors.get("i")!.dtype, "I64");
  assert.deepEqual(Array.from(f.tensors.get("i")!.data), [123456]);
  assert.deepEqual(f.metadata, { arch: "x" });
});

test("PyTorch reads our files and we read PyTorch's (F32, F16, BF16, I64)", () => {
  const ours = path.join(dir, "ours.safetensors");
  writeFileSync(ours, serializeSafetensors({ w: { shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }, h: { shape: [2], data: [0.25, 3], dtype: "F16" } }, { k: "v" }));
  const scripts = path.join(__dirname, "..", "..", "scripts");
  const theirs = path.join(dir, "theirs.safetensors");
  const py = `
import sys, torch; sys.path.insert(0, ${JSON.stringify(scripts)})
from pretrain_models import load_safetensors, save_safetensors
sd, meta = load_safetensors(${JSON.stringify(ours)})
print(sd["w"].sum().item(), sd["w"].shape[1], sd["h"].dtype, sd["h"].tolist(), meta["k"])
save_safetensors(${JSON.stringify(theirs)}, {"f": torch.arange(6, dtype=torch.float32).reshape(3, 2) / 4, "h": torch.tensor([1.5, -2.0]).half(),
  "b": torch.tensor([0.75, 8.0]).bfloat16(), "n": torch.tensor(5)}, {"a": 1})
`;
  let out: string;
  try {
    out = execFileSync("/usr/bin/python3", ["-c", py], { encoding: "utf8" });
  } catch (e) {
    throw new Error(`this test needs Debian's python3-torch at /usr/bin/python3: ${(e as Error).message}`);
  }
  assert.equal(out.trim(), "21.0 3 torch.float16 [0.25, 3.0] v");
  const f = parseSafetensors(readFileSync(theirs));
  assert.deepEqual(f.tensors.get("f")!.shape, [3, 2]);
  assert.deepEqual(Array.from(f.tensors.get("f")!.data), [0, 0.25, 0.5, 0.75, 1, 1.25]);
  assert.deepEqual(Array.from(f.tensors.get("h")!.data), [1.5, -2]);
  assert.deepEqual(Array.from(f.tensors.get("b")!.data), [0.75, 8]);
  assert.equal(f.tensors.get("n")!.dtype, "I64");
  assert.deepEqual(f.metadata, { a: "1" });
});

test("a truncated or non-safetensors file fails naming the file", () => {
  assert.throws(() => parseSafetensors(new Uint8Array(4), "x.safetensors"), /x\.safetensors is 4 bytes/);
  const b = new Uint8Array(16);
  new DataView(b.buffer).setBigUint64(0, 1000n, true);
  assert.throws(() => parseSafetensors(b, "y.bin"), /y\.bin declares a 1000-byte header/);
});
