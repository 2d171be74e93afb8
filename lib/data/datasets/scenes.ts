/**
 * "Scenes": 1-3 Twemoji (npm `emoji-datasource-twitter`; by default one seeded emoji per category)
 * pasted at a random scale and position onto a random crop of a real photograph (Debian
 * `mate-backgrounds`), built once with a seed.
 * One picture carries three kinds of target, for the multi-label, key-point and segmentation
 * lessons:
 *   - `labels.csv`: the emoji categories visible in the scene (fastai's Planet layout);
 *   - `points.csv`: the centre of the face, in scenes with exactly one face emoji;
 *   - `masks/`: per-pixel category of the topmost emoji (0 = background).
 *
 * Why not `gnome-backgrounds`: Debian 12 ships GNOME 43's set, which holds 3D renders and
 * patterns (cubes, tiles, a desk of icons), not photographs. `mate-backgrounds` has 12 nature
 * photographs in `nature/` (GPL-2+), the old GNOME photo set.
 *
 * Why blend in JavaScript rather than with sharp's `composite`: the mask must come from the same
 * alpha bytes as the picture. sharp resizes the emoji (premultiplied, so edges keep their colour)
 * and the crop; the blend `out = (a·emoji + (255 - a)·photo) / 255` and the mask (`a > 127`) then
 * read one buffer. 128×128 pixels cost ~0.1 ms to blend.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { buildFolderOnce, classFolderName, mapLimit, type DatasetFolderOptions } from "./folder";
import { emojiByCategory } from "./emoji";
import { encodePng } from "./png";
import { Rng } from "../random";

/** The Debian package whose photographs are the scenes' backgrounds. */
export const SCENE_PHOTOS_PACKAGE = "mate-backgrounds";

/** The emoji category whose emoji are faces: the key-point target is the centre of one. */
export const SCENE_FACE_CATEGORY = "Smileys & Emotion";

/** Where `mate-backgrounds` installs its photographs (override with `TSFAST_SCENE_PHOTOS_DIR`). */
export function scenePhotosDir(): string {
  return process.env.TSFAST_SCENE_PHOTOS_DIR || "/usr/share/backgrounds/mate/nature";
}

/** Options of `emojiScenes`. */
export interface EmojiScenesOptions extends DatasetFolderOptions {
  /** Number of scenes. Default 2000. */
  n?: number;
  /** Side of each square scene in pixels. Default 128. */
  size?: number;
  /** Seed of everything random: photo, crop, emoji, scale, position, split. Default 42. */
  seed?: number;
  /** Fraction of scenes flagged `is_valid`. Default 0.2. */
  validPct?: number;
  /** Most emoji per scene (each scene has 1..maxEmoji, fewer when no free place is found). Default 3. */
  maxEmoji?: number;
  /**
   * Emoji per category (a seeded choice), or 0 for every emoji of it. Default 1: each label is one
   * picture to recognise. With all of them (hundreds per category, a bell and a lamp both `objects`)
   * a small network fine-tuned for a few epochs stays at the all-negative baseline
   * (bench/multilabel_findings.md); 2 or 4 are harder lessons in between.
   */
  emojiPerClass?: number;
  /**
   * Smallest and largest emoji side, as fractions of the scene's side. Default [0.3, 0.6]
   * (38-77 px at 128 px, 19-38 px at the lesson's 64): at [0.2, 0.5] they learn more slowly.
   */
  scale?: readonly [number, number];
  /**
   * Every scene gets exactly one face emoji (its first, drawn last so nothing covers it), the others
   * from the other categories: every scene then has a key point (the lesson's points set). Default false.
   */
  oneFace?: boolean;
}

const DEFAULTS = { n: 2000, size: 128, seed: 42, validPct: 0.2, maxEmoji: 3, emojiPerClass: 1, scale: [0.3, 0.6] as readonly [number, number], oneFace: false };
/** Two emoji may share at most this fraction of the smaller one's box. */
const MAX_OVERLAP = 0.25;
/** Tries at a free position before an emoji is left out. */
const PLACE_TRIES = 20;
/** Photos are kept in memory with this many scene sides on their short edge; crops take 1/4 to all of it. */
const PHOTO_SCALE = 4;

interface Photo {
  name: string;
  data: Buffer;
  width: number;
  height: number;
}

