process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND || "cpu";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { ImageClassifierCleaner, type CleanerDecision } from "../lib/interpret/cleaner";
import { ClassificationInterpretation } from "../lib/interpret/interpretation";
import type { InterpretableLearner as LearnerLike, LoaderLike } from "../lib/learner/contracts";

const CHROMIUM = "/usr/bin/chromium";
const vocab = ["cat", "dog", "bird"];
let tmp = "";
let root = "";
let outside = "";

// The training split: 4 cats (losses 0.1, 2.0, 0.9, 1.5), 2 dogs, 1 bird; valid: 1 cat.
const trainSpec: { cls: string; name: string; probs: number[] }[] = [
  { cls: "cat", name: "c0.png", probs: [0.9, 0.05, 0.05] },
  { cls: "cat", name: "c1.png", probs: [0.135, 0.8, 0.065] },
  { cls: "cat", name: "c2.png", probs: [0.4, 0.3, 0.3] },
  { cls: "cat", name: "c3.png", probs: [0.22, 0.08, 0.7] },
  { cls: "dog", name: "d0.png", probs: [0.1, 0.8, 0.1] },
  { cls: "dog", name: "c1.png", probs: [0.1, 0.8, 0.1] }, // same name as a cat: a move must not clobber it
  { cls: "bird", name: "b0.png", probs: [0.1, 0.1, 0.8] },
];

async function png(value: number): Promise<Buffer> {
  return sharp({ create: { width: 6, height: 6, channels: 3, background: { r: value, g: 100, b: 50 } } }).png().toBuffer();
}

function loader(items: string[]): LoaderLike {
  return { items, loadImage: async (i: number) => tf.fill([40, 30, 3], (i + 1) / 10) as tf.Tensor3D };
}

function learner(): LearnerLike {
  const train = trainSpec.map((s) => path.join(root, "train", s.cls, s.name));
  const valid = [path.join(root, "valid", "cat", "v0.png")];
  return {
    dls: { vocab, train: loader(train), valid: loader(valid) },
    async getPreds({ dsIdx = 1 } = {}) {
      const rows = dsIdx === 0 ? trainSpec.map((s) => s.probs) : [[0.6, 0.3, 0.1]];
      const targs = dsIdx === 0 ? trainSpec.map((s) => vocab.indexOf(s.cls)) : [0];
      return { preds: tf.tensor2d(rows), targs: tf.tensor1d(targs, "int32") };
    },
  };
}

