process.env.TSFAST_BACKEND = process.env.TSFAST_BACKEND ?? "cpu";
import { test } from "node:test";
import { RNNRegularizer } from "../lib/models/rnn";
import { MixUp } from "../lib/learner/mixup";
import { GradientAccumulation } from "../lib/learner/grad-accum";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import "../lib/wiring";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { TextDataLoaders, prepareTextInputs } from "../lib/text/data";
import { AWD_LSTM, languageModelLearner, matchEmbeds, textClassifierLearner } from "../lib/models/text";
import { accuracy, perplexity } from "../lib/learner/metrics";
import { loadLearner } from "../lib/learner/export";
import { decodeSpecTokens } from "../lib/text/rules";
import { serve } from "../lib/serve/server";
import { main } from "../lib/cli";
import { isTrained } from "../lib/learner/params";
import type { SafeTensor } from "../lib/models/safetensors";

const small = { embSz: 8, nHid: 12, nLayers: 3 };

function corpus(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "text-learn-"));
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  };
  for (let i = 0; i < 12; i++) {
    write(`train/pos/${i}.txt`, `a good film , truly good and great . ${"I loved it . ".repeat(1 + (i % 3))}`);
    write(`train/neg/${i}.txt`, `a bad film , truly bad and awful . ${"I hated it . ".repeat(1 + (i % 4))}`);
  }
  for (let i = 0; i < 3; i++) {
    write(`valid/pos/${i}.txt`, `good and great . I loved it .`);
    write(`valid/neg/${i}.txt`, `bad and awful . I hated it .`);
  }
  return dir;
}

test("perplexity is exp of the mean cross-entropy over every position (worked by hand)", async () => {
  await ready();
  // two positions, two classes: logits (0, 0) → p = 1/2; logits (ln 3, 0) with target 0 → p = 3/4
  const pred = tf.tensor3d([[[0, 0], [Math.log(3), 0]]]);
  const targ = tf.tensor2d([[1, 0]], undefined, "int32");
  const expected = Math.exp(-(Math.log(1 / 2) + Math.log(3 / 4)) / 2);
  assert.ok(Math.abs(perplexity.compute(pred, targ) - expected) < 1e-5);
});

test("decodeSpecTokens undoes xxmaj, xxup, xxrep and xxwrep as fastai's decode_spec_tokens", () => {
  assert.deepEqual(decodeSpecTokens(["xxmaj", "hello", "xxup", "big", "xxrep", "3", "!", "xxwrep", "2", "so", "end"]), ["Hello", "BIG", "!!!", "so", "so", "end"]);
});

