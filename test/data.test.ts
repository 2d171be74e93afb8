process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { augTransforms, imagenetStats, Normalize } from "../lib/data/augment";
import { CategoryBlock, DataBlock, ImageBlock, MultiCategoryBlock } from "../lib/data/block";
import { ImageDataLoaders } from "../lib/data/factories";
import {
  ColSplitter,
  FuncSplitter,
  getImageFiles,
  GrandparentSplitter,
  IndexSplitter,
  parentLabel,
  RandomSplitter,
  RegexLabeller,
} from "../lib/data/items";
import type { Batch, DataLoader } from "../lib/data/loader";
import { prepareInferenceBatch } from "../lib/data/inference";
import { parseCsv } from "../lib/data/csv";
import { Rng } from "../lib/data/random";
import { Resize } from "../lib/data/transforms";
import { folderTree, solid, tmpDir } from "./fixtures/data/make";

async function collect(dl: DataLoader): Promise<{ xs: number[][]; ys: number[][]; shapes: number[][] }> {
  const xs: number[][] = [];
  const ys: number[][] = [];
  const shapes: number[][] = [];
  for await (const b of dl) {
    shapes.push(b.xb.shape);
    xs.push(Array.from(await b.xb.data()));
    ys.push(Array.from(await b.yb.data()));
    b.xb.dispose();
    b.yb.dispose();
  }
  return { xs, ys, shapes };
}

