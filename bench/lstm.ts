/**
 * The LSTM language-model row of `npm run bench` (issue 16): training tokens per second of an
 * `Embedding → LSTM → Linear` language model (PyTorch's `nn.LSTM` layout, lib/models/rnn.ts) trained
 * by tsfast's `Learner` (flattened cross-entropy, fastai's Adam, wd 0.01), against the same model in
 * PyTorch (bench/lstm_torch.py: `nn.LSTM`, AdamW with fastai's betas/eps) on the same number of
 * batches, run one after the other in the same invocation; and the same for fastai's AWD-LSTM at its
 * real size (`awdLstmBench`). Random token ids (the speed does not
 * depend on them). The first `WARMUP` batches are not timed on either side.
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { Learner } from "../lib/learner/learner";
import { CrossEntropyLossFlat } from "../lib/learner/losses";
import { Module, Embedding, LSTM, Linear, zeroStates, ModelResetter, RNNRegularizer } from "../lib/models/rnn";
import type { Callback } from "../lib/learner/callback";
import { tensorDataLoaders } from "../lib/data/tensors";
import { languageModel } from "../lib/models/awd-lstm";
import { batchTimer } from "./batch-timer";

/** The row's shape: vocabulary, embedding, hidden size, layers, batch, sequence length. */
export const LSTM_BENCH = { vocab: 5000, emb: 200, hidden: 512, layers: 2, bs: 32, seqLen: 72 };
const WARMUP = 2;

class LstmLm extends Module {
  readonly emb: Embedding;
  readonly rnn: LSTM;
  readonly out: Linear;
  constructor(readonly c: typeof LSTM_BENCH) {
    super({ outputShape: (s) => [s[0]!, s[1]!, c.vocab], seed: 0 });
    this.emb = new Embedding(this, "emb", c.vocab, c.emb);
    this.rnn = new LSTM(this, "rnn", c.emb, c.hidden, c.layers);
    this.out = new Linear(this, "out", c.hidden, c.vocab);
  }
  forward(x: tf.Tensor): tf.Tensor {
    const z = zeroStates(2 * this.c.layers, x.shape[0]!, this.c.hidden);
    return this.out.forward(this.rnn.forward(this.emb.forward(x), z.slice(0, this.c.layers), z.slice(this.c.layers)).out);
  }
}

export interface LstmBench {
  batches: number;
  tsfastTokensPerS?: number;
  torchTokensPerS?: number;
  note?: string;
}

/** The AWD-LSTM row's shape: fastai's AWD-LSTM (emb 400, 3 LSTMs of 1152, its dropouts) over a 10k vocabulary. */
export const AWD_LSTM_BENCH = { vocab: 10000, emb: 400, hidden: 1152, layers: 3, bs: 32, seqLen: 72 };

/** PyTorch's seconds for the timed batches of bench/lstm_torch.py's `model` (one JSON line), or the reason it failed. */
function torchSeconds(model: "lstm" | "awd", threads: number, batches: number, c: object): { seconds?: number; note?: string } {
  try {
    const stdout = execFileSync(
      "/usr/bin/python3",
      [path.join(__dirname, "..", "..", "bench", "lstm_torch.py"), "--model", model, "--threads", String(threads), "--batches", String(batches), "--warmup", String(WARMUP), "--config", JSON.stringify(c)],
      { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
    );
    return { seconds: (JSON.parse(stdout.trim().split("\n").pop()!) as { seconds: number }).seconds };
  } catch (e) {
    return { note: `PyTorch reference failed: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}` };
  }
}

/** tsfast's seconds for the timed batches of `model` trained by a `Learner` on random ids (wd 0.01, lr 1e-3). */
async function tsfastSeconds(model: tf.LayersModel, batches: number, c: typeof LSTM_BENCH, cbs: Callback[] = []): Promise<number> {
  const ids = (n: number, seed: number) => tf.randomUniform([n, c.seqLen], 0, c.vocab, "int32", seed);
  const dls = tensorDataLoaders([ids(batches * c.bs, 1), ids(batches * c.bs, 2)], [ids(c.bs, 3), ids(c.bs, 4)], { bs: c.bs, shuffle: false });
  const timer = batchTimer(WARMUP, batches);
  const learn = new Learner(dls, model, { lossFunc: CrossEntropyLossFlat(), wd: 0.01, progress: false, cbs: [...cbs, timer.cb] });
  await learn.fit(1, 1e-3);
  learn.dispose();
  return timer.seconds();
}

/** Train `batches` batches on both sides and report tokens per second of the timed ones. */
export async function lstmBench(threads: number, batches: number, c = LSTM_BENCH): Promise<LstmBench> {
  const timedTokens = (batches - WARMUP) * c.bs * c.seqLen;
  const t = torchSeconds("lstm", threads, batches, c);
  const out: LstmBench = { batches, ...(t.note ? { note: t.note } : {}), ...(t.seconds ? { torchTokensPerS: timedTokens / t.seconds } : {}) };
  out.tsfastTokensPerS = timedTokens / (await tsfastSeconds(new LstmLm(c).asModel(), batches, c));
  return out;
}

/**
 * The same for fastai's AWD-LSTM language model as `languageModelLearner` trains it (dropouts, weight drop,
 * tied decoder, the state carried between batches, AR/TAR), against the PyTorch port (bench/lstm_torch.py --model awd).
 */
export async function awdLstmBench(threads: number, batches: number, c = AWD_LSTM_BENCH): Promise<LstmBench> {
  const timedTokens = (batches - WARMUP) * c.bs * c.seqLen;
  const t = torchSeconds("awd", threads, batches, c);
  const out: LstmBench = { batches, ...(t.note ? { note: t.note } : {}), ...(t.seconds ? { torchTokensPerS: timedTokens / t.seconds } : {}) };
  const model = languageModel(c.vocab, { embSz: c.emb, nHid: c.hidden, nLayers: c.layers });
  out.tsfastTokensPerS = timedTokens / (await tsfastSeconds(model, batches, c, [new ModelResetter(), new RNNRegularizer({ alpha: 2, beta: 1 })]));
  return out;
}
