/**
 * A small streaming reader for tar archives (ustar, pax and GNU long names), optionally gzipped,
 * that extracts into a directory and refuses anything that would land outside it: `..`
 * segments, absolute paths, links pointing outside, and writes through a symlink.
 *
 * Tar layout, for the reader: a sequence of 512-byte headers, each followed by the entry's data
 * padded to a multiple of 512; two zero blocks end the archive. Header fields used:
 *   name 0..100, mode 100..108, size 124..136 (octal, or base-256 when the top bit is set),
 *   chksum 148..156, typeflag 156, linkname 157..257, magic 257..263 ("ustar"), prefix 345..500.
 * A pax header (`x`) carries "len key=value\n" records (path, linkpath, size) for the next entry;
 * GNU `L`/`K` entries carry the next entry's long name / link name as data.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";

/** An error from `extractTar`, naming the archive and the entry. */
export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TarError";
  }
}

/** Reads exact byte counts from an async stream of chunks. */
class ByteReader {
  private bufs: Buffer[] = [];
  private avail = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.avail < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else {
        const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
        this.bufs.push(b);
        this.avail += b.length;
      }
    }
  }

  /** Exactly `n` bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const take = Math.min(n, this.avail);
    const all = this.bufs.length === 1 ? this.bufs[0]! : Buffer.concat(this.bufs);
    const out = all.subarray(0, take);
    const rest = all.subarray(take);
    this.bufs = rest.length ? [rest] : [];
    this.avail = rest.length;
    return out;
  }
}

function cstr(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const z = s.indexOf(0);
  return (z >= 0 ? s.subarray(0, z) : s).toString("utf8");
}

function octal(b: Buffer, start: number, len: number): number {
  const f = b.subarray(start, start + len);
  if (f[0] !== undefined && f[0] & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as the marker.
    let v = f[0] & 0x7f;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    return v;
  }
  const s = cstr(b, start, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function checksumOk(h: Buffer): boolean {
  // Sum of all header bytes with the chksum field taken as 8 spaces.
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === octal(h, 148, 8);
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = parseInt(data.subarray(pos, sp).toString("ascii"), 10);
    if (!(len > 0)) break;
    const rec = data.subarray(sp + 1, pos + len - 1).toString("utf8"); // drop trailing "\n"
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    pos += len;
  }
  return out;
}

/** Options of `extractTar`. */
export interface ExtractTarOptions {
  /** Called per extracted entry with its relative path. Default: none. */
  onEntry?: (name: string) => void;
}

/** The relative, normalised path of an entry, or a thrown `TarError` if it escapes. */
export function safeRelative(name: string, archive: string, what = "entry"): string {
  const n = name.replace(/\\/g, "/");
  if (n.startsWith("/") || /^[A-Za-z]:/.test(n)) {
    throw new TarError(`refusing to extract ${archive}: ${what} ${JSON.stringify(name)} is an absolute path`);
  }
  const parts = n.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) {
    throw new TarError(`refusing to extract ${archive}: ${what} ${JSON.stringify(name)} contains ".." (path traversal)`);
  }
  return parts.join("/");
}

/** Throws if any directory between `root` and `rel`'s parent is a symlink (writing through it could escape). */
export async function assertNoSymlinkParent(root: string, rel: string, archive: string): Promise<void> {
  const parts = rel.split("/").slice(0, -1);
  let cur = root;
  for (const p of parts) {
    cur = path.join(cur, p);
    let st: fs.Stats;
    try {
      st = await fs.promises.lstat(cur);
    } catch {
      return; // does not exist yet: nothing below it can be a link
    }
    if (st.isSymbolicLink()) {
      throw new TarError(`refusing to extract ${archive}: entry ${JSON.stringify(rel)} would be written through the symlink ${JSON.stringify(path.relative(root, cur))}`);
    }
  }
}

/**
 * Extract the tar (or gzipped tar, detected by its magic bytes) `archive` into directory `dest`,
 * refusing entries with `..` or absolute paths, links that point outside `dest`, and writes
 * through symlinks. Devices and FIFOs are skipped. Returns the number of entries written.
 */
