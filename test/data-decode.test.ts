process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import type { Sharp } from "sharp";
import { decodeImage, decoderName, ImageDecodeError, withoutUpscale } from "../lib/data/decode";
import { Rng } from "../lib/data/random";
import { planItemTfm, RandomResizedCrop, Resize } from "../lib/data/transforms";
import { gradient, rawPng, tmpDir } from "./fixtures/data/make";

const dir = tmpDir();
const rng = () => new Rng(1);

function pix(img: { data: Uint8Array; width: number }, x: number, y: number): number[] {
  const p = (y * img.width + x) * 3;
  return [img.data[p]!, img.data[p + 1]!, img.data[p + 2]!];
}

function near(a: number[], b: number[], tol: number): boolean {
  return a.every((v, i) => Math.abs(v - b[i]!) <= tol);
}

async function solidBuf(fmt: (s: Sharp) => Sharp, rgb = { r: 200, g: 100, b: 50 }): Promise<Buffer> {
  return fmt(sharp({ create: { width: 8, height: 6, channels: 3, background: rgb } })).toBuffer();
}

test("an RGB PNG decodes to exactly its pixels, 3 channels", async () => {
  const data = gradient(7, 5, 10, 7);
  const f = await rawPng(path.join(dir, "g.png"), data, 7, 5);
  const img = await decodeImage(f, [], false, rng());
  assert.equal(img.width, 7);
  assert.equal(img.height, 5);
  assert.deepEqual(Array.from(img.data), Array.from(data));
});

test("JPEG, WebP, GIF, TIFF, AVIF, SVG, CMYK JPEG and 16-bit PNG all decode to 8-bit RGB of the right colour", async () => {
  const cases: [string, Buffer, number][] = [
    ["jpeg", await solidBuf((s) => s.jpeg({ quality: 95 })), 4],
    ["webp", await solidBuf((s) => s.webp({ lossless: true })), 1],
    ["gif", await solidBuf((s) => s.gif()), 12],
    ["tiff", await solidBuf((s) => s.tiff()), 1],
    ["avif", await solidBuf((s) => s.avif({ lossless: true })), 4],
    // CMYK goes through colour profiles both ways, so the round trip is only close.
    ["cmyk jpeg", await solidBuf((s) => s.toColourspace("cmyk").jpeg({ quality: 95 })), 32],
    ["16-bit png", await solidBuf((s) => s.toColourspace("rgb16").png()), 1],
    [
      "svg",
      Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="6"><rect width="8" height="6" fill="rgb(200,100,50)"/></svg>'),
      1,
    ],
  ];
  for (const [name, buf, tol] of cases) {
    const img = await decodeImage(buf, [], false, rng());
    assert.equal(img.data.length, img.width * img.height * 3, name);
    assert.ok(near(pix(img, 3, 3), [200, 100, 50], tol), `${name}: got ${pix(img, 3, 3)}`);
  }
});

test("grayscale becomes 3 equal channels", async () => {
  const buf = await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 90, g: 90, b: 90 } } })
    .toColourspace("b-w")
    .png()
    .toBuffer();
  const img = await decodeImage(buf, [], false, rng());
  assert.deepEqual(pix(img, 1, 1), [90, 90, 90]);
});

test("mode \"L\" (the grey hook) gives PIL's luma, rounded, in all three channels", async () => {
  // L = R·299/1000 + G·587/1000 + B·114/1000: (200,100,50) → 124.2 → 124; (10,250,30) → 153.16 → 153
  const f = await rawPng(path.join(dir, "grey-src.png"), Uint8Array.from([200, 100, 50, 10, 250, 30]), 2, 1);
  const img = await decodeImage(f, [], false, rng(), { mode: "L" });
  assert.deepEqual(Array.from(img.data), [124, 124, 124, 153, 153, 153]);
  const rgb = await decodeImage(f, [], false, rng(), { mode: "RGB" });
  assert.deepEqual(Array.from(rgb.data), [200, 100, 50, 10, 250, 30]);
});

