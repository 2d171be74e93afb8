import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import sharp from "sharp";
import {
  readIdx,
  loadFashionMnist,
  fashionMnist,
  mnistDigits,
  emojiCategories,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_FOLDERS,
  DATASET_MARKER,
} from "../lib/data/datasets/mnist";
import { encodePng } from "../lib/data/datasets/png";
import { planEmojiCategories, type EmojiItem } from "../lib/data/datasets/emoji";
import { tmpHome } from "./helpers/download-server";

let dir: string;
before(() => {
  dir = tmpHome("datasets");
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function counts(root: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of fs.readdirSync(root).sort()) out[c] = fs.readdirSync(path.join(root, c)).length;
  return out;
}

async function greyPixels(file: string): Promise<Buffer> {
  return sharp(file).extractChannel(0).raw().toBuffer();
}

test("readIdx parses u8, i32 and f32 IDX files, gzipped or not", () => {
  // u8, dims 2x3, values 1..6
  const u8 = Buffer.from([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(readIdx(u8), { dims: [2, 3], data: new Uint8Array([1, 2, 3, 4, 5, 6]) });
  assert.deepEqual(readIdx(zlib.gzipSync(u8)).data, new Uint8Array([1, 2, 3, 4, 5, 6]));
  const i32 = Buffer.alloc(4 + 4 + 8);
  i32.set([0, 0, 0x0c, 1]);
  i32.writeUInt32BE(2, 4);
  i32.writeInt32BE(-7, 8);
  i32.writeInt32BE(70000, 12);
  assert.deepEqual(readIdx(i32), { dims: [2], data: new Int32Array([-7, 70000]) });
  const f32 = Buffer.alloc(4 + 4 + 4);
  f32.set([0, 0, 0x0d, 1]);
  f32.writeUInt32BE(1, 4);
  f32.writeFloatBE(0.5, 8);
  assert.deepEqual(readIdx(f32).data, new Float32Array([0.5]));
  assert.throws(() => readIdx(Buffer.from([0, 0, 0x08, 1, 0, 0, 0, 9, 1])), /truncated/);
  assert.throws(() => readIdx(Buffer.from("PK\x03\x04")), /not an IDX file/);
});

test("encodePng writes PNGs that sharp decodes to the same pixels", async () => {
  const rgba = Uint8Array.from({ length: 5 * 3 * 4 }, (_, i) => (i * 37) % 256);
  const back = await sharp(encodePng(rgba, 5, 3, 4)).raw().toBuffer({ resolveWithObject: true });
  assert.equal(back.info.width, 5);
  assert.equal(back.info.channels, 4);
  assert.deepEqual(new Uint8Array(back.data), rgba);
});

test("loadFashionMnist reads 60,000 + 10,000 images matching an independent Python reader", () => {
  const fm = loadFashionMnist();
  assert.equal(fm.train.n, 60000);
  assert.equal(fm.test.n, 10000);
  assert.equal(fm.train.rows, 28);
  assert.equal(fm.train.images.length, 60000 * 784);
  assert.deepEqual(fm.classes, FASHION_MNIST_CLASSES);
  const perClass = new Array<number>(10).fill(0);
  for (const l of fm.train.labels) perClass[l]!++;
  assert.deepEqual(perClass, new Array(10).fill(6000));
  // Python's gzip + struct, with no shared code: first ten labels and the pixel sum of image 0.
  const py = execFileSync(
    "/usr/bin/python3",
    [
      "-c",
      "import gzip;d='/usr/share/datasets/fashion-mnist/';l=gzip.open(d+'train-labels-idx1-ubyte.gz').read()[8:18];" +
        "i=gzip.open(d+'t10k-images-idx3-ubyte.gz').read()[16:16+784*3];print(list(l), sum(i[:784]), sum(i[784*2:784*3]))",
    ],
    { encoding: "utf8" },
  ).trim();
  const sum = (a: Uint8Array) => a.reduce((s, v) => s + v, 0);
  const mine = `${JSON.stringify(Array.from(fm.train.labels.subarray(0, 10))).replace(/,/g, ", ")} ${sum(fm.test.images.subarray(0, 784))} ${sum(fm.test.images.subarray(784 * 2, 784 * 3))}`;
  assert.equal(mine, py);
});

test("fashionMnist materialises per-class limited class folders once, with a marker written last", async () => {
  const root = await fashionMnist({ perClass: 4, validPerClass: 2 });
  assert.equal(root, path.join(dir, "home", "data", "fashion-mnist-4-v2"));
  assert.deepEqual(counts(path.join(root, "train")), Object.fromEntries([...FASHION_MNIST_FOLDERS].sort().map((c) => [c, 4])));
  assert.deepEqual(counts(path.join(root, "valid")), Object.fromEntries([...FASHION_MNIST_FOLDERS].sort().map((c) => [c, 2])));
  assert.ok(fs.existsSync(path.join(root, DATASET_MARKER)));
  // Training image 0 is an ankle boot (label 9); its PNG holds exactly the IDX bytes, read here with
  // zlib alone: labels after an 8-byte header, pixels after a 16-byte one.
  const src = process.env["TSFAST_FASHION_MNIST_DIR"] || "/usr/share/datasets/fashion-mnist";
  const idx = (f: string) => zlib.gunzipSync(fs.readFileSync(path.join(src, f)));
  assert.equal(idx("train-labels-idx1-ubyte.gz")[8], 9);
  const px = await greyPixels(path.join(root, "train", "ankle-boot", "00000.png"));
  assert.deepEqual(new Uint8Array(px), new Uint8Array(idx("train-images-idx3-ubyte.gz").subarray(16, 16 + 784)));
  const t0 = Date.now();
  assert.equal(await fashionMnist({ perClass: 4, validPerClass: 2 }), root);
  assert.ok(Date.now() - t0 < 100, "second call only reads the marker");
});

test("a folder whose marker is missing (an interrupted build) is rebuilt", async () => {
  const root = await fashionMnist({ perClass: 1, validPerClass: 1 });
  fs.rmSync(path.join(root, DATASET_MARKER));
  fs.rmSync(path.join(root, "train", "bag"), { recursive: true });
  await fashionMnist({ perClass: 1, validPerClass: 1 });
  assert.equal(fs.readdirSync(path.join(root, "train", "bag")).length, 1);
  assert.ok(fs.existsSync(path.join(root, DATASET_MARKER)));
  assert.equal(fs.readdirSync(path.dirname(root)).some((n) => n.includes("building")), false);
});

test("fashionMnist names the missing file and the apt package when the data is absent", async () => {
  await assert.rejects(fashionMnist({ perClass: 1, source: path.join(dir, "nowhere"), dest: path.join(dir, "x") }), /nowhere\/train-images-idx3-ubyte\.gz not found.*apt-get install dataset-fashion-mnist/);
});

test("mnistDigits gives perClass labelled digits per class and the same fixed validation set for any perClass", async () => {
  const a = await mnistDigits({ perClass: 3, validPerClass: 5 });
  const b = await mnistDigits({ perClass: 6, validPerClass: 5 });
  assert.deepEqual(counts(path.join(a, "train")), Object.fromEntries([..."0123456789"].map((d) => [d, 3])));
  assert.deepEqual(counts(path.join(b, "train")), Object.fromEntries([..."0123456789"].map((d) => [d, 6])));
  assert.deepEqual(counts(path.join(a, "valid")), Object.fromEntries([..."0123456789"].map((d) => [d, 5])));
  for (const d of ["0", "7"]) {
    const fa = fs.readdirSync(path.join(a, "valid", d)).sort();
    assert.deepEqual(fa, fs.readdirSync(path.join(b, "valid", d)).sort());
    for (const f of fa) assert.ok(fs.readFileSync(path.join(a, "valid", d, f)).equals(fs.readFileSync(path.join(b, "valid", d, f))));
  }
  // Pixel check against the package's JSON: digit 0, first image, values scaled to bytes.
  const raw = JSON.parse(fs.readFileSync(require.resolve("mnist/src/digits/0.json"), "utf8")) as { data: number[] };
  const px = await greyPixels(path.join(a, "train", "0", "0000.png"));
  assert.deepEqual(Array.from(px), raw.data.slice(0, 784).map((v) => Math.round(v * 255)));
  // Validation images of digit 0 are its last 5 (1001 images: indices 996..1000).
  assert.deepEqual(fs.readdirSync(path.join(a, "valid", "0")).sort(), ["0996.png", "0997.png", "0998.png", "0999.png", "1000.png"]);
  await assert.rejects(mnistDigits({ perClass: 2000 }), /perClass=2000 is more than the 901 training images of digit 0/);
});

test("mnistDigits can take a subset of digits, with the same files as the full set", async () => {
  const sub = await mnistDigits({ perClass: 3, validPerClass: 5, digits: [7, 3] });
  const all = await mnistDigits({ perClass: 3, validPerClass: 5 });
  assert.deepEqual(counts(path.join(sub, "train")), { "3": 3, "7": 3 });
  assert.deepEqual(counts(path.join(sub, "valid")), { "3": 5, "7": 5 });
  for (const f of fs.readdirSync(path.join(sub, "valid", "7"))) {
    assert.ok(fs.readFileSync(path.join(sub, "valid", "7", f)).equals(fs.readFileSync(path.join(all, "valid", "7", f))));
  }
  await assert.rejects(mnistDigits({ digits: [5] }), /digits must be at least two different integers 0-9, got \[5\]/);
  await assert.rejects(mnistDigits({ digits: [5, 10] }), /got \[5, 10\]/);
});

test("emojiCategories arranges Twemoji by category, RGB on white, 20% valid per class, reproducibly", async () => {
  const root = await emojiCategories();
  const train = counts(path.join(root, "train"));
  const valid = counts(path.join(root, "valid"));
  assert.deepEqual(Object.keys(train), ["activities", "animals-nature", "flags", "food-drink", "objects", "people-body", "smileys-emotion", "symbols", "travel-places"]);
  const pkg = path.dirname(require.resolve("emoji-datasource-twitter/package.json"));
  const entries = JSON.parse(fs.readFileSync(path.join(pkg, "emoji.json"), "utf8")) as { category: string; image: string }[];
  const expected = entries.filter((e) => e.category !== "Component" && fs.existsSync(path.join(pkg, "img/twitter/64", e.image))).length;
  const total = Object.values(train).reduce((a, b) => a + b, 0) + Object.values(valid).reduce((a, b) => a + b, 0);
  assert.equal(total, expected);
  for (const c of Object.keys(train)) {
    const frac = valid[c]! / (valid[c]! + train[c]!);
    assert.ok(Math.abs(frac - 0.2) < 0.02, `${c}: valid fraction ${frac}`);
  }
  // 1f600 (grinning face) is Smileys & Emotion; its corner pixel is transparent in the source.
  const split = fs.existsSync(path.join(root, "train", "smileys-emotion", "1f600.png")) ? "train" : "valid";
  const img = sharp(path.join(root, split, "smileys-emotion", "1f600.png"));
  const meta = await img.metadata();
  assert.equal(meta.channels, 3);
  assert.equal(meta.width, 64);
  const src = await sharp(path.join(pkg, "img/twitter/64/1f600.png")).raw().toBuffer();
  assert.equal(src[3], 0, "source corner is transparent");
  assert.deepEqual(Array.from((await img.raw().toBuffer()).subarray(0, 3)), [255, 255, 255]);
  // The folder is what the plan says: same seed, same split; another seed, another split.
  const plan = planEmojiCategories({ validPct: 0.2, seed: 42, skinTones: false });
  const validSymbols = (items: EmojiItem[]) => items.filter((i) => i.split === "valid" && i.folder === "symbols").map((i) => i.file).sort();
  assert.deepEqual(validSymbols(plan), fs.readdirSync(path.join(root, "valid", "symbols")).sort());
  assert.notDeepEqual(validSymbols(planEmojiCategories({ validPct: 0.2, seed: 7, skinTones: false })), validSymbols(plan));
});

test("emojiCategories with categories keeps only those, split as in the full set; an unknown name is refused, listing the names", async () => {
  const picked = ["Food & Drink", "Animals & Nature"];
  const root = await emojiCategories({ categories: picked });
  assert.deepEqual(fs.readdirSync(path.join(root, "train")).sort(), ["animals-nature", "food-drink"]);
  const full = planEmojiCategories({ validPct: 0.2, seed: 42, skinTones: false });
  for (const split of ["train", "valid"] as const) {
    for (const folder of ["animals-nature", "food-drink"]) {
      const want = full.filter((i) => i.split === split && i.folder === folder).map((i) => i.file).sort();
      assert.ok(want.length > 20);
      assert.deepEqual(fs.readdirSync(path.join(root, split, folder)).sort(), want, `${split}/${folder}`);
    }
  }
  await assert.rejects(emojiCategories({ categories: ["Animals"] }), /unknown categories \["Animals"\]; the categories are \[.*"Animals & Nature"/);
});

test("with skinTones every skin-tone variant lands in the same split as its base emoji", () => {
  const plan = planEmojiCategories({ validPct: 0.2, seed: 42, skinTones: true });
  const splitOf = new Map(plan.map((i) => [i.file, i.split]));
  // 1f44d = thumbs up; its variants are 1f44d-1f3fb ... 1f44d-1f3ff.
  const base = splitOf.get("1f44d.png");
  assert.ok(base);
  for (const tone of ["1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff"]) assert.equal(splitOf.get(`1f44d-${tone}.png`), base);
  let variants = 0;
  for (const i of plan) {
    const m = /^([0-9a-f]+)-1f3f[b-f]\.png$/.exec(i.file);
    if (m && splitOf.has(`${m[1]}.png`)) {
      variants++;
      assert.equal(i.split, splitOf.get(`${m[1]}.png`), i.file);
    }
  }
  assert.ok(variants > 500, `${variants} variants checked`);
});
