/**
 * Twemoji pictures (npm `emoji-datasource-twitter`, 64×64 PNG, graphics CC-BY 4.0) arranged by
 * their Unicode emoji category into `train/<category>/` and `valid/<category>/` folders.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { buildFolderOnce, npmPackageDir, classFolderName, mapLimit, type DatasetFolderOptions } from "./folder";
import { Rng } from "../random";

/**
 * Categories left out: "Component" holds the five skin-tone swatches (flat colour squares, not
 * pictures of anything). Flags are kept: they are real pictures with a clear shared look.
 */
export const EMOJI_SKIPPED_CATEGORIES: readonly string[] = ["Component"];

/** Options of `emojiCategories`. */
export interface EmojiCategoriesOptions extends DatasetFolderOptions {
  /** Fraction of each category's emoji put in `valid/`. Default 0.2. */
  validPct?: number;
  /** Seed of the train/valid split. Default 42. */
  seed?: number;
  /**
   * Include the skin-tone variants (1,875 near-copies of People & Body emoji); each variant goes
   * to the same split as its base emoji so validation never sees a recoloured training image.
   * Default false (about 1,900 images; with variants People & Body would be 60% of the set).
   */
  skinTones?: boolean;
  /**
   * What to do with transparency: `"white"` or `"black"` composites onto that colour and saves RGB;
   * `"keep"` saves RGBA as shipped. Default `"white"` (what the pictures look like on a page).
   */
  alpha?: "white" | "black" | "keep";
  /**
   * Only these Unicode emoji categories, by name (`"Animals & Nature"`, `"Food & Drink"`, ...).
   * Default: every category but the skipped ones.
   */
  categories?: readonly string[];
}

/** One emoji of `emoji.json` (the fields tsfast reads). */
export interface EmojiEntry {
  image: string;
  category: string;
  subcategory: string;
  has_img_twitter?: boolean;
  skin_variations?: Record<string, { image: string; has_img_twitter?: boolean }>;
}

function emojiPackageDir(): string {
  return npmPackageDir("emoji-datasource-twitter", "the emoji datasets");
}

/**
 * The emoji that have a 64×64 Twemoji picture, grouped by category (sorted by category, then by
 * file name, so nothing depends on the JSON order), without the `EMOJI_SKIPPED_CATEGORIES`.
 */
export function emojiByCategory(): { imgDir: string; byCat: Map<string, EmojiEntry[]> } {
  const pkg = emojiPackageDir();
  const imgDir = path.join(pkg, "img", "twitter", "64");
  const entries = JSON.parse(fs.readFileSync(path.join(pkg, "emoji.json"), "utf8")) as EmojiEntry[];
  const byCat = new Map<string, EmojiEntry[]>();
  for (const e of entries) {
    if (EMOJI_SKIPPED_CATEGORIES.includes(e.category) || e.has_img_twitter === false) continue;
    if (!fs.existsSync(path.join(imgDir, e.image))) continue;
    const list = byCat.get(e.category) ?? [];
    list.push(e);
    byCat.set(e.category, list);
  }
  const sorted = [...byCat.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  return { imgDir, byCat: new Map(sorted.map(([c, list]) => [c, list.slice().sort((a, b) => a.image.localeCompare(b.image))])) };
}

/** One picture of the emoji set: its source file and where it goes. */
export interface EmojiItem {
  src: string;
  split: "train" | "valid";
  folder: string;
  file: string;
}

/** The seeded per-category split of the emoji pictures, without writing anything. */
export function planEmojiCategories(opts: { validPct: number; seed: number; skinTones: boolean; categories?: readonly string[] }): EmojiItem[] {
  const { imgDir, byCat: all } = emojiByCategory();
  const unknown = (opts.categories ?? []).filter((c) => !all.has(c));
  if (unknown.length) {
    throw new Error(`emojiCategories: unknown categories ${JSON.stringify(unknown)}; the categories are ${JSON.stringify([...all.keys()])}`);
  }
  const byCat = opts.categories ? new Map([...all].filter(([c]) => opts.categories!.includes(c))) : all;
  const items: EmojiItem[] = [];
  for (const [cat, list] of byCat) {
    const folder = classFolderName(cat);
    const shuffled = new Rng(opts.seed).shuffle(list);
    const nValid = Math.max(1, Math.round(shuffled.length * opts.validPct));
    shuffled.forEach((e, i) => {
      const split = i < nValid ? "valid" : "train";
      const images = [e.image];
      if (opts.skinTones) {
        for (const v of Object.values(e.skin_variations ?? {})) {
          if (v.has_img_twitter !== false && fs.existsSync(path.join(imgDir, v.image))) images.push(v.image);
        }
      }
      for (const file of images) items.push({ src: path.join(imgDir, file), split, folder, file });
    });
  }
  return items;
}

/**
 * Materialise Twemoji pictures once as class folders named after their emoji category
 * (`smileys-emotion`, `animals-nature`, ...), split per category with a seed; returns the folder.
 */
export async function emojiCategories(opts: EmojiCategoriesOptions = {}): Promise<string> {
  const validPct = opts.validPct ?? 0.2;
  const seed = opts.seed ?? 42;
  const skinTones = opts.skinTones ?? false;
  const alpha = opts.alpha ?? "white";
  if (!(validPct > 0 && validPct < 1)) throw new Error(`emojiCategories: validPct must be in (0, 1), got ${validPct}`);
  if (!["white", "black", "keep"].includes(alpha)) throw new Error(`emojiCategories: alpha must be "white", "black" or "keep", got ${JSON.stringify(alpha)}`);
  const categories = opts.categories ? [...new Set(opts.categories)].sort() : undefined;
  const parts = ["emoji-categories"];
  if (categories) parts.push(...categories.map(classFolderName));
  if (skinTones) parts.push("skin");
  if (alpha !== "white") parts.push(alpha);
  if (seed !== 42 || validPct !== 0.2) parts.push(`s${seed}-v${validPct}`);
  const key = { validPct, seed, skinTones, alpha, version: 2, ...(categories ? { categories } : {}) };
  return buildFolderOnce(parts.join("-"), key, opts, async (dir) => {
    const jobs = planEmojiCategories({ validPct, seed, skinTones, categories }).map((j) => ({ src: j.src, dst: path.join(dir, j.split, j.folder, j.file) }));
    for (const d of new Set(jobs.map((j) => path.dirname(j.dst)))) await fs.promises.mkdir(d, { recursive: true });
    await mapLimit(jobs, 8, async ({ src, dst }) => {
      if (alpha === "keep") await fs.promises.copyFile(src, dst);
      else {
        const bg = alpha === "white" ? { r: 255, g: 255, b: 255 } : { r: 0, g: 0, b: 0 };
        await sharp(src).flatten({ background: bg }).png().toFile(dst);
      }
    });
  });
}
