/**
 * A small seeded pseudo-random generator: every shuffle, split and augmentation in tsfast draws
 * from one of these, so the same seed gives the same batches on every machine.
 */

/** Seeded PRNG (mulberry32 core on a 32-bit state; floats in [0, 1)). */
export class Rng {
  private state: number;

  /** Start from `seed` (any finite number; non-integers are hashed to 32 bits). */
  constructor(seed: number = 42) {
    this.state = hashSeed(seed);
  }

  /** Next float, uniform in [0, 1). */
  next(): number {
    // mulberry32: add the Weyl constant, then two xor-shift-multiply rounds.
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability `p`. */
  bernoulli(p: number): boolean {
    return this.next() < p;
  }

  /** A new generator whose stream is determined by this one's next draw (for independent sub-streams). */
  fork(): Rng {
    return new Rng(Math.floor(this.next() * 4294967296));
  }

  /** Fisher-Yates shuffle of a copy of `xs`. */
  shuffle<T>(xs: readonly T[]): T[] {
    const out = xs.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = out[i]!;
      out[i] = out[j]!;
      out[j] = tmp;
    }
    return out;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }
}

function hashSeed(seed: number): number {
  if (!Number.isFinite(seed)) throw new Error(`seed must be a finite number, got ${seed}`);
  // Mix integer and fractional parts so 1 and 1.5 give different streams.
  let h = Math.floor(seed) | 0;
  const frac = Math.floor((seed - Math.floor(seed)) * 4294967296) | 0;
  h = Math.imul(h ^ 0x9e3779b9, 0x85ebca6b) ^ frac;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
