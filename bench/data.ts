/**
 * Data pipeline throughput: decode + Resize(460) + augTransforms({ size: 224, minScale: 0.75 }) +
 * Normalize + batch tensors, in images per second, against the PIL/torchvision pipeline
 * (bench/data_torch.py, DataLoader with 2 workers) on the same folder in the same run.
 *
 * Usage: node dist/bench/data.js [--n 512] [--epochs 2] [--bs 64] [--rounds 1]
 * With --rounds R the two pipelines alternate R times and the best round of each is kept (the
 * machine is shared, so a single round can land on a noisy moment for one side only).
 * The folder is made once from the emoji-datasource-twitter PNGs, re-encoded larger (JPEG and
 * PNG, several sizes) under $TMPDIR/tsfast-bench-data-<n> (bench/photo-folder.ts).
 */
import { spawnSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "../lib/engine/tf";
import { ready, engineBanner } from "../lib/engine/backend";
import { ImageDataLoaders } from "../lib/data/factories";
import { Resize } from "../lib/data/transforms";
import { augTransforms, imagenetStats, Normalize } from "../lib/data/augment";
import { makeFolder } from "./photo-folder";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

async function main(): Promise<void> {
  const n = arg("n", 512);
  const epochs = arg("epochs", 2);
  const bs = arg("bs", 64);
  const dir = await makeFolder(n);
  await ready();
  console.log(engineBanner());
  const dls = await ImageDataLoaders.fromFolder(dir, {
    validPct: 0.01,
    itemTfms: Resize(460),
    batchTfms: [...augTransforms({ size: 224, minScale: 0.75 }), Normalize.fromStats(...imagenetStats)],
    bs,
  });
  const run = async (): Promise<number> => {
    let count = 0;
    for await (const b of dls.train) {
      count += b.xb.shape[0];
      b.xb.dispose();
      b.yb.dispose();
    }
    return count;
  };
  await run(); // warm-up
  const rounds = arg("rounds", 1);
  let ours = 0;
  let oursCpu = 0;
  let refWall = 0;
  let refCpu = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    let count = 0;
    for (let e = 0; e < epochs; e++) count += await run();
    const wall = count / ((performance.now() - t0) / 1000);
    const cu = process.cpuUsage(c0); // all threads of the process: JS, the data worker, sharp's libvips threads
    const cpu = count / ((cu.user + cu.system) / 1e6);
    console.log(
      `tsfast: ${wall.toFixed(1)} img/s wall, ${cpu.toFixed(1)} img per CPU-second ` +
        `(${count} images, ${dls.train.n} per epoch, bs ${bs}, ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)})`,
    );
    ours = Math.max(ours, wall);
    oursCpu = Math.max(oursCpu, cpu);
    const py = spawnSync("/usr/bin/python3", [path.join(__dirname, "../../bench/data_torch.py"), dir, String(epochs), String(bs), "2"], {
      encoding: "utf8",
    });
    if (py.status !== 0) throw new Error(`torchvision reference failed: ${py.stderr}`);
    const ref = JSON.parse(py.stdout.trim().split("\n").pop()!) as { imgs_per_s: number; imgs_per_cpu_s: number };
    console.log(
      `torchvision (PIL, DataLoader 2 workers): ${ref.imgs_per_s.toFixed(1)} img/s wall, ` +
        `${ref.imgs_per_cpu_s.toFixed(1)} img per CPU-second (load ${os.loadavg()[0]!.toFixed(1)})`,
    );
    refWall = Math.max(refWall, ref.imgs_per_s);
    refCpu = Math.max(refCpu, ref.imgs_per_cpu_s);
  }
  console.log(`ratio tsfast / torchvision: ${(ours / refWall).toFixed(2)}x wall, ${(oursCpu / refCpu).toFixed(2)}x per CPU-second (goal >= 2x)`);
  console.log("(wall time is only comparable on a quiet machine; CPU-seconds are robust to other load)");
  // With the presized-image cache, later epochs cut the random crop from the cached image.
  const cached = await ImageDataLoaders.fromFolder(dir, {
    validPct: 0.01,
    itemTfms: Resize(460),
    batchTfms: [...augTransforms({ size: 224, minScale: 0.75 }), Normalize.fromStats(...imagenetStats)],
    bs,
    cache: "memory",
  });
  for await (const b of cached.train) {
    b.xb.dispose();
    b.yb.dispose();
  }
  const t1 = performance.now();
  let n1 = 0;
  for await (const b of cached.train) {
    n1 += b.xb.shape[0];
    b.xb.dispose();
    b.yb.dispose();
  }
  const withCache = n1 / ((performance.now() - t1) / 1000);
  console.log(`tsfast with cache: "memory" (an epoch after the first): ${withCache.toFixed(1)} img/s wall`);
  console.log(`tensors alive: ${tf.memory().numTensors}`);
  // for `npm run bench` (bench/engine.ts), which runs this script as a child and reads the last JSON line
  console.log(JSON.stringify({ bench: "data", n, epochs, bs, rounds, tsfastWall: ours, tsfastCpu: oursCpu, torchWall: refWall, torchCpu: refCpu, cachedWall: withCache }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
