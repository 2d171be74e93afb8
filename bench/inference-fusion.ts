/**
 * Inference with and without the native engine's fused convolutions (lib/engine/native/conv-bn.ts: a
 * convolution with its BatchNorm, ReLU and residual add as one oneDNN convolution), against PyTorch's
 * eval-mode inference of the same ResNet, the three in turns (bench/alternate.ts) after three training
 * steps on each side (as the engine bench times inference: PyTorch's allocator is then in its fast state).
 *
 *   node dist/bench/inference-fusion.js [--arch resnet34] [--size 128] [--bs 32] [--rounds 16]
 *
 * Prints each side's median batch time and img/s, and fused and apart as ratios to PyTorch.
 */
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { defaultThreads, ready } from "../lib/engine/backend";
import { resnet18, resnet34 } from "../lib/models/archs";
import { getConvBnFusion, setConvBnFusion } from "../lib/engine/lean-forward";
import { NativeAdamOptimizer } from "../lib/engine/native/optimizer";
import { alternate, LineServer, timeSync } from "./alternate";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

async function main(): Promise<void> {
  const arch = arg("arch", "resnet34");
  if (arch !== "resnet18" && arch !== "resnet34") throw new Error(`--arch must be resnet18 or resnet34, got ${arch}`);
  const [size, bs, rounds] = [Number(arg("size", "128")), Number(arg("bs", "32")), Number(arg("rounds", "16"))];
  for (const [k, v] of Object.entries({ size, bs, rounds })) if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer`);
  const engine = await ready();
  if (engine.engine !== "native") throw new Error(`the native engine is needed here (got ${engine.engine})`);
  if (!getConvBnFusion()) console.log("note: the fusion is off (TSFAST_FUSE_CONV_BN=0): both tsfast sides run the layers apart");
  const model = await (arch === "resnet18" ? resnet18 : resnet34)({ nOut: 10, inputShape: [size, size, 3] });
  const x = tf.randomNormal([bs, size, size, 3]);
  const y = tf.oneHot(tf.randomUniform([bs], 0, 10, "int32"), 10);
  const opt = new NativeAdamOptimizer(1e-3, 0.9, 0.999, 1e-8);
  for (let i = 0; i < 3; i++) opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor), false);
  const torch = new LineServer("PyTorch", "/usr/bin/python3", [path.join(__dirname, "..", "..", "bench", "torch_ref.py"), "--threads", String(defaultThreads()), "--serve", `${arch}:${size}:${bs}`]);
  try {
    await torch.times("train", 3);
    const predict = () => void tf.tidy(() => tf.sum(model.predict(x, { batchSize: bs }) as tf.Tensor).dataSync());
    const r = await alternate(
      {
        fused: (n) => Promise.resolve(timeSync(predict, n)),
        apart: (n) => {
          const fusion = getConvBnFusion();
          setConvBnFusion(undefined);
          try {
            return Promise.resolve(timeSync(predict, n));
          } finally {
            setConvBnFusion(fusion);
          }
        },
        pytorch: (n) => torch.times("infer", n),
      },
      rounds + (rounds % 2),
      2,
    );
    for (const [k, v] of Object.entries(r.median) as [string, number][]) console.log(`${k}: ${(v * 1000).toFixed(1)} ms a batch, ${(bs / v).toFixed(1)} img/s`);
    const ratio = (s?: number) => (s === undefined || r.median.pytorch === undefined ? "-" : `${(r.median.pytorch / s).toFixed(2)}x`);
    console.log(`${arch} ${size} px, batch ${bs}: fused ${ratio(r.median.fused)} PyTorch, apart ${ratio(r.median.apart)}${r.note ? ` (${r.note})` : ""}`);
  } finally {
    torch.close();
    tf.dispose([x, y]);
    opt.dispose();
    model.dispose();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
