import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { englishCorpus } from "../lib/data/datasets/english";
import { tempDir } from "./helpers/tmp";

const txt = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith(".txt")).sort();

test("englishCorpus: Moby-Dick's 138 documents and 233 State of the Union addresses, a seeded 5 % of each held out", async () => {
  const dest = tempDir("tsfast-english-");
  const dir = await englishCorpus({ dest });
  const train = txt(path.join(dir, "train"));
  const valid = txt(path.join(dir, "valid"));
  const count = (files: string[], prefix: string) => files.filter((f) => f.startsWith(prefix)).length;
  // 135 chapters + etymology, extracts, epilogue; round(138 · 0.05) = 7 and round(233 · 0.05) = 12 validate
  assert.deepEqual([count(train, "moby-dick-"), count(valid, "moby-dick-")], [131, 7]);
  assert.deepEqual([count(train, "sotu-"), count(valid, "sotu-")], [221, 12]);
  assert.ok(!train.some((f) => /contents|moby-dick-data\.txt/.test(f)), "the table of contents and the whole-book file are not documents");
  assert.ok([...train, ...valid].includes("moby-dick-chapter_1.txt"));
  const side = train.includes("moby-dick-chapter_1.txt") ? "train" : "valid";
  const ch1 = fs.readFileSync(path.join(dir, side, "moby-dick-chapter_1.txt"), "utf8");
  assert.ok(ch1.startsWith("CHAPTER 1. Loomings.\n\nCall me Ishmael."), ch1.slice(0, 60));
  const readme = fs.readFileSync(path.join(dir, "README.txt"), "utf8");
  const words = [...readme.matchAll(/(\d+) words/g)].map((m) => Number(m[1]));
  assert.equal(words.length, 2);
  assert.ok(words[0]! > 200_000 && words[1]! > 1_700_000, readme);
  // same seed, same split; built once
  const again = await englishCorpus({ dest });
  assert.equal(again, dir);
  assert.deepEqual(txt(path.join(dir, "valid")), valid);
});

test("englishCorpus refuses a bad validPct and names a missing source folder", async () => {
  const dest = tempDir("tsfast-english-");
  await assert.rejects(englishCorpus({ dest, validPct: 0 }), /validPct must be between 0 and 1/);
  await assert.rejects(englishCorpus({ dest, sources: { sotu: path.join(dest, "nowhere") } }), /nowhere is missing \(the sotu texts\)/);
  const empty = tempDir("tsfast-english-src-");
  await assert.rejects(englishCorpus({ dest, sources: { "moby-dick": empty } }), /no moby-dick texts in/);
  assert.deepEqual(fs.readdirSync(dest), [], "nothing half-built is left behind");
});
