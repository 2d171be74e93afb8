import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";

// Issue 22's "done when", as the README's "Your own images" section tells a user to do it: prepare a
// folder elsewhere with `tsfast init`, copy lesson 1 there, change only its `path` line to a folder of
// colour pictures (class folders, no train/valid split, every kind of file, three broken ones), run
// it with `tsfast run`, and read the executed notebook: it ran green, took the shipped colour network,
// and fine-tuning it beat the same network from scratch.
const CLI = path.join(__dirname, "..", "lib", "cli.js");
const ROOT = path.resolve(__dirname, "..", "..");
const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-own-images-")));
const env: NodeJS.ProcessEnv = { ...process.env };
delete env["JUPYTER_PATH"]; // a fresh shell: the command finds the kernel spec itself
delete env["TSFAST_BACKEND"]; // the default engine, as a user gets it

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[], timeout: number): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env, timeout, cwd: tmp });
  return { status: r.status, out: r.stdout + r.stderr };
}

const CATEGORIES: Record<string, string> = { "Animals & Nature": "animals", "Food & Drink": "food", "Travel & Places": "travel" };

/** Twemoji pictures (real colour drawings) of three categories, one class folder each, written the way photos arrive. */
async function colourFolder(dir: string): Promise<{ pictures: number; broken: string[] }> {
  const pkg = path.dirname(require.resolve("emoji-datasource-twitter/package.json"));
  const entries = JSON.parse(fs.readFileSync(path.join(pkg, "emoji.json"), "utf8")) as { image: string; category: string }[];
  let pictures = 0;
  const byClass = new Map<string, string[]>();
  for (const e of entries.slice().sort((a, b) => a.image.localeCompare(b.image))) {
    const cls = CATEGORIES[e.category];
    const src = path.join(pkg, "img", "twitter", "64", e.image);
    if (!cls || !fs.existsSync(src)) continue;
    byClass.set(cls, [...(byClass.get(cls) ?? []), src]);
  }
  for (const [cls, files] of byClass) {
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    for (const [i, src] of files.entries()) {
      const side = 64 + ((i * 53) % 400); // 64 to 463 px, various shapes
      const img = sharp(src).resize(side, Math.round(side * (0.6 + (i % 5) * 0.2)), { fit: "contain", background: "#ffffff" });
      const out = path.join(dir, cls, `IMG_${String(i).padStart(4, "0")}`);
      if (i === 3) await img.flatten({ background: "#ffffff" }).toColourspace("cmyk").jpeg().toFile(`${out}.jpg`); // a CMYK JPEG
      else if (i === 4) await img.toColourspace("rgb16").png().toFile(`${out}.png`); // a 16-bit PNG
      else if (i % 3 === 0) await img.flatten({ background: "#ffffff" }).jpeg({ quality: 85 }).toFile(`${out}.JPG`);
      else if (i % 3 === 1) await img.png().toFile(`${out}.png`);
      else await img.webp().toFile(`${out}.webp`);
      pictures++;
    }
  }
  const broken = [path.join(dir, "animals", "empty.jpg"), path.join(dir, "food", "download.png"), path.join(dir, "travel", "cut.jpg")];
  fs.writeFileSync(broken[0]!, "");
  fs.writeFileSync(broken[1]!, "<html>404 Not Found</html>");
  const whole = fs.readFileSync(path.join(dir, "travel", "IMG_0000.JPG"));
  fs.writeFileSync(broken[2]!, whole.subarray(0, whole.length >> 1));
  return { pictures, broken };
}

type Cell = { cell_type: string; source: string | string[]; outputs?: { output_type: string; name?: string; text?: string | string[] }[] };
const text = (s: string | string[] | undefined) => (Array.isArray(s) ? s.join("") : (s ?? ""));

/**
 * Copy a lesson into the prepared folder, change only its `const path =` line to `photos`, run it
 * with `tsfast run`, and return what its cells printed.
 */
function runLessonOn(project: string, lesson: string, photos: string, from = path.join(ROOT, "notebooks", lesson)): { out: string; err: string } {
  const src = JSON.parse(fs.readFileSync(from, "utf8")) as { cells: Cell[] };
  const pathLines = src.cells.filter((c) => c.cell_type === "code" && /^const path = /m.test(text(c.source)));
  assert.equal(pathLines.length, 1, `${lesson} has one \`const path =\` line`);
  const edited = JSON.parse(JSON.stringify(src)) as { cells: Cell[] };
  const i = src.cells.indexOf(pathLines[0]!);
  edited.cells[i]!.source = text(src.cells[i]!.source).replace(/^const path = .*$/m, `const path = ${JSON.stringify(photos)};`);
  const changed = edited.cells.flatMap((c, k) => text(c.source).split("\n").filter((l, j) => l !== text(src.cells[k]!.source).split("\n")[j]));
  assert.deepEqual(changed, [`const path = ${JSON.stringify(photos)};`], "only the path line differs");
  const nbFile = path.join(project, lesson);
  fs.writeFileSync(nbFile, JSON.stringify(edited, null, 1));
  const run = cli(["run", nbFile], 540_000);
  assert.equal(run.status, 0, run.out);
  assert.match(run.out, /notebooks: 1 passed, 0 failed/);
  const base = lesson.replace(/\.ipynb$/, "");
  assert.ok(fs.existsSync(path.join(project, `${base}.html`)), "the HTML next to the notebook");
  const done = JSON.parse(fs.readFileSync(path.join(project, `${base}.executed.ipynb`), "utf8")) as { cells: Cell[] };
  const streams = (name: string) =>
    done.cells.map((c) => (c.outputs ?? []).filter((o) => o.output_type === "stream" && o.name === name).map((o) => text(o.text)).join(""));
  return { out: streams("stdout").join("\n"), err: streams("stderr").join("\n") };
}

