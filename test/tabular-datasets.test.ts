/** The offline tables: weka's ARFF converted to CSV, and Palmer penguins unpacked from its Debian package. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { arffToCsv, penguins } from "../lib/data/datasets/tables";
import { column, readCsv } from "../lib/tabular/frame";
import { tempDir } from "./helpers/tmp";

test("arffToCsv: header from @attribute, quoted values with commas and escapes, ? stays missing, comments skipped", () => {
  const arff = [
    "% a comment",
    "@relation t",
    "@attribute 'credit history' { 'all paid', 'delayed, once'}",
    "@attribute amount numeric",
    "@ATTRIBUTE class {good,bad}",
    "",
    "@data",
    "'all paid',1169,good",
    "% inside data",
    "'delayed, once',?,bad",
    "'it\\'s',  12 , good",
  ].join("\n");
  const df = readCsv({ text: arffToCsv(arff) });
  assert.deepEqual(df.columnNames(), ["credit history", "amount", "class"]);
  assert.deepEqual(column(df, "credit history"), ["all paid", "delayed, once", "it's"]);
  assert.deepEqual(column(df, "amount"), [1169, null, 12]);
  assert.deepEqual(column(df, "class"), ["good", "bad", "good"]);
  assert.throws(() => arffToCsv("@attribute a numeric\n@data\n1,2\n", "x.arff"), /x\.arff, line 3: 2 values for 1 attributes/);
  assert.throws(() => arffToCsv("@data\n{0 1}\n"), /sparse ARFF rows are not supported/);
  assert.throws(() => arffToCsv("a,b\n1,2\n"), /no @attribute lines/);
});

test("readCsv refuses a quote never closed, naming its line; a closed multi-line field reads", () => {
  assert.throws(() => readCsv({ text: 'a,b\n1,x\n2,"y\n3,z\n' }), /the CSV text: CSV line 3: a quoted field opened there is never closed/);
  assert.deepEqual(column(readCsv({ text: 'a,b\n1,"x\ny"\n' }), "b"), ["x\ny"]);
});

test("penguins(): the real 344-row table with its 19 missing values and its licence", async () => {
  const dest = tempDir("tsfast-tables-");
  const csv = await penguins({ dest });
  const df = readCsv(csv);
  assert.equal(df.numRows(), 344);
  const species = column(df, "species");
  assert.deepEqual(["Adelie", "Chinstrap", "Gentoo"].map((s) => species.filter((v) => v === s).length), [152, 68, 124]);
  const missing = df.columnNames().reduce((a, c) => a + column(df, c).filter((v) => v === null).length, 0);
  assert.equal(missing, 19);
  assert.equal(typeof column(df, "bill_length_mm")[0], "number");
  assert.match(fs.readFileSync(path.join(path.dirname(csv), "COPYRIGHT"), "utf8"), /License: CC0/);
});
