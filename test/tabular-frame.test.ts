/** The shared table module: CSV reading (BOM, quotes, missing markers, typing) and Categorify's vocabulary. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { column, frameFromRows, readCsv } from "../lib/tabular/frame";
import { ColumnVocab, NA_TOKEN } from "../lib/tabular/categorify";
import { tempDir } from "./helpers/tmp";

test("readCsv: BOM dropped, quoted commas kept, missing markers become null, numeric columns typed", () => {
  const df = readCsv({ text: '\ufeffage,city,score\n31,"Lyon, FR",2.5\nNA,Oslo,?\n27,,7\n' });
  assert.deepEqual(df.columnNames(), ["age", "city", "score"]);
  assert.deepEqual(column(df, "age"), [31, null, 27]);
  assert.deepEqual(column(df, "city"), ["Lyon, FR", "Oslo", null]);
  assert.deepEqual(column(df, "score"), [2.5, null, 7]);
});

test("readCsv: a column with one non-number stays text; textColumns keeps ids as text", () => {
  const df = readCsv({ text: "zip,size\n07001,3\n10115,L\n" }, { textColumns: ["zip"] });
  assert.deepEqual(column(df, "zip"), ["07001", "10115"]);
  assert.deepEqual(column(df, "size"), ["3", "L"]);
});

test("readCsv: clear errors for a missing file, an empty file, a repeated column; column() names the columns", () => {
  const dir = tempDir("tsfast-frame-");
  assert.throws(() => readCsv(path.join(dir, "nope.csv")), /no file at .*nope\.csv/);
  fs.writeFileSync(path.join(dir, "empty.csv"), "\n");
  assert.throws(() => readCsv(path.join(dir, "empty.csv")), /empty\.csv is empty/);
  assert.throws(() => readCsv({ text: "a,b,a\n1,2,3\n" }), /names the column "a" twice/);
  const df = frameFromRows([{ a: 1, b: "x" }, { a: 2 }]);
  assert.deepEqual(column(df, "b"), ["x", null]);
  assert.throws(() => column(df, "c"), /no column "c" in the table; its columns are: a, b/);
});

test("ColumnVocab: #na# at 0, sorted categories from the given (training) values, missing and unseen map to 0", () => {
  const v = ColumnVocab.fromValues(["b", null, "a", "b", "c"]);
  assert.deepEqual(v.toJSON(), [NA_TOKEN, "a", "b", "c"]);
  assert.deepEqual(["a", "b", "c", null, "zzz", undefined].map((x) => v.encode(x)), [1, 2, 3, 0, 0, 0]);
  assert.equal(v.decode(2), "b");
  assert.equal(v.has("zzz"), false);
  assert.throws(() => v.decode(9), /index 9 is outside the vocabulary \(size 4\)/);
  // Numbers sort as numbers (10 after 9), and survive a JSON round trip.
  const n = ColumnVocab.fromValues([10, 9, 100, Number.NaN]);
  assert.deepEqual(n.toJSON(), [NA_TOKEN, 9, 10, 100]);
  const back = ColumnVocab.fromItems(JSON.parse(JSON.stringify(n.toJSON())));
  assert.equal(back.encode(100), 3);
  assert.throws(() => ColumnVocab.fromItems(["a"]), /starts with "#na#"/);
});
