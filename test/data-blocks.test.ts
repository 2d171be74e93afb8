/**
 * Transform blocks beyond image + category: points and masks follow their image's geometry, grey
 * images, regression targets, several inputs, and each block's show. Real PNGs through sharp.
 */
process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { CategoryBlock, DataBlock, ImageBlock, MaskBlock, MultiCategoryBlock, PointBlock, RegressionBlock } from "../lib/data/block";
import { augTransforms } from "../lib/data/augment";
import { Resize } from "../lib/data/transforms";
import { IndexSplitter } from "../lib/data/items";
import { decodeMask, maskToPng } from "../lib/data/mask";
import { unitToPixels } from "../lib/data/follow";
import { Learner } from "../lib/learner/learner";
import { maskColour } from "../lib/data/blocks";
import { cellLegend, type Batch } from "../lib/data/loader";
import { rng } from "./helpers/learner-data";
import { tempDir } from "./helpers/tmp";

async function png(file: string, w: number, h: number, rgb: Uint8Array): Promise<string> {
  await sharp(Buffer.from(rgb), { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
  return file;
}

/** A black w×h image with a Gaussian dot (σ 1.5 px) centred on pixel (x, y). */
function dot(w: number, h: number, x: number, y: number): Uint8Array {
  const d = new Uint8Array(w * h * 3);
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      const v = Math.round(255 * Math.exp(-((i - x) ** 2 + (j - y) ** 2) / (2 * 1.5 ** 2)));
      d.fill(v, (j * w + i) * 3, (j * w + i) * 3 + 3);
    }
  }
  return d;
}

/** Intensity-weighted centre (x, y) of channel 0 of image r of an NHWC batch, over values above 10 % of its peak. */
function centroid(data: Float32Array, shape: number[], r: number): [number, number] {
  const [, h, w, c] = shape as [number, number, number, number];
  const base = r * h * w * c;
  let peak = 0;
  for (let p = 0; p < h * w; p++) peak = Math.max(peak, data[base + p * c]!);
  let sx = 0, sy = 0, s = 0;
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      const v = data[base + (j * w + i) * c]!;
      if (v < 0.1 * peak) continue;
      sx += v * i;
      sy += v * j;
      s += v;
    }
  }
  return [sx / s, sy / s];
}

async function batchOf(dl: AsyncIterable<Batch>): Promise<Batch> {
  for await (const b of dl) return b;
  throw new Error("no batch");
}

const strongAug = () => augTransforms({ size: 40, flipVert: true, maxRotate: 30, minZoom: 0.9, maxZoom: 1.4, maxWarp: 0.3, pAffine: 1, maxLighting: 0, padMode: "zeros" });

test("a point painted onto an image stays on its pixel (±1 px) through Resize and augTransforms with flips, rotation, zoom and warp", async () => {
  await ready();
  const dir = tempDir("tsfast-points-");
  const r = rng(5);
  const items: { file: string; pt: [number, number] }[] = [];
  for (let k = 0; k < 48; k++) {
    // Non-square sources of several sizes; the dot well inside so no transform pushes it out.
    const w = 70 + 10 * (k % 3), h = 56 + 8 * (k % 2);
    const pt: [number, number] = [Math.round(w * (0.38 + 0.24 * r())), Math.round(h * (0.38 + 0.24 * r()))];
    items.push({ file: await png(path.join(dir, `d${k}.png`), w, h, dot(w, h, pt[0], pt[1])), pt });
  }
  const block = new DataBlock<typeof items, (typeof items)[number]>({
    blocks: [ImageBlock, PointBlock],
    getX: (it) => it.file,
    getY: (it) => [[it.pt[0] + 0.5, it.pt[1] + 0.5]], // the dot's pixel centre, in corner-based coordinates
    splitter: IndexSplitter(Array.from({ length: 8 }, (_, i) => 40 + i)),
    itemTfms: Resize([48, 56]),
    batchTfms: strongAug(),
  });
  const dls = await block.dataloaders(items, { bs: 40, seed: 3 });
  assert.equal(dls.c, 2);
  assert.equal(dls.targetKind, "points");
  let worst = 0;
  for (const dl of [dls.train, dls.valid]) {
    for await (const b of dl) {
      assert.deepEqual(b.yb.shape, [b.xb.shape[0], 1, 2]);
      const x = (await b.xb.data()) as Float32Array;
      const y = Float32Array.from(await b.yb.data());
      for (let rr = 0; rr < b.xb.shape[0]; rr++) {
        const [cx, cy] = centroid(x, b.xb.shape, rr);
        const p = unitToPixels(y.slice(2 * rr, 2 * rr + 2), b.xb.shape[2], b.xb.shape[1]);
        worst = Math.max(worst, Math.hypot(p[0]! - cx, p[1]! - cy));
      }
      tf.dispose([b.xb, b.yb]);
    }
  }
  assert.ok(worst <= 1, `a point moved ${worst.toFixed(2)} px away from its dot`);
  // and the training batches did move the points (the test would pass vacuously on identity)
  const b = await batchOf(dls.train);
  const ys = Array.from(await b.yb.data());
  tf.dispose([b.xb, b.yb]);
  assert.ok(ys.some((v) => Math.abs(v) > 0.05), "points moved");
});

