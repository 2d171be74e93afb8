process.env["TSFAST_BACKEND"] = process.env["TSFAST_BACKEND"] ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { CategoryBlock, DataBlock, ImageBlock } from "../lib/data/block";
import { ImageDataLoaders } from "../lib/data/factories";
import { getImageFiles, GrandparentSplitter, parentLabel } from "../lib/data/items";
import { Resize } from "../lib/data/transforms";
import { probeImage } from "../lib/data/decode";
import { folderTree, solid, tmpDir } from "./fixtures/data/make";

function captureWarnings(): { warnings: string[]; restore: () => void } {
  const warnings: string[] = [];
  const orig = console.warn;
  // Only tsfast's own warnings (tfjs prints its own banner through console.warn once).
  console.warn = (...a: unknown[]) => {
    const msg = a.join(" ");
    if (msg.startsWith("tsfast:")) warnings.push(msg);
  };
  return { warnings, restore: () => (console.warn = orig) };
}

test("corrupt, truncated, zero-byte and non-image files are found when the loaders are built: ONE warning, left out of n", async () => {
  await ready();
  const root = await folderTree(["a", "b"], 4, 2);
  const jpg = await sharp({ create: { width: 16, height: 16, channels: 3, background: "#884422" } }).jpeg().toBuffer();
  const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: "#224488" } }).png().toBuffer();
  const bad = {
    truncated: path.join(root, "train", "a", "truncated.jpg"),
    cutPng: path.join(root, "valid", "a", "cut.png"),
    zero: path.join(root, "train", "a", "zero.png"),
    corrupt: path.join(root, "train", "b", "corrupt.png"),
    text: path.join(root, "train", "b", "readme.jpg"),
  };
  fs.writeFileSync(bad.truncated, jpg.subarray(0, Math.floor(jpg.length / 2)));
  fs.writeFileSync(bad.cutPng, png.subarray(0, png.length - 20));
  fs.writeFileSync(bad.zero, "");
  fs.writeFileSync(bad.corrupt, Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
  fs.writeFileSync(bad.text, "this is not a picture\n");
  const cap = captureWarnings();
  let seen = 0;
  const before = tf.memory().numTensors;
  let dls: Awaited<ReturnType<typeof ImageDataLoaders.fromFolder>>;
  try {
    dls = await ImageDataLoaders.fromFolder(root, { itemTfms: Resize(8), bs: 3, shuffle: false });
    assert.equal(cap.warnings.length, 1, "the warning comes at construction");
    for (let epoch = 0; epoch < 2; epoch++) {
      for await (const b of dls.train) {
        seen += b.xb.shape[0];
        assert.equal(b.xb.shape[0], b.yb.shape[0]);
        b.xb.dispose();
        b.yb.dispose();
      }
    }
    for await (const b of dls.valid) tf.dispose([b.xb, b.yb]);
  } finally {
    cap.restore();
  }
  assert.equal(tf.memory().numTensors, before);
  assert.equal(cap.warnings.length, 1, cap.warnings.join("\n----\n"));
  for (const f of Object.values(bad)) assert.ok(cap.warnings[0]!.includes(f), `warning names ${f}`);
  assert.match(cap.warnings[0]!, /left out 5 unreadable files \(not counted, in neither split\)/);
  assert.match(cap.warnings[0]!, /zero\.png" \(empty file \(0 bytes\)\)/);
  assert.equal(dls.train.n, 8); // 12 files in train, 4 broken
  assert.equal(dls.valid.n, 4); // 5 files in valid, 1 broken
  assert.ok(!dls.train.items.some((f) => Object.values(bad).includes(f)));
  assert.equal(dls.train.bad.size, 0);
  assert.equal(dls.train.length, 2); // 8 images, bs 3, last dropped
  assert.equal(seen, 2 * 6);
});

