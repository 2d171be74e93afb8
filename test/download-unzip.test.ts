/**
 * `untarData` on .zip archives: built here with a hand-written zip writer, served from a local
 * 127.0.0.1 server (nothing comes from the internet), extracted with the tar reader's escape rules.
 */
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { untarData, archiveStem } from "../lib/data/external";
import { extractZip, ZipError } from "../lib/data/zip";
import { startServer, serveBytes, tmpHome, listTree, type TestServer } from "./helpers/download-server";
import { zipOf } from "./helpers/zip";

let srv: TestServer;
let dir: string;

before(async () => {
  dir = tmpHome("unzip");
  srv = await startServer();
  const good = zipOf([
    { name: "pets_tiny/", dir: true },
    { name: "pets_tiny/cats/a.txt", data: "cat ".repeat(100) },
    { name: "pets_tiny/dogs/b.txt", data: "dog", deflate: false },
    { name: "pets_tiny/run.sh", data: "#!/bin/sh\n", mode: 0o4777 },
    { name: "pets_tiny/alias.txt", link: "cats/a.txt" },
  ]);
  srv.route("/sample/pets_tiny.zip", serveBytes(good, "application/zip"));
  srv.route("/evil/slip.zip", serveBytes(zipOf([{ name: "ok.txt", data: "fine" }, { name: "../escaped.txt", data: "pwned" }])));
  srv.route("/evil/abs.zip", serveBytes(zipOf([{ name: "/tmp/tsfast-zip-abs-escape.txt", data: "pwned" }])));
  srv.route("/evil/link.zip", serveBytes(zipOf([{ name: "data/link", link: "../../outside" }])));
});

after(async () => {
  await srv?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("archiveStem takes .zip like the tar endings", () => {
  assert.equal(archiveStem("http://127.0.0.1/x/pets_tiny.zip"), "pets_tiny");
  assert.throws(() => archiveStem("http://127.0.0.1/x/pets_tiny.rar"), /\.tgz, \.tar\.gz, \.tar or \.zip/);
});

test("untarData downloads a .zip, extracts its single top folder to data/<name>, keeps internal symlinks", async () => {
  const got = await untarData(`${srv.url}/sample/pets_tiny.zip`);
  assert.equal(got, path.join(dir, "home", "data", "pets_tiny"));
  assert.deepEqual(listTree(got), ["alias.txt@", "cats/", "cats/a.txt", "dogs/", "dogs/b.txt", "run.sh"]);
  assert.equal(fs.readFileSync(path.join(got, "cats", "a.txt"), "utf8"), "cat ".repeat(100));
  assert.equal(fs.readFileSync(path.join(got, "dogs", "b.txt"), "utf8"), "dog");
  assert.equal(fs.readlinkSync(path.join(got, "alias.txt")), "cats/a.txt");
  // setuid and world-write are dropped, as for tar: 0o4777 -> 0o755
  assert.equal(fs.statSync(path.join(got, "run.sh")).mode & 0o7777, 0o755);
  // a second call answers from the cache
  assert.equal(await untarData(`${srv.url}/sample/pets_tiny.zip`), got);
});

// Each hostile archive: what the refusal says, and where a file must not have appeared.
const REFUSED: { url: string; says: RegExp; absent: (home: string) => string[] }[] = [
  {
    url: "/evil/slip.zip", // zip slip
    says: /refusing to extract .*slip\.zip: entry "\.\.\/escaped\.txt" contains "\.\." \(path traversal\)/,
    absent: (home) => [path.join(home, "data", "slip"), path.join(home, "data", "escaped.txt"), path.join(home, "escaped.txt")],
  },
  {
    url: "/evil/abs.zip",
    says: /"\/tmp\/tsfast-zip-abs-escape\.txt" is an absolute path/,
    absent: () => ["/tmp/tsfast-zip-abs-escape.txt"],
  },
  {
    url: "/evil/link.zip",
    says: /symlink "data\/link" -> "\.\.\/\.\.\/outside" points outside/,
    absent: (home) => [path.join(home, "data", "link")],
  },
];

test("untarData refuses zips with a ../ entry, an absolute path or a symlink out, and leaves nothing extracted", async () => {
  const home = path.join(dir, "home");
  for (const c of REFUSED) {
    const err = await untarData(`${srv.url}${c.url}`).then(
      () => assert.fail(`${c.url} was extracted`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ZipError, `${c.url}: ${String(err)}`);
    assert.match(err.message, c.says);
    for (const f of c.absent(home)) assert.equal(fs.existsSync(f), false, `${c.url} wrote ${f}`);
  }
  assert.equal(fs.readdirSync(path.join(home, "data")).some((n) => n.includes("extracting")), false);
});

test("extractZip refuses writing a file through a symlinked folder", async () => {
  const f = path.join(dir, "through.zip");
  fs.writeFileSync(f, zipOf([{ name: "sub", link: "." }, { name: "sub/x.txt", data: "x" }]));
  const out = path.join(dir, "through-out");
  await assert.rejects(extractZip(f, out), /would be written through the symlink "sub"/);
  assert.equal(fs.existsSync(path.join(out, "x.txt")), false);
});

test("a file that is not a zip is reported as corrupt, naming the archive", async () => {
  const f = path.join(dir, "junk.zip");
  fs.writeFileSync(f, Buffer.alloc(100, 7));
  await assert.rejects(extractZip(f, path.join(dir, "junk-out")), /junk\.zip is not a zip archive or is corrupt/);
});