test("matchEmbeds re-orders the embedding to a new vocabulary; words it lacks get the mean row and mean bias (fastai's match_embeds)", () => {
  const w: SafeTensor = { dtype: "F32", shape: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
  const b: SafeTensor = { dtype: "F32", shape: [3], data: Float32Array.from([1, 2, 6]) };
  const out = matchEmbeds(new Map([["0.encoder.weight", w], ["1.decoder.bias", b]]), ["a", "b", "c"], ["c", "new", "a"]);
  assert.deepEqual(Array.from(out.get("0.encoder.weight")!.data), [5, 6, 3, 4, 1, 2]);
  assert.deepEqual(Array.from(out.get("1.decoder.bias")!.data), [6, 3, 1]);
  assert.equal(out.get("1.decoder.weight"), out.get("0.encoder.weight"), "the decoder is tied");
});

test("languageModelLearner trains (accuracy, perplexity), writes text with predict, saves its encoder; textClassifierLearner loads it, unfreezes gradually, predicts, exports and loads", async () => {
  await ready();
  const dir = corpus();
  const cacheDir = path.join(dir, "tokcache");
  const dlsLm = TextDataLoaders.fromFolder(dir, { isLm: true, bs: 4, seqLen: 8, cacheDir, minFreq: 1 });
  const lmLearn = await languageModelLearner(dlsLm, AWD_LSTM, { config: small, dropMult: 0.3, metrics: [accuracy, perplexity], progress: false });
  assert.equal(lmLearn.layerGroups().length, 4, "three LSTMs, then embedding + decoder");
  await lmLearn.fitOneCycle(1, { lrMax: 1e-2 });
  const before = tf.memory().numTensors;
  await lmLearn.fitOneCycle(1, { lrMax: 1e-2 });
  assert.ok(tf.memory().numTensors - before <= 2, `tensors grow over a fit: ${before} → ${tf.memory().numTensors}`);
  const [acc, ppl] = lmLearn.metricValues!;
  assert.ok(acc! > 0 && acc! <= 1 && Number.isFinite(ppl) && ppl! > 1, `accuracy ${acc}, perplexity ${ppl}`);
  assert.ok(Math.abs(Math.log(ppl!) - lmLearn.validLoss!) < 0.05, "perplexity ≈ exp(validation loss)");

  const gen = await lmLearn.predict("I loved", { nWords: 6, seed: 1 });
  assert.equal(gen.added.length, 6);
  assert.ok(gen.text.startsWith("i loved "), gen.text); // fastai lowercases a lone capital without a marker
  assert.ok(!gen.added.includes("xxunk"), "noUnk");
  assert.deepEqual((await lmLearn.predict("I loved", { nWords: 6, seed: 1 })).added, gen.added, "seeded sampling");
  const encFile = await lmLearn.saveEncoder("finetuned");
  assert.ok(fs.existsSync(encFile) && encFile.endsWith(path.join("models", "finetuned.safetensors")));

  // a saved language model starts another one (pretrained): same weights for the shared tokens, frozen to the last group
  const lmFile = await lmLearn.saveLanguageModel("lm-full");
  const dlsSmaller = TextDataLoaders.fromFolder(dir, { isLm: true, bs: 2, seqLen: 4, cacheDir, minFreq: 1, folders: ["valid"], validPct: 0.3 });
  const again = await languageModelLearner(dlsSmaller, AWD_LSTM, { config: small, pretrained: lmFile, progress: false });
  const rowOf = (l: typeof lmLearn, tok: string) => {
    const i = l.dls.textVocab.indexOf(tok);
    return Array.from(l.lm.encoder.encoder.read().dataSync().slice(i * small.embSz, (i + 1) * small.embSz));
  };
  const shared = dlsSmaller.textVocab.find((t) => t !== "xxfake" && dlsLm.textVocab.indexOf(t) !== dlsSmaller.textVocab.indexOf(t))!;
  assert.ok(shared, "a token at another id in the smaller vocabulary");
  assert.deepEqual(rowOf(again, shared), rowOf(lmLearn, shared), `"${shared}" keeps its embedding at its new id`);
  assert.deepEqual(again.paramGroups().map((g) => g.some(isTrained)), [false, false, false, true], "frozen to the last group, as fastai");
  // the file records its sizes: without a config the model takes them; a config that contradicts them is refused
  const sized = await languageModelLearner(dlsSmaller, AWD_LSTM, { pretrained: lmFile, progress: false });
  // AR/TAR: the built-in RNNRegularizer, or the user's in its place, never both; after MixUp (0), before GradientAccumulation (6)
  const regs = (l: { cbs: object[] }) => l.cbs.filter((c) => c instanceof RNNRegularizer) as RNNRegularizer[];
  assert.deepEqual(regs(sized).map((r) => [r.alpha, r.beta]), [[2, 1]]);
  const own = await languageModelLearner(dlsSmaller, AWD_LSTM, { pretrained: lmFile, progress: false, cbs: [new RNNRegularizer({ alpha: 0.5, beta: 0 })] });
  assert.deepEqual(regs(own).map((r) => [r.alpha, r.beta]), [[0.5, 0]]);
  assert.ok(((new MixUp() as { order?: number }).order ?? 0) < regs(own)[0]!.order && regs(own)[0]!.order < new GradientAccumulation().order);
  own.dispose();
  assert.deepEqual([sized.lm.encoder.opts.embSz, sized.lm.encoder.opts.nHid, sized.lm.encoder.opts.nLayers], [small.embSz, small.nHid, small.nLayers]);
  await assert.rejects(
    languageModelLearner(dlsSmaller, AWD_LSTM, { pretrained: lmFile, config: { ...small, nHid: 13 } }),
    /lm-full\.safetensors is an AWD-LSTM with \{ nHid: 12 \}, but config asks for \{ nHid: 13 \}; drop those sizes from config/,
  );
  await assert.rejects(languageModelLearner(dlsSmaller, AWD_LSTM, { pretrained: path.join(dir, "nowhere.safetensors") }), /pretrained file .*nowhere\.safetensors does not exist/);

  // the LM export predicts the next token; loadLearner gives the same distribution
  await lmLearn.export("lm-export");
  const lmLoaded = await loadLearner(path.join(dir, "lm-export"));
  const nextA = await lmLoaded.predict("I loved");
  assert.equal(nextA.probs.length, dlsLm.textVocab.length);
  assert.ok(Math.abs(nextA.probs.reduce((a, b) => a + b, 0) - 1) < 1e-4);
  assert.equal(nextA.label, dlsLm.textVocab[nextA.index], "the most likely next token");
  // no state carried from one prediction (or validation) to the next, as fastai resets before each
  assert.deepEqual((await lmLoaded.predict("I loved")).probs, nextA.probs, "the same text, the same answer, whatever ran before");
  const [v1, v2] = [await lmLearn.validate(), await lmLearn.validate()];
  assert.deepEqual(v1, v2, "validate twice, the same loss");
  // a batch of texts of different lengths: each row's next token as if predicted alone (the padding goes in front)
  const longer = await lmLoaded.predict("I loved this film so much");
  const both = await lmLoaded.predictBatch(["I loved", "I loved this film so much"]);
  assert.equal(both[1]!.index, longer.index);
  assert.ok(both[1]!.probs.every((p, i) => Math.abs(p - longer.probs[i]!) < 1e-5), "the longest text is not padded");
  // the shorter row is padded in front, so the model reads its last word last (pad_input_chunk's remainder would trail it)
  const ids = await prepareTextInputs(dlsLm.inferenceSpec(), ["I loved", "I loved this film so much"]);
  const rows = (await ids.array()) as number[][];
  ids.dispose();
  const alone = await prepareTextInputs(dlsLm.inferenceSpec(), ["I loved"]);
  const short = Array.from(await alone.data());
  alone.dispose();
  assert.deepEqual(rows[0]!.slice(rows[0]!.length - short.length), short, "the short text ends the row");
  assert.ok(rows[0]!.slice(0, rows[0]!.length - short.length).every((t) => t === 1), "xxpad (id 1) before it");
  // near temperature 0 sampling is the argmax, whatever the seed: the exported model's most likely next token
  const lm0 = lmLearn.lm.encoder.encoder.read().dataSync()[0];
  for (const seed of [1, 2, 3]) assert.deepEqual((await lmLearn.predict("I loved", { nWords: 1, seed, temperature: 1e-3 })).added, [nextA.label], `seed ${seed}`);
  assert.equal(lmLearn.lm.encoder.encoder.read().dataSync()[0], lm0);
  // temperature 0 is that limit (it divided by zero and sampled a NaN weight); a negative one or nWords -1 is an error
  assert.deepEqual((await lmLearn.predict("I loved", { nWords: 1, seed: 1, temperature: 0 })).added, [nextA.label]);
  await assert.rejects(lmLearn.predict("I loved", { temperature: -1 }), /temperature must be 0 .* or more, got -1/);
  await assert.rejects(lmLearn.predict("I loved", { nWords: -1 }), /nWords must be a whole number, 0 or more, got -1/);

  // the classifier over the LM's vocabulary
  const dlsClas = TextDataLoaders.fromFolder(dir, { bs: 4, seqLen: 8, cacheDir, textVocab: dlsLm.vocab });
  const learn = await textClassifierLearner(dlsClas, AWD_LSTM, { config: small, metrics: accuracy, progress: false });
  await learn.loadEncoder("finetuned");
  const e1 = learn.encoder.encoder.encoder.read().dataSync();
  const e0 = lmLearn.lm.encoder.encoder.read().dataSync();
  assert.deepEqual(Array.from(e1), Array.from(e0), "the encoder's embedding is the LM's");
  const groups = learn.paramGroups();
  assert.equal(groups.length, 5, "embedding, three LSTMs, head");
  const trained = () => groups.map((g) => g.some(isTrained));
  learn.freeze();
  assert.deepEqual(trained(), [false, false, false, false, true]);
  learn.freezeTo(-2);
  assert.deepEqual(trained(), [false, false, false, true, true]);
  assert.match(learn.summary(), /Group 2: [\d,]+ params, frozen\nGroup 3: [\d,]+ params, trainable\nGroup 4: [\d,]+ params, trainable\n/);
  learn.freezeTo(-3);
  assert.deepEqual(trained(), [false, false, true, true, true]);
  const rnn2 = learn.encoder.encoder.rnns[2]!.layers[0]!.wHh.read().dataSync().slice();
  const emb = learn.encoder.encoder.encoder.read().dataSync().slice();
  await learn.fitOneCycle(1, { lrMax: 1e-2 });
  assert.notDeepEqual(Array.from(learn.encoder.encoder.rnns[2]!.layers[0]!.wHh.read().dataSync()), Array.from(rnn2), "an unfrozen LSTM trains");
  assert.deepEqual(Array.from(learn.encoder.encoder.encoder.read().dataSync()), Array.from(emb), "the frozen embedding does not");
  learn.unfreeze();
  await learn.fitOneCycle(1, { lrMax: 1e-2 });
  const clasBefore = tf.memory().numTensors;
  await learn.fitOneCycle(1, { lrMax: 1e-2 });
  assert.ok(tf.memory().numTensors - clasBefore <= 2, `tensors grow over a classifier fit: ${clasBefore} → ${tf.memory().numTensors}`);

  const p = await learn.predict("good and great . I loved it .");
  assert.ok(dlsClas.vocab.includes(p.label) && p.index === dlsClas.vocab.indexOf(p.label));
  assert.ok(Math.abs(p.probs.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  await assert.rejects(learn.predict(""), /the text is empty/);
  await assert.rejects(learn.predict("   \n"), /the text is empty/);
  await learn.export("clas-export");
  const loaded = await loadLearner(path.join(dir, "clas-export"));
  const q = await loaded.predict("good and great . I loved it .");
  assert.equal(q.label, p.label);
  assert.ok(Math.max(...q.probs.map((v, i) => Math.abs(v - p.probs[i]!))) < 1e-6, "same probabilities after loadLearner");
  await assert.rejects(loaded.predict(""), /the text is empty/);

  // tsfast serve: a JSON { "text": ... } body in, the same prediction out; no text field is a 400, an empty text a 422
  const h = await serve(path.join(dir, "clas-export"), { port: 0 });
  try {
    const post = async (body: string, type = "application/json") => {
      const res = await fetch(`${h.url}predict`, { method: "POST", headers: { "Content-Type": type }, body });
      return { status: res.status, json: (await res.json()) as { label?: string; probs?: number[]; error?: string; code?: string } };
    };
    const got = await post(JSON.stringify({ text: "good and great . I loved it ." }));
    assert.equal(got.status, 200, JSON.stringify(got.json));
    assert.equal(got.json.label, p.label);
    got.json.probs!.forEach((v, i) => assert.ok(Math.abs(v - p.probs[i]!) < 1e-6));
    const noText = await post(JSON.stringify({ review: "good" }));
    assert.equal(noText.status, 400);
    assert.match(noText.json.error!, /send \{"text": "..."\} \(the body has fields "review"\)/);
    const empty = await post(JSON.stringify({ text: " " }));
    assert.equal(empty.status, 422);
    assert.match(empty.json.error!, /the text is empty/);
    // a body the text model cannot take says how to send text (these said to send a tabular row or an image)
    const sendText = /send the text as JSON \{"text": "..."\} with Content-Type application\/json/;
    for (const [body, type, status] of [["{not json", "application/json", 400], ["", "application/json", 400], ["good film", "text/plain", 415], ["good film", "application/octet-stream", 415]] as const) {
      const bad = await post(body, type);
      assert.equal(bad.status, status, `${type} ${body}`);
      assert.match(bad.json.error!, sendText, `${type} ${body}`);
    }
    const aString = await post(JSON.stringify("good film"));
    assert.equal(aString.status, 400);
    assert.match(aString.json.error!, /send \{"text": "..."\} \(the body is a string\)/);
  } finally {
    await h.close();
  }
  // serve(learn), the learner in memory, takes the same JSON body (it handed the object to predict: a 422)
  const inMemory = await serve(learn, { port: 0 });
  try {
    const res = await fetch(`${inMemory.url}predict`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: "good and great . I loved it ." }) });
    const json = (await res.json()) as { label?: string; error?: string };
    assert.equal(res.status, 200, json.error);
    assert.equal(json.label, (await learn.predict("good and great . I loved it .")).label);
    // broken weights are the server's fault, not the text's: a 500 that says why (it used to be a 422 "bad_text")
    const w = learn.model.trainableWeights.at(-1)!;
    const kept = w.read().clone();
    w.write(tf.fill(w.shape as number[], NaN));
    try {
      const broken = await fetch(`${inMemory.url}predict`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: "good film" }) });
      const bj = (await broken.json()) as { error?: string; code?: string };
      assert.equal(broken.status, 500, JSON.stringify(bj));
      assert.equal(bj.code, "predict_failed");
      assert.match(bj.error!, /the model output NaN or infinite values/);
    } finally {
      w.write(kept);
      kept.dispose();
    }
  } finally {
    await inMemory.close();
  }

  // tsfast predict <export> review.txt: each file's text classified
  fs.writeFileSync(path.join(dir, "review.txt"), "good and great . I loved it .");
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(["predict", path.join(dir, "clas-export"), path.join(dir, "review.txt")], { out: (t) => stdout.push(t), err: (t) => stderr.push(t) });
  assert.equal(code, 0, stderr.join("\n"));
  assert.deepEqual(stdout, [`${path.join(dir, "review.txt")}\t${p.label}\t${p.probs[p.index]!.toFixed(4)}`]);
  assert.equal(stderr.length, 0, stderr.join("\n"));
  // a Latin-1 file is still classified, and the replaced bytes are said on stderr
  fs.writeFileSync(path.join(dir, "latin1.txt"), Buffer.concat([Buffer.from("good caf"), Buffer.from([0xe9]), Buffer.from(" and great")]));
  assert.equal(await main(["predict", path.join(dir, "clas-export"), path.join(dir, "latin1.txt")], { out: (t) => stdout.push(t), err: (t) => stderr.push(t) }), 0);
  assert.equal(stdout.length, 2);
  assert.deepEqual(stderr, [`tsfast: ${path.join(dir, "latin1.txt")}: 1 byte sequence not UTF-8, replaced with U+FFFD (convert the file to UTF-8 to keep those characters)`]);

  // an encoder of another vocabulary is refused, naming the fix
  const other = TextDataLoaders.fromFolder(dir, { bs: 4, seqLen: 8, cacheDir, minFreq: 1, maxVocab: 16 });
  const wrong = await textClassifierLearner(other, AWD_LSTM, { config: small, progress: false });
  await assert.rejects(wrong.loadEncoder(encFile), /another vocabulary .* textVocab: dlsLm\.vocab/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a language model whose vocabulary is padded with several xxfake exports and loads (fastai's make_vocab pads to a multiple of 8)", async () => {
  await ready();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "text-lm-fake-"));
  for (const [rel, text] of Object.entries({ "train/a.txt": "one two three", "train/b.txt": "three two one", "valid/c.txt": "one two" })) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  const dls = TextDataLoaders.fromFolder(dir, { isLm: true, bs: 1, seqLen: 2, cacheDir: false, minFreq: 1 });
  assert.ok(dls.vocab.filter((t) => t === "xxfake").length > 1, "the 12 tokens are padded with 4 xxfake");
  const learn = await languageModelLearner(dls, AWD_LSTM, { config: small, progress: false });
  await learn.export("lm-export");
  const loaded = await loadLearner(path.join(dir, "lm-export"));
  const next = await loaded.predict("one two");
  assert.equal(next.probs.length, dls.vocab.length);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("loadEncoder takes the encoder of a language model in another folder by its absolute path, with or without .safetensors (fastai's join_path_file)", async () => {
  await ready();
  const dir = corpus();
  const lmDir = fs.mkdtempSync(path.join(os.tmpdir(), "text-lm-elsewhere-"));
  const dlsLm = TextDataLoaders.fromFolder(dir, { isLm: true, bs: 4, seqLen: 8, cacheDir: false, minFreq: 1, path: lmDir });
  const lm = await languageModelLearner(dlsLm, AWD_LSTM, { config: small, progress: false });
  const file = await lm.saveEncoder("ft");
  assert.equal(file, path.join(lmDir, "models", "ft.safetensors"));
  const dlsClas = TextDataLoaders.fromFolder(dir, { bs: 4, seqLen: 8, cacheDir: false, textVocab: dlsLm.vocab });
  const clas = await textClassifierLearner(dlsClas, AWD_LSTM, { config: small, progress: false });
  await assert.rejects(clas.loadEncoder("ft"), /no encoder at .*ft\.safetensors; .* or pass the file it wrote/);
  await clas.loadEncoder(file);
  await clas.loadEncoder(path.join(lmDir, "models", "ft"));
  assert.deepEqual(clas.encoder.encoder.encoder.read().dataSync(), lm.lm.encoder.encoder.read().dataSync());
  // saveEncoder to an absolute path, with the extension given: written once as named (not .safetensors.safetensors)
  const abs = path.join(lmDir, "enc.safetensors");
  assert.equal(await lm.saveEncoder(abs), abs);
  assert.ok(fs.existsSync(abs));
  await clas.loadEncoder(abs);
  // a folder of the encoder's name is not taken for the file
  fs.mkdirSync(path.join(lmDir, "folder.safetensors"));
  await assert.rejects(clas.loadEncoder(path.join(lmDir, "folder.safetensors")), /no encoder at .*folder\.safetensors/);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(lmDir, { recursive: true, force: true });
});