test("a file that passes the check but fails its full decode is still skipped with one warning", async () => {
  await ready();
  const root = await folderTree(["a", "b"], 3, 1);
  // A PNG whose header and IEND chunk are intact but whose pixel data is garbage: only a full decode finds it.
  const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: "#224488" } }).png().toBuffer();
  const broken = Buffer.from(png);
  const idat = broken.indexOf("IDAT");
  broken.fill(0x5a, idat + 4, broken.indexOf("IEND") - 8);
  const file = path.join(root, "train", "a", "garbled.png");
  fs.writeFileSync(file, broken);
  const cap = captureWarnings();
  try {
    const dls = await ImageDataLoaders.fromFolder(root, { itemTfms: Resize(8), bs: 2, shuffle: false });
    assert.equal(cap.warnings.length, 0, cap.warnings.join("\n"));
    assert.equal(dls.train.n, 7);
    for await (const b of dls.train) tf.dispose([b.xb, b.yb]);
    assert.equal(dls.train.bad.size, 1);
  } finally {
    cap.restore();
  }
  assert.equal(cap.warnings.length, 1);
  assert.match(cap.warnings[0]!, /skipped 1 unreadable image .*garbled\.png/);
});

test("an empty class folder gets one warning naming it and no class", async () => {
  const root = await folderTree(["a", "b"], 2, 1);
  fs.mkdirSync(path.join(root, "train", "empty"));
  const cap = captureWarnings();
  try {
    const dls = await ImageDataLoaders.fromFolder(root, { bs: 2 });
    assert.deepEqual(dls.vocab, ["a", "b"]);
  } finally {
    cap.restore();
  }
  assert.equal(cap.warnings.length, 1);
  assert.ok(cap.warnings[0]!.includes(path.join(root, "train", "empty")));
});

test("a single class is refused, naming the class and the folder", async () => {
  const root = await folderTree(["only"], 3, 1);
  await assert.rejects(ImageDataLoaders.fromFolder(root), (e: Error) => {
    assert.match(e.message, /only one class \("only"\)/);
    assert.ok(e.message.includes(root));
    return true;
  });
});

test("no images, a missing folder, or a missing train/valid folder are refused with the path", async () => {
  const empty = tmpDir();
  fs.mkdirSync(path.join(empty, "train"));
  fs.mkdirSync(path.join(empty, "valid"));
  await assert.rejects(ImageDataLoaders.fromFolder(empty), new RegExp(`no image files .* under "${empty}"`));
  await assert.rejects(ImageDataLoaders.fromFolder(path.join(empty, "nope")), /folder ".*nope" does not exist/);
  const noValid = await folderTree(["a", "b"], 2, 0);
  await assert.rejects(ImageDataLoaders.fromFolder(noValid), /no "valid" folder/);
  const flat = tmpDir();
  await solid(path.join(flat, "a", "1.png"), 4, 4, [0, 0, 0]);
  await assert.rejects(ImageDataLoaders.fromFolder(flat, { train: "training" }), /no "training" folder in ".*" \(found: a\); set the train option .* or pass validPct/);
});

test("a folder without train/valid is split at random, 20 % to validation (seeded), and says so once naming validPct", async () => {
  const flat = tmpDir();
  for (const [c, rgb] of [["cat", [200, 0, 0]], ["dog", [0, 0, 200]]] as const) {
    for (let i = 0; i < 5; i++) await solid(path.join(flat, c, `${i}.png`), 4, 4, [...rgb]);
  }
  const logs: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void logs.push(a.join(" "));
  let dls: Awaited<ReturnType<typeof ImageDataLoaders.fromFolder>>, again: typeof dls;
  try {
    dls = await ImageDataLoaders.fromFolder(flat, { bs: 2 });
    again = await ImageDataLoaders.fromFolder(flat, { bs: 2 });
  } finally {
    console.log = log;
  }
  assert.deepEqual(dls.vocab, ["cat", "dog"]);
  assert.equal(dls.valid.n, 2); // 20 % of 10
  assert.equal(dls.train.n, 8);
  assert.deepEqual(again.valid.items, dls.valid.items, "the split is seeded");
  assert.equal(logs.length, 2, logs.join("\n")); // once per call
  assert.match(logs[0]!, /no "train"\/"valid" folders in ".*": putting a random 20 % of the images in the validation set \(seed 42\); pass validPct/);
  // With validPct there is nothing to say.
  const quiet: string[] = [];
  console.log = (...a: unknown[]) => void quiet.push(a.join(" "));
  try {
    const d3 = await ImageDataLoaders.fromFolder(flat, { bs: 2, validPct: 0.4, seed: 1 });
    assert.equal(d3.valid.n, 4);
  } finally {
    console.log = log;
  }
  assert.equal(quiet.length, 0);
});

