/**
 * Attacks on the data floor (issue 20, items 1, 2, 3 and 7), each against a local 127.0.0.1 server
 * or an archive/folder built here: URL-named archives that walk out of the cache, symlink chains in
 * tar archives, symlink loops in image folders, and CSVs or folders that would train on nonsense.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { untarData, extractTar, getImageFiles, ImageDataLoaders } from "../lib/index";
import { parseCsv } from "../lib/data/csv";
import { startServer, serveBytes, tarEntry, tarOf, type TestServer } from "./helpers/download-server";

process.env["TSFAST_BACKEND"] ??= "cpu";
process.env["TSFAST_DATA_WORKERS"] ??= "0";

let srv: TestServer;
let tmp: string;
const tgz = zlib.gzipSync(tarOf([tarEntry("victim/owned.txt", { data: Buffer.from("pwned") })]));

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsfast-reliab-data-"));
  srv = await startServer();
  // Every path gets the same small archive: the attack is in the URL, not the bytes.
  srv.route("/..%2F..%2Fvictim.tgz", serveBytes(tgz));
  srv.route("/..%2Fvictim.tgz", serveBytes(tgz));
  srv.route("/zero.tgz", serveBytes(Buffer.alloc(0)));
});
after(async () => {
  await srv.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("untarData refuses an archive name that URL-decodes to ../..: nothing outside dest or archiveDir is deleted, written or returned", async () => {
  const base = path.join(tmp, "cache", "a");
  const dest = path.join(base, "data");
  const archiveDir = path.join(base, "archive");
  // <dest>/../../victim is tmp/cache/victim: an unrelated folder the attack would delete.
  const victim = path.join(tmp, "cache", "victim");
  fs.mkdirSync(victim, { recursive: true });
  fs.writeFileSync(path.join(victim, "keep.txt"), "mine");
  await assert.rejects(
    untarData(`${srv.url}/..%2F..%2Fvictim.tgz`, { dest, archiveDir, force: true, showProgress: false, retries: 0 }),
    /not a plain file name/,
  );
  assert.equal(fs.readFileSync(path.join(victim, "keep.txt"), "utf8"), "mine", "the folder outside dest was deleted");
  assert.ok(!fs.existsSync(path.join(tmp, "cache", "victim.tgz")), "the archive was written outside archiveDir");
  assert.ok(!fs.existsSync(path.join(victim, "owned.txt")));
  // Without force the old code returned the unrelated folder as "the dataset".
  const other = path.join(base, "victim");
  fs.mkdirSync(other, { recursive: true });
  await assert.rejects(untarData(`${srv.url}/..%2Fvictim.tgz`, { dest, archiveDir, showProgress: false, retries: 0 }), /not a plain file name/);
  assert.ok(!srv.requests.some((r) => r.path.includes("victim")), "nothing should even be downloaded");
});

test("extractTar refuses a symlink chain (a -> ., b -> a/a/../../outside) that resolves outside the destination", async () => {
  const top = path.join(tmp, "chain");
  const dest = path.join(top, "one", "dest");
  fs.mkdirSync(dest, { recursive: true });
  fs.writeFileSync(path.join(top, "outside"), "secret");
  const tar = path.join(tmp, "chain.tar");
  fs.writeFileSync(tar, tarOf([tarEntry("a", { type: "2", linkname: "." }), tarEntry("b", { type: "2", linkname: "a/a/../../outside" })]));
  await assert.rejects(extractTar(tar, dest), /".." after a folder name/);
  // Whatever was extracted, nothing inside dest reads the file outside it.
  let leaked = false;
  try {
    leaked = fs.readFileSync(path.join(dest, "b"), "utf8") === "secret";
  } catch {
    leaked = false;
  }
  assert.equal(leaked, false, "dest/b resolves to a file outside dest");
  // Plain relative links still extract.
  const ok = path.join(tmp, "chain-ok.tar");
  fs.writeFileSync(ok, tarOf([tarEntry("d/x.txt", { data: Buffer.from("x") }), tarEntry("d/e/l", { type: "2", linkname: "../x.txt" }), tarEntry("m", { type: "2", linkname: "./d/x.txt" })]));
  const okDest = path.join(tmp, "chain-ok");
  await extractTar(ok, okDest);
  assert.equal(fs.readFileSync(path.join(okDest, "d", "e", "l"), "utf8"), "x");
  assert.equal(fs.readFileSync(path.join(okDest, "m"), "utf8"), "x");
});

/** train/{a,b}/{0,1,2}.png and valid/{a,b}/0.png: 8 files with image names (contents do not matter here). */
function imageFolder(name: string, content: Buffer | string = "not really a png"): string {
  const root = path.join(tmp, name);
  for (const split of ["train", "valid"]) {
    for (const cls of ["a", "b"]) {
      fs.mkdirSync(path.join(root, split, cls), { recursive: true });
      for (let i = 0; i < (split === "train" ? 3 : 1); i++) fs.writeFileSync(path.join(root, split, cls, `${i}.png`), content);
    }
  }
  return root;
}