test("the language model and the text classifier train on wasm: RNNRegularizer's activations stay alive after the model's call (the classifier's step threw there)", async () => {
  await ready();
  const { initWasm } = await import("../lib/engine/wasm");
  const previous = tf.getBackend();
  const dir = corpus();
  try {
    await initWasm();
    const dlsLm = TextDataLoaders.fromFolder(dir, { isLm: true, bs: 4, seqLen: 8, cacheDir: false, minFreq: 1 });
    const lm = await languageModelLearner(dlsLm, AWD_LSTM, { config: small, metrics: accuracy, progress: false });
    await lm.fit(1, 1e-3);
    const dlsClas = TextDataLoaders.fromFolder(dir, { bs: 4, seqLen: 8, cacheDir: false, textVocab: dlsLm.vocab });
    const clas = await textClassifierLearner(dlsClas, AWD_LSTM, { config: small, metrics: accuracy, progress: false });
    const w0 = Array.from(clas.encoder.encoder.encoder.read().dataSync());
    await clas.fit(1, 1e-3);
    assert.equal(tf.getBackend(), "wasm");
    for (const l of [lm, clas]) assert.ok(Number.isFinite(l.lossValue!) && l.metricValues!.every(Number.isFinite));
    assert.notDeepEqual(Array.from(clas.encoder.encoder.encoder.read().dataSync()), w0, "the encoder trained");
  } finally {
    await tf.setBackend(previous);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
