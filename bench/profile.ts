/**
 * Where a ResNet-18 (or U-Net on it) training step spends its time, kernel by kernel (`tf.profile`).
 * usage: node dist/bench/profile.js [size] [batch] [backend] [resnet18|unet]
 */
import * as tf from "../lib/engine/tf";
import { initNative } from "../lib/engine/native";
import { resnet18 } from "../lib/models/archs";
import { createUnetModel } from "../lib/models/unet";
import { NativeAdamOptimizer } from "../lib/engine/native/optimizer";

async function main(): Promise<void> {
  const size = Number(process.argv[2] ?? 64), bs = Number(process.argv[3] ?? 64);
  const backend = process.argv[4] ?? "native";
  if (backend === "native") await initNative();
  else await tf.setBackend(backend);
  const unet = process.argv[5] === "unet";
  const nOut = unet ? 5 : 10;
  const model = unet ? (await createUnetModel(resnet18, nOut, size, { pretrained: false })).model : await resnet18({ nOut, inputShape: [size, size, 3] });
  // On "native" the fused Adam step; elsewhere it is tfjs's own Adam.
  const opt = new NativeAdamOptimizer(1e-3, 0.9, 0.999, 1e-8);
  const x = tf.randomNormal([bs, size, size, 3]);
  const y = tf.oneHot(tf.randomUniform(unet ? [bs, size, size] : [bs], 0, nOut, "int32"), nOut);
  const step = () => {
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor), true);
    loss?.dataSync();
    loss?.dispose();
  };
  step();
  step();
  const t0 = Date.now();
  const info = await tf.profile(step);
  const wall = Date.now() - t0;
  const by = new Map<string, { n: number; ms: number; elems: number }>();
  for (const k of info.kernels) {
    const e = by.get(k.name) ?? { n: 0, ms: 0, elems: 0 };
    e.n++;
    e.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
    e.elems += k.outputShapes.reduce((a, s) => a + (s ? s.reduce((p, q) => p + q, 0) && s.reduce((p, q) => p * q, 1) : 0), 0);
    by.set(k.name, e);
  }
  const rows = [...by.entries()].sort((a, b) => b[1].ms - a[1].ms);
  let total = 0;
  for (const [, e] of rows) total += e.ms;
  console.log(`step wall ${wall} ms (profiled), kernel sum ${total.toFixed(0)} ms, ${info.kernels.length} kernel calls`);
  for (const [name, e] of rows.slice(0, 30)) {
    console.log(`${name.padEnd(32)} ${String(e.n).padStart(5)} calls ${e.ms.toFixed(1).padStart(8)} ms ${(e.elems / 1e6).toFixed(1).padStart(8)} M out`);
  }
  const t1 = Date.now();
  step();
  console.log(`unprofiled step ${Date.now() - t1} ms`);
}

void main();