export async function extractTar(archive: string, dest: string, opts: ExtractTarOptions = {}): Promise<number> {
  const root = path.resolve(dest);
  await fs.promises.mkdir(root, { recursive: true });
  const fh = await fs.promises.open(archive, "r");
  const magic = Buffer.alloc(2);
  await fh.read(magic, 0, 2, 0);
  await fh.close();
  let stream: NodeJS.ReadableStream = fs.createReadStream(archive, { highWaterMark: 1 << 20 });
  if (magic[0] === 0x1f && magic[1] === 0x8b) stream = stream.pipe(zlib.createGunzip());
  const reader = new ByteReader((stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]());
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  let count = 0;
  let zeroBlocks = 0;
  let headers = 0;
  try {
    for (;;) {
      const h = await reader.read(512);
      if (h.length === 0) {
        // A 0-byte (or gzipped-empty) file is a failed download, not an empty dataset.
        if (headers === 0 && zeroBlocks === 0) throw new TarError(`${archive} is empty (0 bytes of tar data); the download failed or was cut short`);
        break;
      }
      headers++;
      if (h.length < 512) throw new TarError(`${archive} is truncated (a header block is incomplete)`);
      if (h.every((b) => b === 0)) {
        if (++zeroBlocks >= 2) break;
        continue;
      }
      zeroBlocks = 0;
      if (!checksumOk(h)) throw new TarError(`${archive} is not a tar archive or is corrupt (header checksum mismatch after ${count} entries)`);
      const type = String.fromCharCode(h[156]!);
      const ustar = cstr(h, 257, 6) === "ustar";
      let name = cstr(h, 0, 100);
      const prefix = ustar ? cstr(h, 345, 155) : "";
      if (prefix) name = `${prefix}/${name}`;
      let linkname = cstr(h, 157, 100);
      let size = octal(h, 124, 12);
      const mode = octal(h, 100, 8);
      if (pax.path !== undefined) name = pax.path;
      if (pax.linkpath !== undefined) linkname = pax.linkpath;
      if (pax.size !== undefined) size = Number(pax.size);
      if (longName !== undefined) name = longName;
      if (longLink !== undefined) linkname = longLink;
      const padded = Math.ceil(size / 512) * 512;

      // Meta entries describe the next header.
      if (type === "x" || type === "g" || type === "L" || type === "K") {
        const data = (await reader.read(padded)).subarray(0, size);
        if (data.length < size) throw new TarError(`${archive} is truncated inside a header entry`);
        if (type === "x") pax = { ...pax, ...parsePax(data) };
        else if (type === "L") longName = cstr(data, 0, data.length);
        else if (type === "K") longLink = cstr(data, 0, data.length);
        continue; // global pax headers carry nothing we use
      }
      pax = {};
      longName = undefined;
      longLink = undefined;

      const rel = safeRelative(name, archive);
      const target = path.join(root, rel);
      if (rel === "") {
        await skip(reader, padded, archive);
        continue;
      }
      await assertNoSymlinkParent(root, rel, archive);
      if (type === "5") {
        await fs.promises.mkdir(target, { recursive: true });
        await skip(reader, padded, archive);
      } else if (type === "0" || type === "\0" || type === "7") {
        await fs.promises.mkdir(path.dirname(target), { recursive: true });
        await fs.promises.rm(target, { force: true }); // never write through an existing link
        // Owner read/write always; never setuid/setgid or group/world write.
        const out = await fs.promises.open(target, "wx", (mode & 0o755) | 0o600);
        try {
          let left = size;
          while (left > 0) {
            const chunk = await reader.read(Math.min(left, 1 << 20));
            if (chunk.length === 0) throw new TarError(`${archive} is truncated inside ${JSON.stringify(rel)}`);
            await out.write(chunk);
            left -= chunk.length;
          }
        } finally {
          await out.close();
        }
        await skip(reader, padded - size, archive);
      } else if (type === "2") {
        // Symlink: resolve its target from the entry's directory; it must stay inside root.
        if (path.isAbsolute(linkname) || /^[A-Za-z]:/.test(linkname)) {
          throw new TarError(`refusing to extract ${archive}: symlink ${JSON.stringify(rel)} points to the absolute path ${JSON.stringify(linkname)}`);
        }
        // A ".." after a folder name is refused: that folder may itself be a link extracted
        // earlier (`a -> .`, then `b -> a/a/../../outside`), so the text alone cannot tell where
        // it lands. Leading ".." walk up real folders (no entry is written through a link), and
        // folder names after them only descend, so the lexical check below is then exact.
        const steps = linkname.replace(/\\/g, "/").split("/").filter((p) => p !== "" && p !== ".");
        const firstName = steps.findIndex((p) => p !== "..");
        if (firstName >= 0 && steps.slice(firstName).includes("..")) {
          throw new TarError(
            `refusing to extract ${archive}: symlink ${JSON.stringify(rel)} -> ${JSON.stringify(linkname)} has ".." after a folder name, ` +
              `which could pass through another link and resolve outside the destination`,
          );
        }
        const resolved = path.resolve(path.dirname(target), linkname);
        if (resolved !== root && !resolved.startsWith(root + path.sep)) {
          throw new TarError(`refusing to extract ${archive}: symlink ${JSON.stringify(rel)} -> ${JSON.stringify(linkname)} points outside the destination`);
        }
        await fs.promises.mkdir(path.dirname(target), { recursive: true });
        await fs.promises.rm(target, { force: true });
        await fs.promises.symlink(linkname, target);
        await skip(reader, padded, archive);
      } else if (type === "1") {
        // Hard link: its target is a path relative to the archive root.
        const linkRel = safeRelative(linkname, archive, `hard link target of ${JSON.stringify(rel)}:`);
        await assertNoSymlinkParent(root, linkRel, archive);
        const src = path.join(root, linkRel);
        const st = await fs.promises.lstat(src).catch(() => undefined);
        if (!st || !st.isFile()) {
          throw new TarError(`refusing to extract ${archive}: hard link ${JSON.stringify(rel)} -> ${JSON.stringify(linkname)} does not name a regular file extracted earlier`);
        }
        await fs.promises.mkdir(path.dirname(target), { recursive: true });
        await fs.promises.rm(target, { force: true });
        await fs.promises.copyFile(src, target);
        await skip(reader, padded, archive);
      } else {
        // Character/block devices, FIFOs and unknown types: never created.
        await skip(reader, padded, archive);
        continue;
      }
      count++;
      opts.onEntry?.(rel);
    }
  } finally {
    (stream as unknown as { destroy?: () => void }).destroy?.();
  }
  return count;
}

async function skip(reader: ByteReader, n: number, archive: string): Promise<void> {
  let left = n;
  while (left > 0) {
    const b = await reader.read(Math.min(left, 1 << 20));
    if (b.length === 0) throw new TarError(`${archive} is truncated`);
    left -= b.length;
  }
}
