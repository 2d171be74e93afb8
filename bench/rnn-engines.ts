/**
 * Lesson 14's LMModel3 (the book's stateful RNN: three tokens, hidden state carried from batch to
 * batch and detached) trained with the lesson's recipe on two engines, each in its own process, and
 * compared step by step: the first training step whose loss differs by more than 1e-4, a few losses
 * side by side, and each epoch's validation accuracy.
 *
 * It tells an engine bug (losses apart from the first steps) from float32 drift (losses equal for
 * hundreds of steps, then slowly apart, compounded through the carried state).
 *
 *   node dist/bench/rnn-engines.js [--epochs 2] [--engines native,wasm]
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { humanNumbersPath } from "../lib/data/datasets/human-numbers";
import { tensorDataLoaders } from "../lib/data/tensors";
import { Learner } from "../lib/learner/learner";
import { CrossEntropyLossFlat } from "../lib/learner/losses";
import { accuracy } from "../lib/learner/metrics";
import { Module, Linear, Embedding, CarriedState, ModelResetter } from "../lib/models/rnn";

interface RunResult {
  engine: string;
  losses: number[];
  accuracies: number[];
}

/** The book's `group_chunks`: batch row j reads the j-th contiguous stretch. */
function groupChunks<T>(ds: T[], bs: number): T[] {
  const m = Math.floor(ds.length / bs);
  const out: T[] = [];
  for (let i = 0; i < m; i++) for (let j = 0; j < bs; j++) out.push(ds[i + m * j]!);
  return out;
}

class LMModel3 extends Module {
  readonly iH: Embedding;
  readonly hH: Linear;
  readonly hO: Linear;
  private readonly state = new CarriedState();
  constructor(vocabSz: number, private readonly nHidden: number) {
    super({ outputShape: (s) => [s[0]!, vocabSz], seed: 0 });
    this.iH = new Embedding(this, "i_h", vocabSz, nHidden);
    this.hH = new Linear(this, "h_h", nHidden, nHidden);
    this.hO = new Linear(this, "h_o", nHidden, vocabSz);
  }
  forward(x: tf.Tensor): tf.Tensor {
    const bs = x.shape[0]!;
    let [h] = this.state.get(bs, () => [tf.zeros([bs, this.nHidden])]);
    for (let i = 0; i < 3; i++) h = tf.relu(this.hH.forward(tf.add(h!, this.iH.forward(tf.gather(x, i, 1)))));
    const out = this.hO.forward(h!);
    this.state.set([h!]);
    return out;
  }
  override reset(): void {
    this.state.reset();
  }
}

/** One engine's run (this process), as notebooks/14_rnn_from_scratch.ipynb trains LMModel3. */
async function train(epochs: number): Promise<RunResult> {
  const engine = await ready();
  const dir = humanNumbersPath();
  const lines = ["train.txt", "valid.txt"].flatMap((f) => fs.readFileSync(path.join(dir, f), "utf8").split("\n").filter((l) => l.length > 0));
  const tokens = lines.map((l) => l.trim()).join(" . ").split(" ");
  const vocab = [...new Set(tokens)];
  const index = new Map(vocab.map((w, i) => [w, i] as [string, number]));
  const nums = tokens.map((t) => index.get(t)!);
  const bs = 64;
  const xs: number[][] = [];
  const ys: number[] = [];
  for (let i = 0; i < nums.length - 4; i += 3) {
    xs.push(nums.slice(i, i + 3));
    ys.push(nums[i + 3]!);
  }
  const cut = Math.floor(xs.length * 0.8);
  const part = (a: number, b: number): [tf.Tensor, tf.Tensor] => {
    const idx = groupChunks(Array.from({ length: b - a }, (_, i) => a + i), bs);
    return [tf.tensor2d(idx.map((i) => xs[i]!), [idx.length, 3], "int32"), tf.tensor1d(idx.map((i) => ys[i]!), "int32")];
  };
  const dls = tensorDataLoaders(part(0, cut), part(cut, xs.length), { bs, shuffle: false });
  const learn = new Learner(dls, new LMModel3(vocab.length, 64).asModel(), {
    lossFunc: CrossEntropyLossFlat(), metrics: accuracy, cbs: [new ModelResetter()], wd: 0.01, progress: false,
  });
  await learn.fitOneCycle(epochs, { lrMax: 3e-3 });
  // recorder.values: per epoch [train_loss, valid_loss, accuracy]
  return { engine: engine.engine, losses: [...learn.recorder.losses], accuracies: learn.recorder.values.map((v) => v[2]!) };
}

async function main(): Promise<void> {
  const a = process.argv.slice(2);
  const arg = (name: string, dflt: string) => (a.includes(name) ? a[a.indexOf(name) + 1]! : dflt);
  const epochs = Number(arg("--epochs", "2"));
  const out = arg("--child", "");
  if (out) {
    fs.writeFileSync(out, JSON.stringify(await train(epochs)));
    return;
  }
  const engines = arg("--engines", "native,wasm").split(",");
  if (engines.length !== 2) throw new Error(`--engines takes two engines to compare, e.g. native,wasm; got ${engines.join(",")}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-rnn-engines-"));
  try {
    const runs = engines.map((e) => {
      const file = path.join(tmp, `${e}.json`);
      execFileSync(process.execPath, [__filename, "--child", file, "--epochs", String(epochs)], { env: { ...process.env, TSFAST_BACKEND: e }, stdio: ["ignore", "ignore", "inherit"] });
      return JSON.parse(fs.readFileSync(file, "utf8")) as RunResult;
    });
    const [x, y] = runs as [RunResult, RunResult];
    // an engine that could not start falls back to another: then this would compare an engine with itself
    if (x.engine === y.engine) throw new Error(`both runs used the ${x.engine} engine; check that ${engines.join(" and ")} both start (TSFAST_BACKEND)`);
    const n = Math.min(x.losses.length, y.losses.length);
    const first = x.losses.findIndex((v, i) => i < n && Math.abs(v - y.losses[i]!) > 1e-4);
    console.log(`LMModel3, ${epochs} epochs, ${n} training steps: ${x.engine} against ${y.engine}`);
    console.log(first < 0 ? "every step's (smoothed) training loss within 1e-4" : `first step with losses more than 1e-4 apart: ${first}`);
    for (const i of [0, 1, 10, 100, 200, Math.floor(n / 2), n - 1].filter((i, k, all) => i < n && all.indexOf(i) === k)) {
      console.log(`  step ${String(i).padStart(5)}  ${x.losses[i]!.toFixed(6)}  ${y.losses[i]!.toFixed(6)}`);
    }
    console.log(`validation accuracy per epoch: ${x.engine} ${x.accuracies.map((v) => (v * 100).toFixed(1)).join(" / ")} %, ${y.engine} ${y.accuracies.map((v) => (v * 100).toFixed(1)).join(" / ")} %`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