let project = "";
let photos = "";
let made: { pictures: number; broken: string[] } = { pictures: 0, broken: [] };
before(async () => {
  project = path.join(tmp, "my-project");
  const init = cli(["init", project], 120_000);
  assert.equal(init.status, 0, init.out);
  photos = path.join(tmp, "my-photos");
  made = await colourFolder(photos);
});

test("lesson 1 with only its path line changed runs green on a messy colour folder, and the shipped colour network beats scratch", { timeout: 600_000 }, async (t) => {
  const { pictures, broken } = made;
  assert.ok(pictures > 450, `${pictures} pictures`);
  const { out, err } = runLessonOn(project, "01_intro.ipynb", photos);

  assert.match(out, /your folder: /);
  // no split: one message saying so; the broken files: one warning naming all three, before any training
  assert.equal((out.match(/putting a random 20 % of the images in the validation set/g) ?? []).length, 1, out);
  const warnings = err.split("\n").filter((l) => /unreadable/.test(l));
  assert.equal(warnings.length, 1, err);
  for (const b of broken) assert.ok(warnings[0]!.includes(b), `the warning names ${b}: ${warnings[0]}`);
  const counts = /classes: animals, food, travel; (\d+) training images, (\d+) validation images/.exec(out);
  assert.ok(counts, out);
  assert.equal(Number(counts[1]) + Number(counts[2]), pictures, "the counts leave the broken files out");
  assert.ok(Math.abs(Number(counts[2]) - pictures * 0.2) <= 1, `20 % validation: ${counts[2]}`);
  assert.match(out, /pretrained body: colour-xresnet18-small\.safetensors/);
  assert.match(out, /skipped: this demo runs on the lesson's own data only/);

  const m = /from scratch: ([\d.]+)% error in \d+ s; pretrained: ([\d.]+)% in/.exec(out);
  assert.ok(m, out);
  const [scratch, pretrained] = [Number(m[1]), Number(m[2])];
  t.diagnostic(`your folder: ${counts[1]} training + ${counts[2]} validation pictures; pretrained ${pretrained}% error, from scratch ${scratch}%`);
  assert.ok(pretrained < scratch, `pretrained ${pretrained}% should beat from scratch ${scratch}%`);
  assert.match(out, /your folder: pretrained [\d.]+% error, from scratch [\d.]+%/);
});

test("lesson 2 with only its path line changed trains, exports, predicts and serves on the same colour folder", { timeout: 600_000 }, async (t) => {
  const { out, err } = runLessonOn(project, "02_production.ipynb", photos);
  assert.equal(err.split("\n").filter((l) => /unreadable/.test(l)).length, 1, err);
  const m = /(\d+) training and (\d+) validation images of animals, food, travel/.exec(out);
  assert.ok(m, out);
  assert.equal(Number(m[1]) + Number(m[2]), made.pictures, "the counts leave the broken files out");
  const pred = /predicted (animals|food|travel) with probability ([\d.]+)/.exec(out);
  assert.ok(pred, out);
  assert.match(out, new RegExp(`HTTP 200: ${pred[1]} `), "the server says what loadLearner said");
  const e = /your folder: error rate ([\d.]+)%/.exec(out);
  assert.ok(e, out);
  t.diagnostic(`lesson 2 on your folder: error rate ${e[1]}%`);
  assert.ok(Number(e[1]) < 50, `error rate ${e[1]}% (three classes: chance is 67 %)`);
  assert.match(out, /lesson 2 checks passed/);
});

test("the starter notebook init wrote runs on the same colour folder with only its path line changed", { timeout: 600_000 }, async () => {
  const { out, err } = runLessonOn(project, "01_your_images.ipynb", photos, path.join(project, "01_your_images.ipynb"));
  assert.equal(err.split("\n").filter((l) => /unreadable/.test(l)).length, 1, err);
  const counts = /classes: animals, food, travel; (\d+) training images, (\d+) validation images/.exec(out);
  assert.ok(counts, out);
  assert.equal(Number(counts[1]) + Number(counts[2]), made.pictures);
  const e = /error rate ([\d.]+)%/.exec(out);
  assert.ok(e, out);
  assert.ok(Number(e[1]) < 50, `error rate ${e[1]}% (three classes: chance is 67 %)`);
});