/** A mask of rectangles of classes {0, 3, 7} and an image that paints class k as grey 20·k. */
function blocksScene(w: number, h: number, seed: number): { mask: Uint8Array; rgb: Uint8Array } {
  const r = rng(seed);
  const mask = new Uint8Array(w * h);
  for (const k of [3, 7, 3]) {
    const x0 = Math.floor(r() * w * 0.6), y0 = Math.floor(r() * h * 0.6);
    const x1 = x0 + 8 + Math.floor(r() * w * 0.4), y1 = y0 + 8 + Math.floor(r() * h * 0.4);
    for (let y = y0; y < Math.min(h, y1); y++) mask.fill(k, y * w + x0, y * w + Math.min(w, x1));
  }
  const rgb = new Uint8Array(w * h * 3);
  for (let p = 0; p < w * h; p++) rgb.fill(20 * mask[p]!, 3 * p, 3 * p + 3);
  return { mask, rgb };
}

test("masks follow their image, are resampled nearest-neighbour (no invented class) and are never lit or normalised", async () => {
  await ready();
  const dir = tempDir("tsfast-masks-");
  const items: { img: string; mask: string }[] = [];
  for (let k = 0; k < 24; k++) {
    const w = 64 + 8 * (k % 3), h = 52;
    const { mask, rgb } = blocksScene(w, h, k + 1);
    const img = await png(path.join(dir, `i${k}.png`), w, h, rgb);
    const m = path.join(dir, `m${k}.png`);
    fs.writeFileSync(m, await maskToPng({ data: mask, width: w, height: h }));
    items.push({ img, mask: m });
  }
  const codes = ["bg", "a", "b", "c", "d", "e", "f", "g", "h", "i"];
  const block = new DataBlock<typeof items, (typeof items)[number]>({
    blocks: [ImageBlock, MaskBlock({ codes })],
    getX: (it) => it.img,
    getY: (it) => it.mask,
    splitter: IndexSplitter([20, 21, 22, 23]),
    itemTfms: Resize(48),
    batchTfms: [...augTransforms({ size: 40, flipVert: true, maxRotate: 30, maxZoom: 1.4, maxWarp: 0.3, pAffine: 1, pLighting: 1 })],
  });
  const dls = await block.dataloaders(items, { bs: 20 });
  assert.equal(dls.c, 10);
  assert.deepEqual(dls.vocab, codes);
  const b = await batchOf(dls.train);
  assert.equal(b.yb.dtype, "int32");
  assert.deepEqual(b.yb.shape, [20, 40, 40]);
  const m = Int32Array.from(await b.yb.data());
  const x = (await b.xb.data()) as Float32Array;
  tf.dispose([b.xb, b.yb]);
  assert.deepEqual([...new Set(m)].sort((a, c) => a - c), [0, 3, 7], "only the mask's own classes");
  // Where a pixel's 3×3 neighbourhood is one class, the image (lighting aside) shows that class's
  // grey: rank the greys per image and check the mask orders them the same way.
  let checked = 0, wrong = 0;
  for (let r = 0; r < 20; r++) {
    const byClass = new Map<number, number[]>();
    for (let j = 1; j < 39; j++) {
      for (let i = 1; i < 39; i++) {
        const k = m[r * 1600 + j * 40 + i]!;
        let same = true;
        for (let dj = -1; dj <= 1 && same; dj++) for (let di = -1; di <= 1; di++) if (m[r * 1600 + (j + dj) * 40 + i + di] !== k) same = false;
        if (!same) continue;
        const v = x[(r * 1600 + j * 40 + i) * 3]!;
        (byClass.get(k) ?? byClass.set(k, []).get(k)!).push(v);
      }
    }
    const means = [...byClass.entries()].map(([k, vs]) => [k, vs.reduce((a, c) => a + c, 0) / vs.length, Math.min(...vs), Math.max(...vs)] as const);
    // lighting is monotone: a higher class is brighter everywhere in this image
    for (const [k, , , hi] of means) for (const [k2, , lo2] of means) if (k < k2) { checked++; if (!(hi < lo2)) wrong++; }
  }
  assert.ok(checked > 10, `compared ${checked} class pairs`);
  assert.equal(wrong, 0, `${wrong} of ${checked} class pairs out of order: the mask does not sit on its image`);
});