test("a CSV row naming a missing file is an error naming the row; with missingFiles: \"warn\", one warning and the row left out", async () => {
  const root = tmpDir();
  for (const [f, rgb] of [["a0.png", [200, 0, 0]], ["a1.png", [210, 0, 0]], ["b0.png", [0, 0, 200]], ["b1.png", [0, 0, 210]], ["b2.png", [0, 0, 220]]] as const) {
    await solid(path.join(root, "img", f), 4, 4, [...rgb]);
  }
  fs.writeFileSync(path.join(root, "labels.csv"), "fname,label,is_valid\na0.png,a,0\ngone.png,a,0\na1.png,a,1\nb0.png,b,0\nb1.png,b,1\nb2.png,b,0\nlost.png,b,1\n");
  await assert.rejects(ImageDataLoaders.fromCsv(root, "labels.csv", { folder: "img", validCol: "is_valid" }), (e: Error) => {
    assert.match(e.message, /2 rows of ".*labels\.csv" name files that do not exist \(row 3 names ".*img\/gone\.png", row 8 names ".*img\/lost\.png"\)/);
    assert.match(e.message, /missingFiles: "warn"/);
    return true;
  });
  const cap = captureWarnings();
  let dls: Awaited<ReturnType<typeof ImageDataLoaders.fromFolder>>;
  try {
    dls = await ImageDataLoaders.fromCsv(root, "labels.csv", { folder: "img", validCol: "is_valid", missingFiles: "warn", bs: 2 });
  } finally {
    cap.restore();
  }
  assert.equal(cap.warnings.length, 1, cap.warnings.join("\n"));
  assert.match(cap.warnings[0]!, /left out 2 rows .* \(row 3 names .*gone\.png", row 8 names .*lost\.png"\)/);
  // The rows left are split by their own is_valid cells.
  assert.deepEqual(dls.train.items.map((f) => path.basename(f)), ["a0.png", "b0.png", "b2.png"]);
  assert.deepEqual(dls.valid.items.map((f) => path.basename(f)), ["a1.png", "b1.png"]);
  await assert.rejects(ImageDataLoaders.fromCsv(root, "labels.csv", { folder: "img", missingFiles: "skip" as never }), /missingFiles must be "error" or "warn", got "skip"/);
});

test("a CSV missing the named column is refused, naming the column and listing the columns", async () => {
  const root = tmpDir();
  await solid(path.join(root, "x.png"), 4, 4, [0, 0, 0]);
  fs.writeFileSync(path.join(root, "labels.csv"), "fname,label\nx.png,a\n");
  await assert.rejects(
    ImageDataLoaders.fromCsv(root, "labels.csv", { fnCol: "file" }),
    /fnCol column "file" not found in ".*labels\.csv"; columns are fname, label/,
  );
  await assert.rejects(ImageDataLoaders.fromCsv(root, "nothere.csv"), /cannot read ".*nothere\.csv"/);
});

