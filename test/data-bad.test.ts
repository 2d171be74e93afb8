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

test("corrupt, truncated, zero-byte and non-image files are skipped with ONE warning listing them, every epoch completes", async () => {
  await ready();
  const root = await folderTree(["a", "b"], 4, 2);
  const jpg = await sharp({ create: { width: 16, height: 16, channels: 3, background: "#884422" } }).jpeg().toBuffer();
  const bad = {
    truncated: path.join(root, "train", "a", "truncated.jpg"),
    zero: path.join(root, "train", "a", "zero.png"),
    corrupt: path.join(root, "train", "b", "corrupt.png"),
    text: path.join(root, "train", "b", "readme.jpg"),
  };
  fs.writeFileSync(bad.truncated, jpg.subarray(0, Math.floor(jpg.length / 2)));
  fs.writeFileSync(bad.zero, "");
  fs.writeFileSync(bad.corrupt, Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
  fs.writeFileSync(bad.text, "this is not a picture\n");
  const dls = await ImageDataLoaders.fromFolder(root, { itemTfms: Resize(8), bs: 3, shuffle: false });
  assert.equal(dls.train.n, 12);
  const cap = captureWarnings();
  let seen = 0;
  const before = tf.memory().numTensors;
  try {
    for (let epoch = 0; epoch < 2; epoch++) {
      for await (const b of dls.train) {
        seen += b.xb.shape[0];
        assert.equal(b.xb.shape[0], b.yb.shape[0]);
        b.xb.dispose();
        b.yb.dispose();
      }
    }
  } finally {
    cap.restore();
  }
  assert.equal(tf.memory().numTensors, before);
  assert.equal(cap.warnings.length, 1, cap.warnings.join("\n----\n"));
  for (const f of Object.values(bad)) assert.ok(cap.warnings[0]!.includes(f), `warning names ${f}`);
  assert.match(cap.warnings[0]!, /skipped 4 unreadable images/);
  assert.equal(dls.train.bad.size, 4);
  assert.equal(dls.train.length, 2); // 8 good images left, bs 3, last dropped
  assert.ok(seen >= 8 + 6);
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
  const flat = tmpDir();
  await solid(path.join(flat, "a", "1.png"), 4, 4, [0, 0, 0]);
  await assert.rejects(ImageDataLoaders.fromFolder(flat), /no "train" folder in ".*" \(found: a\); set the train option .* or pass validPct/);
  const noValid = await folderTree(["a", "b"], 2, 0);
  await assert.rejects(ImageDataLoaders.fromFolder(noValid), /no "valid" folder/);
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
  const dls = await ImageDataLoaders.fromFolder(root, { itemTfms: Resize(8), bs: 2, shuffle: false });
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