test("getImageFiles and fromFolder walk each real folder once: a symlink loop adds no item", async () => {
  const root = imageFolder("loop1");
  fs.symlinkSync("..", path.join(root, "train", "a", "up")); // train/a/up -> train
  const files = getImageFiles(root);
  assert.equal(files.length, 8, `expected the 8 images once each, got ${files.length}`);
  assert.equal(new Set(files.map((f) => fs.realpathSync(f))).size, files.length, "an image is listed twice");
  const dls = await ImageDataLoaders.fromFolder(root, { bs: 2, checkFiles: false }); // the fixture's files are not real PNGs
  assert.equal(dls.train.n + dls.valid.n, 8);
  const real = (xs: readonly string[]) => new Set(xs.map((f) => fs.realpathSync(f)));
  const trainSet = real(dls.train.items);
  assert.ok(![...real(dls.valid.items)].some((f) => trainSet.has(f)), "a validation item duplicates a training item");
});

test("two symlink loops finish at once (bounded: a child process with a 20 s limit)", () => {
  const root = imageFolder("loop2");
  fs.symlinkSync("..", path.join(root, "train", "a", "up"));
  fs.symlinkSync("../..", path.join(root, "valid", "b", "top"));
  const items = path.join(__dirname, "..", "lib", "data", "items.js");
  const script = `const { getImageFiles } = require(${JSON.stringify(items)}); console.log(getImageFiles(${JSON.stringify(root)}).length);`;
  const r = spawnSync(process.execPath, ["--max-old-space-size=256", "-e", script], { timeout: 20_000, encoding: "utf8" });
  assert.equal(r.signal, null, `getImageFiles did not finish within 20 s (killed by ${r.signal})`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(Number(r.stdout.trim()), 8);
});

test("fromCsv refuses empty label cells and short rows, naming the rows", async () => {
  const root = path.join(tmp, "csv");
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(path.join(root, "labels.csv"), "name,label\na.png,cat\nb.png,\nc.png,dog\nd.png,cat\ne.png,dog\n");
  await assert.rejects(ImageDataLoaders.fromCsv(root, "labels.csv", { validPct: 0.4 }), /row 3 of .* has an empty label \(column "label"\)/);
  fs.writeFileSync(path.join(root, "short.csv"), "name,label,is_valid\na.png,cat,0\nb.png,dog\nc.png,dog,1\nd.png,cat,0\ne.png\n");
  await assert.rejects(ImageDataLoaders.fromCsv(root, "short.csv", { validCol: "is_valid" }), /rows 3, 6 of .* have fewer than the 3 columns/);
});

test("an unterminated quote in a CSV is a parse error with its line number", async () => {
  assert.throws(() => parseCsv('name,label\na.png,cat\n"b.png,dog\nc.png,cat\n'), /CSV line 3: a quoted field opened there is never closed/);
  const root = path.join(tmp, "csvq");
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(path.join(root, "labels.csv"), 'name,label\na.png,cat\nb.png,"dog\nc.png,cat\nd.png,dog\n');
  await assert.rejects(ImageDataLoaders.fromCsv(root), /cannot parse .*labels\.csv.*CSV line 3/);
  assert.deepEqual(parseCsv('a,"b\nc",d\n'), [["a", "b\nc", "d"]]); // a closed multi-line field still parses
});

test("a folder whose images are all unreadable is refused when the loaders are built, naming the split", async () => {
  const root = imageFolder("unreadable");
  const warn = console.warn;
  const warnings: string[] = [];
  console.warn = (...a: unknown[]) => void warnings.push(a.join(" "));
  try {
    await assert.rejects(
      ImageDataLoaders.fromFolder(root, { bs: 2, numWorkers: 1 }),
      /no readable image in the training set of ".*unreadable": all 6 files are unreadable \(listed in the warning above\)/,
    );
  } finally {
    console.warn = warn;
  }
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /left out 8 unreadable files/);
});

test("with checkFiles: false, a folder whose images are all unreadable is refused before any training step", async () => {
  const root = imageFolder("unreadable2");
  const dls = await ImageDataLoaders.fromFolder(root, { bs: 2, numWorkers: 1, checkFiles: false });
  const warn = console.warn;
  console.warn = () => undefined;
  try {
    await assert.rejects(async () => {
      for await (const b of dls.train) {
        b.xb.dispose();
        b.yb.dispose();
      }
    }, /no readable image in this training set: all 6 images failed to decode/);
  } finally {
    console.warn = warn;
  }
});

test("a 0-byte archive is refused, not cached as an empty dataset", async () => {
  const dest = path.join(tmp, "zero", "data");
  const archiveDir = path.join(tmp, "zero", "archive");
  await assert.rejects(untarData(`${srv.url}/zero.tgz`, { dest, archiveDir, showProgress: false, retries: 0 }), /empty \(0 bytes of tar data\)/);
  assert.ok(!fs.existsSync(path.join(dest, "zero")), "an empty dataset folder was cached");
  const tar = path.join(tmp, "blocks-only.tar");
  fs.writeFileSync(tar, Buffer.alloc(1024)); // end blocks only: no entries
  srv.route("/blocks.tar", serveBytes(fs.readFileSync(tar)));
  await assert.rejects(untarData(`${srv.url}/blocks.tar`, { dest, archiveDir, showProgress: false, retries: 0 }), /holds no files/);
  assert.ok(!fs.existsSync(path.join(dest, "blocks")));
});