/** One emoji in a scene: its picture, its class (1..K), and its box in scene pixels. */
interface Paste {
  file: string;
  cls: number;
  left: number;
  top: number;
  side: number;
}

interface ScenePlan {
  id: string;
  photo: number;
  crop: { left: number; top: number; side: number };
  pastes: Paste[];
  valid: boolean;
}

/** The classes of the masks: index 0 `background`, then one folder-safe name per emoji category. */
export function sceneCodes(): string[] {
  return ["background", ...[...emojiByCategory().byCat.keys()].map(classFolderName)];
}

/**
 * The emoji to draw from, per class (index 1..K as in `sceneCodes`); in the face category only
 * emoji whose subcategory is a face (`face-smiling`, `cat-face`, ...), not hearts or speech balloons.
 */
function emojiPool(): { files: string[][]; faceClass: number } {
  const { imgDir, byCat } = emojiByCategory();
  const files: string[][] = [[]];
  let faceClass = -1;
  for (const [cat, list] of byCat) {
    const face = cat === SCENE_FACE_CATEGORY;
    if (face) faceClass = files.length;
    files.push(list.filter((e) => !face || e.subcategory.includes("face")).map((e) => path.join(imgDir, e.image)));
  }
  if (faceClass < 0) throw new Error(`emojiScenes: emoji.json has no category "${SCENE_FACE_CATEGORY}"`);
  return { files, faceClass };
}

/** Decode every photograph once, shrunk so its short side is `PHOTO_SCALE × size`. */
async function loadPhotos(size: number): Promise<Photo[]> {
  const dir = scenePhotosDir();
  const hint = `install the Debian package "${SCENE_PHOTOS_PACKAGE}" (sudo apt-get install ${SCENE_PHOTOS_PACKAGE}) or set TSFAST_SCENE_PHOTOS_DIR to a folder of .jpg/.png/.webp photographs`;
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort();
  } catch {
    throw new Error(`emojiScenes: the photo folder ${dir} does not exist: ${hint}`);
  }
  if (names.length === 0) throw new Error(`emojiScenes: no .jpg/.png/.webp photographs in ${dir}: ${hint}`);
  return mapLimit(names, 4, async (name) => {
    const file = path.join(dir, name);
    const meta = await sharp(file).metadata();
    const short = Math.min(meta.width ?? 0, meta.height ?? 0);
    if (short < size) throw new Error(`emojiScenes: photo ${file} is ${meta.width}×${meta.height}, smaller than size ${size}; use a smaller size or remove it`);
    const scale = Math.min(1, (PHOTO_SCALE * size) / short);
    const { data, info } = await sharp(file)
      .resize(Math.round(meta.width! * scale), Math.round(meta.height! * scale))
      .removeAlpha()
      .toColourspace("srgb")
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { name, data, width: info.width, height: info.height };
  });
}

/** Area of the intersection of two boxes. */
function overlap(a: Paste, b: Paste): number {
  const w = Math.min(a.left + a.side, b.left + b.side) - Math.max(a.left, b.left);
  const h = Math.min(a.top + a.side, b.top + b.side) - Math.max(a.top, b.top);
  return w > 0 && h > 0 ? w * h : 0;
}

/**
 * Every random choice of every scene, drawn in order from one generator (so the files depend
 * only on the options), before any pixel is touched.
 */