test("a label not in the given vocab is refused, naming the label, the file and the vocab", async () => {
  const root = await folderTree(["cat", "dog", "emu"], 2, 1);
  await assert.rejects(ImageDataLoaders.fromFolder(root, { vocab: ["cat", "dog"] }), (e: Error) => {
    assert.match(e.message, /label "emu" of ".*emu_0\.png" is not in the vocab \[cat, dog\]/);
    return true;
  });
  // a validation label never seen in training is refused too
  const root2 = await folderTree(["cat", "dog"], 2, 1);
  await solid(path.join(root2, "valid", "fox", "f.png"), 4, 4, [0, 0, 0]);
  await assert.rejects(ImageDataLoaders.fromFolder(root2), /label "fox" .* is not in the vocab \[cat, dog\]/);
});

test("an empty validation split is refused; a wrong block kind is refused by name", async () => {
  const root = await folderTree(["a", "b"], 2, 1);
  const block = new DataBlock<string, string>({
    blocks: [ImageBlock, CategoryBlock],
    getItems: getImageFiles,
    getY: parentLabel,
    splitter: GrandparentSplitter("train", "validation") as never,
  });
  await assert.rejects(block.dataloaders(root), /validation set is empty/);
  assert.throws(() => new DataBlock({ blocks: [{ kind: "text" }, CategoryBlock], getY: parentLabel }), /input block kind "text"/);
});

test("huge images are refused at decode with the pixel limit in the message, and skipped by the loader", async () => {
  const root = await folderTree(["a", "b"], 2, 1, { size: [30, 30] });
  const dls = await ImageDataLoaders.fromFolder(root, { itemTfms: Resize(8), maxPixels: 500, bs: 2 });
  await assert.rejects(dls.valid.loadImage(0), /30×30 = 900 pixels, over the limit of 500/);
  const cap = captureWarnings();
  try {
    // Every image of this split is over the limit: the split is refused (issue 20), after the warning.
    await assert.rejects(async () => {
      for await (const b of dls.valid) {
        b.xb.dispose();
        b.yb.dispose();
      }
    }, /no readable image in this validation set: all 2 images failed to decode/);
  } finally {
    cap.restore();
  }
  assert.match(cap.warnings[0] ?? "", /skipped 2 unreadable images/);
});

test("an unreadable image is reported once per dataset: loaders made with new() before or after do not warn again", async () => {
  await ready();
  const root = await folderTree(["a", "b"], 3, 2);
  const broken = path.join(root, "train", "a", "broken.png");
  fs.writeFileSync(broken, "not a png");
  // checkFiles: false, so the loaders meet the broken file themselves (as they do one that fails only its full decode)
  const dls = await ImageDataLoaders.fromFolder(root, { itemTfms: Resize(8), bs: 2, shuffle: false, checkFiles: false });
  const early = dls.train.new({ shuffle: false, train: false }); // made before anything was decoded
  const cap = captureWarnings();
  try {
    for (const dl of [dls.train, early, dls.train.new({ train: false }), dls.valid]) {
      for await (const b of dl) tf.dispose([b.xb, b.yb]);
    }
  } finally {
    cap.restore();
  }
  assert.equal(cap.warnings.length, 1, cap.warnings.join("\n----\n"));
  assert.match(cap.warnings[0]!, /skipped 1 unreadable image /);
  assert.ok(cap.warnings[0]!.includes(broken));
  assert.equal(early.bad.size, 1, "the early copy still skips the image itself");
});

test("probeImage remembers an unchanged file's verdict, and checks a changed file again", async () => {
  const root = tmpDir();
  const file = await solid(path.join(root, "x.png"), 8, 8, [10, 20, 30]);
  assert.equal(await probeImage(file), undefined);
  fs.writeFileSync(file, "now this is text, not a picture");
  assert.match((await probeImage(file)) ?? "", /not a readable image/);
  await solid(file, 8, 8, [10, 20, 30]);
  assert.equal(await probeImage(file), undefined);
  assert.equal(await probeImage(path.join(root, "gone.png")), "no such file");
  assert.equal(await probeImage(root), "a folder, not an image");
  assert.equal(await probeImage(Buffer.alloc(0)), "empty file (0 bytes)");
});
