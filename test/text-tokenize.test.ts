import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  fixHtml,
  lowercase,
  replaceAllCaps,
  replaceMaj,
  replaceRep,
  replaceSpace,
  replaceWrep,
  rmUselessSpaces,
  specAddSpaces,
  specialTokens,
} from "../lib/text/rules";
import { Numericalize, Tokenizer, countTokens, makeVocab, splitWords } from "../lib/text/tokenize";

// Expected strings are fastai's own examples (fastai/text/core.py's tests) or worked by hand; the same
// inputs through a Python copy of fastai's rule functions gave the same outputs.

test("specAddSpaces puts spaces around /, # and \\; rmUselessSpaces collapses runs of spaces", () => {
  assert.equal(specAddSpaces("#fastai"), " # fastai");
  assert.equal(specAddSpaces("/fastai"), " / fastai");
  assert.equal(specAddSpaces("\\fastai"), " \\ fastai");
  assert.equal(rmUselessSpaces("a  b   c"), "a b c");
  assert.equal(rmUselessSpaces("a\n\nb"), "a\n\nb", "only spaces are collapsed");
});

test("replaceRep marks 3 or more repeated characters with xxrep and the count", () => {
  assert.equal(replaceRep("aa"), "aa");
  assert.equal(replaceRep("aaaa"), " xxrep 4 a ");
  assert.equal(replaceRep("happyyyyy!!!"), "happ xxrep 5 y  xxrep 3 ! ");
  assert.equal(replaceRep("héééé"), "h xxrep 4 é ");
  assert.equal(replaceRep("😀😀😀!"), " xxrep 3 😀 !", "an emoji counts as one character");
});

test("replaceWrep marks 3 or more repeated words with xxwrep and the count", () => {
  assert.equal(replaceWrep("ah ah"), "ah ah");
  assert.equal(replaceWrep("ah ah ah"), " xxwrep 3 ah ");
  assert.equal(replaceWrep("ah ah ah ah"), " xxwrep 4 ah ");
  assert.equal(replaceWrep(" ah ah ah ah "), " xxwrep 4 ah  ");
  assert.equal(replaceWrep("ah ah ah."), " xxwrep 3 ah .");
  assert.equal(replaceWrep("ah ah ahi"), "ah ah ahi", "a longer last word is not a repetition");
  assert.equal(replaceWrep("Ünïcode Ünïcode Ünïcode wörd"), " xxwrep 3 Ünïcode  wörd", "words are Unicode words, as Python's \\w");
});

test("fixHtml repairs web text and decodes HTML entities", () => {
  assert.equal(fixHtml("#39;bli#146;"), "'bli'");
  assert.equal(fixHtml("Sarah amp; Duck..."), "Sarah & Duck …");
  assert.equal(fixHtml("a nbsp; #36;"), "a   $");
  assert.equal(fixHtml('\\" <unk>'), '" xxunk');
  assert.equal(fixHtml("quot;  @.@  @-@ "), "' .-");
  assert.equal(fixHtml("<br />text\\nfoo"), "\ntext\nfoo");
  assert.equal(fixHtml("&eacute;t&#233; &#x27;x&#39;"), "été 'x&'", "#39; is replaced before entities are decoded, as in fastai");
  assert.equal(fixHtml("&notanentity;"), "&notanentity;");
});

test("replaceAllCaps lower-cases words in capitals and puts xxup before those of 2+ letters", () => {
  assert.equal(replaceAllCaps("I'M SHOUTING"), "xxup i'm xxup shouting");
  assert.equal(replaceAllCaps("I'm speaking normally"), "I'm speaking normally");
  assert.equal(replaceAllCaps("I am speaking normally"), "i am speaking normally");
  assert.equal(replaceAllCaps("so COOL."), "so xxup cool.");
});

test("replaceMaj lower-cases capitalised words and puts xxmaj before those of 2+ letters", () => {
  assert.equal(replaceMaj("Jeremy Howard"), "xxmaj jeremy xxmaj howard");
  assert.equal(replaceMaj("I don't think there is any maj here"), "i don't think there is any maj here");
  assert.equal(replaceMaj("McDonald Don't"), "McDonald xxmaj don't", "a second capital inside the word stops it");
});

test("lowercase starts the text with xxbos (xxeos on request); replaceSpace turns inner spaces into ▁", () => {
  assert.equal(lowercase("  Hello World "), "xxbos hello world");
  assert.equal(lowercase("Hi", { addBos: false, addEos: true }), "hi xxeos");
  assert.equal(replaceSpace("a b c"), "a▁b▁c");
});

