/**
 * One entry point for the archive readers `untarData` uses: a zip (told by its signature) goes to
 * `extractZip`, anything else to `extractTar` (plain or gzipped, told by its magic bytes). Both
 * refuse the same escapes (see `tar.ts`).
 */
import { extractTar } from "./tar";
import { extractZip, isZip } from "./zip";

/** Extract the tar, tar.gz or zip `archive` into `dest`; returns the number of entries written. */
export async function extractArchive(archive: string, dest: string): Promise<number> {
  return (await isZip(archive)) ? extractZip(archive, dest) : extractTar(archive, dest);
}