before(async () => {
  await ready();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-cleaner-"));
  root = path.join(tmp, "pets");
  outside = path.join(tmp, "outside");
  fs.mkdirSync(outside, { recursive: true });
  fs.writeFileSync(path.join(outside, "secret.png"), await png(9));
  let k = 0;
  for (const s of trainSpec) {
    fs.mkdirSync(path.join(root, "train", s.cls), { recursive: true });
    fs.writeFileSync(path.join(root, "train", s.cls, s.name), await png(k++ * 20));
  }
  fs.mkdirSync(path.join(root, "valid", "cat"), { recursive: true });
  fs.writeFileSync(path.join(root, "valid", "cat", "v0.png"), await png(200));
  // A link inside the root that points outside it.
  fs.symlinkSync(path.join(outside, "secret.png"), path.join(root, "train", "cat", "link.png"));
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function cardPaths(html: string): string[] {
  return [...html.matchAll(/class="tsc-card" data-path="([^"]+)"/g)].map((m) => m[1]!);
}

test("a view lists one class of one split, largest loss first, with move targets for the other classes", async () => {
  const cleaner = new ImageClassifierCleaner(learner(), { root });
  const before = tf.memory().numTensors;
  const html = await cleaner.html({ category: "cat", split: "train" });
  assert.equal(tf.memory().numTensors, before);
  // Losses: c1 -ln .135 = 2.0, c3 -ln .22 = 1.5, c2 -ln .4 = 0.9, c0 -ln .9 = 0.1.
  assert.deepEqual(cardPaths(html), ["train/cat/c1.png", "train/cat/c3.png", "train/cat/c2.png", "train/cat/c0.png"]);
  assert.match(html, /cat — train — 4 of 4 images, largest loss first/);
  assert.match(html, /<option value="move:dog">move to dog<\/option>/);
  assert.doesNotMatch(html, /value="move:cat"/);
  const two = await cleaner.html({ category: "cat", split: "train", maxN: 2 });
  assert.equal(cardPaths(two).length, 2);
  assert.deepEqual(cardPaths(await cleaner.html({ category: "cat", split: "valid" })), ["valid/cat/v0.png"]);
  await assert.rejects(cleaner.html({ category: "horse" }), /category "horse" is not a class; the classes are cat, dog, bird/);
  assert.throws(() => new ImageClassifierCleaner(learner(), { root: path.join(tmp, "nope") }), /is not a folder/);
});

test("choices clicked in Chromium become decisions that apply moves and deletes on disk", async (t) => {
  if (!fs.existsSync(CHROMIUM)) assert.fail(`this test needs Chromium at ${CHROMIUM} (apt-get install chromium)`);
  const { chromium } = await import("playwright-core");
  const cleaner = new ImageClassifierCleaner(learner(), { root, varName: "cleaner" });
  const html = await cleaner.html({ category: "cat", split: "train" });
  const page0 = path.join(tmp, "cleaner.html");
  fs.writeFileSync(page0, `<!doctype html><html><head><meta charset="utf-8"></head><body>${html}</body></html>`);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto("file://" + page0);
  // Before any choice: everything kept, the "trust the notebook" warning replaced by the status line.
  assert.match(await page.locator(".tsc-code").inputValue(), /no changes chosen/);
  assert.match((await page.locator(".tsc-status").textContent()) ?? "", /0 to delete, 0 to move/);
  const cards = page.locator(".tsc-card");
  assert.equal(await cards.count(), 4);
  // c1 (top loss, looks like a dog) → dog; c3 → delete; c2 → delete then back to keep.
  await cards.nth(0).locator("select").selectOption("move:dog");
  await cards.nth(1).locator("select").selectOption("delete");
  await cards.nth(2).locator("select").selectOption("delete");
  await cards.nth(2).locator("select").selectOption("keep");
  assert.equal(await cards.nth(1).getAttribute("class"), "tsc-card tsc-delete");
  const code = await page.locator(".tsc-code").inputValue();
  const attr = JSON.parse((await page.locator(".tsc").getAttribute("data-decisions")) ?? "null") as CleanerDecision[];
  const href = (await page.locator(".tsc-download").getAttribute("href")) ?? "";
  await page.locator(".tsc-copy").click();
  // the label changes when the clipboard's promise settles, after the click returns: wait for it (5 s at most)
  await page.waitForFunction(() => document.querySelector(".tsc-copy")?.textContent !== "Copy code", undefined, { timeout: 5000 });
  assert.equal(await page.locator(".tsc-copy").textContent(), "Copied");
  assert.deepEqual(errors, []);

  // As notebook front ends insert outputs: HTML via innerHTML, then each script re-created so it runs.
  const page2 = await browser.newPage();
  await page2.setContent("<!doctype html><html><body><div id=out></div></body></html>");
  await page2.evaluate((h) => {
    const out = document.getElementById("out")!;
    out.innerHTML = h;
    for (const old of Array.from(out.querySelectorAll("script"))) {
      const s = document.createElement("script");
      s.textContent = old.textContent;
      old.replaceWith(s);
    }
  }, html);
  await page2.locator(".tsc-card select").nth(3).selectOption("move:bird");
  assert.deepEqual(JSON.parse((await page2.locator(".tsc").getAttribute("data-decisions")) ?? "null"), [
    { path: "train/cat/c0.png", action: "move", to: "bird" },
  ]);

  const expected: CleanerDecision[] = [
    { path: "train/cat/c1.png", action: "move", to: "dog" },
    { path: "train/cat/c3.png", action: "delete" },
  ];
  assert.deepEqual(attr, expected);
  // The textarea holds one line of code to paste into the next cell.
  const m = /^await cleaner\.apply\((.*)\);$/.exec(code);
  assert.ok(m, code);
  assert.deepEqual(JSON.parse(m[1]!), expected);
  assert.deepEqual(JSON.parse(decodeURIComponent(href.replace(/^data:application\/json,/, ""))), expected);

  // The downloaded file works too (dry run: checks and reports, touches nothing).
  const file = path.join(tmp, "cleaner-decisions.json");
  fs.writeFileSync(file, decodeURIComponent(href.replace(/^data:application\/json,/, "")));
  const dry = await cleaner.apply(file, { dryRun: true });
  assert.equal(dry.dryRun, true);
  assert.ok(fs.existsSync(path.join(root, "train", "cat", "c3.png")));
  assert.equal(dry.moved[0]!.to, path.join(fs.realpathSync(root), "train", "dog", "c1_1.png"));

  const dogBefore = fs.readFileSync(path.join(root, "train", "dog", "c1.png"));
  const catBytes = fs.readFileSync(path.join(root, "train", "cat", "c1.png"));
  const report = await cleaner.apply(JSON.parse(m[1]!) as CleanerDecision[]);
  assert.ok(!fs.existsSync(path.join(root, "train", "cat", "c3.png")), "c3 deleted");
  assert.ok(!fs.existsSync(path.join(root, "train", "cat", "c1.png")), "c1 left the cat folder");
  // The dog folder already had a c1.png: it is untouched and the cat arrives as c1_1.png.
  assert.deepEqual(fs.readFileSync(path.join(root, "train", "dog", "c1.png")), dogBefore);
  assert.deepEqual(fs.readFileSync(path.join(root, "train", "dog", "c1_1.png")), catBytes);
  assert.ok(fs.existsSync(path.join(root, "train", "cat", "c2.png")), "kept files stay");
  assert.equal(report.deleted.length, 1);
  assert.equal(report.moved.length, 1);
  assert.match(report.text, /1 file\(s\) were deleted, 1 were moved/);
  assert.equal(inspect(report), "CleanerReport { deleted: 1, moved: 1, kept: 0, dryRun: false }");
  // A fresh view no longer shows the files that left.
  assert.deepEqual(cardPaths(await cleaner.html({ category: "cat", split: "train" })), ["train/cat/c2.png", "train/cat/c0.png"]);
});

test("apply refuses paths outside the dataset root and changes nothing in that batch", async () => {
  const cleaner = new ImageClassifierCleaner(learner(), { root });
  const keep = path.join(root, "train", "bird", "b0.png");
  const bad: CleanerDecision[][] = [
    [{ path: path.join(outside, "secret.png"), action: "delete" }],
    [{ path: "../outside/secret.png", action: "delete" }],
    [{ path: "train/cat/link.png", action: "delete" }],
    [{ path: "train/bird/b0.png", action: "move", to: "../../../outside" }],
  ];
  for (const d of bad) {
    await assert.rejects(cleaner.apply([{ path: "train/bird/b0.png", action: "delete" }, ...d]), /nothing was changed/);
    assert.ok(fs.existsSync(keep), "the valid decision of a refused batch is not carried out");
  }
  await assert.rejects(cleaner.apply(bad[0]!), /outside the dataset root/);
  await assert.rejects(cleaner.apply(bad[2]!), /outside the dataset root/);
  await assert.rejects(cleaner.apply(bad[3]!), /"to" must be a class name/);
  assert.ok(fs.existsSync(path.join(outside, "secret.png")));
  assert.ok(fs.lstatSync(path.join(root, "train", "cat", "link.png")).isSymbolicLink());
  await assert.rejects(cleaner.apply([{ path: "train/bird/b0.png", action: "move", to: "horse" }]), /"horse" is not a class/);
  await assert.rejects(cleaner.apply([{ path: "train/bird/zz.png", action: "delete" }]), /no such file/);
  await assert.rejects(
    cleaner.apply([
      { path: "train/bird/b0.png", action: "delete" },
      { path: "train/bird/b0.png", action: "move", to: "cat" },
    ]),
    /more than one decision/,
  );
  await assert.rejects(cleaner.apply(), /paste the line the cleaner page gives you/);
  assert.ok(fs.existsSync(keep));
});

test("a cleaner built from an interpretation serves only that split", async () => {
  const interp = await ClassificationInterpretation.fromLearner(learner(), { dsIdx: 1 });
  const cleaner = new ImageClassifierCleaner(interp, { root });
  assert.deepEqual(cardPaths(await cleaner.html({ category: "cat", split: "valid" })), ["valid/cat/v0.png"]);
  await assert.rejects(cleaner.html({ category: "cat", split: "train" }), /no "train" predictions/);
});
