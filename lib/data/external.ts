/**
 * fastai's `URLs` and `untarData`: download a dataset archive once into `$TSFAST_HOME/archive`,
 * extract it once into `$TSFAST_HOME/data/<name>`, and return that folder on every later call
 * without touching the network.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { downloadFile, sha256File, type DownloadProgress } from "./download";
import { extractArchive } from "./archive";
import { escapeHtml, inKernel, newLiveDisplay } from "../display/display";

/** tsfast's cache root: `$TSFAST_HOME`, default `~/.tsfast`. */
export function tsfastHome(): string {
  const env = process.env.TSFAST_HOME;
  if (env && env.trim()) return path.resolve(env.replace(/^~(?=$|\/)/, os.homedir()));
  return path.join(os.homedir(), ".tsfast");
}

/** A folder under the cache root: `"data"` (extracted datasets) or `"archive"` (downloads). */
export function tsfastPath(kind: "data" | "archive" | "models"): string {
  return path.join(tsfastHome(), kind);
}

const S3 = "https://s3.amazonaws.com/fast-ai-";
const SAMPLE = `${S3}sample/`;
const IMAGE = `${S3}imageclas/`;
const IMAGELOC = `${S3}imagelocal/`;
const NLP = `${S3}nlp/`;
const COCO = `${S3}coco/`;

/**
 * Dataset archive URLs under fastai's names (the same files `fastai.data.external.URLs` points
 * to). No sha256 is published for them, so pass `{ sha256 }` to `untarData` to pin one.
 */
export const URLs = {
  ADULT_SAMPLE: `${SAMPLE}adult_sample.tgz`,
  BIWI_SAMPLE: `${SAMPLE}biwi_sample.tgz`,
  CIFAR: `${SAMPLE}cifar10.tgz`,
  COCO_SAMPLE: `${COCO}coco_sample.tgz`,
  COCO_TINY: `${COCO}coco_tiny.tgz`,
  HUMAN_NUMBERS: `${SAMPLE}human_numbers.tgz`,
  IMDB: `${NLP}imdb.tgz`,
  IMDB_SAMPLE: `${SAMPLE}imdb_sample.tgz`,
  ML_SAMPLE: `${SAMPLE}movie_lens_sample.tgz`,
  MNIST_SAMPLE: `${SAMPLE}mnist_sample.tgz`,
  MNIST_TINY: `${SAMPLE}mnist_tiny.tgz`,
  MNIST_VAR_SIZE_TINY: `${IMAGE}mnist_var_size_tiny.tgz`,
  PLANET_SAMPLE: `${SAMPLE}planet_sample.tgz`,
  PLANET_TINY: `${SAMPLE}planet_tiny.tgz`,
  IMAGENETTE: `${IMAGE}imagenette2.tgz`,
  IMAGENETTE_160: `${IMAGE}imagenette2-160.tgz`,
  IMAGENETTE_320: `${IMAGE}imagenette2-320.tgz`,
  IMAGEWOOF: `${IMAGE}imagewoof2.tgz`,
  IMAGEWOOF_160: `${IMAGE}imagewoof2-160.tgz`,
  IMAGEWOOF_320: `${IMAGE}imagewoof2-320.tgz`,
  IMAGEWANG: `${IMAGE}imagewang.tgz`,
  IMAGEWANG_160: `${IMAGE}imagewang-160.tgz`,
  IMAGEWANG_320: `${IMAGE}imagewang-320.tgz`,
  DOGS: `${SAMPLE}dogscats.tgz`,
  CALTECH_101: `${IMAGE}caltech_101.tgz`,
  CARS: `${IMAGE}stanford-cars.tgz`,
  CIFAR_100: `${IMAGE}cifar100.tgz`,
  CUB_200_2011: `${IMAGE}CUB_200_2011.tgz`,
  FLOWERS: `${IMAGE}oxford-102-flowers.tgz`,
  FOOD: `${IMAGE}food-101.tgz`,
  MNIST: `${IMAGE}mnist_png.tgz`,
  PETS: `${IMAGE}oxford-iiit-pet.tgz`,
  AG_NEWS: `${NLP}ag_news_csv.tgz`,
  WIKITEXT: `${NLP}wikitext-103.tgz`,
  WIKITEXT_TINY: `${NLP}wikitext-2.tgz`,
  YELP_REVIEWS_POLARITY: `${NLP}yelp_review_polarity_csv.tgz`,
  BIWI_HEAD_POSE: `${IMAGELOC}biwi_head_pose.tgz`,
  CAMVID: `${IMAGELOC}camvid.tgz`,
  CAMVID_TINY: `${SAMPLE}camvid_tiny.tgz`,
  PASCAL_2007: `${IMAGELOC}pascal_2007.tgz`,
  PASCAL_2012: `${IMAGELOC}pascal_2012.tgz`,
  SIIM_SMALL: `${IMAGELOC}siim_small.tgz`,
} as const;

/** Options of `untarData`. */
export interface UntarDataOptions {
  /** Parent folder of the extracted dataset. Default `$TSFAST_HOME/data`. */
  dest?: string;
  /** Folder for the downloaded archive. Default `$TSFAST_HOME/archive`. */
  archiveDir?: string;
  /** Expected sha256 (hex) of the archive; checked before extraction. Default: not checked. */
  sha256?: string;
  /** Milliseconds without data before a download attempt is abandoned (it resumes on retry). Default 30000. */
  timeoutMs?: number;
  /** Milliseconds allowed to connect. Default 10000. */
  connectTimeoutMs?: number;
  /** Extra download attempts, each resuming the partial file. Default 2. */
  retries?: number;
  /** Called as bytes arrive. Default: none. */
  onProgress?: (p: DownloadProgress) => void;
  /** Show a live progress bar while downloading (only inside a notebook kernel). Default true. */
  showProgress?: boolean;
  /** Download and extract again even if cached. Default false. */
  force?: boolean;
}