test("alpha is composited over white: transparent → white, half-transparent red → pink", async () => {
  const rgba = Buffer.from([255, 0, 0, 0, 255, 0, 0, 128]);
  const buf = await sharp(rgba, { raw: { width: 2, height: 1, channels: 4 } }).png().toBuffer();
  const img = await decodeImage(buf, [], false, rng());
  assert.deepEqual(pix(img, 0, 0), [255, 255, 255]);
  assert.ok(near(pix(img, 1, 0), [255, 127, 127], 1), `got ${pix(img, 1, 0)}`);
});

test("EXIF orientation is applied: a 4×2 image tagged orientation 6 (rotate 90° clockwise) decodes 2×4, left half on top", async () => {
  const data = new Uint8Array(4 * 2 * 3);
  for (let y = 0; y < 2; y++) {
    for (let x = 0; x < 4; x++) data.set(x < 2 ? [250, 0, 0] : [0, 0, 250], (y * 4 + x) * 3);
  }
  const buf = await sharp(Buffer.from(data), { raw: { width: 4, height: 2, channels: 3 } })
    .png()
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const img = await decodeImage(buf, [], false, rng());
  assert.equal(img.width, 2);
  assert.equal(img.height, 4);
  assert.ok(pix(img, 0, 0)[0]! > 200 && pix(img, 0, 3)[2]! > 200, `top ${pix(img, 0, 0)} bottom ${pix(img, 0, 3)}`);
});

test("Resize crop takes the centre on valid: a 30×10 gradient → 10×10 is columns 10..19", async () => {
  const f = await rawPng(path.join(dir, "wide.png"), gradient(30, 10, 5, 7), 30, 10);
  const img = await decodeImage(f, [Resize(10)], false, rng());
  assert.equal(img.width, 10);
  for (let x = 0; x < 10; x++) assert.equal(pix(img, x, 3)[0], (10 + x) * 5);
  for (let y = 0; y < 10; y++) assert.equal(pix(img, 4, y)[1], y * 5);
});

test("Resize crop on train places the crop at random (seeded), always inside the image", () => {
  const lefts = new Set<number>();
  const r = new Rng(3);
  for (let k = 0; k < 40; k++) {
    const plan = planItemTfm(Resize(10), 30, 10, true, r);
    assert.ok(plan.extract && plan.extract.left >= 0 && plan.extract.left + plan.extract.width <= 30);
    lefts.add(plan.extract.left);
  }
  assert.ok(lefts.size > 5);
  assert.deepEqual(planItemTfm(Resize(10), 30, 10, true, new Rng(3)), planItemTfm(Resize(10), 30, 10, true, new Rng(3)));
});

test("Resize squish ignores the aspect ratio; pad fits inside and pads (zeros: black bars, reflection: mirrored)", async () => {
  const white = await sharp({ create: { width: 20, height: 10, channels: 3, background: "#ffffff" } }).png().toBuffer();
  const sq = await decodeImage(white, [Resize([6, 8], { method: "squish" })], false, rng());
  assert.deepEqual([sq.width, sq.height], [8, 6]);
  const z = await decodeImage(white, [Resize(10, { method: "pad", padMode: "zeros" })], false, rng());
  assert.deepEqual([z.width, z.height], [10, 10]);
  // 20×10 → 10×5 placed at top = floor(0.5·5) = 2: rows 0-1 and 7-9 black.
  for (const y of [0, 1, 7, 9]) assert.deepEqual(pix(z, 5, y), [0, 0, 0], `row ${y}`);
  for (const y of [2, 4, 6]) assert.deepEqual(pix(z, 5, y), [255, 255, 255], `row ${y}`);
  const r = await decodeImage(white, [Resize(10, { method: "pad", padMode: "reflection" })], false, rng());
  assert.deepEqual(pix(r, 5, 0), [255, 255, 255]);
});

test("RandomResizedCrop on valid squishes to size + 14% (rounded up to 8) and centre-crops, as fastai", async () => {
  const plan = planItemTfm(RandomResizedCrop(224), 500, 300, false, rng());
  assert.deepEqual(plan.resize, { width: 256, height: 256 });
  assert.deepEqual(plan.crop, { left: 16, top: 16, width: 224, height: 224 });
  const f = await rawPng(path.join(dir, "rrc.png"), gradient(50, 30), 50, 30);
  const img = await decodeImage(f, [RandomResizedCrop(16)], false, rng());
  assert.deepEqual([img.width, img.height], [16, 16]);
  // train: area within [minScale, 1] of the image and ratio within [3/4, 4/3] (up to rounding)
  const r = new Rng(4);
  for (let k = 0; k < 30; k++) {
    const p = planItemTfm(RandomResizedCrop(16, { minScale: 0.3 }), 50, 30, true, r);
    const e = p.extract!;
    assert.ok(e.width * e.height >= 0.3 * 1500 * 0.85 && e.left + e.width <= 50 && e.top + e.height <= 30);
  }
});

