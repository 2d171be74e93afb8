/**
 * `ImageClassifierCleaner`: fastai's data cleaner without ipywidgets. `show` renders one class
 * of one split, largest loss first, with keep / delete / move-to-class choices; the page turns
 * the choices into an `await cleaner.apply([...])` line (or a JSON file), and `apply` carries
 * them out on disk — only inside the dataset root, never overwriting a file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "../engine/tf";
import { ready } from "../engine/backend";
import { showHtml, showText } from "../display/display";
import { tensorToPng } from "../display/image";
import { ClassificationInterpretation } from "./interpretation";
import { cleanerHtml, type CleanerCard } from "./cleaner-page";
import { withSummary } from "./report";
import type { InterpretableLearner } from "../learner/contracts";
import { vocabOf } from "./loaders";

/** One choice made on the cleaner page (images kept need no decision). */
export type CleanerDecision =
  | { path: string; action: "keep" }
  | { path: string; action: "delete" }
  | { path: string; action: "move"; to: string };

/** Options of `new ImageClassifierCleaner`. */
export interface CleanerOptions {
  /** The dataset root: `apply` refuses to delete, move or create anything outside it. Required. */
  root: string;
  /** Images per view. Default `20` (fastai's `max_n`). */
  maxN?: number;
  /** Thumbnail side in pixels. Default `128` (fastai's). */
  size?: number;
  /** Name of the cleaner variable in the notebook, written into the generated code line. Default `"cleaner"`. */
  varName?: string;
  /**
   * Folder a file moves to for class `to`. Default: the sibling folder `to` of the file's class
   * folder (`root/train/cat/x.jpg` → `root/train/dog/`), fastai's `parent_label` layout.
   */
  moveTo?: (file: string, to: string) => string;
}

/** Options of `cleaner.show` / `cleaner.html`. */
export interface CleanerShowOptions {
  /** Class to review. Default: the first of the vocab. */
  category?: string;
  /** Split to review. Default `"train"` (fastai's). */
  split?: "train" | "valid";
  /** Images to show. Default: the cleaner's `maxN`. */
  maxN?: number;
}

/** Options of `cleaner.apply`. */
export interface ApplyOptions {
  /** Only check and report, touch nothing. Default `false`. */
  dryRun?: boolean;
  /** Print the report. Default `true`. */
  verbose?: boolean;
}

/** What `apply` did. */
export interface CleanerReport {
  /** Absolute paths deleted. */
  deleted: string[];
  /** Absolute paths moved; `to` differs from `dir/basename` when a file of that name existed. */
  moved: { from: string; to: string }[];
  /** Decisions that were `keep`. */
  kept: number;
  dryRun: boolean;
  /** A short summary, the same text `apply` prints. */
  text: string;
}

let viewCounter = 0;

/** Review a classifier's training or validation images class by class, largest loss first, and clean them on disk. */
export class ImageClassifierCleaner {
  readonly root: string;
  readonly vocab: readonly string[];
  private readonly learn: InterpretableLearner | undefined;
  private readonly interps: (ClassificationInterpretation | undefined)[] = [undefined, undefined];
  private readonly opts: Required<Omit<CleanerOptions, "moveTo" | "root">> & Pick<CleanerOptions, "moveTo">;

  /** From a learner (predictions per split computed on first `show`) or an interpretation of one split. */
  constructor(source: InterpretableLearner | ClassificationInterpretation, opts: CleanerOptions) {
    if (!opts || typeof opts.root !== "string" || opts.root === "") {
      throw new Error("ImageClassifierCleaner needs { root }: the dataset folder it may change, e.g. { root: path }");
    }
    if (!fs.existsSync(opts.root) || !fs.statSync(opts.root).isDirectory()) {
      throw new Error(`ImageClassifierCleaner: root "${opts.root}" is not a folder`);
    }
    this.root = fs.realpathSync(path.resolve(opts.root));
    if (source instanceof ClassificationInterpretation) {
      this.interps[source.dsIdx] = source;
      this.vocab = source.vocab;
    } else {
      this.learn = source;
      this.vocab = vocabOf(source.dls);
    }
    this.opts = { maxN: opts.maxN ?? 20, size: opts.size ?? 128, varName: opts.varName ?? "cleaner", moveTo: opts.moveTo };
  }

