process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { applyBatchTfms, augTransforms, imagenetStats, Normalize, projectiveResample } from "../lib/data/augment";
import { decodeImage, type DecodeRecord } from "../lib/data/decode";
import { imageAddon, type ImageAddon } from "../lib/data/native-image";
import { Rng } from "../lib/data/random";
import { RandomResizedCrop, Resize } from "../lib/data/transforms";
import { tmpDir } from "./fixtures/data/make";

const dir = tmpDir();
/** A real photograph from Debian's mate-backgrounds (setup installs it). */
const PHOTO = "/usr/share/backgrounds/mate/nature/LadyBird.jpg";

function addon(): ImageAddon {
  const a = imageAddon();
  assert.ok(a, "the image addon is not built: install libjpeg62-turbo-dev, then run `npm run build:native`");
  return a;
}

/** The photo re-encoded at `w`×`h` with `opts`, written to the test folder. */
async function photo(name: string, w: number, h: number, opts: { progressive?: boolean; chromaSubsampling?: string; grey?: boolean } = {}): Promise<string> {
  const f = path.join(dir, name);
  let s = sharp(PHOTO).resize(w, h, { fit: "cover" });
  if (opts.grey) s = s.grayscale();
  await s.jpeg({ quality: 90, progressive: opts.progressive ?? false, chromaSubsampling: opts.chromaSubsampling ?? "4:2:0" }).toFile(f);
  return f;
}

/** Decode with sharp alone (the fast path off). */
async function viaSharp(...args: Parameters<typeof decodeImage>): ReturnType<typeof decodeImage> {
  process.env["TSFAST_DECODER"] = "sharp";
  try {
    return await decodeImage(...args);
  } finally {
    delete process.env["TSFAST_DECODER"];
  }
}

function maxDiff(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  assert.equal(a.length, b.length);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / a.length };
}

test("the resample matches hand-computed triangle-filter weights, shrinking and enlarging", () => {
  const a = addon();
  // One row of 4 pixels, channel 0 = [0, 100, 200, 60] (channels 1 and 2 the same plus 1, 2).
  const src = new Uint8Array([0, 1, 2, 100, 101, 102, 200, 201, 202, 60, 61, 62]);
  const out = new Uint8Array(2 * 3);
  a.resample(src, 4, 1, new Float64Array([0, 0, 4, 1]), out, 2, 1);
  // Shrinking by 2: the filter spans 2 pixels each side. Output 0 is centred at 1.0:
  //   weights 1 - |j + 0.5 - 1| / 2 for j = 0, 1, 2 → 0.75, 0.75, 0.25 (sum 1.75)
  //   (0·0.75 + 100·0.75 + 200·0.25) / 1.75 = 71.43 → 71
  // Output 1 at 3.0: j = 1, 2, 3 → 0.25, 0.75, 0.75: (25 + 150 + 45) / 1.75 = 125.71 → 126
  assert.deepEqual(Array.from(out), [71, 72, 73, 126, 127, 128]);
  // Enlarging 2 → 4 (plain bilinear): centres 0.25, 0.75, 1.25, 1.75 in input pixels:
  //   [a, 0.75a + 0.25b, 0.25a + 0.75b, b] with a = 0, b = 100 (edges clamp).
  const two = new Uint8Array([0, 0, 0, 100, 100, 100]);
  const four = new Uint8Array(4 * 3);
  a.resample(two, 2, 1, new Float64Array([0, 0, 2, 1]), four, 4, 1);
  assert.deepEqual(Array.from(four).filter((_, i) => i % 3 === 0), [0, 25, 75, 100]);
  // A box of the image's own size at an integer offset is an exact copy.
  const copy = new Uint8Array(2 * 3);
  a.resample(src, 4, 1, new Float64Array([1, 0, 3, 1]), copy, 2, 1);
  assert.deepEqual(Array.from(copy), Array.from(src.subarray(3, 9)));
  assert.throws(() => a.resample(src, 4, 1, new Float64Array([0, 0, 0, 1]), out, 2, 1), /box is empty/);
  assert.throws(() => a.resample(src, 4, 1, new Float64Array([0, 0, Infinity, 1]), out, 2, 1), /box is empty/);
  assert.throws(() => a.resample(src, 4, 1, new Float64Array([0, 0, 4]), out, 2, 1), /box is empty/);
});

test("a whole JPEG decodes to exactly sharp's pixels (baseline 4:2:0, 4:4:4, progressive, grey)", async () => {
  const a = addon();
  const files = [
    await photo("base.jpg", 500, 375),
    await photo("444.jpg", 333, 251, { chromaSubsampling: "4:4:4" }),
    await photo("prog.jpg", 375, 500, { progressive: true }),
    await photo("grey.jpg", 241, 180, { grey: true }),
  ];
  for (const f of files) {
    const buf = fs.readFileSync(f);
    assert.equal(a.jpegHeader(buf).refuse, undefined, f);
    const fast = await decodeImage(f, [], false, new Rng(0));
    const ref = await viaSharp(f, [], false, new Rng(0));
    assert.deepEqual([fast.width, fast.height], [ref.width, ref.height], f);
    assert.equal(maxDiff(fast.data, ref.data).max, 0, f);
  }
});

