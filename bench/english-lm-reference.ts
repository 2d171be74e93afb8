/**
 * PyTorch's numbers for a shipped language model (the English one, or with `--name` the e-mail one), stored as a test fixture so the test needs no Python:
 * the first `N` tokens of a document the model never trained on (the first held-out document that
 * `checkpoints/english-awd-lstm-small.results.json` lists) go through `bench/awd_lstm_torch.py` (fastai's AWD-LSTM
 * ported to PyTorch) with the checkpoint's weights, dropout off. Kept: the token ids, the mean cross-entropy of
 * next-token prediction over every position (all logits take part), and the logits of a fixed set of vocabulary
 * columns at every position (the whole table would be megabytes).
 *
 *   node dist/bench/english-lm-reference.js      # writes test/fixtures/models/english-awd-lstm-small.torch.json
 *   node dist/bench/english-lm-reference.js --name email-awd-lstm-small
 *
 * Re-run it whenever the checkpoint changes (the fixture records the checkpoint's sha256; the test checks it).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { englishCorpus } from "../lib/data/datasets/english";
import { emailCorpus } from "../lib/data/datasets/spam";
import { readSafetensors } from "../lib/models/safetensors";
import { SHIPPED_LM, shippedCheckpoint } from "../lib/models/pretrained";
import { Numericalize, Tokenizer } from "../lib/text/tokenize";

const ROOT = path.resolve(__dirname, "..", "..");
const N = 48; // tokens of held-out text (47 predictions)
const COLUMNS = 24; // vocabulary columns kept per position

async function main(): Promise<void> {
  const a = process.argv.slice(2);
  const name = a.includes("--name") ? a[a.indexOf("--name") + 1]! : SHIPPED_LM;
  const file = shippedCheckpoint(name);
  const results = JSON.parse(fs.readFileSync(path.join(ROOT, "checkpoints", `${name}.results.json`), "utf8"));
  const doc: string = results.data.validDocs[0];
  // the corpus the model was pretrained on (results files before the e-mail model have no corpusName: English)
  const corpus = (results.data.corpusName ?? "english") === "email" ? await emailCorpus() : await englishCorpus();
  const text = fs.readFileSync(path.join(corpus, "valid", doc), "utf8");
  const f = await readSafetensors(file);
  const vocab = JSON.parse(f.metadata["vocab"]!) as string[];
  const config = JSON.parse(f.metadata["config"]!) as { embSz: number; nHid: number; nLayers: number; padToken: number };
  const ids = Array.from(new Numericalize(vocab).encode(new Tokenizer({ cacheDir: false }).tokenize(text))).slice(0, N);
  // columns spread over the vocabulary, plus the tokens that do come next (their logits decide the loss)
  const columns = [...new Set([...Array.from({ length: COLUMNS }, (_v, i) => Math.floor((i * vocab.length) / COLUMNS) + 3), ...ids.slice(1, 9)])].sort((a, b) => a - b);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "english-lm-ref-"));
  const spec = {
    weights: file, kind: "lm", grads: false, vocab_sz: vocab.length, emb_sz: config.embSz, n_hid: config.nHid, n_layers: config.nLayers, pad_token: config.padToken,
    batches: [[ids.slice(0, -1)]], targets: [[ids.slice(1)]],
  };
  fs.writeFileSync(path.join(dir, "spec.json"), JSON.stringify(spec));
  const out = execFileSync("/usr/bin/python3", [path.join(ROOT, "bench", "awd_lstm_torch.py"), path.join(dir, "spec.json")], { encoding: "utf8", maxBuffer: 2 ** 28 });
  fs.rmSync(dir, { recursive: true, force: true });
  const torch = JSON.parse(out.trim().split("\n").pop()!) as { logits: number[]; loss: number };
  const V = vocab.length;
  const logits = Array.from({ length: N - 1 }, (_v, p) => columns.map((c) => torch.logits[p * V + c]!));
  const fixture = {
    about: `PyTorch (bench/awd_lstm_torch.py, eval mode) on the first ${N} tokens of the held-out ${doc}, written by bench/english-lm-reference.ts`,
    checkpoint: path.basename(file),
    sha256: createHash("sha256").update(fs.readFileSync(file)).digest("hex"),
    doc,
    ids,
    loss: torch.loss,
    columns,
    logits,
  };
  const dest = path.join(ROOT, "test", "fixtures", "models", `${name}.torch.json`);
  fs.writeFileSync(dest, JSON.stringify(fixture) + "\n");
  console.log(`wrote ${dest}: loss ${torch.loss.toFixed(4)} over ${N - 1} predictions, ${columns.length} columns`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
