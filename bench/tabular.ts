/**
 * The tabular row of `npm run bench`: seconds per training epoch of `tabularLearner` ([200, 100],
 * batches of 64, fitOneCycle's Adam) on a 100,000-row synthetic table with lesson 8's columns
 * (island, sex and the four `_na` flags as categoricals, four continuous columns with 5 % gaps,
 * three classes), against bench/tabular_torch.py's PyTorch port of the same recipe run in the same
 * invocation on the same threads. The second of two epochs counts on both sides (the first compiles
 * kernels and creates the optimizer state).
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { Rng } from "../lib/data/random";
import { frameFromRows, type Cell } from "../lib/tabular/frame";
import { Categorify, FillMissing, Normalize } from "../lib/tabular/procs";
import { TabularDataLoaders } from "../lib/tabular/data";
import { tabularLearner } from "../lib/models/tabular";

export const TABULAR_ROWS = 100_000;
export const TABULAR_BS = 64;

/** The synthetic table: species drives the island and the measurements, as in the penguins. */
export function syntheticPenguins(n: number, seed = 0): Record<string, Cell>[] {
  const rng = new Rng(seed);
  const species = ["Adelie", "Chinstrap", "Gentoo"];
  const islands = ["Biscoe", "Dream", "Torgersen"];
  const gap = (v: number) => (rng.next() < 0.05 ? null : v);
  return Array.from({ length: n }, () => {
    const s = rng.int(3);
    return {
      island: islands[(s + (rng.next() < 0.3 ? 1 : 0)) % 3]!,
      sex: rng.next() < 0.5 ? "male" : "female",
      bill_length_mm: gap(38 + 6 * s + rng.uniform(-3, 3)),
      bill_depth_mm: gap(18 - s + rng.uniform(-1, 1)),
      flipper_length_mm: gap(190 + 10 * s + rng.uniform(-8, 8)),
      body_mass_g: gap(3700 + 600 * s + rng.uniform(-400, 400)),
      species: species[s]!,
    };
  });
}

/** tsfast's seconds per epoch on the current backend. */
export async function tabularEpochSeconds(n = TABULAR_ROWS, bs = TABULAR_BS): Promise<number> {
  const dls = TabularDataLoaders.fromDf(frameFromRows(syntheticPenguins(n)), {
    procs: [Categorify, FillMissing, Normalize],
    catNames: ["island", "sex"],
    contNames: ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"],
    yNames: "species",
    validIdx: Array.from({ length: 1000 }, (_, i) => i),
    bs,
  });
  const learn = tabularLearner(dls, { layers: [200, 100], progress: false });
  const times: number[] = [];
  for (let e = 0; e < 2; e++) {
    const t0 = process.hrtime.bigint();
    await learn.fitOneCycle(1, { lrMax: 1e-2 });
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  learn.model.dispose();
  dls.dispose();
  return times[1]!;
}

/** PyTorch's seconds per epoch, or why there is none. */
export function torchTabularEpochSeconds(threads: number, n = TABULAR_ROWS, bs = TABULAR_BS): { seconds?: number; note?: string } {
  const script = path.join(__dirname, "..", "..", "bench", "tabular_torch.py");
  try {
    const out = execFileSync("/usr/bin/python3", [script, "bench", JSON.stringify({ n, bs, threads })], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    return { seconds: (JSON.parse(out.trim().split("\n").pop()!) as { epoch_s: number }).epoch_s };
  } catch (e) {
    return { note: `PyTorch reference failed: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}` };
  }
}
