/**
 * Which oneDNN kernel runs a channels-last forward convolution, and how fast, with tsfast's rule for
 * small outputs (native/src/conv.cc, `smallOutputPrefersJit`) and without it (TSFAST_SMALL_CONV_JIT=0:
 * oneDNN's first choice, brgconv on AVX-512). Each setting runs in a child process (the engine reads the
 * switch once); a shape's time is the median of 9 calls of `tf.conv2d` on "native" after 2 warm-up calls.
 *
 * usage: node dist/bench/conv-impls.js
 */
import { spawnSync } from "node:child_process";
import * as tf from "../lib/engine/tf";
import { initNative } from "../lib/engine/native";
import { loadAddon } from "../lib/engine/native/addon";

/** [batch, input size, input channels, output channels, kernel, stride, padding] */
type Shape = [number, number, number, number, number, number, number];

// ResNet-18/34's stages at 64 px (batch 64) and 128 px (batch 32), and the rule's edges.
const SHAPES: Shape[] = [
  [64, 16, 64, 64, 3, 1, 1], [64, 8, 128, 128, 3, 1, 1], [64, 4, 256, 256, 3, 1, 1], [64, 2, 512, 512, 3, 1, 1],
  [64, 8, 128, 256, 3, 2, 1], [64, 4, 256, 512, 3, 2, 1], [64, 4, 256, 512, 1, 2, 0],
  [32, 32, 64, 64, 3, 1, 1], [32, 16, 128, 128, 3, 1, 1], [32, 8, 256, 256, 3, 1, 1], [32, 4, 512, 512, 3, 1, 1],
  [32, 8, 256, 512, 3, 2, 1], [32, 8, 256, 512, 1, 2, 0],
  [8, 4, 128, 128, 3, 1, 1], [8, 4, 256, 256, 3, 1, 1], [8, 7, 512, 512, 3, 1, 1], [2, 4, 512, 512, 3, 1, 1],
];

const label = (s: Shape) => `batch ${s[0]}, ${s[1]}×${s[1]}×${s[2]} → ${s[3]}, ${s[4]}×${s[4]} stride ${s[5]}`;

function outSize(s: Shape): number {
  return Math.floor((s[1] + 2 * s[6] - s[4]) / s[5]) + 1;
}

async function child(): Promise<void> {
  await initNative();
  const addon = loadAddon();
  const rows = SHAPES.map((s) => {
    const [n, h, c, o, k, st, pad] = s;
    const oh = outSize(s);
    const impl = addon.convForwardImpl(Int32Array.from([n, h, h, c, k, k, o, oh, oh, st, st, 1, 1, pad, pad, pad, pad, 1]));
    const x = tf.randomNormal([n, h, h, c]) as tf.Tensor4D;
    const w = tf.randomNormal([k, k, c, o], 0, 0.05) as tf.Tensor4D;
    const ts: number[] = [];
    for (let i = 0; i < 11; i++) {
      const t0 = process.hrtime.bigint();
      const y = tf.conv2d(x, w, st, [[0, 0], [pad, pad], [pad, pad], [0, 0]]);
      y.dataSync();
      if (i >= 2) ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
      y.dispose();
    }
    tf.dispose([x, w]);
    ts.sort((a, b) => a - b);
    return { impl, ms: ts[Math.floor(ts.length / 2)]! };
  });
  console.log(JSON.stringify(rows));
}

function run(env: NodeJS.ProcessEnv): { impl: string; ms: number }[] {
  const r = spawnSync(process.execPath, [__filename, "--child"], { env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const line = r.stdout.split("\n").filter((l) => l.startsWith("[")).pop();
  if (!line) throw new Error(`the child printed no result (exit ${r.status})`);
  return JSON.parse(line) as { impl: string; ms: number }[];
}

function main(): void {
  const rule = run({ ...process.env, TSFAST_SMALL_CONV_JIT: "1" });
  const first = run({ ...process.env, TSFAST_SMALL_CONV_JIT: "0" });
  console.log("| shape | output | oneDNN's first choice | ms | tsfast's rule | ms | speed-up |");
  console.log("|---|---|---|---|---|---|---|");
  SHAPES.forEach((s, i) => {
    const a = first[i]!, b = rule[i]!;
    console.log(`| ${label(s)} | ${outSize(s)}×${outSize(s)} | ${a.impl} | ${a.ms.toFixed(2)} | ${b.impl} | ${b.ms.toFixed(2)} | ${(a.ms / b.ms).toFixed(2)}× |`);
  });
}

if (process.argv.includes("--child")) void child();
else main();
