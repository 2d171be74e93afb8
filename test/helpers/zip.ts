/**
 * A tiny zip writer for tests, written from the format (APPNOTE.TXT) so tests can make hostile
 * archives (a `../` entry, a symlink out) that a well-behaved zip tool refuses to write.
 *
 * Layout: per entry a local header (signature 0x04034b50) + name + data; then a central directory
 * record per entry (0x02014b50, made by Unix, mode in the high 16 bits of the external attributes,
 * offset of its local header); then the end record (0x06054b50) with the count, size and offset.
 */
import * as zlib from "node:zlib";

/** One entry: a file (`data`), a folder (`dir`) or a symlink (`link`: its target). */
export interface ZipEntrySpec {
  name: string;
  data?: Buffer | string;
  dir?: boolean;
  link?: string;
  /** Permission bits (default 0o644, folders 0o755). */
  mode?: number;
  /** Deflate the data (default true for files). */
  deflate?: boolean;
}

/** The bytes of a zip holding `entries`, in order. */
export function zipOf(entries: ZipEntrySpec[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, "utf8");
    const raw = Buffer.from(e.link ?? e.data ?? "");
    const kind = e.dir ? 0o040000 : e.link !== undefined ? 0o120000 : 0o100000;
    const mode = kind | (e.mode ?? (e.dir ? 0o755 : 0o644));
    const method = e.deflate === false || e.dir || e.link !== undefined ? 0 : 8;
    const body = method === 8 ? zlib.deflateRawSync(raw) : raw;
    const crc = zlib.crc32(raw);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // names are UTF-8
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(raw.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix, spec 2.0
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(raw.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(mode * 0x10000, 38); // external attributes: Unix mode << 16
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += local.length + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}