test("the seeded generator is reproducible and uniform enough", () => {
  const a = new Rng(7);
  const b = new Rng(7);
  const xs = Array.from({ length: 1000 }, () => a.next());
  assert.deepEqual(xs, Array.from({ length: 1000 }, () => b.next()));
  assert.notDeepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => new Rng(8).next()));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05 && xs.every((x) => x >= 0 && x < 1));
  assert.deepEqual(new Rng(1).permutation(10).sort((p, q) => p - q), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test("getImageFiles finds image files recursively, sorted, skipping hidden and non-image files, and honours folders", async () => {
  const root = tmpDir();
  await solid(path.join(root, "train", "b", "2.png"), 4, 4, [1, 2, 3]);
  await solid(path.join(root, "train", "a", "1.JPG"), 4, 4, [1, 2, 3]);
  await solid(path.join(root, "test", "a", "3.png"), 4, 4, [1, 2, 3]);
  fs.writeFileSync(path.join(root, "train", "a", "notes.txt"), "hi");
  fs.mkdirSync(path.join(root, ".hidden"));
  await solid(path.join(root, ".hidden", "x.png"), 4, 4, [1, 2, 3]);
  assert.deepEqual(getImageFiles(root).map((f) => path.relative(root, f)), ["test/a/3.png", "train/a/1.JPG", "train/b/2.png"]);
  assert.deepEqual(getImageFiles(root, { folders: ["train"] }).map((f) => path.relative(root, f)), ["train/a/1.JPG", "train/b/2.png"]);
  assert.deepEqual(getImageFiles(path.join(root, "train"), { recurse: false }), []);
  assert.throws(() => getImageFiles(path.join(root, "nope")), /folder ".*nope" does not exist/);
});

test("splitters: Random (seeded, fastai's cut), Grandparent, Func, Index, Col", () => {
  const items = Array.from({ length: 10 }, (_, i) => `/d/${i % 3 === 0 ? "valid" : "train"}/c/${i}.png`);
  const [t, v] = RandomSplitter(0.2, 1)(items);
  assert.equal(v.length, 2);
  assert.equal(t.length, 8);
  assert.deepEqual([...t, ...v].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(RandomSplitter(0.2, 1)(items), [t, v]);
  const many = Array.from({ length: 100 }, (_, i) => i);
  assert.notDeepEqual(RandomSplitter(0.2, 2)(many)[1], RandomSplitter(0.2, 1)(many)[1]);
  assert.deepEqual(GrandparentSplitter()(items), [[1, 2, 4, 5, 7, 8], [0, 3, 6, 9]]);
  assert.deepEqual(FuncSplitter((s: string) => s.endsWith("1.png"))(items), [[0, 2, 3, 4, 5, 6, 7, 8, 9], [1]]);
  assert.deepEqual(IndexSplitter([2, 4])(items), [[0, 1, 3, 5, 6, 7, 8, 9], [2, 4]]);
  const rows = [{ is_valid: "False" }, { is_valid: "True" }, { is_valid: "1" }];
  assert.deepEqual(ColSplitter()(rows), [[0], [1, 2]]);
  assert.throws(() => ColSplitter("valid")(rows), /column "valid" not found; columns are is_valid/);
});

test("labellers: parentLabel and RegexLabeller (error names the file when the pattern does not match)", () => {
  assert.equal(parentLabel("/data/train/cat/1.jpg"), "cat");
  const lab = RegexLabeller(/([^/]+)_\d+\.jpg$/);
  assert.equal(lab("/pets/great_pyrenees_173.jpg"), "great_pyrenees");
  assert.throws(() => lab("/pets/x.png"), /does not match "\/pets\/x\.png"/);
});

test("parseCsv handles quotes, doubled quotes, CRLF and a BOM", () => {
  assert.deepEqual(parseCsv('\ufefffn,label\r\n"a,1.png","x ""y"""\nb.png,z\n'), [
    ["fn", "label"],
    ["a,1.png", 'x "y"'],
    ["b.png", "z"],
  ]);
});

test("fromFolder splits by train/valid folder, labels by parent, and yields NHWC float batches with int32 labels", async () => {
  await ready();
  const root = await folderTree(["cat", "dog"], 5, 2);
  const dls = await ImageDataLoaders.fromFolder(root, { itemTfms: Resize(8), bs: 4 });
  assert.deepEqual(dls.vocab, ["cat", "dog"]);
  assert.equal(dls.c, 2);
  assert.equal(dls.isMultiLabel, false);
  assert.equal(dls.train.n, 10);
  assert.equal(dls.valid.n, 4);
  assert.equal(dls.train.length, 2); // drop_last on train: floor(10 / 4)
  assert.equal(dls.valid.length, 1);
  assert.ok(dls.valid.items.every((f) => f.includes(`${path.sep}valid${path.sep}`)));
  const v = await collect(dls.valid);
  assert.deepEqual(v.shapes, [[4, 8, 8, 3]]);
  assert.deepEqual(v.ys, [[0, 0, 1, 1]]); // never shuffled: order of items
  // class "dog" (index 1) is R = 80: first valid dog image pixel
  assert.ok(Math.abs(v.xs[0]![2 * 8 * 8 * 3]! - 80 / 255) < 1e-6);
  const b = await dls.oneBatch();
  assert.equal(b.yb.dtype, "int32");
  assert.deepEqual(b.xb.shape, [4, 8, 8, 3]);
  b.xb.dispose();
  b.yb.dispose();
  const img = await dls.valid.loadImage(0);
  assert.deepEqual(img.shape, [8, 8, 3]);
  img.dispose();
});

test("fromFolder with validPct splits at random over all images (seeded)", async () => {
  const root = await folderTree(["a", "b", "c"], 4, 1);
  const dls = await ImageDataLoaders.fromFolder(root, { validPct: 0.2, seed: 3, itemTfms: Resize(8), bs: 2 });
  assert.equal(dls.train.n + dls.valid.n, 15);
  assert.equal(dls.valid.n, 3);
  const again = await ImageDataLoaders.fromFolder(root, { validPct: 0.2, seed: 3, itemTfms: Resize(8), bs: 2 });
  assert.deepEqual(again.valid.items, dls.valid.items);
});

test("the same seed gives the same augmented batches; a new epoch reshuffles", async () => {
  const root = await folderTree(["a", "b"], 6, 2, { size: [20, 14] });
  const opts = { itemTfms: Resize(12), batchTfms: augTransforms({ size: 8 }), bs: 4, seed: 5 };
  const d1 = await ImageDataLoaders.fromFolder(root, opts);
  const d2 = await ImageDataLoaders.fromFolder(root, opts);
  const e1 = await collect(d1.train);
  assert.deepEqual(await collect(d2.train), e1);
  const e2 = await collect(d1.train);
  assert.notDeepEqual(e2, e1);
  const d3 = await ImageDataLoaders.fromFolder(root, { ...opts, seed: 6 });
  assert.notDeepEqual(await collect(d3.train), e1);
  // valid is deterministic whatever the seed
  assert.deepEqual(await collect(d1.valid), await collect(d3.valid));
});

test("the presizing recipe (Resize then augTransforms with minScale, Normalize) gives normalised batches at the final size", async () => {
  const root = await folderTree(["a", "b"], 4, 2, { size: [40, 30], ext: ".jpg" });
  const dls = await ImageDataLoaders.fromFolder(root, {
    itemTfms: Resize(24),
    batchTfms: [...augTransforms({ size: 16, minScale: 0.75 }), Normalize.fromStats(...imagenetStats)],
    bs: 4,
  });
  const t = await collect(dls.train);
  assert.deepEqual(t.shapes, [[4, 16, 16, 3], [4, 16, 16, 3]]);
  assert.deepEqual(dls.normalize, { mean: imagenetStats[0], std: imagenetStats[1] });
  assert.ok(t.xs[0]!.some((x) => x < 0)); // normalised values leave [0, 1]
});

test("no tensors leak over an epoch of training and validation batches", async () => {
  const root = await folderTree(["a", "b"], 6, 3);
  const dls = await ImageDataLoaders.fromFolder(root, { itemTfms: Resize(8), batchTfms: augTransforms({ size: 6 }), bs: 4 });
  await ready();
  const before = tf.memory().numTensors;
  for (const dl of [dls.train, dls.valid, dls.train]) {
    for await (const b of dl) {
      b.xb.dispose();
      b.yb.dispose();
    }
  }
  // stopping early must not leak either
  for await (const b of dls.train) {
    b.xb.dispose();
    b.yb.dispose();
    break;
  }
  assert.equal(tf.memory().numTensors, before);
});

test("inferenceSpec is JSON and prepareInferenceBatch reproduces the validation batch exactly", async () => {
  const root = await folderTree(["a", "b"], 3, 2, { size: [30, 20] });
  const dls = await ImageDataLoaders.fromFolder(root, {
    itemTfms: Resize(16),
    batchTfms: augTransforms({ size: 10 }),
    bs: 4,
  });
  dls.addBatchTfm(Normalize.fromStats(...imagenetStats));
  dls.addBatchTfm(Normalize.fromStats(...imagenetStats)); // replaces, not stacks
  assert.equal(dls.train.batchTfms.filter((t) => t.type === "Normalize").length, 1);
  const spec = JSON.parse(JSON.stringify(dls.inferenceSpec())) as ReturnType<typeof dls.inferenceSpec>;
  assert.deepEqual(spec.vocab, ["a", "b"]);
  assert.deepEqual(spec.normalize, { mean: imagenetStats[0], std: imagenetStats[1] });
  const x = await prepareInferenceBatch(spec, [...dls.valid.items.slice(0, 2), fs.readFileSync(dls.valid.items[2]!)]);
  const v = await collect(dls.valid);
  assert.deepEqual(x.shape, [3, 10, 10, 3]);
  const xs = Array.from(await x.data());
  assert.deepEqual(xs, v.xs[0]!.slice(0, 3 * 10 * 10 * 3));
  // by hand: the valid images are solid a_0 (0, 0, 100), a_1 (0, 20, 100), b_0 (80, 0, 100), so every
  // pixel of item k is ((r, g, b)/255 − imagenet mean)/std
  const [mean, std] = imagenetStats;
  [[0, 0, 100], [0, 20, 100], [80, 0, 100]].forEach((rgb, k) => {
    const want = rgb.map((c, ch) => (c / 255 - mean[ch]!) / std[ch]!);
    for (const p of [0, 55, 99]) {
      want.forEach((w, ch) => assert.ok(Math.abs(xs[(k * 100 + p) * 3 + ch]! - w) < 1e-5, `item ${k} pixel ${p} channel ${ch}: ${xs[(k * 100 + p) * 3 + ch]} vs ${w}`));
    }
  });
  x.dispose();
});

test("fromNameRe/fromNameFunc label by file name, fromPathRe/fromPathFunc by whole path", async () => {
  const root = tmpDir();
  const files: string[] = [];
  for (const [k, breed] of ["pug", "beagle", "pug", "beagle", "pug", "beagle"].entries()) {
    files.push(path.relative(root, await solid(path.join(root, `${breed}_${k}.png`), 6, 6, [k * 30, 0, 0])));
  }
  // fastai's pets pattern, anchored at the start of the FILE NAME
  const dls = await ImageDataLoaders.fromNameRe(root, files, /^(.*)_\d+\.png$/, { validPct: 0.34, bs: 2 });
  assert.deepEqual(dls.vocab, ["beagle", "pug"]);
  assert.equal(dls.valid.n, 2);
  const byPath = await ImageDataLoaders.fromPathRe(root, files, /\/([a-z]+)_\d+\.png$/, { bs: 2 });
  assert.deepEqual(byPath.vocab, ["beagle", "pug"]);
  const dls2 = await ImageDataLoaders.fromNameFunc(root, files, (name) => (name[0] === "p" ? "P" : "B"), { bs: 2 });
  assert.deepEqual(dls2.vocab, ["B", "P"]);
  const dls3 = await ImageDataLoaders.fromPathFunc(root, files, (f) => (f.startsWith(root) ? path.basename(f).slice(0, 3) : "?"), { bs: 2 });
  assert.deepEqual(dls3.vocab, ["bea", "pug"]);
  const multi = await ImageDataLoaders.fromNameFunc(root, files, (name) => (name.startsWith("pug") ? ["dog", "small"] : ["dog"]), { bs: 2 });
  assert.equal(multi.isMultiLabel, true);
  assert.deepEqual(multi.vocab, ["dog", "small"]);
});

test("fromCsv reads fnCol/labelCol by name, multi-label with labelDelim, validCol split, folder and suff", async () => {
  const root = tmpDir();
  const rows = [
    ["a", "cat dog", "False"],
    ["b", "dog", "False"],
    ["c", "cat", "True"],
    ["d", "bird cat", "False"],
    ["e", "dog", "True"],
  ];
  for (const [k, [fn]] of rows.entries()) await solid(path.join(root, "imgs", `${fn}.png`), 6, 6, [k * 40, 10, 10]);
  fs.writeFileSync(path.join(root, "labels.csv"), "name,tags,is_valid\n" + rows.map((r) => r.join(",")).join("\n") + "\n");
  const dls = await ImageDataLoaders.fromCsv(root, "labels.csv", {
    fnCol: "name",
    labelCol: "tags",
    labelDelim: " ",
    validCol: "is_valid",
    folder: "imgs",
    suff: ".png",
    bs: 2,
  });
  assert.equal(dls.isMultiLabel, true);
  assert.deepEqual(dls.vocab, ["bird", "cat", "dog"]);
  assert.deepEqual(dls.valid.items.map((f) => path.basename(f)), ["c.png", "e.png"]);
  const v = await collect(dls.valid);
  assert.deepEqual(v.ys, [[0, 1, 0, 0, 0, 1]]); // multi-hot float32 [2, 3]
  const b = (await dls.oneBatch({ valid: true })) as Batch;
  assert.equal(b.yb.dtype, "float32");
  assert.deepEqual(b.yb.shape, [2, 3]);
  b.xb.dispose();
  b.yb.dispose();
  assert.equal(dls.labelOf([1, 0, 1]), "bird;dog");
});

test("fromLists takes parallel lists; arrays of labels make it multi-label", async () => {
  const root = await folderTree(["x", "y"], 3, 0);
  const files = getImageFiles(root);
  const single = await ImageDataLoaders.fromLists(root, files, files.map(parentLabel), { bs: 2, validPct: 0.34 });
  assert.deepEqual(single.vocab, ["x", "y"]);
  const multi = await ImageDataLoaders.fromLists(root, files, files.map((f) => [parentLabel(f), "any"]), { bs: 2 });
  assert.equal(multi.isMultiLabel, true);
  assert.deepEqual(multi.vocab, ["any", "x", "y"]);
  await assert.rejects(ImageDataLoaders.fromLists(root, files, ["x"]), /6 files but 1 labels/);
});

test("DataBlock with getItems, getY, splitter and a fixed vocab builds the same loaders as the factory", async () => {
  const root = await folderTree(["cat", "dog"], 2, 1);
  const block = new DataBlock<string, string>({
    blocks: [ImageBlock, CategoryBlock({ vocab: ["dog", "cat"] })],
    getItems: (p) => getImageFiles(p),
    getY: parentLabel,
    splitter: GrandparentSplitter() as never,
    itemTfms: [Resize(8)],
  });
  const dls = await block.dataloaders(root, { bs: 8 });
  assert.deepEqual(dls.vocab, ["dog", "cat"]);
  const v = await collect(dls.valid);
  assert.deepEqual(v.ys, [[1, 0]]); // cat → 1 in the given vocab
  assert.throws(() => new DataBlock({ blocks: [ImageBlock, { kind: "mask" }], getY: parentLabel }), /target block kind "mask"/);
  const mb = new DataBlock<string, string>({ blocks: [ImageBlock, MultiCategoryBlock], getItems: getImageFiles, getY: (f) => [parentLabel(f)], splitter: GrandparentSplitter() as never, itemTfms: Resize(8) });
  assert.equal((await mb.dataloaders(root)).isMultiLabel, true);
});

test("showBatch shows up to maxN images captioned with their labels (text fallback outside a kernel), leaking nothing", async () => {
  const root = await folderTree(["cat", "dog"], 3, 1);
  const dls = await ImageDataLoaders.fromFolder(root, {
    itemTfms: Resize(8),
    batchTfms: Normalize.fromStats(...imagenetStats),
    bs: 6,
    shuffle: false,
  });
  await ready();
  const before = tf.memory().numTensors;
  const out: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  try {
    await dls.showBatch({ maxN: 4, nrows: 2 });
  } finally {
    process.stdout.write = orig;
  }
  assert.equal(tf.memory().numTensors, before);
  assert.match(out.join(""), /\[4 images\] cat \| cat \| cat \| dog/);
});

test("the presized-image cache (memory or disk) gives the same validation batches and train batches of the right size", async () => {
  const root = await folderTree(["a", "b"], 4, 2, { size: [30, 20] });
  const cacheDir = tmpDir("tsfast-cache-");
  const base = { itemTfms: Resize(12), batchTfms: augTransforms({ size: 8 }), bs: 4 };
  const plain = await ImageDataLoaders.fromFolder(root, base);
  const mem = await ImageDataLoaders.fromFolder(root, { ...base, cache: "memory" });
  const disk = await ImageDataLoaders.fromFolder(root, { ...base, cache: "disk", cacheDir });
  const ref = await collect(plain.valid);
  assert.deepEqual(await collect(mem.valid), ref);
  assert.deepEqual(await collect(mem.valid), ref); // second epoch from the cache
  assert.deepEqual(await collect(disk.valid), ref);
  assert.equal(fs.readdirSync(cacheDir).filter((f) => f.endsWith(".rgb")).length, 4);
  const disk2 = await ImageDataLoaders.fromFolder(root, { ...base, cache: "disk", cacheDir });
  assert.deepEqual(await collect(disk2.valid), ref); // a new loader reads the files
  // train: the cover-resized image is cached (18×12 for 30×20 → 12), the crop stays random
  const t1 = await collect(disk.train);
  const t2 = await collect(disk.train);
  assert.deepEqual(t1.shapes, [[4, 8, 8, 3], [4, 8, 8, 3]]);
  assert.notDeepEqual(t1.xs, t2.xs);
  assert.equal(fs.readdirSync(cacheDir).filter((f) => f.endsWith(".rgb")).length, 12);
  fs.rmSync(cacheDir, { recursive: true, force: true });
});

test("batch transforms give identical batches in the data worker and on the main thread", async () => {
  const root = await folderTree(["a", "b"], 4, 2, { size: [20, 16] });
  const opts = { itemTfms: Resize(12), batchTfms: [...augTransforms({ size: 8, minScale: 0.8 }), Normalize.fromStats(...imagenetStats)], bs: 4 };
  const inWorker = await collect((await ImageDataLoaders.fromFolder(root, opts)).train);
  process.env["TSFAST_DATA_WORKERS"] = "0";
  try {
    const onMain = await collect((await ImageDataLoaders.fromFolder(root, opts)).train);
    assert.deepEqual(onMain, inWorker);
  } finally {
    delete process.env["TSFAST_DATA_WORKERS"];
  }
});

test("dl.new gives a copy with other options: the training items in order with validation transforms", async () => {
  const root = await folderTree(["a", "b"], 3, 1, { size: [20, 16] });
  const dls = await ImageDataLoaders.fromFolder(root, { itemTfms: Resize(8), batchTfms: augTransforms({ size: 6 }), bs: 4, cache: true });
  await collect(dls.train); // fills the cache with train-time (cover) images
  const ordered = dls.train.new({ shuffle: false, train: false, dropLast: false });
  assert.equal(ordered.n, 6);
  assert.equal(ordered.length, 2);
  const got = await collect(ordered);
  assert.deepEqual(got.ys.flat(), [0, 0, 0, 1, 1, 1]);
  assert.deepEqual(got, await collect(dls.train.new({ shuffle: false, train: false, dropLast: false })));
  const first = await ordered.loadImage(0);
  const fresh = await (await ImageDataLoaders.fromFolder(root, { itemTfms: Resize(8), batchTfms: augTransforms({ size: 6 }), bs: 4 })).train
    .new({ shuffle: false, train: false, dropLast: false });
  assert.deepEqual(await collect(fresh), got); // the shared cache did not leak train-time images
  first.dispose();
});
