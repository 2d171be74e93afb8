import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { emojiScenes, sceneCodes, SCENE_PHOTOS_PACKAGE, DATASET_MARKER, ImageDataLoaders } from "../lib/index";
import { tmpHome } from "./helpers/download-server";

// The photographs come from Debian's mate-backgrounds (CI installs it through scripts/setup.sh).
// Without them every build below fails with the apt hint: this file never skips.

const N = 40;
const SIZE = 128;
const CODES = [
  "background",
  "activities",
  "animals-nature",
  "flags",
  "food-drink",
  "objects",
  "people-body",
  "smileys-emotion",
  "symbols",
  "travel-places",
];
const FACE = CODES.indexOf("smileys-emotion");

let tmp: string;
let dir: string;
before(async () => {
  tmp = tmpHome("scenes");
  dir = await emojiScenes({ n: N });
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Rows of a CSV written by emojiScenes (no quoted fields), without the header. */
function csv(file: string): { header: string[]; rows: string[][] } {
  const [header, ...rows] = fs.readFileSync(file, "utf8").trimEnd().split("\n").map((l) => l.split(","));
  return { header: header!, rows };
}

async function maskOf(fname: string): Promise<Buffer> {
  const { data, info } = await sharp(path.join(dir, "masks", fname)).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height], [SIZE, SIZE]);
  return data;
}

function listFiles(root: string): string[] {
  return fs.readdirSync(root, { recursive: true, encoding: "utf8" }).filter((f) => fs.statSync(path.join(root, f)).isFile()).sort();
}

test("emojiScenes writes N RGB scenes, 8-bit grey masks, labels.csv, points.csv and codes.txt under $TSFAST_HOME/data", async () => {
  assert.equal(dir, path.join(process.env.TSFAST_HOME!, "data", `emoji-scenes-n${N}`));
  assert.deepEqual(fs.readFileSync(path.join(dir, "codes.txt"), "utf8").trimEnd().split("\n"), CODES);
  assert.deepEqual(sceneCodes(), CODES);
  const names = Array.from({ length: N }, (_, i) => `${String(i).padStart(5, "0")}.png`);
  assert.deepEqual(fs.readdirSync(path.join(dir, "images")).sort(), names);
  assert.deepEqual(fs.readdirSync(path.join(dir, "masks")).sort(), names);
  const img = await sharp(path.join(dir, "images", names[0]!)).metadata();
  assert.deepEqual([img.width, img.height, img.channels, img.hasAlpha], [SIZE, SIZE, 3, false]);
  const mask = fs.readFileSync(path.join(dir, "masks", names[0]!));
  // PNG header: width, height, bit depth 8, colour type 0 (grey).
  assert.deepEqual([mask.readUInt32BE(16), mask.readUInt32BE(20), mask[24], mask[25]], [SIZE, SIZE, 8, 0]);
  assert.ok(fs.existsSync(path.join(dir, DATASET_MARKER)));
});

test("every mask holds only class indices 0..K, and each scene's labels are exactly its mask's non-zero classes", async () => {
  const { header, rows } = csv(path.join(dir, "labels.csv"));
  assert.deepEqual(header, ["fname", "labels", "is_valid"]);
  assert.equal(rows.length, N);
  const perCount = [0, 0, 0, 0];
  let background = 0;
  for (const [fname, labels, valid] of rows) {
    const m = await maskOf(fname!);
    const present = new Set(m);
    for (const v of present) assert.ok(v < CODES.length, `${fname}: mask value ${v} is not a class index`);
    const fromMask = [...present].filter((v) => v > 0).sort((a, b) => a - b).map((v) => CODES[v]);
    assert.deepEqual(labels!.split(" "), fromMask, `${fname}: labels "${labels}" differ from its mask`);
    assert.match(valid!, /^(True|False)$/);
    perCount[fromMask.length]!++;
    background += m.filter((v) => v === 0).length / m.length;
  }
  // 1..3 emoji per scene, and they cover a minority of the photo.
  assert.equal(perCount[0], 0);
  assert.ok(perCount[1]! > 0 && perCount[2]! > 0 && perCount[3]! > 0, `scenes by label count: ${perCount}`);
  assert.ok(background / N > 0.6 && background / N < 0.95, `mean background fraction ${background / N}`);
  // A seeded 20% split: exactly round(40 * 0.2) scenes flagged valid.
  assert.equal(rows.filter((r) => r[2] === "True").length, 8);
});

test("each point of points.csv lies on its scene's only face, within 8 px of the face's centroid", async () => {
  const { header, rows } = csv(path.join(dir, "points.csv"));
  assert.deepEqual(header, ["fname", "x", "y"]);
  assert.ok(rows.length >= 3, `only ${rows.length} scenes with one face`);
  const labelled = new Map(csv(path.join(dir, "labels.csv")).rows.map((r) => [r[0]!, r[1]!.split(" ")]));
  for (const [fname, xs, ys] of rows) {
    const x = Number(xs);
    const y = Number(ys);
    assert.ok(x >= 0 && x < SIZE && y >= 0 && y < SIZE, `${fname}: (${x}, ${y}) outside the picture`);
    const m = await maskOf(fname!);
    assert.equal(m[Math.floor(y) * SIZE + Math.floor(x)], FACE, `${fname}: point (${x}, ${y}) is not on the face`);
    assert.ok(labelled.get(fname!)!.includes("smileys-emotion"));
    let sx = 0;
    let sy = 0;
    let n = 0;
    m.forEach((v, i) => {
      if (v !== FACE) return;
      sx += (i % SIZE) + 0.5;
      sy += Math.floor(i / SIZE) + 0.5;
      n++;
    });
    assert.ok(Math.hypot(sx / n - x, sy / n - y) <= 8, `${fname}: point (${x}, ${y}) far from the face centroid (${sx / n}, ${sy / n})`);
  }
});