  private async interp(dsIdx: number): Promise<ClassificationInterpretation> {
    const have = this.interps[dsIdx];
    if (have) return have;
    if (!this.learn) {
      const split = dsIdx === 0 ? "train" : "valid";
      throw new Error(`this cleaner was built from an interpretation of the other split; it has no "${split}" predictions`);
    }
    const made = await ClassificationInterpretation.fromLearner(this.learn, { dsIdx });
    this.interps[dsIdx] = made;
    return made;
  }

  /** The HTML of one class / split view, without displaying it. */
  async html(opts: CleanerShowOptions = {}): Promise<string> {
    const { category = this.vocab[0] ?? "", split = "train", maxN = this.opts.maxN } = opts;
    await ready();
    const k = this.vocab.indexOf(category);
    if (k < 0) throw new Error(`category "${category}" is not a class; the classes are ${this.vocab.join(", ")}`);
    if (split !== "train" && split !== "valid") throw new Error(`split must be "train" or "valid", got "${String(split)}"`);
    const interp = await this.interp(split === "train" ? 0 : 1);
    const items = interp.items;
    if (!items || !interp.dl) throw new Error("the cleaner needs items and images: build the interpretation with `fromLearner`");
    // Items of this class still on disk (earlier `apply` calls may have moved some), largest loss first.
    const order = interp
      .topLosses()
      .indices.filter((i) => interp.targets[i] === k)
      .filter((i) => typeof items[i] === "string" && fs.existsSync(items[i] as string));
    const shown = order.slice(0, maxN);
    const cards: CleanerCard[] = [];
    for (const i of shown) {
      const file = items[i] as string;
      const img = await interp.loadImage(i);
      const thumb = tf.tidy(() => {
        const [h, w] = img.shape;
        const scale = Math.min(1, this.opts.size / Math.max(h, w));
        if (scale >= 1) return img.clone();
        return tf.image.resizeBilinear(img, [Math.max(1, Math.round(h * scale)), Math.max(1, Math.round(w * scale))]);
      });
      img.dispose();
      try {
        cards.push({
          path: this.relative(file),
          png: await tensorToPng(thumb),
          caption: `loss ${interp.losses[i]!.toFixed(2)} · pred ${interp.vocab[interp.decoded[i]!]}`,
        });
      } finally {
        thumb.dispose();
      }
    }
    viewCounter += 1;
    return cleanerHtml({
      id: `tsfast-cleaner-${viewCounter}-${Date.now().toString(36)}`,
      heading: `${category} — ${split} — ${shown.length} of ${order.length} images, largest loss first`,
      category,
      vocab: this.vocab,
      cards,
      varName: this.opts.varName,
      size: this.opts.size,
    });
  }

  /** Show one class / split view inline; pick choices there, then run the line it gives you. */
  async show(opts: CleanerShowOptions = {}): Promise<void> {
    const { category = this.vocab[0] ?? "", split = "train" } = opts;
    showHtml(await this.html(opts), `[image cleaner: ${category} (${split}); its choices need a notebook front end]`);
  }

  /**
   * Carry out the decisions from the page (or from the path of a downloaded
   * `cleaner-decisions.json`): delete files, or move them into another class's folder. Every
   * decision is checked first — a path outside the root, a missing file, an unknown class or a
   * file named twice refuses the whole batch and touches nothing. Rebuild your `DataLoaders`
   * afterwards: they still list the old files.
   */
  async apply(decisions?: readonly CleanerDecision[] | string, opts: ApplyOptions = {}): Promise<CleanerReport> {
    if (decisions === undefined) {
      throw new Error("apply needs the decisions: paste the line the cleaner page gives you, or pass the path of cleaner-decisions.json");
    }
    if (typeof decisions !== "string" && !Array.isArray(decisions)) {
      throw new Error(
        `apply expects an array of decisions like [{ path: "cat/1.jpg", action: "delete" }, { path: "cat/2.jpg", action: "move", to: "dog" }] ` +
          `(the line the cleaner page gives you) or the path of cleaner-decisions.json; got ${describeValue(decisions)}`,
      );
    }
    const list = typeof decisions === "string" ? readDecisionsFile(decisions) : decisions;
    const report = applyDecisions(list, { root: this.root, vocab: this.vocab, moveTo: this.opts.moveTo, dryRun: opts.dryRun ?? false });
    if (opts.verbose ?? true) showText(report.text);
    return report;
  }

