/**
 * The one-pass segment sum behind `UnsortedSegmentSum` (the gradient of `gather`: embeddings) on the
 * engines that replace tfjs's cpu kernel, which builds a mask per segment:
 *   out[s, ...] = Σ_{i : ids[i] = s} x[i, ...]   (ids outside [0, numSegments) are dropped)
 */
export function segmentSumInto(
  xs: ArrayLike<number>,
  ids: ArrayLike<number>,
  out: { [i: number]: number; fill(v: number): unknown },
  rows: number,
  rowSize: number,
  numSegments: number,
): void {
  out.fill(0);
  for (let r = 0; r < rows; r++) {
    const s = ids[r]!;
    if (s < 0 || s >= numSegments) continue;
    const xo = r * rowSize;
    const oo = s * rowSize;
    for (let k = 0; k < rowSize; k++) out[oo + k]! += xs[xo + k]!;
  }
}