test("MaskBlock reads grey and palette PNG masks exactly and refuses what it cannot use, naming the file", async () => {
  const dir = tempDir("tsfast-maskfiles-");
  const data = Uint8Array.from({ length: 12 }, (_, i) => i % 4);
  const grey = path.join(dir, "grey.png");
  fs.writeFileSync(grey, await maskToPng({ data, width: 4, height: 3 }));
  assert.deepEqual(Array.from((await decodeMask(grey)).data), Array.from(data));
  // palette: indices come back whatever colours the palette gives them
  const rgb = Buffer.alloc(36);
  const colours = [[200, 10, 10], [10, 200, 10], [10, 10, 200], [90, 90, 90]];
  data.forEach((k, i) => rgb.set(colours[k]!, 3 * i));
  const pal = path.join(dir, "pal.png");
  await sharp(rgb, { raw: { width: 4, height: 3, channels: 3 } }).png({ palette: true, colours: 4, dither: 0 }).toFile(pal);
  const back = await decodeMask(pal);
  // palette order is the encoder's: the same pixels share an index, distinct ones differ
  const mapping = new Map<number, number>();
  data.forEach((k, i) => mapping.set(k, back.data[i]!));
  assert.equal(new Set(mapping.values()).size, 4);
  data.forEach((k, i) => assert.equal(back.data[i], mapping.get(k)));
  // an RGB mask is refused with what to do
  const rgbFile = path.join(dir, "rgb.png");
  await sharp(rgb, { raw: { width: 4, height: 3, channels: 3 } }).png().toFile(rgbFile);
  await assert.rejects(decodeMask(rgbFile), /rgb\.png: an RGB mask; save class indices as a grey or palette PNG/);
  // a mask value past the codes, and a mask of the wrong size, name the item
  const img = await png(path.join(dir, "img.png"), 4, 3, new Uint8Array(36));
  const small = path.join(dir, "small.png");
  fs.writeFileSync(small, await maskToPng({ data: new Uint8Array(4), width: 2, height: 2 }));
  const make = (mask: string, codes: string[]) =>
    new DataBlock<string[], string>({ blocks: [ImageBlock, MaskBlock({ codes })], getX: () => img, getY: () => mask, splitter: IndexSplitter([1]) }).dataloaders(["a", "b"], { bs: 2 });
  const first = async (p: Promise<{ train: AsyncIterable<Batch> }>) => {
    const b = await batchOf((await p).train);
    tf.dispose([b.xb, b.yb]);
  };
  await assert.rejects(first(make(grey, ["bg", "x", "y"])), /has value 3, but there are only 3 codes \[bg, x, y\]; add the missing codes/);
  await assert.rejects(first(make(small, ["bg", "x"])), /the mask of .* is 2×2 but its image is 4×3/);
  await assert.rejects(make(path.join(dir, "nope.png"), ["bg", "x"]), /MaskBlock: 2 mask files are missing or unreadable: ".*nope\.png" \(the mask of /);
  const withVoid = await new DataBlock<string[], string>({ blocks: [ImageBlock, MaskBlock({ codes: ["bg", "x", "void"], voidCode: "void" })], getX: () => img, getY: () => grey, splitter: IndexSplitter([1]) }).dataloaders(["a", "b"]);
  assert.equal(withVoid.voidIndex, 2);
  assert.throws(() => MaskBlock({ codes: ["only"] }), /codes must list the class of each mask value/);
  assert.throws(() => MaskBlock({ codes: ["bg", "car"], voidCode: "void" }), /voidCode "void" is not one of the codes/);
  assert.throws(() => new DataBlock({ blocks: [PointBlock, ImageBlock], getY: () => 0 }), /a points block follows an image's geometry; put an ImageBlock before it/);
});

test("grey ImageBlock gives one channel of PIL's luminance; RegressionBlock gives float rows; both show", async () => {
  await ready();
  const dir = tempDir("tsfast-grey-");
  const rgb = new Uint8Array(4 * 4 * 3);
  for (let p = 0; p < 16; p++) rgb.set([200, 100, 50], 3 * p);
  const files = [0, 1, 2].map((k) => path.join(dir, `g${k}.png`));
  for (const f of files) await png(f, 4, 4, rgb);
  const block = new DataBlock<string[], string>({
    blocks: [ImageBlock({ cls: "grey" }), RegressionBlock],
    getY: (f) => [files.indexOf(f), 0.5],
    splitter: IndexSplitter([2]),
  });
  const dls = await block.dataloaders(files, { bs: 2, shuffle: false });
  assert.equal(dls.c, 2);
  const b = await batchOf(dls.train);
  assert.deepEqual(b.xb.shape, [2, 4, 4, 1]);
  const lum = Math.round((200 * 299 + 100 * 587 + 50 * 114) / 1000) / 255;
  for (const v of await b.xb.data()) assert.ok(Math.abs(v - lum) < 1e-6);
  assert.equal(b.yb.dtype, "float32");
  assert.deepEqual(Array.from(await b.yb.data()), [0, 0.5, 1, 0.5]);
  const cells = await dls.showCells([b.xb, b.yb], 2);
  tf.dispose([b.xb, b.yb]);
  assert.deepEqual(cells.map((c) => c.titles), [["0, 0.5"], ["1, 0.5"]]);
  assert.ok(Math.abs(cells[0]!.image!.data[1]! - lum) < 1e-6, "grey shown in all three channels");
  assert.throws(() => ImageBlock({ cls: "BW" as never }), /cls must be "RGB" or "grey"/);
  const bad = new DataBlock<string[], string>({ blocks: [ImageBlock, RegressionBlock], getY: (f) => (f === files[0] ? [1, 2] : [1]), splitter: IndexSplitter([2]) });
  await assert.rejects(bad.dataloaders(files), /RegressionBlock: ".*g1\.png" has 1 values, ".*g0\.png" has 2; every item needs the same count/);
});

test("show draws each block: category and multi-label titles, point markers, mask colours over the image", async () => {
  await ready();
  const dir = tempDir("tsfast-show-");
  const w = 24, h = 20;
  const img = await png(path.join(dir, "x.png"), w, h, new Uint8Array(w * h * 3).fill(128));
  const maskData = new Uint8Array(w * h);
  maskData.fill(2, 0, w * 5); // top five rows are class 2
  const mask = path.join(dir, "m.png");
  fs.writeFileSync(mask, await maskToPng({ data: maskData, width: w, height: h }));
  const pts = new DataBlock<string[], string>({ blocks: [ImageBlock, PointBlock], getX: () => img, getY: () => [[12.5, 10.5]], splitter: IndexSplitter([1]) });
  const pdls = await pts.dataloaders(["a", "b"], { bs: 1 });
  const pb = await batchOf(pdls.valid);
  const [pc] = await pdls.showCells([pb.xb, pb.yb], 1);
  tf.dispose([pb.xb, pb.yb]);
  assert.deepEqual(Array.from(pc!.image!.data.slice((10 * w + 12) * 3, (10 * w + 12) * 3 + 3)), [1, 0, 0], "a red marker on the point");
  const seg = new DataBlock<string[], string>({ blocks: [ImageBlock, MaskBlock({ codes: ["bg", "a", "b"] })], getX: () => img, getY: () => mask, splitter: IndexSplitter([1]) });
  const sdls = await seg.dataloaders(["a", "b"], { bs: 1 });
  const sb = await batchOf(sdls.valid);
  const [sc] = await sdls.showCells([sb.xb, sb.yb], 1);
  tf.dispose([sb.xb, sb.yb]);
  const c2 = maskColour(2);
  const grey = 128 / 255;
  assert.ok(Math.abs(sc!.image!.data[0]! - (0.5 * grey + 0.5 * c2[0])) < 1e-6, "class 2 blended at half opacity");
  assert.ok(Math.abs(sc!.image!.data[(10 * w) * 3]! - grey) < 1e-6, "background left clear");
  assert.deepEqual(cellLegend([sc!]), [{ label: "b", colour: c2 }], "the legend names the classes shown");
  const multi = new DataBlock<string[], string>({ blocks: [ImageBlock, MultiCategoryBlock], getX: () => img, getY: (s) => (s === "a" ? ["cat", "dog"] : ["dog"]), splitter: IndexSplitter([1]) });
  const mdls = await multi.dataloaders(["a", "b"], { bs: 1 });
  const mb = await batchOf(mdls.train);
  const [mc] = await mdls.showCells([mb.xb, mb.yb], 1);
  tf.dispose([mb.xb, mb.yb]);
  assert.deepEqual(mc!.titles, ["cat;dog"]);
  const single = new DataBlock<string[], string>({ blocks: [ImageBlock, CategoryBlock], getX: () => img, getY: (s) => s, splitter: IndexSplitter([]) as never });
  await assert.rejects(single.dataloaders(["a", "b"]), /validation set is empty/);
});

test("several inputs (nInp): batches carry every input and target; the Learner refuses them with a message", async () => {
  await ready();
  const dir = tempDir("tsfast-ninp-");
  const a = await png(path.join(dir, "a.png"), 6, 6, new Uint8Array(108).fill(10));
  const b = await png(path.join(dir, "b.png"), 6, 6, new Uint8Array(108).fill(250));
  const pairs = [[a, b, "diff"], [a, a, "same"], [b, b, "same"], [b, a, "diff"]] as const;
  const block = new DataBlock<typeof pairs, (typeof pairs)[number]>({
    blocks: [ImageBlock, ImageBlock, CategoryBlock],
    nInp: 2,
    getX: [(p) => p[0], (p) => p[1]],
    getY: (p) => p[2],
    splitter: IndexSplitter([3]),
  });
  const dls = await block.dataloaders(pairs as never, { bs: 3, shuffle: false });
  assert.equal(dls.nInp, 2);
  const batch = await batchOf(dls.train);
  assert.equal(batch.xs.length, 2);
  assert.equal(batch.ys.length, 1);
  assert.equal(batch.xb, batch.xs[0]);
  const second = Array.from(await batch.xs[1]!.data());
  assert.ok(Math.abs(second[0]! - 250 / 255) < 1e-6, "the second input is the pair's second image");
  tf.dispose([...batch.xs, ...batch.ys]);
  const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [6, 6, 3] }), tf.layers.dense({ units: 2 })] });
  assert.throws(() => new Learner(dls, model), /one input and one target; these DataLoaders have 2 inputs and 1 targets/);
  model.dispose();
  assert.throws(() => new DataBlock({ blocks: [ImageBlock, CategoryBlock], nInp: 2, getY: () => "x" }), /nInp must be a whole number from 1 to 1/);
  assert.throws(() => new DataBlock({ blocks: [ImageBlock, ImageBlock, CategoryBlock], nInp: 2, getY: () => "x", getX: () => "y" }), /2 input blocks need 2 getX functions/);
  assert.throws(() => new DataBlock({ blocks: [ImageBlock, ImageBlock, CategoryBlock], nInp: 2, getY: () => "x" }), /2 input blocks need 2 getX functions \(an array\), got none/);
  assert.throws(() => new DataBlock({ blocks: [ImageBlock, ImageBlock, CategoryBlock], nInp: 2, getY: () => "x", getX: [() => "a"] }), /got 1$/);
});