  /** `file` (an item: absolute, or relative to the working folder) relative to the root when inside it (what the page writes), else absolute. */
  private relative(file: string): string {
    const abs = realish(path.resolve(file));
    const rel = path.relative(this.root, abs);
    return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel.split(path.sep).join("/") : abs;
  }
}

/** What a wrong argument was, for an error message: `an object with keys a, b`, `null`, `the number 3`. */
function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "object") {
    const keys = Object.keys(v as object);
    return keys.length ? `an object with keys ${keys.slice(0, 5).join(", ")}` : "an empty object {}";
  }
  return `the ${typeof v} ${JSON.stringify(v)}`;
}

/** Read a decisions file the cleaner page let you download (a JSON array of decisions). */
export function readDecisionsFile(file: string): CleanerDecision[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`cannot read cleaner decisions from "${file}": ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!Array.isArray(parsed)) throw new Error(`"${file}" should hold a JSON array of decisions, like the cleaner page downloads`);
  return parsed as CleanerDecision[];
}

/** Options of `applyDecisions`. */
export interface ApplyDecisionsOptions {
  /** Dataset root; relative decision paths are relative to it, and nothing outside it is touched. */
  root: string;
  /** Allowed move targets. Default: any plain folder name. */
  vocab?: readonly string[];
  /** See `CleanerOptions.moveTo`. */
  moveTo?: (file: string, to: string) => string;
  /** Only check and report. Default `false`. */
  dryRun?: boolean;
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel !== "" && !rel.startsWith(".." + path.sep) && rel !== ".." && !path.isAbsolute(rel);
}

/** The real path of `p`, or of its nearest existing ancestor joined with the rest (for folders yet to be made). */
function realish(p: string): string {
  const rest: string[] = [];
  let cur = p;
  while (!fs.existsSync(cur)) {
    const up = path.dirname(cur);
    if (up === cur) break;
    rest.unshift(path.basename(cur));
    cur = up;
  }
  return path.join(fs.realpathSync(cur), ...rest);
}

type Plan = { kind: "delete"; file: string } | { kind: "move"; file: string; dir: string } | { kind: "keep" };

/**
 * Check every decision against `root` (and `vocab`), then — unless `dryRun` — delete or move the
 * files; a move never overwrites: a taken name gets `_1`, `_2`, ... before its extension.
 */
export function applyDecisions(decisions: readonly CleanerDecision[], opts: ApplyDecisionsOptions): CleanerReport {
  const root = fs.realpathSync(path.resolve(opts.root));
  const dryRun = opts.dryRun ?? false;
  const problems: string[] = [];
  const plans: Plan[] = [];
  const seen = new Set<string>();
  decisions.forEach((d, n) => {
    const where = `decision ${n} (${JSON.stringify((d as { path?: unknown })?.path)})`;
    if (!d || typeof d !== "object" || typeof d.path !== "string" || d.path === "") {
      problems.push(`decision ${n} has no "path"`);
      return;
    }
    if (d.action === "keep") {
      plans.push({ kind: "keep" });
      return;
    }
    if (d.action !== "delete" && d.action !== "move") {
      problems.push(`${where}: action must be "keep", "delete" or "move", got ${JSON.stringify((d as { action?: unknown }).action)}`);
      return;
    }
    const given = path.resolve(root, d.path);
    if (!fs.existsSync(given)) {
      problems.push(`${where}: no such file ${given}`);
      return;
    }
    // Resolve symlinks so that a link inside the root cannot reach a file outside it.
    const file = fs.realpathSync(given);
    if (!isInside(root, file)) {
      problems.push(`${where}: ${file} is outside the dataset root ${root}; refused`);
      return;
    }
    if (!fs.statSync(file).isFile()) {
      problems.push(`${where}: ${file} is not a file`);
      return;
    }
    if (seen.has(file)) {
      problems.push(`${where}: ${file} has more than one decision`);
      return;
    }
    seen.add(file);
    if (d.action === "delete") {
      plans.push({ kind: "delete", file });
      return;
    }
    const to = (d as { to?: unknown }).to;
    if (typeof to !== "string" || to === "" || to === "." || to === ".." || /[\\/]/.test(to)) {
      problems.push(`${where}: "to" must be a class name, got ${JSON.stringify(to)}`);
      return;
    }
    if (opts.vocab && !opts.vocab.includes(to)) {
      problems.push(`${where}: "${to}" is not a class; the classes are ${opts.vocab.join(", ")}`);
      return;
    }
    const dir = realish(path.resolve(opts.moveTo ? opts.moveTo(file, to) : path.join(path.dirname(path.dirname(file)), to)));
    if (!isInside(root, dir)) {
      problems.push(`${where}: target folder ${dir} is outside the dataset root ${root}; refused (pass moveTo for this layout)`);
      return;
    }
    if (dir === path.dirname(file)) plans.push({ kind: "keep" }); // already in that class's folder
    else plans.push({ kind: "move", file, dir });
  });
  if (problems.length > 0) {
    throw new Error(`cleaner: nothing was changed, because ${problems.length} decision(s) cannot be carried out:\n  ${problems.join("\n  ")}`);
  }
  const report: CleanerReport = { deleted: [], moved: [], kept: 0, dryRun, text: "" };
  for (const p of plans) {
    if (p.kind === "keep") report.kept += 1;
    else if (p.kind === "delete") {
      if (!dryRun) fs.unlinkSync(p.file);
      report.deleted.push(p.file);
    } else {
      const to = dryRun ? freeName(p.dir, path.basename(p.file)) : moveNoClobber(p.file, p.dir);
      report.moved.push({ from: p.file, to });
    }
  }
  const verb = dryRun ? "would be" : "were";
  report.text =
    `${report.deleted.length} file(s) ${verb} deleted, ${report.moved.length} ${verb} moved, ${report.kept} kept` +
    report.moved.map((m) => `\n  ${path.relative(root, m.from)} → ${path.relative(root, m.to)}`).join("") +
    report.deleted.map((f) => `\n  deleted ${path.relative(root, f)}`).join("") +
    (dryRun || plans.length === report.kept ? "" : "\nRebuild your DataLoaders: they still list the old files.");
  return withSummary(report, `CleanerReport { deleted: ${report.deleted.length}, moved: ${report.moved.length}, kept: ${report.kept}, dryRun: ${dryRun} }`);
}

/** `dir/name`, or `dir/stem_1.ext`, `dir/stem_2.ext`, ... the first that does not exist. */
function freeName(dir: string, name: string): string {
  const ext = path.extname(name);
  const stem = name.slice(0, name.length - ext.length);
  let candidate = path.join(dir, name);
  for (let k = 1; fs.existsSync(candidate); k++) candidate = path.join(dir, `${stem}_${k}${ext}`);
  return candidate;
}

/** Move `file` into `dir` under a name nobody holds; the hard link fails rather than overwrite. */
function moveNoClobber(file: string, dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  for (;;) {
    const target = freeName(dir, path.basename(file));
    try {
      fs.linkSync(file, target);
      fs.unlinkSync(file);
      return target;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EEXIST") continue; // taken between the check and the link: try the next name
      if (code !== "EXDEV" && code !== "EPERM" && code !== "ENOTSUP") throw e;
      // No hard links here (another device, some file systems): an exclusive copy also never overwrites.
      try {
        fs.copyFileSync(file, target, fs.constants.COPYFILE_EXCL);
      } catch (e2) {
        if ((e2 as NodeJS.ErrnoException).code === "EEXIST") continue;
        throw e2;
      }
      fs.unlinkSync(file);
      return target;
    }
  }
}