test("crop and resize with DCT scaling match PIL's draft + BILINEAR resize of the same box", async () => {
  const a = addon();
  const f = await photo("lesson.jpg", 500, 375);
  // Lesson 1's item transform on the validation split: the centred 375×375 square, to 160×160.
  const record: DecodeRecord = { srcWidth: 0, srcHeight: 0, plans: [] };
  const ours = await decodeImage(f, [Resize(160)], false, new Rng(0), { record });
  const box = record.plans[0]!.extract!;
  assert.deepEqual(box, { left: 62, top: 0, width: 375, height: 375 });
  // 375 / 160 ≥ 2, so libjpeg decodes at half size (scale 4/8), 250×188.
  const out = new Uint8Array(160 * 160 * 3);
  const scale = await a.jpegDecode(fs.readFileSync(f), out, new Float64Array([62, 0, 437, 375]), 160, 160, true);
  assert.equal(scale, 4);
  assert.deepEqual(Array.from(out), Array.from(ours.data));
  const py = `
import sys
from PIL import Image
im = Image.open(sys.argv[1])
im.draft("RGB", (250, 187))  # PIL floors 375 / 187 to 2
assert im.size == (250, 188), im.size
sx, sy = 250 / 500, 188 / 375
im = im.convert("RGB").resize((160, 160), Image.BILINEAR, box=(62 * sx, 0, 437 * sx, 375 * sy))
sys.stdout.buffer.write(im.tobytes())
`;
  const r = spawnSync("/usr/bin/python3", ["-c", py, f], { maxBuffer: 1 << 24 });
  assert.equal(r.status, 0, `python3 with PIL (apt python3-pil) is needed for this test: ${r.stderr.toString().slice(-300)}`);
  const d = maxDiff(ours.data, new Uint8Array(r.stdout));
  // PIL rounds to 8 bits between its two passes and works in fixed point; tsfast stays in float.
  assert.ok(d.max <= 2 && d.mean < 0.3, `max ${d.max}, mean ${d.mean.toFixed(3)} against PIL`);
  // sharp's full-size decode + linear resize of the same box is a different filter, but close.
  const viaVips = await viaSharp(f, [Resize(160)], false, new Rng(0));
  assert.ok(maxDiff(ours.data, viaVips.data).mean < 3, "far from sharp's crop-and-resize");
});

test("the fast path draws the same random crops as sharp's, and records them", async () => {
  const f = await photo("rrc.jpg", 640, 480);
  const tfm = RandomResizedCrop(128, { minScale: 0.35 });
  for (let seed = 1; seed <= 3; seed++) {
    const r1: DecodeRecord = { srcWidth: 0, srcHeight: 0, plans: [] };
    const r2: DecodeRecord = { srcWidth: 0, srcHeight: 0, plans: [] };
    const fast = await decodeImage(f, [tfm], true, new Rng(seed), { record: r1 });
    const ref = await viaSharp(f, [tfm], true, new Rng(seed), { record: r2 });
    assert.deepEqual(r1, r2);
    assert.deepEqual([fast.width, fast.height], [128, 128]);
    assert.ok(maxDiff(fast.data, ref.data).mean < 3, `seed ${seed}`);
  }
});

test("JPEGs the fast path refuses go to sharp: EXIF rotation, ICC profile, CMYK, a truncated file", async () => {
  const a = addon();
  const base = sharp(PHOTO).resize(120, 80);
  const rotated = await base.clone().jpeg().withMetadata({ orientation: 6 }).toBuffer();
  const icc = await base.clone().jpeg().withIccProfile("p3").toBuffer();
  const cmyk = await base.clone().toColourspace("cmyk").jpeg().toBuffer();
  assert.equal(a.jpegHeader(rotated).refuse, "EXIF orientation 6");
  assert.equal(a.jpegHeader(icc).refuse, "ICC profile");
  assert.match(a.jpegHeader(cmyk).refuse ?? "", /colour space .* 4 components/);
  // Each decodes as sharp alone decodes it (the rotation applied: 80×120).
  for (const buf of [rotated, icc, cmyk]) {
    const fast = await decodeImage(buf, [], false, new Rng(0));
    const ref = await viaSharp(buf, [], false, new Rng(0));
    assert.deepEqual([fast.width, fast.height, maxDiff(fast.data, ref.data).max], [ref.width, ref.height, 0]);
  }
  assert.deepEqual([(await decodeImage(rotated, [], false, new Rng(0))).width], [80]);
  // A file cut in half: libjpeg warns, the decode is refused, and sharp's error is what users see.
  const whole = fs.readFileSync(await photo("cut.jpg", 300, 200));
  const cut = whole.subarray(0, whole.length >> 1);
  assert.equal(a.jpegHeader(cut).refuse, undefined);
  const res = await a.jpegDecode(cut, new Uint8Array(300 * 200 * 3), new Float64Array([0, 0, 300, 200]), 300, 200, false);
  assert.match(String(res), /libjpeg: .*(premature|corrupt)/i);
  const errFast = await decodeImage(cut, [], false, new Rng(0)).then(() => "decoded", (e: Error) => e.message);
  const errRef = await viaSharp(cut, [], false, new Rng(0)).then(() => "decoded", (e: Error) => e.message);
  assert.equal(errFast, errRef);
  assert.notEqual(errFast, "decoded");
  assert.match(a.jpegHeader(Buffer.from("not a jpeg at all")).refuse ?? "", /libjpeg: /);
});