function planScenes(o: typeof DEFAULTS, photos: Photo[], pool: { files: string[][]; faceClass: number }): ScenePlan[] {
  const rng = new Rng(o.seed);
  // The split is its own stream, so the same scene keeps its flag when only validPct changes.
  const validIdx = new Set(rng.fork().permutation(o.n).slice(0, Math.round(o.n * o.validPct)));
  const K = pool.files.length - 1;
  // Its own stream too, drawn only when used: `emojiPerClass: 0` with `scale: [0.2, 0.5]` are the scenes of version 1.
  const files = o.emojiPerClass > 0 ? pool.files.map((list) => { const r = rng.fork(); return r.permutation(list.length).slice(0, o.emojiPerClass).map((j) => list[j]!); }) : pool.files;
  const width = Math.max(5, String(o.n - 1).length);
  const plans: ScenePlan[] = [];
  for (let i = 0; i < o.n; i++) {
    const photo = rng.int(photos.length);
    const p = photos[photo]!;
    const cropSide = Math.floor(rng.uniform(o.size, Math.min(p.width, p.height) + 1));
    const crop = { left: rng.int(p.width - cropSide + 1), top: rng.int(p.height - cropSide + 1), side: cropSide };
    const count = 1 + rng.int(o.maxEmoji);
    const pastes: Paste[] = [];
    for (let k = 0; k < count; k++) {
      let cls = 1 + rng.int(o.oneFace ? K - 1 : K);
      if (o.oneFace) cls = k === 0 ? pool.faceClass : cls >= pool.faceClass ? cls + 1 : cls;
      const choices = files[cls]!;
      const file = choices[rng.int(choices.length)]!;
      const side = Math.round(rng.uniform(o.scale[0], o.scale[1]) * o.size);
      for (let t = 0; t < PLACE_TRIES; t++) {
        const cand = { file, cls, side, left: rng.int(o.size - side + 1), top: rng.int(o.size - side + 1) };
        if (pastes.every((q) => overlap(cand, q) <= MAX_OVERLAP * Math.min(cand.side, q.side) ** 2)) {
          pastes.push(cand);
          break;
        }
      }
    }
    // A lone face is drawn last, so nothing covers the key point.
    const faces = pastes.filter((q) => q.cls === pool.faceClass);
    if (faces.length === 1) pastes.push(...pastes.splice(pastes.indexOf(faces[0]!), 1));
    plans.push({ id: String(i).padStart(width, "0"), photo, crop, pastes, valid: validIdx.has(i) });
  }
  return plans;
}

/** Render one scene: the RGB picture and its class-index mask, both `size × size`. */
async function renderScene(plan: ScenePlan, photo: Photo, size: number): Promise<{ rgb: Uint8Array; mask: Uint8Array }> {
  const rgb = new Uint8Array(
    await sharp(photo.data, { raw: { width: photo.width, height: photo.height, channels: 3 } })
      .extract({ left: plan.crop.left, top: plan.crop.top, width: plan.crop.side, height: plan.crop.side })
      .resize(size, size)
      .raw()
      .toBuffer(),
  );
  const mask = new Uint8Array(size * size);
  for (const p of plan.pastes) {
    const rgba = await sharp(p.file).ensureAlpha().resize(p.side, p.side).raw().toBuffer();
    for (let y = 0; y < p.side; y++) {
      for (let x = 0; x < p.side; x++) {
        const s = (y * p.side + x) * 4;
        const a = rgba[s + 3]!;
        if (a === 0) continue;
        const d = (p.top + y) * size + (p.left + x);
        for (let c = 0; c < 3; c++) rgb[d * 3 + c] = Math.round((rgba[s + c]! * a + rgb[d * 3 + c]! * (255 - a)) / 255);
        if (a > 127) mask[d] = p.cls;
      }
    }
  }
  return { rgb, mask };
}

function checkOptions(opts: EmojiScenesOptions): typeof DEFAULTS {
  const o = {
    n: opts.n ?? DEFAULTS.n,
    size: opts.size ?? DEFAULTS.size,
    seed: opts.seed ?? DEFAULTS.seed,
    validPct: opts.validPct ?? DEFAULTS.validPct,
    maxEmoji: opts.maxEmoji ?? DEFAULTS.maxEmoji,
    emojiPerClass: opts.emojiPerClass ?? DEFAULTS.emojiPerClass,
    scale: opts.scale ?? DEFAULTS.scale,
    oneFace: opts.oneFace ?? DEFAULTS.oneFace,
  };
  const whole = (v: number, lo: number, hi: number) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!whole(o.n, 1, 1_000_000)) throw new Error(`emojiScenes: n must be a whole number of scenes from 1 to 1000000, got ${o.n}`);
  if (!whole(o.size, 32, 1024)) throw new Error(`emojiScenes: size must be a whole number of pixels from 32 to 1024, got ${o.size}`);
  if (!Number.isFinite(o.seed)) throw new Error(`emojiScenes: seed must be a finite number, got ${o.seed}`);
  if (!(o.validPct > 0 && o.validPct < 1)) throw new Error(`emojiScenes: validPct must be in (0, 1), got ${o.validPct}`);
  if (!whole(o.maxEmoji, 1, 8)) throw new Error(`emojiScenes: maxEmoji must be a whole number from 1 to 8, got ${o.maxEmoji}`);
  if (!whole(o.emojiPerClass, 0, 10_000)) throw new Error(`emojiScenes: emojiPerClass must be a whole number (0 for all), got ${o.emojiPerClass}`);
  const [lo, hi] = o.scale;
  if (!(o.scale.length === 2 && lo! > 0 && lo! <= hi! && hi! <= 1)) throw new Error(`emojiScenes: scale must be [min, max] with 0 < min <= max <= 1, got ${JSON.stringify(o.scale)}`);
  return o;
}

