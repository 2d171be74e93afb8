process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { decodeUtf8, padInputChunk, SortedDL, TextDataLoaders } from "../lib/text/data";
import { LMDataLoader } from "../lib/text/lm-loader";
import { frameFromRows } from "../lib/tabular/frame";

const P = 1; // xxpad

test("padInputChunk pads as fastai's pad_input_chunk: whole seqLen chunks of xxpad first, the remainder after (pad_first), or all after", () => {
  const d = (...v: number[]) => Int32Array.from(v);
  const docs = [d(2, 3, 4, 5, 6, 7, 8, 9, 10, 11), d(2, 3, 4, 5, 6), d(2, 3)];
  const { data, len } = padInputChunk(docs, { seqLen: 4 });
  assert.equal(len, 10);
  const rows = [0, 1, 2].map((r) => Array.from(data.subarray(r * 10, r * 10 + 10)));
  assert.deepEqual(rows[0], [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.deepEqual(rows[1], [P, P, P, P, 2, 3, 4, 5, 6, P], "5 pads: one chunk of 4 first, 1 after");
  assert.deepEqual(rows[2], [P, P, P, P, P, P, P, P, 2, 3], "8 pads: two chunks first, none after");
  const last = padInputChunk(docs, { seqLen: 4, padFirst: false });
  assert.deepEqual(Array.from(last.data.subarray(20, 30)), [2, 3, P, P, P, P, P, P, P, P]);
});

test("SortedDL: validation batches longest first; shuffled batches keep the longest text in the first batch, sort each batch by length, and cover every text once", async () => {
  await ready();
  const lens = [3, 9, 1, 7, 5, 2, 8, 4, 6, 10, 11];
  const docs = lens.map((n, i) => Int32Array.from({ length: n }, () => 2 + i));
  const labels = Int32Array.from(lens.map((_, i) => i % 2));
  const valid = new SortedDL(docs, labels, { bs: 4, seqLen: 4 });
  assert.deepEqual(valid.order().map((i) => lens[i]), [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
  const shapes: number[][] = [];
  for await (const { xb, yb } of valid) {
    shapes.push(xb.shape);
    if (shapes.length === 1) {
      // first batch: lengths 11, 10, 9, 8 → padded to 11 with whole chunks of 4 first: 10 → 0 chunks (1 pad after)
      const x = xb.arraySync();
      assert.deepEqual(x[1], [...Array(10).fill(11), P], "text 9 (length 10): its one pad after");
      assert.deepEqual(x[3], [...Array(8).fill(8), P, P, P], "text 6 (length 8): 3 pads after");
      assert.deepEqual(Array.from(yb.dataSync()), [0, 1, 1, 0], "labels follow their texts");
    }
    xb.dispose();
    yb.dispose();
  }
  assert.deepEqual(shapes, [[4, 11], [4, 7], [3, 3]]);

  // 250 texts, bs 2: five chunks of 50 batches, so the longest leads only because shuffle_fn moves it first
  const many = Array.from({ length: 250 }, (_, i) => Int32Array.from({ length: 1 + ((i * 7) % 223) }, () => 5));
  const train = new SortedDL(many, new Int32Array(250), { bs: 2, shuffle: true, dropLast: false, seed: 3 });
  const orders = [train.order(), train.order()];
  for (const order of orders) {
    assert.deepEqual([...order].sort((a, b) => a - b), many.map((_, i) => i), "every text once");
    const maxLen = Math.max(...many.map((d) => d.length));
    assert.equal(many[order[0]!]!.length, maxLen, "the longest text leads the first batch");
    for (let b = 0; b < order.length; b += 2) {
      const l = order.slice(b, b + 2).map((i) => many[i]!.length);
      assert.deepEqual(l, [...l].sort((x, y) => y - x), "each batch sorted longest first");
    }
  }
  assert.notDeepEqual(orders[0], orders[1], "epochs differ");
  assert.deepEqual(new SortedDL(many, new Int32Array(250), { bs: 2, shuffle: true, seed: 3 }).order(), orders[0], "seeded");
});

test("decodeUtf8 replaces bytes that are not UTF-8 and counts them (a real U+FFFD in the file is not counted)", () => {
  const bytes = Buffer.concat([Buffer.from("caf"), Buffer.from([0xe9]), Buffer.from(" ok \uFFFD "), Buffer.from([0xff, 0xfe])]);
  const r = decodeUtf8(bytes);
  assert.equal(r.replaced, 3);
  assert.equal(r.text, "caf\uFFFD ok \uFFFD \uFFFD\uFFFD");
});

/** A tiny corpus of class folders: train/{pos,neg}, valid/{pos,neg}. */
function corpus(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "text-data-"));
  const write = (rel: string, text: string | Buffer) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  };
  for (let i = 0; i < 6; i++) {
    write(`train/pos/${i}.txt`, `a good film , truly good and great ${"fun ".repeat(i)}`);
    write(`train/neg/${i}.txt`, `a bad film , truly bad and awful ${"dull ".repeat(i)}`);
  }
  write("train/neg/empty.txt", "  \n");
  write("train/pos/latin1.txt", Buffer.from([0x61, 0x20, 0x67, 0x6f, 0x6f, 0x64, 0x20, 0x63, 0x61, 0x66, 0xe9])); // "a good caf\xe9"
  write("valid/pos/0.txt", "good and great");
  write("valid/neg/0.txt", "bad and awful");
  return dir;
}

function captureWarnings<T>(f: () => T): { value: T; warnings: string[] } {
  const warnings: string[] = [];
  const orig = console.warn;
  console.warn = (m: unknown) => void warnings.push(String(m));
  try {
    return { value: f(), warnings };
  } finally {
    console.warn = orig;
  }
}

test("TextDataLoaders.fromFolder: classes from folders, split by train/valid, empty texts skipped and non-UTF-8 bytes counted in one warning each, tokens cached on disk", async () => {
  await ready();
  const dir = corpus();
  const cacheDir = path.join(dir, "cache");
  const { value: dls, warnings } = captureWarnings(() => TextDataLoaders.fromFolder(dir, { bs: 4, cacheDir }));
  assert.deepEqual(dls.vocab, ["neg", "pos"]);
  assert.equal(dls.c, 2);
  assert.equal((dls.train as SortedDL).n, 13, "6 + 6 + the latin-1 file; the empty one skipped");
  assert.equal((dls.valid as SortedDL).n, 2);
  assert.deepEqual(dls.textVocab.slice(0, 4), ["xxunk", "xxpad", "xxbos", "xxeos"]);
  assert.ok(dls.textVocab.includes("good") && dls.textVocab.includes("dull"), "words seen 3 times or more are in the vocabulary");
  assert.equal(warnings.length, 2, warnings.join("\n"));
  assert.match(warnings.find((w) => /UTF-8/.test(w))!, /1 text had bytes that are not UTF-8 \(1 replaced with U\+FFFD\), e\.g\. .*latin1\.txt/);
  assert.match(warnings.find((w) => /empty/.test(w))!, /skipped 1 empty text \(.*empty\.txt\)/);
  assert.equal(dls.tokensFromCache, false);
  const again = captureWarnings(() => TextDataLoaders.fromFolder(dir, { bs: 4, cacheDir })).value;
  assert.equal(again.tokensFromCache, true, "a re-run reads the tokens from the cache");
  const html = await dls.showBatch({ valid: true });
  assert.match(html, /<td>xxbos good and great<\/td><td>pos<\/td>/);
  assert.throws(() => TextDataLoaders.fromFolder(dir, { train: "training", cacheDir }), /no \.txt files under .*training.*holds: cache, train, valid/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("TextDataLoaders.fromDf with isLm: language-model streams over the token vocabulary; fromCsv names a missing text column", async () => {
  await ready();
  const rows = Array.from({ length: 30 }, (_, i) => ({ text: `one two three four ${i % 3 === 0 ? "five" : "six"} .`, label: i % 2 ? "odd" : "even", is_valid: i >= 24 }));
  const dls = TextDataLoaders.fromDf(frameFromRows(rows), { isLm: true, bs: 2, seqLen: 5, validCol: "is_valid", cacheDir: false });
  assert.ok(dls.train instanceof LMDataLoader && dls.valid instanceof LMDataLoader);
  assert.equal(dls.vocab, dls.textVocab, "a language model's vocab is its tokens");
  // 24 training texts of 7 tokens (xxbos + 6) = 168 tokens → rows of (168 − 1) // 2 = 83
  assert.equal((dls.train as LMDataLoader).rowLen, 83);
  const html = await dls.showBatch({ valid: true });
  assert.match(html, /<td>xxbos one two three four<\/td><td>one two three four five<\/td>/);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "text-csv-"));
  const csv = path.join(dir, "reviews.csv");
  fs.writeFileSync(csv, "review,label\ngood film,pos\nbad film,neg\n");
  assert.throws(() => TextDataLoaders.fromCsv(csv, { cacheDir: false }), /no text column "text"; its columns are: review, label \(name it with textCol\)/);
  // a Latin-1 "é" (0xe9) in the file: decoded with U+FFFD, counted in one warning
  fs.writeFileSync(csv, Buffer.concat([Buffer.from("review,label\ngood caf"), Buffer.from([0xe9]), Buffer.from(" film,pos\nbad film,neg\n\"\",neg\n")]));
  const { value: ok, warnings } = captureWarnings(() => TextDataLoaders.fromCsv(csv, { textCol: "review", validPct: 0, cacheDir: false, minFreq: 1 }));
  assert.deepEqual(ok.vocab, ["neg", "pos"]);
  assert.equal(warnings.length, 2, warnings.join("\n"));
  assert.match(warnings[0]!, /1 text had bytes that are not UTF-8 \(1 replaced with U\+FFFD\), e\.g\. .*reviews\.csv/);
  assert.match(warnings[1]!, /skipped 1 empty text \(row 2\)/);
  assert.ok(ok.textVocab.some((t) => t.includes("\uFFFD")), "the replacement character reaches the tokens");
  // a missing label cell is refused by row, not made a class "null" (numbers as labels are fine)
  fs.writeFileSync(csv, 'text,label\n"good, quoted\nfilm",1\nbad film,0\nno label here,\n,\n');
  assert.throws(() => TextDataLoaders.fromCsv(csv, { validPct: 0, cacheDir: false }), /row 2 has an empty label \(column "label"\); fill or remove it/);
  fs.writeFileSync(csv, 'text,label\n"good, quoted\nfilm",1\nbad film,0\n');
  assert.deepEqual(TextDataLoaders.fromCsv(csv, { validPct: 0, cacheDir: false }).vocab, ["0", "1"]);
  // numbers as labels in numeric order, as fastai's CategoryMap (a string sort put "10" before "2")
  fs.writeFileSync(csv, "text,label\nfirst one,10\nsecond one,2\nthird one,1\n");
  assert.deepEqual(TextDataLoaders.fromCsv(csv, { validPct: 0, cacheDir: false }).vocab, ["1", "2", "10"]);
  // a validation column as Excel and R write it (TRUE/FALSE), or yes/no, splits the rows (it sent every row to training)
  for (const [yes, no] of [["TRUE", "FALSE"], ["yes", "no"], ["True", "False"], ["1", "0"]]) {
    fs.writeFileSync(csv, `text,label,is_valid\ngood film,pos,${no}\nbad film,neg,${no}\ngood one,pos,${yes}\n`);
    const split = TextDataLoaders.fromCsv(csv, { validCol: "is_valid", cacheDir: false, minFreq: 1 });
    assert.deepEqual([(split.train as SortedDL).n, (split.valid as SortedDL).n], [2, 1], `${yes}/${no}`);
  }
  // markers it does not know put every row on one side: an error naming the values, not a silent empty validation set
  fs.writeFileSync(csv, "text,label,is_valid\ngood film,pos,train\nbad film,neg,train\ngood one,pos,valid\n");
  assert.throws(() => TextDataLoaders.fromCsv(csv, { validCol: "is_valid", cacheDir: false, minFreq: 1 }), /validation column "is_valid" puts every row in training; its values are "train", "valid"\. Mark validation rows with true/);
  // a missing number in a numeric validation column is not "true"
  const nanRows = [{ text: "good film", label: "pos", v: 0 }, { text: "bad film", label: "neg", v: NaN }, { text: "good one", label: "pos", v: 1 }];
  const fromNan = TextDataLoaders.fromDf(frameFromRows(nanRows), { validCol: "v", cacheDir: false, minFreq: 1 });
  assert.deepEqual([(fromNan.train as SortedDL).n, (fromNan.valid as SortedDL).n], [2, 1]);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("custom tokenizer rules reach predict and the export by name: the same ids as training; an unknown name or an unnamed rule gets an error naming the fix", async () => {
  await ready();
  const { prepareTextInputs } = await import("../lib/text/data");
  const { defaultRules } = await import("../lib/text/rules");
  function digitsAsWord(t: string): string {
    return t.replace(/\d+/g, " number ");
  }
  const rows = Array.from({ length: 12 }, (_, i) => ({ text: `call me at ${100 + i} or number please`, label: i % 2 ? "a" : "b" }));
  const dls = TextDataLoaders.fromDf(frameFromRows(rows), { rules: [digitsAsWord, ...defaultRules], validPct: 0, cacheDir: false, minFreq: 1 });
  assert.deepEqual(dls.tokenizer.tokenize("ring 42"), ["xxbos", "ring", "number"]);
  const spec = JSON.parse(JSON.stringify(dls.inferenceSpec())) as ReturnType<typeof dls.inferenceSpec>; // as an export stores it
  assert.equal(spec.rules![0]!.name, "digitsAsWord");
  const ids = await prepareTextInputs(spec, ["call 555"]);
  const num = dls.numericalize;
  assert.deepEqual(Array.from(ids.dataSync()), Array.from(num.encode(["xxbos", "call", "number"])), "predict tokenizes with the training rules");
  assert.notEqual(num.encode(["number"])[0], num.encode(["xxunk"])[0]);
  ids.dispose();
  await assert.rejects(prepareTextInputs({ ...spec, rules: [{ name: "stripSignatures", source: "0" }, ...spec.rules!.slice(1)] }, ["hi"]), /tokenizer rule\(s\) "stripSignatures" that this process does not know; .*registerTextRule/);
  // another function registered under the model's rule name (another process, a same-named rule): refused, not used
  const { registerTextRule } = await import("../lib/text/rules");
  registerTextRule((t: string) => t, "digitsAsWord");
  await assert.rejects(prepareTextInputs(spec, ["call 555"]), /rule\(s\) "digitsAsWord" registered in this process are not the code this text model was trained with/);
  registerTextRule(digitsAsWord);
  assert.throws(() => registerTextRule((t: string) => t, "fixHtml"), /"fixHtml" is the name of one of tsfast's default rules/);
  // in the session, each data's predict uses its own functions, even two same-named rules from one factory
  const replacer = (word: string) => function swap(t: string): string {
    return t.replace(/\d+/g, ` ${word} `);
  };
  const dlsA = TextDataLoaders.fromDf(frameFromRows(rows), { rules: [replacer("please"), ...defaultRules], validPct: 0, cacheDir: false, minFreq: 1 });
  const dlsB = TextDataLoaders.fromDf(frameFromRows(rows), { rules: [replacer("call"), ...defaultRules], validPct: 0, cacheDir: false, minFreq: 1 });
  const [a, b] = [await prepareTextInputs(dlsA.inferenceSpec(), ["7"]), await prepareTextInputs(dlsB.inferenceSpec(), ["7"])];
  assert.deepEqual(Array.from(a.dataSync()), Array.from(dlsA.numericalize.encode(["xxbos", "please"])));
  assert.deepEqual(Array.from(b.dataSync()), Array.from(dlsB.numericalize.encode(["xxbos", "call"])));
  tf.dispose([a, b]);
  assert.throws(
    () => TextDataLoaders.fromDf(frameFromRows(rows), { rules: [(t: string) => t.trim()], validPct: 0, cacheDir: false }),
    /this rule has no name; write it as a named function/,
  );
});

test("TextDataLoaders.fromFolder with isLm splits documents that sit directly in train/ and valid/ (no class folders), and nested ones too", async () => {
  await ready();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "text-lm-folder-"));
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  };
  write("train/a.txt", "one two three");
  write("train/more/b.txt", "four five");
  write("valid/c.txt", "six");
  const dls = TextDataLoaders.fromFolder(dir, { isLm: true, bs: 1, seqLen: 4, cacheDir: false, minFreq: 1 });
  // xxbos + 3 and xxbos + 2 tokens train, xxbos + 1 validates
  assert.equal((dls.train as LMDataLoader).totalTokens, 7);
  assert.equal((dls.valid as LMDataLoader).totalTokens, 2);
  assert.ok(dls.textVocab.includes("five") && !dls.textVocab.includes("six"), "the vocabulary comes from train/ only");
  // a classifier still needs class folders
  assert.throws(() => TextDataLoaders.fromFolder(dir, { cacheDir: false }), /no validation texts/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("TextDataLoaders.fromFolder with validPct and no train/valid folders splits every .txt file under the folder at random, as fastai's from_folder", async () => {
  await ready();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "text-plain-"));
  for (let i = 0; i < 10; i++) {
    fs.mkdirSync(path.join(dir, "pos"), { recursive: true });
    fs.mkdirSync(path.join(dir, "neg"), { recursive: true });
    fs.writeFileSync(path.join(dir, "pos", `${i}.txt`), `good film ${i}`);
    fs.writeFileSync(path.join(dir, "neg", `${i}.txt`), `bad film ${i}`);
  }
  const lm = TextDataLoaders.fromFolder(dir, { isLm: true, validPct: 0.2, bs: 1, seqLen: 2, cacheDir: false, minFreq: 1 });
  // 20 texts of xxbos + 3 tokens: 16 train, 4 validate
  assert.equal((lm.train as LMDataLoader).totalTokens + (lm.valid as LMDataLoader).totalTokens, 80);
  assert.equal((lm.valid as LMDataLoader).totalTokens, 16);
  const clas = TextDataLoaders.fromFolder(dir, { validPct: 0.2, bs: 4, cacheDir: false, minFreq: 1 });
  assert.deepEqual(clas.vocab, ["neg", "pos"], "labels are the parent folders");
  assert.equal((clas.train as SortedDL).n + (clas.valid as SortedDL).n, 20);
  // without validPct the error says how to split such a folder
  assert.throws(() => TextDataLoaders.fromFolder(dir, { isLm: true, cacheDir: false }), /no \.txt files under .*train.*give validPct/);
  // with train/ there too, validPct still reads every .txt file (fastai's IMDB language model: train/, test/, unsup/)
  fs.mkdirSync(path.join(dir, "train", "pos"), { recursive: true });
  fs.writeFileSync(path.join(dir, "train", "pos", "a.txt"), "great film");
  fs.writeFileSync(path.join(dir, "train", "pos", "b.txt"), "fine film");
  const all = TextDataLoaders.fromFolder(dir, { isLm: true, validPct: 0.2, bs: 1, seqLen: 2, cacheDir: false, minFreq: 1 });
  assert.equal((all.train as LMDataLoader).totalTokens + (all.valid as LMDataLoader).totalTokens, 86, "20 texts of 4 tokens and 2 of 3");
  // folders narrows it as without validPct
  const only = TextDataLoaders.fromFolder(dir, { isLm: true, validPct: 0.5, folders: ["train"], bs: 1, seqLen: 1, cacheDir: false, minFreq: 1 });
  assert.equal((only.train as LMDataLoader).totalTokens + (only.valid as LMDataLoader).totalTokens, 6);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir);
  assert.throws(() => TextDataLoaders.fromFolder(dir, { isLm: true, validPct: 0.2, cacheDir: false }), /no \.txt files under [^ ]*text-plain-\w+ \(/);
  fs.rmSync(dir, { recursive: true, force: true });
});