test("Resize with padding: the mask and the point get exactly the picture's margins (reflection mirrors the edge pixel, as sharp pads)", async () => {
  await ready();
  const dir = tempDir("tsfast-pad-");
  const w = 48, h = 24;
  const files: { img: string; mask: string }[] = [];
  for (let k = 0; k < 2; k++) {
    const { mask, rgb } = blocksScene(w, h, 11 + k);
    const img = await png(path.join(dir, `p${k}.png`), w, h, rgb);
    const m = path.join(dir, `pm${k}.png`);
    fs.writeFileSync(m, await maskToPng({ data: mask, width: w, height: h }));
    files.push({ img, mask: m });
  }
  for (const padMode of ["reflection", "border", "zeros"] as const) {
    // 48×24 padded into 48×48: no resampling, 12 rows above and below
    const block = new DataBlock<typeof files, (typeof files)[number]>({
      blocks: [ImageBlock, MaskBlock({ codes: ["bg", "a", "b", "c", "d", "e", "f", "g"] }), PointBlock],
      getX: (it) => it.img,
      getY: [(it) => it.mask, () => [[10.5, 3.5]]],
      splitter: IndexSplitter([1]),
      itemTfms: Resize(48, { method: "pad", padMode }),
    });
    const dls = await block.dataloaders(files, { bs: 1 });
    const b = await batchOf(dls.valid);
    const x = (await b.xb.data()) as Float32Array;
    const m = await b.ys[0]!.data();
    const p = unitToPixels(Float32Array.from(await b.ys[1]!.data()), 48, 48);
    tf.dispose([...b.xs, ...b.ys]);
    let off = 0;
    for (let q = 0; q < 48 * 48; q++) if (Math.round(x[3 * q]! * 255) !== 20 * m[q]!) off++;
    assert.equal(off, 0, `${padMode}: ${off} pixels where picture and mask disagree`);
    assert.ok(Math.abs(p[0]! - 10) < 1e-4 && Math.abs(p[1]! - 15) < 1e-4, `${padMode}: the point moved down by the top margin: ${p}`);
  }
});

