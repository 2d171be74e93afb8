import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { humanNumbers, humanNumbersPath, numberWords } from "../lib/data/datasets/human-numbers";
import { tempDir } from "./helpers/tmp";

test("numberWords spells numbers as HUMAN_NUMBERS does (no 'and', no hyphens)", () => {
  assert.equal(numberWords(1), "one");
  assert.equal(numberWords(15), "fifteen");
  assert.equal(numberWords(20), "twenty");
  assert.equal(numberWords(21), "twenty one");
  assert.equal(numberWords(101), "one hundred one");
  assert.equal(numberWords(110), "one hundred ten");
  assert.equal(numberWords(1010), "one thousand ten");
  assert.equal(numberWords(7000), "seven thousand");
  assert.equal(numberWords(9999), "nine thousand nine hundred ninety nine");
  assert.throws(() => numberWords(0), /spells 1\.\.9999, got 0/);
});

test("HUMAN_NUMBERS has fastai's split and the book's counts: 9,998 lines, 63,095 tokens, 30 in the vocabulary", () => {
  const { train, valid } = humanNumbers();
  assert.equal(train.length, 7999);
  assert.equal(valid.length, 1999);
  assert.equal(train[7998], "seven thousand nine hundred ninety nine");
  assert.equal(valid[0], "eight thousand one", "8,000 is in neither file");
  const tokens = [...train, ...valid].join(" . ").split(" ");
  assert.equal(tokens.length, 63095);
  assert.equal(new Set(tokens).size, 30);
  const dir = tempDir("human-numbers");
  const p = humanNumbersPath(path.join(dir, "hn"));
  assert.deepEqual(fs.readdirSync(p).sort(), ["train.txt", "valid.txt"]);
  assert.equal(fs.readFileSync(path.join(p, "train.txt"), "utf8").slice(0, 15), "one \ntwo \nthree");
});
