/**
 * Tabular procs, `TabularPandas`, `TabularDataLoaders` and the embedding-size rule, against values
 * computed by hand (each expected number is derived in the comment above it), and every bad input
 * the user can give, with errors that name the column or value.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { frameFromRows } from "../lib/tabular/frame";
import { Categorify, FillMissing, Normalize, median } from "../lib/tabular/procs";
import { TabularPandas, processRows } from "../lib/tabular/core";
import { TabularDataLoaders } from "../lib/tabular/data";
import { Normalize as ImageNormalize } from "../lib/data/augment";
import { RandomSplitter } from "../lib/data/items";
import { embSzRule } from "../lib/models/tabular";
import { tempDir } from "./helpers/tmp";
import { ready } from "../lib/engine/backend";

before(() => ready());

// 8 rows; rows 0-5 train, 6-7 validate. Row 6 has an unseen city ("z"), row 3 a missing one.
const ROWS = [
  { age: 20, city: "a", y: "no" },
  { age: null, city: "b", y: "yes" },
  { age: 40, city: "a", y: "no" },
  { age: 30, city: null, y: "yes" },
  { age: 50, city: "c", y: "no" },
  { age: null, city: "b", y: "yes" },
  { age: 60, city: "z", y: "no" },
  { age: 10, city: "a", y: "yes" },
];
const SPLITS: [number[], number[]] = [[0, 1, 2, 3, 4, 5], [6, 7]];
const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

function lesson() {
  return new TabularPandas(frameFromRows(ROWS), { procs: [Categorify, FillMissing, Normalize], catNames: ["city"], contNames: ["age"], yNames: "y", splits: SPLITS });
}

test("median is pandas' (mean of the two middle values), skipping missing values", () => {
  assert.equal(median([3, null, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([null])));
});

test("FillMissing: training median 35 fills the gaps and age_na joins the categoricals; procs run in fastai's order", () => {
  const to = lesson();
  // train ages present: 20, 40, 30, 50 → median (30 + 40) / 2 = 35
  const fm = to.procs.find((p) => p instanceof FillMissing) as FillMissing;
  assert.deepEqual(fm.medians, { age: 35 });
  assert.deepEqual(fm.naCols, ["age"]);
  assert.deepEqual(to.procs.map((p) => p.name), ["FillMissing", "Categorify", "Normalize"]);
  assert.deepEqual(to.catNames, ["city", "age_na"]);
  assert.deepEqual(to.contNames, ["age"]);
});

test("Categorify: training vocabulary only, #na# at 0; missing and unseen values map to 0", () => {
  const to = lesson();
  const cat = to.procs.find((p) => p instanceof Categorify) as Categorify;
  assert.deepEqual(cat.vocabs["city"]!.toJSON(), ["#na#", "a", "b", "c"]); // "z" is only in validation
  assert.deepEqual(cat.vocabs["age_na"]!.toJSON(), ["#na#", false, true]);
  const cityIdx = Array.from({ length: 8 }, (_, i) => to.xs[i * to.width]);
  assert.deepEqual(cityIdx, [1, 2, 1, 0, 3, 2, 0, 1]);
  const naIdx = Array.from({ length: 8 }, (_, i) => to.xs[i * to.width + 1]);
  assert.deepEqual(naIdx, [1, 2, 1, 1, 1, 2, 1, 1]);
  assert.deepEqual(to.cardinalities, [4, 3]);
});

test("Normalize: training mean 35 and population std √(500/6) after filling", () => {
  const to = lesson();
  // filled train ages 20, 35, 40, 30, 50, 35: mean 35; squared deviations 225+0+25+25+225+0 = 500; std √(500/6) = 9.12870929
  const n = to.procs.find((p) => p instanceof Normalize) as Normalize;
  close(n.means["age"]!, 35);
  close(n.stds["age"]!, Math.sqrt(500 / 6) + 1e-7, 1e-9);
  const age = Array.from({ length: 8 }, (_, i) => to.xs[i * to.width + 2]!);
  const s = Math.sqrt(500 / 6);
  [20, 35, 40, 30, 50, 35, 60, 10].forEach((v, i) => close(age[i]!, (v - 35) / s));
  // the targets: sorted classes, as indices
  assert.deepEqual(to.vocab, ["no", "yes"]);
  assert.deepEqual(Array.from(to.ys), [0, 1, 0, 1, 0, 1, 0, 1]);
  const valid = to.arrays("valid"); // rows 6 and 7 for mljs: [city, age_na, age], class
  assert.deepEqual(valid.ys, [0, 1]);
  assert.deepEqual(valid.xs.map((r) => r.slice(0, 2)), [[0, 1], [1, 1]]);
  close(valid.xs[1]![2]!, (10 - 35) / s);
});

test("decodeRow gives back the values the model sees: #na# for unseen, the median for a filled gap", () => {
  const to = lesson();
  const r6 = to.decodeRow(6);
  // the float32 round trip is rounded to 7 significant digits: the ages come back exactly
  assert.deepEqual(r6, { city: "#na#", age_na: false, age: 60, y: "no" });
  const r1 = to.decodeRow(1);
  assert.equal(r1["age_na"], true);
  assert.equal(r1["age"], 35);
  assert.deepEqual([0, 2, 3, 4].map((i) => to.decodeRow(i)["age"]), [20, 40, 30, 50]);
});

test("processRows: a new row is processed with the saved state; the image Normalize stands for the tabular one", () => {
  const to = new TabularPandas(frameFromRows(ROWS), { procs: [Categorify, FillMissing, ImageNormalize], catNames: ["city"], contNames: ["age"], yNames: "y", splits: SPLITS });
  const state = JSON.parse(JSON.stringify(to.tabularState()));
  const done = processRows(state, [{ city: "c", age: null }, { city: "nowhere", age: "44" as unknown as number }]);
  const s = Math.sqrt(500 / 6);
  assert.deepEqual(Array.from(done.xs.subarray(0, 2)), [3, 2]);
  close(done.xs[2]!, 0); // missing → median 35 → 0
  assert.deepEqual(Array.from(done.xs.subarray(3, 5)), [0, 1]);
  close(done.xs[5]!, (44 - 35) / s);
});

test("yBlock: numbers give regression by default (fastai); category can be asked for", () => {
  const df = frameFromRows([{ a: "x", t: 1.5 }, { a: "y", t: 2 }, { a: "x", t: 10 }]);
  const reg = new TabularPandas(df, { procs: [Categorify], catNames: ["a"], yNames: "t" });
  assert.equal(reg.yBlock, "regression");
  assert.deepEqual(Array.from(reg.ys), [1.5, 2, 10]);
  const cls = new TabularPandas(df, { procs: [Categorify], catNames: ["a"], yNames: "t", yBlock: "category" });
  assert.deepEqual(cls.vocab, ["1.5", "2", "10"]); // numeric classes sort as numbers
  assert.deepEqual(Array.from(cls.ys), [0, 1, 2]);
});

test("RandomSplitter splits and index splits; fromDf's validIdx", () => {
  const df = frameFromRows(ROWS);
  const to = new TabularPandas(df, { procs: [Categorify, FillMissing, Normalize], catNames: ["city"], contNames: ["age"], yNames: "y", splits: RandomSplitter(0.25, 1) });
  assert.equal(to.splits[1].length, 2);
  assert.equal(new Set([...to.splits[0], ...to.splits[1]]).size, 8);
  const dls = TabularDataLoaders.fromDf(df, { procs: [Categorify, FillMissing, Normalize], catNames: ["city"], contNames: ["age"], yNames: "y", validIdx: [6, 7], bs: 4 });
  assert.deepEqual(dls.to.splits, SPLITS);
  assert.equal(dls.train.length, 1); // 6 training rows, bs 4, last partial batch dropped
  assert.equal(dls.valid.length, 1);
  assert.equal(dls.c, 2);
  dls.dispose();
});

test("showBatch: an HTML table of decoded values; fromCsv reads the file", async () => {
  const dir = tempDir("tsfast-tab-");
  const csv = path.join(dir, "t.csv");
  fs.writeFileSync(csv, "age,city,y\n" + ROWS.map((r) => `${r.age ?? "NA"},${r.city ?? ""},${r.y}`).join("\n") + "\n");
  const dls = TabularDataLoaders.fromCsv(csv, { procs: [Categorify, FillMissing, Normalize], catNames: ["city"], contNames: ["age"], yNames: "y", validIdx: [6, 7], bs: 8 });
  const html = await dls.showBatch({ valid: true });
  assert.match(html, /<th>city<\/th><th>age_na<\/th><th>age<\/th><th>y<\/th>/);
  assert.match(html, /<td>#na#<\/td><td>false<\/td><td>60<\/td><td>no<\/td>/);
  assert.match(html, /<td>a<\/td><td>false<\/td><td>10<\/td><td>yes<\/td>/);
  dls.dispose();
});

test("embSzRule is fastai's min(600, round(1.6 n^0.56)), Python's rounding", () => {
  // Python: [int(min(600, round(1.6 * n**0.56))) for n in [1,2,3,4,10,53,100,1000,100000,10**6]]
  const ns = [1, 2, 3, 4, 10, 53, 100, 1000, 100000, 1e6];
  assert.deepEqual(ns.map(embSzRule), [2, 2, 3, 3, 6, 15, 21, 77, 600, 600]);
  assert.throws(() => embSzRule(0), /positive integer, got 0/);
});

test("bad input: each error names the column or the value", () => {
  const df = frameFromRows(ROWS);
  const base = { procs: [Categorify, FillMissing, Normalize], yNames: "y", splits: SPLITS };
  assert.throws(() => new TabularPandas(df, { ...base, catNames: ["town"], contNames: ["age"] }), /no column "town" in the table; its columns are: age, city, y/);
  assert.throws(() => new TabularPandas(df, { ...base, catNames: [], contNames: ["city"] }), /"city" is given as continuous .* holds "a", not a number; move "city" to catNames/);
  const gap = frameFromRows([...ROWS.slice(0, 7), { age: 1, city: "a", y: null }]);
  assert.throws(() => new TabularPandas(gap, { ...base, catNames: ["city"], contNames: ["age"] }), /target column "y" has 1 missing value\(s\), the first in row 7/);
  assert.throws(() => new TabularPandas(df, { ...base, catNames: ["city"], splits: [[], [0, 1]] }), /training split is empty/);
  assert.throws(() => new TabularPandas(df, { ...base, catNames: ["city"], splits: [[0, 99], [1]] }), /row index 99/);
  assert.throws(() => new TabularPandas(df, { ...base, catNames: ["city"], contNames: ["city"] }), /"city" is in both catNames and contNames/);
  assert.throws(() => new TabularPandas(df, { ...base, catNames: ["y"] }), /target column "y" is also an input/);
  // a class of another row that no training row has
  assert.throws(() => new TabularPandas(df, { ...base, catNames: ["city"], splits: [[0, 2, 4], [1]] }), /"y" holds "yes" in row 1, a class absent from the training rows \(no\)/);
  const state = lesson().tabularState();
  assert.throws(() => processRows(state, [{ city: "a" }]), /row 0 has no column "age"; the model needs city, age/);
  assert.throws(() => processRows(state, [{ city: "a", age: "old" }]), /"age" is given as continuous .* holds "old"/);
});