test("the addon's augmentation warp gives bit for bit the JavaScript's batch (every pad mode, lighting, normalisation)", () => {
  addon();
  // A real photo crop plus pure black and white bands, so lighting's exact edge cells are hit.
  const w = 97;
  const h = 61;
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 5)) & 255;
  for (let x = 0; x < w * 3 * 8; x++) data[x] = 0;
  for (let x = data.length - w * 3 * 8; x < data.length; x++) data[x] = 255;
  const img = { data, width: w, height: h };
  const small = { data: data.slice(0, 5 * 3), width: 5, height: 1 };
  for (const padMode of ["reflection", "border", "zeros"] as const) {
    const tfms = [
      ...augTransforms({ size: [48, 40], minScale: 0.6, maxWarp: 0.4, maxRotate: 30, padMode, pLighting: 1, maxLighting: 0.4 }),
      Normalize.fromStats(...imagenetStats),
    ];
    for (const train of [true, false]) {
      for (let seed = 0; seed < 6; seed++) {
        const run = (env: string | undefined) => {
          if (env === undefined) delete process.env["TSFAST_IMAGE_ADDON"];
          else process.env["TSFAST_IMAGE_ADDON"] = env;
          try {
            return applyBatchTfms([img, small, img], tfms, train, new Rng(seed));
          } finally {
            delete process.env["TSFAST_IMAGE_ADDON"];
          }
        };
        const js = run("0");
        const native = run(undefined);
        assert.deepEqual(native.mats, js.mats);
        const a = new Uint32Array(native.data.buffer);
        const b = new Uint32Array(js.data.buffer);
        const bad = a.findIndex((v, i) => v !== b[i]);
        assert.equal(bad, -1, `${padMode} train=${train} seed ${seed}: value ${bad} is ${native.data[bad]} natively, ${js.data[bad]} in JavaScript`);
      }
    }
  }
  // Degenerate projective matrices (a zero or infinite homogeneous divide) give what the
  // JavaScript gives (NaN, or padding), not a crash.
  // (the third: at the centre column x = 0/0 and y = 1/0, where zeros padding gives 0, not NaN)
  for (const m of [[0, 0, 0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1, 0, 0]]) {
    for (const pad of ["zeros", "border", "reflection"] as const) {
      const jsOut = new Float32Array(4 * 4 * 3);
      const out = new Float32Array(4 * 4 * 3);
      process.env["TSFAST_IMAGE_ADDON"] = "0";
      try {
        projectiveResample(img, m, 4, 4, pad, jsOut, 0);
      } finally {
        delete process.env["TSFAST_IMAGE_ADDON"];
      }
      projectiveResample(img, m, 4, 4, pad, out, 0);
      assert.deepEqual(Array.from(out).map(String), Array.from(jsOut).map(String), `${pad} ${m}`);
    }
  }
});

test("a box reaching outside the image takes the edge pixels, at full size as when resampled alone; a damaged file is refused", async () => {
  const a = addon();
  const buf = fs.readFileSync(await photo("edge.jpg", 200, 200));
  const full = new Uint8Array(200 * 200 * 3);
  assert.equal(await a.jpegDecode(buf, full, new Float64Array([0, 0, 200, 200]), 200, 200, false), 8);
  for (const box of [[0, -50, 100, 50], [-10, 0, 90, 100], [150, 150, 250, 250]]) {
    const out = new Uint8Array(100 * 100 * 3);
    await a.jpegDecode(buf, out, new Float64Array(box), 100, 100, false);
    const ref = new Uint8Array(100 * 100 * 3);
    a.resample(full, 200, 200, new Float64Array(box), ref, 100, 100);
    assert.deepEqual(Array.from(out), Array.from(ref), `box ${box}`);
  }
  // A second frame header before the end: the header reads fine, the decode fails, sharp's error shows.
  const sof = buf.indexOf(Buffer.from([0xff, 0xc0]));
  const len = buf.readUInt16BE(sof + 2);
  const twice = Buffer.concat([buf.subarray(0, buf.length - 2), buf.subarray(sof, sof + 2 + len), buf.subarray(buf.length - 2)]);
  assert.equal(a.jpegHeader(twice).refuse, undefined);
  assert.match(String(await a.jpegDecode(twice, new Uint8Array(200 * 200 * 3), new Float64Array([0, 0, 200, 200]), 200, 200, false)), /libjpeg: /);
  const fast = await decodeImage(twice, [], false, new Rng(0)).then((im) => im.width, (e: Error) => e.message);
  const ref = await viaSharp(twice, [], false, new Rng(0)).then((im) => im.width, (e: Error) => e.message);
  assert.equal(fast, ref);
});
