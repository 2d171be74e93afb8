/**
 * A cache of presized images, in memory or on disk, so later epochs skip most of the decoding.
 *
 * What is cached is the deterministic part of the item transforms: everything on the validation
 * set; on the training set, for a cropping `Resize`, the image resized just enough to cover the
 * target (the random crop is then cut from it in JavaScript each epoch). Disk entries are keyed
 * by file path, size, modification time and the transform, so a changed file is decoded again.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync, writeFileSync, renameSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { RawImage } from "./pixels";

/** Where presized images are kept: `memory`, `disk` (under `cacheDir`), or nowhere. */
export type CacheKind = "memory" | "disk" | false;

/** The default folder of the disk cache: `$TMPDIR/tsfast-cache`. */
export function defaultCacheDir(): string {
  return path.join(os.tmpdir(), "tsfast-cache");
}

/** A cache of `RawImage`s by item index and recipe (memory) or by content key (disk). */
export class ImageCache {
  private readonly mem = new Map<string, RawImage>();

  constructor(
    readonly kind: "memory" | "disk",
    readonly dir: string = defaultCacheDir(),
  ) {
    if (kind === "disk") mkdirSync(dir, { recursive: true });
  }

  /** The disk key of `input` prepared by `recipe` (JSON of the transforms), or undefined for buffers. */
  private key(input: string | Buffer, recipe: string): string | undefined {
    if (typeof input !== "string") return undefined;
    try {
      const st = statSync(input);
      return createHash("sha1").update(`${path.resolve(input)}\0${st.size}\0${st.mtimeMs}\0${recipe}`).digest("hex");
    } catch {
      return undefined;
    }
  }

  /** The cached image of item `i`, or undefined. */
  get(i: number, input: string | Buffer, recipe: string): RawImage | undefined {
    const m = this.mem.get(`${i}\0${recipe}`);
    if (m || this.kind === "memory") return m;
    const k = this.key(input, recipe);
    if (!k) return undefined;
    try {
      const buf = readFileSync(path.join(this.dir, `${k}.rgb`));
      const width = buf.readUInt32LE(0);
      const height = buf.readUInt32LE(4);
      if (buf.length !== 8 + width * height * 3) return undefined;
      return { data: new Uint8Array(buf.buffer, buf.byteOffset + 8, width * height * 3), width, height };
    } catch {
      return undefined;
    }
  }

  /** Store the image of item `i`. */
  set(i: number, input: string | Buffer, recipe: string, img: RawImage): void {
    if (this.kind === "memory") {
      this.mem.set(`${i}\0${recipe}`, img);
      return;
    }
    const k = this.key(input, recipe);
    if (!k) return;
    const head = Buffer.alloc(8);
    head.writeUInt32LE(img.width, 0);
    head.writeUInt32LE(img.height, 4);
    // Write then rename, so a reader never sees half a file.
    const file = path.join(this.dir, `${k}.rgb`);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, Buffer.concat([head, img.data]));
      renameSync(tmp, file);
    } catch {
      // A full or read-only disk only costs speed.
    }
  }
}