/**
 * Build the scenes once into `$TSFAST_HOME/data/emoji-scenes` (other options: a folder named
 * after them) and return the folder: `images/<id>.png`, `masks/<id>.png`, `labels.csv`,
 * `points.csv`, `codes.txt` (see datasets/README.md).
 */
export async function emojiScenes(opts: EmojiScenesOptions = {}): Promise<string> {
  const o = checkOptions(opts);
  const parts = ["emoji-scenes"];
  if (o.n !== DEFAULTS.n) parts.push(`n${o.n}`);
  if (o.size !== DEFAULTS.size) parts.push(`px${o.size}`);
  if (o.seed !== DEFAULTS.seed) parts.push(`s${o.seed}`);
  if (o.validPct !== DEFAULTS.validPct) parts.push(`v${o.validPct}`);
  if (o.maxEmoji !== DEFAULTS.maxEmoji) parts.push(`m${o.maxEmoji}`);
  if (o.emojiPerClass !== DEFAULTS.emojiPerClass) parts.push(`e${o.emojiPerClass}`);
  if (o.scale[0] !== DEFAULTS.scale[0] || o.scale[1] !== DEFAULTS.scale[1]) parts.push(`sc${o.scale[0]}_${o.scale[1]}`);
  if (o.oneFace) parts.push("faces");
  const photoNames = fs.existsSync(scenePhotosDir()) ? fs.readdirSync(scenePhotosDir()).sort() : [];
  // (oneFace joins the key only when set, so the default scenes keep their key and are not rebuilt)
  const { oneFace, ...rest } = o;
  const key = { ...rest, ...(oneFace ? { oneFace } : {}), photos: photoNames, version: 2 };
  return buildFolderOnce(parts.join("-"), key, opts, async (dir) => {
    const photos = await loadPhotos(o.size);
    const pool = emojiPool();
    const codes = sceneCodes();
    const plans = planScenes(o, photos, pool);
    await fs.promises.mkdir(path.join(dir, "images"));
    await fs.promises.mkdir(path.join(dir, "masks"));
    const rows = await mapLimit(plans, 8, async (plan) => {
      const { rgb, mask } = await renderScene(plan, photos[plan.photo]!, o.size);
      const fname = `${plan.id}.png`;
      await fs.promises.writeFile(path.join(dir, "images", fname), encodePng(rgb, o.size, o.size, 3));
      await fs.promises.writeFile(path.join(dir, "masks", fname), encodePng(mask, o.size, o.size, 1));
      // Labels are what the mask shows, so an emoji hidden under another is not claimed.
      const present = [...new Set(mask)].filter((c) => c > 0).sort((a, b) => a - b);
      const label = `${fname},${present.map((c) => codes[c]).join(" ")},${plan.valid ? "True" : "False"}`;
      const faces = plan.pastes.filter((p) => p.cls === pool.faceClass);
      let point: string | undefined;
      if (faces.length === 1) {
        const f = faces[0]!;
        const x = f.left + f.side / 2;
        const y = f.top + f.side / 2;
        // The centre of a face is opaque in every Twemoji face; check rather than trust.
        if (mask[Math.floor(y) * o.size + Math.floor(x)] === pool.faceClass) point = `${fname},${x},${y}`;
      }
      return { label, point };
    });
    const lines = (header: string, body: (string | undefined)[]) => [header, ...body.filter((l) => l !== undefined)].join("\n") + "\n";
    await fs.promises.writeFile(path.join(dir, "labels.csv"), lines("fname,labels,is_valid", rows.map((r) => r.label)));
    await fs.promises.writeFile(path.join(dir, "points.csv"), lines("fname,x,y", rows.map((r) => r.point)));
    await fs.promises.writeFile(path.join(dir, "codes.txt"), codes.join("\n") + "\n");
  });
}