function mb(n: number): string {
  return (n / 1e6).toFixed(1);
}

/** A progress callback drawing an HTML progress bar in the notebook, updated at most 4 times a second. */
function kernelProgress(label: string): (p: DownloadProgress) => void {
  const live = newLiveDisplay();
  let last = 0;
  return (p) => {
    const now = Date.now();
    const done = p.total !== undefined && p.received >= p.total;
    if (!done && now - last < 250) return;
    last = now;
    const text =
      p.total !== undefined
        ? `${label}: ${mb(p.received)} / ${mb(p.total)} MB (${((100 * p.received) / p.total).toFixed(0)}%)`
        : `${label}: ${mb(p.received)} MB`;
    const bar = p.total !== undefined ? `<progress value="${p.received}" max="${p.total}" style="width:300px"></progress> ` : "";
    live.update({ "text/html": `<div>${bar}${escapeHtml(text)}</div>`, "text/plain": text });
  };
}

/**
 * The archive's file name in `url`, URL-decoded, refused unless it is one plain file name: no
 * `/` or `\\` (even encoded as `%2F`), no `..`, no leading dot, no control characters. It names
 * both the downloaded file and the dataset folder, so it must not walk out of either.
 */
function archiveFileName(url: string): string {
  let base: string;
  try {
    base = decodeURIComponent(new URL(url).pathname.split("/").pop() ?? "");
  } catch {
    throw new Error(`untarData: cannot read an archive file name from ${JSON.stringify(url)}`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[/\\\x00-\x1f]/.test(base) || base.startsWith(".")) {
    throw new Error(
      `untarData: refusing ${url}: its file name ${JSON.stringify(base)} is not a plain file name (it has a path separator, ` +
        `"..", a leading dot or a control character) and could write outside the dataset folders`,
    );
  }
  return base;
}

/** The dataset name of an archive URL: its file name without `.tgz`/`.tar.gz`/`.tar`/`.zip`. */
export function archiveStem(url: string): string {
  const base = archiveFileName(url);
  const stem = base.replace(/\.(tgz|tar\.gz|tar|zip)$/i, "");
  if (!stem || stem === base) {
    throw new Error(`untarData: ${url} does not name a .tgz, .tar.gz, .tar or .zip archive`);
  }
  return stem;
}

/** `folder/name`, checked to stay inside `folder` after resolution (a second line behind `archiveFileName`). */
function inside(folder: string, name: string, url: string): string {
  const p = path.resolve(folder, name);
  const rel = path.relative(folder, p);
  if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel)) {
    throw new Error(`untarData: refusing ${url}: ${JSON.stringify(name)} resolves to ${p}, outside ${folder}`);
  }
  return p;
}

/**
 * Download the archive at `url` (once; resumable; sha256-checked when given) and extract it
 * (once) to `<dest>/<name>`, returning that folder. When the archive holds a single top folder,
 * that folder becomes `<dest>/<name>`, as in fastai. Extraction goes to a temporary folder that
 * is renamed into place last, so an existing `<dest>/<name>` is always complete.
 */
export async function untarData(url: string, opts: UntarDataOptions = {}): Promise<string> {
  const stem = archiveStem(url);
  const dataDir = path.resolve(opts.dest ?? tsfastPath("data"));
  const archiveDir = path.resolve(opts.archiveDir ?? tsfastPath("archive"));
  const target = inside(dataDir, stem, url);
  const archive = inside(archiveDir, archiveFileName(url), url);
  if (opts.force) {
    await fs.promises.rm(target, { recursive: true, force: true });
    await fs.promises.rm(archive, { force: true });
  }
  if (fs.existsSync(target)) return target;

  // An archive downloaded earlier without a checksum is re-checked when one is given now.
  if (opts.sha256 && fs.existsSync(archive) && (await sha256File(archive)) !== opts.sha256.toLowerCase()) {
    await fs.promises.rm(archive, { force: true });
  }
  if (!fs.existsSync(archive)) {
    await downloadFile(url, archive, {
      ...(opts.sha256 !== undefined ? { sha256: opts.sha256 } : {}),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
      ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
      ...(opts.onProgress
        ? { onProgress: opts.onProgress }
        : (opts.showProgress ?? true) && inKernel()
          ? { onProgress: kernelProgress(`Downloading ${path.basename(archive)}`) }
          : {}),
    });
  }

  await fs.promises.mkdir(dataDir, { recursive: true });
  const tmp = await fs.promises.mkdtemp(path.join(dataDir, `.${stem}.extracting-`));
  try {
    if ((await extractArchive(archive, tmp)) === 0) throw new Error(`the archive holds no files`);
    const top = await fs.promises.readdir(tmp, { withFileTypes: true });
    const only = top.length === 1 ? top[0] : undefined;
    const from = only && only.isDirectory() ? path.join(tmp, only.name) : tmp;
    await fs.promises.rename(from, target);
  } catch (e) {
    if (e instanceof Error) {
      e.message = `${e.message} (archive ${archive}, from ${url}; nothing was extracted — delete the archive or pass { force: true } to download it again)`;
    }
    throw e;
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
  return target;
}
