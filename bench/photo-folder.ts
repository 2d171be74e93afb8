/**
 * The image folders the data and end-to-end benches read: the emoji-datasource-twitter PNGs
 * (64 px) re-encoded at photo sizes (500×375, 480×480, 640×480, 375×500), one sub-folder per
 * class (`c0`..`c3`, the folder name is the label). Made once under $TMPDIR and reused.
 *
 * - `"mixed"` (bench/data.ts): three in four JPEG (quality 90), one in four PNG, classes by index
 *   (the labels carry no signal; that bench only reads the pixels).
 * - `"jpeg"` (bench/e2e.ts): every image a JPEG, as lesson 1's photos; each class has its own
 *   background hue so that a model can learn the labels and the error rate says training works.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";

export type FolderKind = "mixed" | "jpeg";

const SIZES: [number, number][] = [[500, 375], [480, 480], [640, 480], [375, 500]];
/** Background of class `c` in the `"jpeg"` folder: four distinct hues, varied a little per image. */
const CLASS_BG: [number, number, number][] = [[200, 60, 60], [60, 170, 70], [60, 90, 210], [210, 190, 50]];

/** The folder of `n` images of `kind`, made on first use under `$TMPDIR/tsfast-bench-<data|jpeg>-<n>`. */
export async function makeFolder(n: number, kind: FolderKind = "mixed"): Promise<string> {
  const dir = path.join(os.tmpdir(), `tsfast-bench-${kind === "mixed" ? "data" : "jpeg"}-${n}`);
  if (fs.existsSync(path.join(dir, ".done"))) return dir;
  const src = path.join(__dirname, "../../node_modules/emoji-datasource-twitter/img/twitter/64");
  const files = fs.readdirSync(src).filter((f) => f.endsWith(".png")).sort().slice(0, n);
  if (files.length < n) throw new Error(`makeFolder: only ${files.length} source PNGs in ${src}, asked for ${n}`);
  let k = 0;
  for (const f of files) {
    const c = k % 4;
    const cls = `c${c}`;
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    const [w, h] = SIZES[k % SIZES.length]!;
    let background = { r: 40 + (k % 200), g: 120, b: 200 };
    if (kind === "jpeg") {
      const [r, g, b] = CLASS_BG[c]!;
      const jitter = (k * 37) % 41 - 20; // -20..20, so no two neighbours share the exact colour
      background = { r: r + jitter, g: g - jitter, b: b + Math.round(jitter / 2) };
    }
    const img = sharp(path.join(src, f)).flatten({ background }).resize(w, h, { fit: "fill", kernel: "cubic" });
    if (kind === "mixed" && k % 4 === 3) await img.png().toFile(path.join(dir, cls, f));
    else await img.jpeg({ quality: 90 }).toFile(path.join(dir, cls, f.replace(/\.png$/, ".jpg")));
    k++;
  }
  fs.writeFileSync(path.join(dir, ".done"), "");
  return dir;
}
