/**
 * Extracting zip archives for `untarData`, with the tar reader's escape rules (`tar.ts`): entries
 * with `..` segments or absolute paths, symlinks pointing outside the destination, and writes
 * through a symlink are refused. The zip format itself is read by `yauzl` (central directory,
 * deflate, zip64, size checks); names are decoded here, not by yauzl, so its own name checks do
 * not pre-empt ours and every refusal reads the same as for a tar archive.
 *
 * Per entry: 1. decode the name (UTF-8 when flag bit 11 is set, else CP437; Info-ZIP's Unicode
 * path field wins); 2. check it (`safeRelative`) and its parent folders (`assertNoSymlinkParent`);
 * 3. by the Unix file type in the high 16 bits of `externalFileAttributes` (0o040000 folder,
 * 0o120000 symlink, else a file; a trailing "/" also marks a folder), create it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import * as yauzl from "yauzl";
import { assertNoSymlinkParent, safeRelative, TarError } from "./tar";

/** An error from `extractZip`, naming the archive and the entry. */
export class ZipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ZipError";
  }
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** Whether `file` starts with a zip signature ("PK\x03\x04", or "PK\x05\x06" for an empty archive). */
export async function isZip(file: string): Promise<boolean> {
  const fh = await fs.promises.open(file, "r");
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return bytesRead === 4 && b[0] === 0x50 && b[1] === 0x4b && ((b[2] === 3 && b[3] === 4) || (b[2] === 5 && b[3] === 6));
  } finally {
    await fh.close();
  }
}

/** The tar reader's checks, with their errors as `ZipError`s. */
async function checked<T>(f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw e instanceof TarError ? new ZipError(e.message) : e;
  }
}

/**
 * Extract the zip `archive` into directory `dest` with the escape rules of `extractTar`; file
 * modes keep owner read/write and drop setuid/setgid and group/world write. Returns the number of
 * entries written.
 */
export async function extractZip(archive: string, dest: string, opts: { onEntry?: (name: string) => void } = {}): Promise<number> {
  const root = path.resolve(dest);
  await fs.promises.mkdir(root, { recursive: true });
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(archive, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true });
  } catch (e) {
    throw new ZipError(`${archive} is not a zip archive or is corrupt (${(e as Error).message})`);
  }
  let count = 0;
  try {
    for await (const entry of zip.eachEntry()) {
      const raw = entry.fileName as unknown as Buffer;
      const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, raw, entry.extraFields, false);
      const rel = await checked(() => safeRelative(name, archive));
      if (rel === "") continue;
      await checked(() => assertNoSymlinkParent(root, rel, archive));
      const target = path.join(root, rel);
      const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
      const type = mode & S_IFMT;
      if (type === S_IFDIR || name.endsWith("/")) {
        await fs.promises.mkdir(target, { recursive: true });
      } else if (type === S_IFLNK) {
        const link = (await readAll(await zip.openReadStreamPromise(entry))).toString("utf8");
        await createSymlink(root, rel, link, archive);
      } else {
        await fs.promises.mkdir(path.dirname(target), { recursive: true });
        await fs.promises.rm(target, { force: true }); // never write through an existing link
        const perm = type === 0 ? 0o644 : (mode & 0o755) | 0o600;
        await pipeline(await zip.openReadStreamPromise(entry), fs.createWriteStream(target, { flags: "wx", mode: perm }));
      }
      count++;
      opts.onEntry?.(rel);
    }
  } catch (e) {
    if (e instanceof ZipError) throw e;
    throw new ZipError(`${archive}: ${(e as Error).message}`);
  } finally {
    zip.close();
  }
  return count;
}

/** A symlink entry `rel` -> `link`, refused when the link leaves `root`. */
async function createSymlink(root: string, rel: string, link: string, archive: string): Promise<void> {
  const target = path.join(root, rel);
  const resolved = path.resolve(path.dirname(target), link);
  if (path.isAbsolute(link) || /^[A-Za-z]:/.test(link) || (resolved !== root && !resolved.startsWith(root + path.sep))) {
    throw new ZipError(`refusing to extract ${archive}: symlink ${JSON.stringify(rel)} -> ${JSON.stringify(link)} points outside the destination`);
  }
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  await fs.promises.rm(target, { force: true });
  await fs.promises.symlink(link, target);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(parts);
}