test("Tokenizer runs fastai's rules in order, then splits words as spaCy does (contractions, punctuation, newlines)", () => {
  const tok = new Tokenizer({ cacheDir: false });
  assert.deepEqual(
    tok.tokenize("This is a TEST!!! Don't   go, it's <br />sooooo COOL."),
    "xxbos xxmaj this is a xxup test xxrep 3 ! xxmaj do n't go , it 's \n s xxrep 5 o xxup cool .".split(" "),
  );
  assert.deepEqual(
    tok.tokenize("ah ah ah. See http://fast.ai/x now"),
    "xxbos xxwrep 3 ah . xxmaj see http : / / fast . ai / x now".split(" "),
    "spec_add_spaces runs before the words are split, so a URL is cut at its slashes (as in fastai); wink also cuts fast.ai, where spaCy would not",
  );
  assert.deepEqual(splitWords("a\n\n b"), ["a", "\n\n", "b"]);
  assert.deepEqual(tok.tokenize(""), ["xxbos"]);
});

test("Tokenizer caches a corpus's tokens on disk; a changed text or rule is tokenized again", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-tok-"));
  try {
    const texts = ["Hello World", "Good MORNING!!!"];
    const a = new Tokenizer({ cacheDir: dir });
    const first = a.tokenizeTexts(texts);
    assert.equal(a.lastFromCache, false);
    assert.deepEqual(first, [["xxbos", "xxmaj", "hello", "xxmaj", "world"], ["xxbos", "xxmaj", "good", "xxup", "morning", "xxrep", "3", "!"]]);
    const file = a.lastCacheFile!;
    assert.ok(fs.existsSync(file));
    // Prove the second call reads the file: plant a marker in it.
    const cached = JSON.parse(fs.readFileSync(file, "utf8"));
    cached.tokens[0] = ["from-cache"];
    fs.writeFileSync(file, JSON.stringify(cached));
    const b = new Tokenizer({ cacheDir: dir });
    assert.deepEqual(b.tokenizeTexts(texts)[0], ["from-cache"]);
    assert.equal(b.lastFromCache, true);
    b.tokenizeTexts(["Hello World", "Good morning"]);
    assert.equal(b.lastFromCache, false, "another corpus");
    const c = new Tokenizer({ cacheDir: dir, rules: [(t: string) => t.toUpperCase()] });
    assert.deepEqual(c.tokenizeTexts(texts)[0], ["HELLO", "WORLD"]);
    assert.equal(c.lastFromCache, false, "other rules");
    fs.writeFileSync(file, "{trunc");
    assert.deepEqual(new Tokenizer({ cacheDir: dir }).tokenizeTexts(texts), first, "a broken cache file is rewritten");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("makeVocab: most common first (ties by first appearance), min_freq, special tokens first, padded to a multiple of 8", () => {
  const docs = [["a", "b", "a", "c", "a", "b"], ["b", "d", "a", "xxbos"], ["c", "c", "b"]];
  assert.deepEqual([...countTokens(docs)], [["a", 4], ["b", 4], ["c", 3], ["d", 1], ["xxbos", 1]]);
  const v = makeVocab(countTokens(docs));
  assert.deepEqual(v, [...specialTokens, "a", "b", "c", "xxfake", "xxfake", "xxfake", "xxfake"]);
  // max_vocab cuts after the special tokens are in: 9 specials + a, b = 11, then 5 fakes to reach 16.
  const cut = makeVocab(countTokens(docs), { minFreq: 1, maxVocab: 11 });
  assert.deepEqual(cut, [...specialTokens, "a", "b", ...Array(5).fill("xxfake")]);
  // fastai's rounding adds 8 - len % 8: a vocabulary already a multiple of 8 still gets 8 fakes.
  const seven = ["e1", "e2", "e3", "e4", "e5", "e6", "e7"];
  const v16 = makeVocab(countTokens([[...seven, ...seven, ...seven]]));
  assert.equal(v16.length, 24);
  assert.deepEqual(v16.slice(9, 16), seven);
});

test("Numericalize encodes unknown tokens as 0 (xxunk) and decodes ids back; an id past the vocab is an error", () => {
  const num = Numericalize.fromTokens([["a", "b", "a", "c", "a", "b"], ["b", "d", "a"], ["c", "c", "b"]]);
  assert.equal(num.vocab.length, 16);
  assert.deepEqual([...num.encode(["a", "zzz", "c", "xxpad", "xxfake"])], [9, 0, 11, 1, 0]);
  assert.deepEqual(num.decode([9, 11, 2]), ["a", "c", "xxbos"]);
  assert.throws(() => num.decode([99]), /id 99 is outside the vocabulary \(0\.\.15\)/);
  assert.throws(() => new Numericalize([]), /non-empty vocab/);
});
