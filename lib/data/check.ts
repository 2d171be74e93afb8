/**
 * The check every file gets when `DataLoaders` are built: `probeImage` on each item (bounded
 * concurrency; sharp reads headers on libuv's thread pool), so broken files are reported once, up
 * front, and left out of the counts and both splits, instead of turning up mid-training.
 */
import { probeImage } from "./decode";

/** Files checked at once. */
const CHECK_CONCURRENCY = 16;
/** Files named in the warning; the rest are counted. */
const NAMED_IN_WARNING = 20;

/** Options of `findUnreadable`. */
export interface CheckOptions {
  /** Passed on to `probeImage`. Default its own. */
  maxPixels?: number;
}

/** Reasons why the `inputs` at `indices` cannot be read, by index (readable ones are absent). */
export async function findUnreadable(
  inputs: readonly (string | Buffer)[],
  indices: readonly number[],
  opts: CheckOptions = {},
): Promise<Map<number, string>> {
  const bad = new Map<number, string>();
  const probeOpts = opts.maxPixels === undefined ? {} : { maxPixels: opts.maxPixels };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < indices.length) {
      const i = indices[next++]!;
      const why = await probeImage(inputs[i]!, probeOpts);
      if (why !== undefined) bad.set(i, why);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CHECK_CONCURRENCY, indices.length) }, worker));
  return bad;
}

/** The one warning about the files `findUnreadable` found, in index order. */
export function unreadableWarning(bad: ReadonlyMap<number, string>, name: (i: number) => string): string {
  const rows = [...bad.keys()].sort((a, b) => a - b);
  const named = rows.slice(0, NAMED_IN_WARNING).map((i) => `${name(i)} (${bad.get(i)})`);
  const more = rows.length > NAMED_IN_WARNING ? `, and ${rows.length - NAMED_IN_WARNING} more (verifyImages lists them all)` : "";
  const s = rows.length === 1 ? "" : "s";
  return `tsfast: left out ${rows.length} unreadable file${s} (not counted, in neither split): ${named.join(", ")}${more}`;
}