test("SegmentationDataLoaders.fromLabelFunc: masks found by labelFunc, a given splitter or validPct, clear errors", async () => {
  const { SegmentationDataLoaders } = await import("../lib/data/factories");
  const { FuncSplitter } = await import("../lib/data/items");
  const dir = tempDir("tsfast-seg-");
  fs.mkdirSync(path.join(dir, "images"));
  fs.mkdirSync(path.join(dir, "labels"));
  const names: string[] = [];
  for (let k = 0; k < 6; k++) {
    const name = `s${k}.png`;
    names.push(path.join("images", name));
    await png(path.join(dir, "images", name), 4, 4, new Uint8Array(48).fill(20 * k));
    // mask k: class (k % 3) everywhere but the first pixel (background)
    const m = new Uint8Array(16).fill(k % 3);
    m[0] = 0;
    fs.writeFileSync(path.join(dir, "labels", `s${k}_P.png`), await maskToPng({ data: m, width: 4, height: 4 }));
  }
  const labelFunc = (f: string) => path.join("labels", path.basename(f, ".png") + "_P.png");
  const codes = ["bg", "a", "b"];
  const dls = await SegmentationDataLoaders.fromLabelFunc(dir, names, labelFunc, {
    codes, bs: 2, splitter: FuncSplitter((f: string) => /s[45]\.png$/.test(f)),
  });
  assert.equal(dls.targetKind, "mask");
  assert.equal(dls.c, 3);
  assert.deepEqual([dls.train.n, dls.valid.n], [4, 2]);
  // the validation masks are s4's (class 1) and s5's (class 2), in order, read exactly
  const seen: number[][] = [];
  for await (const b of dls.valid) {
    const y = await b.ys[0]!.data();
    for (let i = 0; i < b.ys[0]!.shape[0]!; i++) seen.push(Array.from(y.slice(i * 16, i * 16 + 3)));
    tf.dispose([...b.xs, ...b.ys]);
  }
  assert.deepEqual(seen, [[0, 1, 1], [0, 2, 2]]);
  const random = await SegmentationDataLoaders.fromLabelFunc(dir, names, labelFunc, { codes, bs: 2, validPct: 0.5, seed: 1 });
  assert.deepEqual([random.train.n, random.valid.n], [3, 3]);
  await assert.rejects(SegmentationDataLoaders.fromLabelFunc(dir, names, labelFunc, {} as never), /give the codes/);
  await assert.rejects(SegmentationDataLoaders.fromLabelFunc(dir, names, () => "", { codes }), /labelFunc gave "" for ".*s0\.png"/);
});
