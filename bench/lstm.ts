/**
 * The LSTM language-model row of `npm run bench` (issue 16): training tokens per second of an
 * `Embedding → LSTM → Linear` language model (PyTorch's `nn.LSTM` layout, lib/models/rnn.ts) trained
 * by tsfast's `Learner` (flattened cross-entropy, fastai's Adam, wd 0.01), against the same model in
 * PyTorch (bench/lstm_torch.py: `nn.LSTM`, AdamW with fastai's betas/eps) on the same number of
 * batches, run one after the other in the same invocation. Random token ids (the speed does not
 * depend on them). The first `WARMUP` batches are not timed on either side.
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { Learner } from "../lib/learner/learner";
import { CrossEntropyLossFlat } from "../lib/learner/losses";
import { Module, Embedding, LSTM, Linear, zeroStates } from "../lib/models/rnn";
import { tensorDataLoaders } from "../lib/data/tensors";
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

/** Train `batches` batches on both sides and report tokens per second of the timed ones. */
export async function lstmBench(threads: number, batches: number, c = LSTM_BENCH): Promise<LstmBench> {
  const out: LstmBench = { batches };
  const timedTokens = (batches - WARMUP) * c.bs * c.seqLen;
  try {
    const stdout = execFileSync(
      "/usr/bin/python3",
      [path.join(__dirname, "..", "..", "bench", "lstm_torch.py"), "--threads", String(threads), "--batches", String(batches), "--warmup", String(WARMUP), "--config", JSON.stringify(c)],
      { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
    );
    const r = JSON.parse(stdout.trim().split("\n").pop()!) as { seconds: number };
    out.torchTokensPerS = timedTokens / r.seconds;
  } catch (e) {
    out.note = `PyTorch reference failed: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`;
  }
  const ids = (n: number, seed: number) => tf.randomUniform([n, c.seqLen], 0, c.vocab, "int32", seed);
  const dls = tensorDataLoaders([ids(batches * c.bs, 1), ids(batches * c.bs, 2)], [ids(c.bs, 3), ids(c.bs, 4)], { bs: c.bs, shuffle: false });
  const model = new LstmLm(c).asModel();
  const timer = batchTimer(WARMUP, batches);
  const learn = new Learner(dls, model, {
    lossFunc: CrossEntropyLossFlat(),
    wd: 0.01,
    progress: false,
    cbs: timer.cb,
  });
  await learn.fit(1, 1e-3);
  out.tsfastTokensPerS = timedTokens / timer.seconds();
  learn.dispose();
  return out;
}