test("an enlarging crop is left at its own resolution when the batch resamples anyway (noUpscale)", async () => {
  const plan = planItemTfm(Resize(460), 500, 375, false, rng());
  const lazy = withoutUpscale(plan, 500, 375);
  assert.equal(lazy.resize, undefined);
  assert.deepEqual(lazy.out, { width: 375, height: 375 });
  const shrink = planItemTfm(Resize(100), 500, 375, false, rng());
  assert.deepEqual(withoutUpscale(shrink, 500, 375), shrink);
  const f = await rawPng(path.join(dir, "up.png"), gradient(30, 10), 30, 10);
  const img = await decodeImage(f, [Resize(40)], false, rng(), { noUpscale: true });
  assert.deepEqual([img.width, img.height], [10, 10]);
});

test("images over the pixel limit are refused with a message naming the file, its size and the limit", async () => {
  const f = await rawPng(path.join(dir, "big.png"), gradient(20, 10), 20, 10);
  await assert.rejects(decodeImage(f, [], false, rng(), { maxPixels: 100 }), (e: unknown) => {
    assert.ok(e instanceof ImageDecodeError);
    assert.match(e.message, /big\.png: image is 20×10 = 200 pixels, over the limit of 100/);
    return true;
  });
});

test("TSFAST_DECODER=jimp decodes with jimp after one notice, giving the same pixels and transforms", async () => {
  const data = gradient(30, 10, 5, 7);
  const f = await rawPng(path.join(dir, "j.png"), data, 30, 10);
  const viaSharp = await decodeImage(f, [Resize(10)], false, rng());
  const warnings: string[] = [];
  const orig = console.warn;
  console.warn = (...a: unknown[]) => void warnings.push(a.join(" "));
  process.env["TSFAST_DECODER"] = "jimp";
  try {
    assert.equal(decoderName(), "jimp");
    const raw = await decodeImage(f, [], false, rng());
    assert.deepEqual(Array.from(raw.data), Array.from(data));
    const viaJimp = await decodeImage(f, [Resize(10)], false, rng());
    assert.deepEqual(Array.from(viaJimp.data), Array.from(viaSharp.data));
    const small = await decodeImage(f, [Resize(5, { method: "squish" })], false, rng());
    assert.deepEqual([small.width, small.height], [5, 5]);
    // 30→5 across: each output column averages 6 source columns of R = 5x: centre column 2 ≈ R(14.5) = 72.5
    assert.ok(Math.abs(pix(small, 2, 2)[0]! - 72.5) <= 3, `got ${pix(small, 2, 2)}`);
    await assert.rejects(decodeImage(Buffer.from("not an image"), [], false, rng()), /not a readable image/);
  } finally {
    delete process.env["TSFAST_DECODER"];
    console.warn = orig;
  }
  assert.equal(warnings.filter((w) => w.includes("jimp")).length, 1, warnings.join("\n"));
  assert.match(warnings[0]!, /decoding images with jimp .* because TSFAST_DECODER=jimp/);
});

test("the test folder is cleaned up", () => {
  fs.rmSync(dir, { recursive: true, force: true });
  assert.ok(!fs.existsSync(dir));
});

test("a BMP (which libvips cannot read) is decoded by jimp instead", async () => {
  const { Jimp } = await import("jimp");
  const j = new Jimp({ width: 3, height: 2, color: 0x336699ff });
  const bmp = await j.getBuffer("image/bmp");
  const img = await decodeImage(bmp, [], false, rng());
  assert.deepEqual([img.width, img.height], [3, 2]);
  assert.deepEqual(pix(img, 1, 1), [0x33, 0x66, 0x99]);
});
