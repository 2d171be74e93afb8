/**
 * Time of a training step (xresnet18, 32 px, batch 32, 10 classes, Adam) through `Learner.fit`:
 * the check that a change to the loop does not slow a step. Run on the native engine:
 *   TSFAST_BACKEND=native node dist/bench/step-time.js [batches=12] [reps=3]
 * It prints the median per-step time over `reps` fits, the first batch of each fit excluded: wall
 * time, and this process's CPU time (user + system, every engine thread), which a machine shared
 * with other work disturbs less than the wall clock.
 */
import * as tf from "../lib/engine/tf";
import { ready } from "../lib/engine/backend";
import { Learner } from "../lib/learner/learner";
import { xresnet18 } from "../lib/models/archs";
import { TensorDataLoader } from "../lib/data/tensors";

async function main(): Promise<void> {
  await ready();
  const batches = Number(process.argv[2] ?? 12);
  const reps = Number(process.argv[3] ?? 3);
  const bs = 32;
  const n = bs * batches;
  const x = tf.randomNormal([n, 32, 32, 3], 0, 1, "float32", 1);
  const y = tf.tensor1d(Array.from({ length: n }, (_, i) => i % 10), "int32");
  const model = await xresnet18({ nOut: 10, inputShape: [32, 32, 3] });
  const dl = new TensorDataLoader(x, y, { bs });
  const learn = new Learner({ train: dl, valid: new TensorDataLoader(x.slice(0, bs), y.slice(0, bs), { bs }) }, model, { progress: false });
  const wall: number[] = [];
  const cpu: number[] = [];
  let t0 = 0;
  let c0 = process.cpuUsage();
  const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
  learn.addCbs([
    {
      beforeBatch: (l) => {
        if (l.training && l.iter === 1) [t0, c0] = [performance.now(), process.cpuUsage()];
      },
      afterTrain: () => {
        wall.push((performance.now() - t0) / (batches - 1));
        cpu.push(cpuMs(process.cpuUsage(c0)) / (batches - 1));
      },
    },
  ]);
  await learn.fit(1); // warm-up
  wall.length = cpu.length = 0;
  for (let r = 0; r < reps; r++) await learn.fit(1);
  const median = (xs: number[]) => Math.round([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!);
  console.log(JSON.stringify({ backend: tf.getBackend(), wallMs: wall.map(Math.round), cpuMs: cpu.map(Math.round), medianWall: median(wall), medianCpu: median(cpu) }));
}
main().catch((e) => { console.error(e); process.exit(1); });
