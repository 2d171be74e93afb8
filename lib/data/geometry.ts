/**
 * The geometry of the batch augmentations: 3×3 projective matrices (row-major, flat arrays of 9)
 * for flips, rotation, zoom and fastai's perspective warp, and the 4-point homography solve.
 * Coordinates as in `augment.ts`: x and y over [-1, 1] (`affine_grid(align_corners=True)`), and a
 * matrix maps an OUTPUT position to the SOURCE position it samples.
 */

/** A 3×3 matrix, row-major. */
export type Mat3 = number[];

/** The identity. */
export const IDENTITY: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

/** Matrix product `a · b`. */
export function matMul3(a: Mat3, b: Mat3): Mat3 {
  const out = new Array<number>(9).fill(0);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += a[i * 3 + k]! * b[k * 3 + j]!;
      out[i * 3 + j] = s;
    }
  }
  return out;
}

/** Rotation by `deg` degrees (fastai's `rotate_mat` form). */
export function rotateMat(deg: number): Mat3 {
  const t = (deg * Math.PI) / 180;
  return [Math.cos(t), Math.sin(t), 0, -Math.sin(t), Math.cos(t), 0, 0, 0, 1];
}

/** Zoom by `zoom` (> 1 magnifies) centred at (colPct, rowPct) of the free range (fastai's `zoom_mat`). */
export function zoomMat(zoom: number, colPct: number, rowPct: number): Mat3 {
  const s = 1 / zoom;
  return [s, 0, (1 - s) * (2 * colPct - 1), 0, s, (1 - s) * (2 * rowPct - 1), 0, 0, 1];
}

/** One of the 8 dihedral transforms: bit 0 flips x, bit 1 flips y, bit 2 swaps the axes. */
export function dihedralMat(k: number): Mat3 {
  const fx = k & 1 ? -1 : 1;
  const fy = k & 2 ? -1 : 1;
  return k & 4 ? [0, fx, 0, fy, 0, 0, 0, 0, 1] : [fx, 0, 0, 0, fy, 0, 0, 0, 1];
}

/** The homography taking each of the 4 points `from` to the matching point of `to` (8×8 solve). */
export function homographyFrom4(from: [number, number][], to: [number, number][]): Mat3 {
  // Unknowns h0..h7 with h8 = 1: u = (h0 x + h1 y + h2) / (h6 x + h7 y + 1), v likewise with h3..h5.
  const A: number[][] = [];
  const bvec: number[] = [];
  for (let i = 0; i < 4; i++) {
    const [x, y] = from[i]!;
    const [u, v] = to[i]!;
    A.push([x, y, 1, 0, 0, 0, -u * x, -u * y]);
    bvec.push(u);
    A.push([0, 0, 0, x, y, 1, -v * x, -v * y]);
    bvec.push(v);
  }
  const h = solve(A, bvec);
  return [h[0]!, h[1]!, h[2]!, h[3]!, h[4]!, h[5]!, h[6]!, h[7]!, 1];
}

// Gaussian elimination with partial pivoting.
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    const piv = M[c]![c]!;
    if (Math.abs(piv) < 1e-12) throw new Error("homography: degenerate points");
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r]![c]! / piv;
      if (f === 0) continue;
      for (let k = c; k <= n; k++) M[r]![k]! -= f * M[c]![k]!;
    }
  }
  return M.map((row, i) => row[n]! / row[i]!);
}

/** fastai's perspective warp: corners moved by magnitudes `xMag`, `yMag` (coordinates of output → source). */
export function warpMat(xMag: number, yMag: number): Mat3 {
  const orig: [number, number][] = [
    [-1, -1],
    [-1, 1],
    [1, -1],
    [1, 1],
  ];
  // Corner (a, b) is moved to (a - a·b·yMag, b + b·xMag), as fastai's `_WarpCoord` does.
  const targ = orig.map(([a, b]) => [a - a * b * yMag, b + b * xMag] as [number, number]);
  return homographyFrom4(targ, orig);
}
