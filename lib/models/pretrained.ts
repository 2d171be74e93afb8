/**
 * Where pretrained weights come from: the known-URL table, the cache folder, downloads, and the
 * checkpoints shipped inside the package.
 *
 * Cache: `$TSFAST_HOME/models/` (default `~/.tsfast/models/`). A URL is downloaded once; when its
 * sha256 is known the file is checked before it is used.
 */
import { createHash } from "node:crypto";
import { imagenetStats } from "../data/augment";
import { existsSync, promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** One entry of the known-weights table. */
export interface KnownWeights {
  /** Where the `.safetensors` file lives. */
  url: string;
  /** Its sha256 in hex, when published (checked after download). */
  sha256?: string;
  /** Normalisation the weights were trained with. */
  stats: { mean: number[]; std: number[] };
  /** Licence of the weights. */
  license: string;
}

/** ImageNet channel statistics (RGB) as `{ mean, std }`, as torchvision and fastai use them. */
export const IMAGENET_STATS = { mean: imagenetStats[0], std: imagenetStats[1] };

/**
 * The default pretrained weights of each architecture (`pretrained: true`): timm's Hugging Face
 * copies of torchvision's ImageNet weights (same tensor names as torchvision) and timm's ResNet-D
 * weights for the xresnets (same layout as fastai's xresnet).
 */
export const KNOWN_WEIGHTS: Record<string, KnownWeights> = {
  resnet18: { url: "https://huggingface.co/timm/resnet18.tv_in1k/resolve/main/model.safetensors", stats: IMAGENET_STATS, license: "BSD-3-Clause" },
  resnet34: { url: "https://huggingface.co/timm/resnet34.tv_in1k/resolve/main/model.safetensors", stats: IMAGENET_STATS, license: "BSD-3-Clause" },
  resnet50: { url: "https://huggingface.co/timm/resnet50.tv_in1k/resolve/main/model.safetensors", stats: IMAGENET_STATS, license: "BSD-3-Clause" },
  resnet101: { url: "https://huggingface.co/timm/resnet101.tv_in1k/resolve/main/model.safetensors", stats: IMAGENET_STATS, license: "BSD-3-Clause" },
  xresnet18: { url: "https://huggingface.co/timm/resnet18d.ra2_in1k/resolve/main/model.safetensors", stats: IMAGENET_STATS, license: "Apache-2.0" },
  xresnet34: { url: "https://huggingface.co/timm/resnet34d.ra2_in1k/resolve/main/model.safetensors", stats: IMAGENET_STATS, license: "Apache-2.0" },
  xresnet50: { url: "https://huggingface.co/timm/resnet50d.ra2_in1k/resolve/main/model.safetensors", stats: IMAGENET_STATS, license: "Apache-2.0" },
};

/** The shipped backbone for grey images (lesson 1's digits network); see `shippedDefault`. */
export const SHIPPED_GREY = "digits04-xresnet18-tiny";
/** The shipped backbone for colour images (pretrained offline on emoji and icons); see `shippedDefault`. */
export const SHIPPED_COLOUR = "colour-xresnet18-small";
/** The shipped English language model (AWD-LSTM pretrained offline on Moby-Dick and the State of the Union addresses); `languageModelLearner`'s `pretrained: "shipped"`. */
export const SHIPPED_LM = "english-awd-lstm-small";
/** The shipped e-mail language model: the English one pretrained further on `emailCorpus()` (the pretraining half of SpamAssassin). */
export const SHIPPED_EMAIL_LM = "email-awd-lstm-small";

/** The cache folder for downloaded weights: `$TSFAST_HOME/models` (default `~/.tsfast/models`). */
export function modelsCacheDir(): string {
  const home = process.env["TSFAST_HOME"] || path.join(os.homedir(), ".tsfast");
  return path.join(home, "models");
}

/** The package root (holds `checkpoints/`), found from this compiled file's place in `dist/lib/models`. */
function packageRoot(): string {
  for (const up of ["../../..", "../.."]) {
    const root = path.resolve(__dirname, up);
    if (existsSync(path.join(root, "package.json"))) return root;
  }
  return path.resolve(__dirname, "../../..");
}

/** The path of a checkpoint shipped with tsfast, e.g. `shippedCheckpoint("fmnist-xresnet18-tiny")`. */
export function shippedCheckpoint(name: string): string {
  const file = name.endsWith(".safetensors") ? name : `${name}.safetensors`;
  const p = path.join(packageRoot(), "checkpoints", file);
  if (!existsSync(p)) throw new Error(`no shipped checkpoint "${name}": ${p} does not exist (see checkpoints/MODEL_CARD.md)`);
  return p;
}

async function sha256(file: string): Promise<string> {
  return createHash("sha256").update(await fsp.readFile(file)).digest("hex");
}

/** The cache file name of a URL: `<host>_<path with / → _>`, so two sources never collide. */
function cacheName(url: string): string {
  const u = new URL(url);
  return `${u.host}${u.pathname}`.replace(/[^A-Za-z0-9._-]+/g, "_");
}

/**
 * A local path for weights given as a path or an http(s) URL: URLs are downloaded once into the
 * cache (checked against `sha256` when given); paths must exist.
 */
export async function resolveWeightsFile(src: string, opts: { sha256?: string; what?: string } = {}): Promise<string> {
  const what = opts.what ?? "weights";
  if (!/^https?:\/\//.test(src)) {
    if (!existsSync(src)) throw new Error(`${what}: the file ${src} does not exist`);
    return src;
  }
  const dir = modelsCacheDir();
  const dest = path.join(dir, cacheName(src));
  if (existsSync(dest)) {
    if (!opts.sha256 || (await sha256(dest)) === opts.sha256) return dest;
    await fsp.rm(dest); // a stale or corrupt copy: fetch again
  }
  await fsp.mkdir(dir, { recursive: true });
  let res: Response;
  try {
    res = await fetch(src);
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
    throw new Error(
      `${what}: could not download ${src} (${cause}). This machine seems to be offline: download the file ` +
        `elsewhere and either put it at ${dest} or pass its path (pretrained: "/path/to/file.safetensors").`,
    );
  }
  if (!res.ok) throw new Error(`${what}: downloading ${src} failed with HTTP ${res.status} ${res.statusText}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  const tmp = `${dest}.part`;
  await fsp.writeFile(tmp, bytes);
  if (opts.sha256) {
    const got = createHash("sha256").update(bytes).digest("hex");
    if (got !== opts.sha256) {
      await fsp.rm(tmp);
      throw new Error(`${what}: ${src} has sha256 ${got}, expected ${opts.sha256}; the download is corrupt or the file changed`);
    }
  }
  await fsp.rename(tmp, dest);
  return dest;
}