test("the scene under the emoji is a real photograph: many colours, and the scenes differ", async () => {
  const seen = new Set<string>();
  for (const f of ["00000.png", "00001.png", "00002.png"]) {
    const px = await sharp(path.join(dir, "images", f)).raw().toBuffer();
    const m = await maskOf(f);
    const colours = new Set<number>();
    m.forEach((v, i) => {
      if (v === 0) colours.add((px[i * 3]! << 16) | (px[i * 3 + 1]! << 8) | px[i * 3 + 2]!);
    });
    assert.ok(colours.size > 500, `${f}: only ${colours.size} background colours`);
    seen.add(px.toString("base64"));
  }
  assert.equal(seen.size, 3);
});

test("labels.csv loads with ImageDataLoaders.fromCsv as a multi-label set split by is_valid", async () => {
  const dls = await ImageDataLoaders.fromCsv(dir, "labels.csv", { folder: "images", labelDelim: " ", validCol: "is_valid", bs: 8 });
  assert.equal(dls.isMultiLabel, true);
  assert.deepEqual([dls.train.n, dls.valid.n], [N - 8, 8]);
  for (const c of dls.vocab) assert.ok(CODES.includes(c), c);
});

test("the same seed gives byte-identical files; another seed gives other scenes", async () => {
  const again = await emojiScenes({ n: N, dest: path.join(tmp, "again") });
  const files = listFiles(dir);
  assert.deepEqual(listFiles(again), files);
  for (const f of files) assert.ok(fs.readFileSync(path.join(dir, f)).equals(fs.readFileSync(path.join(again, f))), `${f} differs`);
  const other = await emojiScenes({ n: N, seed: 7, dest: path.join(tmp, "other") });
  assert.equal(path.basename(other), `emoji-scenes-n${N}-s7`);
  const differ = files.filter((f) => f.startsWith("images/") && !fs.readFileSync(path.join(dir, f)).equals(fs.readFileSync(path.join(other, f))));
  assert.equal(differ.length, N);
  assert.notEqual(fs.readFileSync(path.join(other, "labels.csv"), "utf8"), fs.readFileSync(path.join(dir, "labels.csv"), "utf8"));
});

test("emojiPerClass and scale build other scenes, in a folder named after them", async () => {
  // The draw of version 1: every emoji of each category, 26-64 px.
  const all = await emojiScenes({ n: N, emojiPerClass: 0, scale: [0.2, 0.5], dest: path.join(tmp, "all") });
  assert.equal(path.basename(all), `emoji-scenes-n${N}-e0-sc0.2_0.5`);
  const labelsOf = (d: string) => fs.readFileSync(path.join(d, "labels.csv"), "utf8");
  assert.notEqual(labelsOf(all), labelsOf(dir));
  assert.equal(labelsOf(all).trimEnd().split("\n").length, N + 1);
});

test("a second call returns the built folder without rebuilding it", async () => {
  const before = fs.statSync(path.join(dir, "images", "00000.png")).mtimeMs;
  const t0 = Date.now();
  assert.equal(await emojiScenes({ n: N }), dir);
  assert.ok(Date.now() - t0 < 500);
  assert.equal(fs.statSync(path.join(dir, "images", "00000.png")).mtimeMs, before);
});

test("bad options are refused, naming the option and the value", async () => {
  const dest = path.join(tmp, "bad");
  await assert.rejects(emojiScenes({ n: 0, dest }), /emojiScenes: n must be a whole number .* got 0/);
  await assert.rejects(emojiScenes({ n: 2.5, dest }), /n must be .* got 2\.5/);
  await assert.rejects(emojiScenes({ size: 16, dest }), /size must be .* from 32 to 1024, got 16/);
  await assert.rejects(emojiScenes({ validPct: 1.5, dest }), /validPct must be in \(0, 1\), got 1\.5/);
  await assert.rejects(emojiScenes({ maxEmoji: 0, dest }), /maxEmoji must be .* got 0/);
  await assert.rejects(emojiScenes({ seed: NaN, dest }), /seed must be a finite number, got NaN/);
  await assert.rejects(emojiScenes({ emojiPerClass: -1, dest }), /emojiPerClass must be a whole number \(0 for all\), got -1/);
  await assert.rejects(emojiScenes({ scale: [0.6, 0.3], dest }), /scale must be \[min, max\] .* got \[0\.6,0\.3\]/);
  assert.equal(fs.existsSync(dest), false);
});

test("without the photographs the error names the Debian package to install", async () => {
  const saved = process.env.TSFAST_SCENE_PHOTOS_DIR;
  process.env.TSFAST_SCENE_PHOTOS_DIR = path.join(tmp, "no-photos");
  try {
    await assert.rejects(emojiScenes({ n: 2, dest: path.join(tmp, "none") }), (e: Error) => {
      assert.match(e.message, /no-photos does not exist/);
      assert.match(e.message, new RegExp(`apt-get install ${SCENE_PHOTOS_PACKAGE}`));
      return true;
    });
  } finally {
    if (saved === undefined) delete process.env.TSFAST_SCENE_PHOTOS_DIR;
    else process.env.TSFAST_SCENE_PHOTOS_DIR = saved;
  }
});
