import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { untarData, tsfastHome, tsfastPath, URLs, archiveStem } from "../lib/data/external";
import { extractTar, TarError } from "../lib/data/tar";
import { startServer, serveBytes, tmpHome, listTree, tarEntry, tarOf, type TestServer } from "./helpers/download-server";

let srv: TestServer;
let dir: string;
// A dataset folder packed by GNU tar (an independent writer): nested dirs, a name longer than
// 100 bytes (needs pax/GNU long-name records), an internal symlink and a hard link.
const longName = "x".repeat(120) + ".txt";
let goodTgz: Buffer;
let gnuTar: Buffer;

before(async () => {
  dir = tmpHome("untar");
  const src = path.join(dir, "src");
  fs.mkdirSync(path.join(src, "mnist_tiny", "train", "3"), { recursive: true });
  fs.mkdirSync(path.join(src, "mnist_tiny", "valid", "7"), { recursive: true });
  fs.writeFileSync(path.join(src, "mnist_tiny", "train", "3", "a.png"), "three");
  fs.writeFileSync(path.join(src, "mnist_tiny", "valid", "7", "b.png"), "seven");
  fs.writeFileSync(path.join(src, "mnist_tiny", "labels.csv"), "name,label\na.png,3\n");
  fs.writeFileSync(path.join(src, "mnist_tiny", longName), "long");
  fs.symlinkSync("train/3/a.png", path.join(src, "mnist_tiny", "alias.png"));
  fs.linkSync(path.join(src, "mnist_tiny", "labels.csv"), path.join(src, "mnist_tiny", "labels-copy.csv"));
  const tgz = path.join(dir, "mnist_tiny.tgz");
  execFileSync("tar", ["--format=pax", "-czf", tgz, "-C", src, "mnist_tiny"]);
  goodTgz = fs.readFileSync(tgz);
  const gnu = path.join(dir, "gnu.tar");
  execFileSync("tar", ["--format=gnu", "-cf", gnu, "-C", src, "mnist_tiny"]);
  gnuTar = fs.readFileSync(gnu);

  srv = await startServer();
  srv.route("/sample/mnist_tiny.tgz", serveBytes(goodTgz));
  srv.route("/sample/flat.tar", serveBytes(tarOf([tarEntry("one.txt", { data: Buffer.from("1") }), tarEntry("two.txt", { data: Buffer.from("2") })])));
  srv.route("/evil/dotdot.tgz", serveBytes(zlib.gzipSync(tarOf([tarEntry("ok.txt", { data: Buffer.from("fine") }), tarEntry("../escaped.txt", { data: Buffer.from("pwned") })]))));
  srv.route("/evil/abs.tar", serveBytes(tarOf([tarEntry("/tmp/tsfast-abs-escape.txt", { data: Buffer.from("pwned") })])));
  srv.route("/evil/symlink.tgz", serveBytes(zlib.gzipSync(tarOf([tarEntry("data/link", { type: "2", linkname: "../../outside" })]))));
});
after(async () => {
  await srv.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("TSFAST_HOME sets the cache root with data/ and archive/ under it", () => {
  assert.equal(tsfastHome(), path.join(dir, "home"));
  assert.equal(tsfastPath("data"), path.join(dir, "home", "data"));
  assert.equal(tsfastPath("archive"), path.join(dir, "home", "archive"));
  assert.equal(archiveStem(URLs.PETS), "oxford-iiit-pet");
  assert.equal(URLs.MNIST_SAMPLE, "https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz");
});

test("untarData downloads, extracts to data/<name> and returns the cached path on a second call without network", async () => {
  const url = `${srv.url}/sample/mnist_tiny.tgz`;
  const sha = crypto.createHash("sha256").update(goodTgz).digest("hex");
  const seen: number[] = [];
  const p = await untarData(url, { sha256: sha, onProgress: (q) => seen.push(q.received) });
  assert.equal(p, path.join(dir, "home", "data", "mnist_tiny"));
  assert.deepEqual(listTree(p), [
    "alias.png@",
    "labels-copy.csv",
    "labels.csv",
    "train/",
    "train/3/",
    "train/3/a.png",
    "valid/",
    "valid/7/",
    "valid/7/b.png",
    longName,
  ]);
  assert.equal(fs.readFileSync(path.join(p, "alias.png"), "utf8"), "three");
  assert.equal(fs.readFileSync(path.join(p, "labels-copy.csv"), "utf8"), "name,label\na.png,3\n");
  assert.equal(fs.readFileSync(path.join(p, longName), "utf8"), "long");
  assert.ok(fs.readFileSync(path.join(dir, "home", "archive", "mnist_tiny.tgz")).equals(goodTgz));
  assert.equal(seen.at(-1), goodTgz.length);
  // No temporary extraction folder is left next to the dataset.
  assert.deepEqual(fs.readdirSync(path.join(dir, "home", "data")), ["mnist_tiny"]);

  const n = srv.requests.length;
  assert.equal(await untarData(url, { sha256: sha }), p);
  assert.equal(srv.requests.length, n, "second call made no request");
});

test("an archive without a single top folder is extracted into data/<name> itself", async () => {
  const p = await untarData(`${srv.url}/sample/flat.tar`);
  assert.equal(path.basename(p), "flat");
  assert.deepEqual(listTree(p), ["one.txt", "two.txt"]);
});

test("extractTar reads GNU long-name archives like pax ones", async () => {
  const f = path.join(dir, "gnu.tar");
  const out = path.join(dir, "gnu-out");
  await extractTar(f, out);
  assert.equal(fs.readFileSync(path.join(out, "mnist_tiny", longName), "utf8"), "long");
  assert.equal(fs.readlinkSync(path.join(out, "mnist_tiny", "alias.png")), "train/3/a.png");
  assert.ok(gnuTar.length > 0);
});

test("untarData refuses an archive with a ../ entry and leaves nothing extracted", async () => {
  await assert.rejects(untarData(`${srv.url}/evil/dotdot.tgz`), (e: unknown) => {
    assert.ok(e instanceof TarError);
    assert.match(e.message, /"\.\.\/escaped\.txt" contains "\.\." \(path traversal\)/);
    assert.ok(e.message.includes("dotdot.tgz"));
    return true;
  });
  const data = path.join(dir, "home", "data");
  assert.equal(fs.existsSync(path.join(data, "dotdot")), false);
  assert.equal(fs.existsSync(path.join(data, "escaped.txt")), false);
  assert.equal(fs.existsSync(path.join(dir, "home", "escaped.txt")), false);
  assert.equal(fs.readdirSync(data).some((n) => n.includes("extracting")), false);
});

test("untarData refuses an absolute entry path", async () => {
  await assert.rejects(untarData(`${srv.url}/evil/abs.tar`), /"\/tmp\/tsfast-abs-escape\.txt" is an absolute path/);
  assert.equal(fs.existsSync("/tmp/tsfast-abs-escape.txt"), false);
});

test("untarData refuses a symlink that points outside the destination", async () => {
  await assert.rejects(untarData(`${srv.url}/evil/symlink.tgz`), /symlink "data\/link" -> "\.\.\/\.\.\/outside" points outside/);
  assert.equal(fs.existsSync(path.join(dir, "home", "data", "symlink")), false);
});

test("extractTar refuses writing a file through a symlinked directory", async () => {
  const f = path.join(dir, "through.tar");
  fs.writeFileSync(
    f,
    tarOf([
      tarEntry("real/", { type: "5" }),
      tarEntry("alias", { type: "2", linkname: "real" }),
      tarEntry("alias/x.txt", { data: Buffer.from("x") }),
    ]),
  );
  await assert.rejects(extractTar(f, path.join(dir, "through-out")), /written through the symlink "alias"/);
});

test("extractTar refuses a hard link to a path outside the destination", async () => {
  const f = path.join(dir, "hard.tar");
  fs.writeFileSync(f, tarOf([tarEntry("h", { type: "1", linkname: "../../etc/passwd" })]));
  await assert.rejects(extractTar(f, path.join(dir, "hard-out")), TarError);
  assert.equal(fs.existsSync(path.join(dir, "hard-out", "h")), false);
});

test("a non-tar file is reported as corrupt, naming the archive", async () => {
  const f = path.join(dir, "junk.tar");
  fs.writeFileSync(f, Buffer.alloc(2048, 7));
  await assert.rejects(extractTar(f, path.join(dir, "junk-out")), /junk\.tar is not a tar archive or is corrupt/);
});

test("untarData with a wrong sha256 fails before extracting and keeps no archive", async () => {
  const url = `${srv.url}/sample/mnist_tiny.tgz`;
  const dest = path.join(dir, "elsewhere");
  await assert.rejects(untarData(url, { dest, archiveDir: path.join(dir, "arch2"), sha256: "ab".repeat(32) }), /checksum mismatch/);
  assert.equal(fs.existsSync(path.join(dest, "mnist_tiny")), false);
  assert.equal(fs.existsSync(path.join(dir, "arch2", "mnist_tiny.tgz")), false);
});
