/**
 * Which of tfjs-core's test files `test-ops` runs, and which specs it skips (each with a reason).
 */

/**
 * Suite files kept (paths under `@tensorflow/tfjs-core/dist/`): every op test (incl. fused, losses,
 * image, sparse, linalg, signal, spectral, string), the optimizers, gradients, tensors and variables.
 * Left out: io/ (model saving, browser storage), platform/browser/worker tests, engine and
 * kernel-registry internals (they register fake backends), none of which exercise a backend's math.
 */
export const SUITE_FILES: RegExp[] = [
  /^ops\//,
  /^optimizers\//,
  /^gradients_test\.js$/,
  /^tensor_test\.js$/,
  /^variable_test\.js$/,
];

/** One skipped group of specs: which backends, which spec names, and why. */
export interface Exclusion {
  /** Backends the rule applies to (`*` = all). */
  backends: string[];
  /** A spec is skipped when its full name contains this text (or matches this pattern). */
  match: string | RegExp;
  reason: string;
}

export const EXCLUSIONS: Exclusion[] = [];

/** The reason a spec is skipped on this backend, or undefined when it runs. */
export function excludedReason(backend: string, specName: string): string | undefined {
  for (const e of EXCLUSIONS) {
    if (!e.backends.includes("*") && !e.backends.includes(backend)) continue;
    const hit = typeof e.match === "string" ? specName.includes(e.match) : e.match.test(specName);
    if (hit) return e.reason;
  }
  return undefined;
}
