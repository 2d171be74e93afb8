/** Comparing arrays of numbers in tests. */

/**
 * Largest |a - b| (Infinity if any difference is NaN) and the largest |b|, over two arrays of one
 * non-zero length: comparing empty or mismatched arrays is refused, so a test cannot pass vacuously.
 */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; scale: number } {
  if (a.length !== b.length || a.length === 0) throw new Error(`comparing ${a.length} values with ${b.length}`);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= diff)) diff = Number.isNaN(d) ? Infinity : d;
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return { diff, scale };
}
