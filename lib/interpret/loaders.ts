/**
 * How interpretation reads a learner's data: the split loaders as `LoaderLike` and the class
 * names, checked at run time with errors that say what is missing. The types are the learner
 * floor's contracts (`lib/learner/contracts.ts`), so this floor depends on no concrete class.
 */
import type { DataLoadersLike, LoaderLike } from "../learner/contracts";

/** `x` as a `LoaderLike`, or an error saying what the `split` loader lacks. */
export function asLoader(x: unknown, split: string): LoaderLike {
  const dl = x as Partial<LoaderLike> | null | undefined;
  if (!dl || typeof dl !== "object" || !Array.isArray(dl.items) || typeof dl.loadImage !== "function") {
    throw new Error(`the ${split} DataLoader has no \`items\` array and \`loadImage(i)\`; interpretation needs both (see \`LoaderLike\` in lib/learner/contracts.ts)`);
  }
  return dl as LoaderLike;
}

/** The loader of split `dsIdx` (0 = train, 1 = valid), with an error naming the value otherwise. */
export function loaderOf(dls: DataLoadersLike<unknown>, dsIdx: number): LoaderLike {
  if (dsIdx === 0) return asLoader(dls.train, "train");
  if (dsIdx === 1) return asLoader(dls.valid, "valid");
  throw new Error(`dsIdx must be 0 (train) or 1 (valid), got ${dsIdx}`);
}

/** The class names of `dls`, or an error: interpretation is for classification data. */
export function vocabOf(dls: DataLoadersLike<unknown>): readonly string[] {
  if (!dls.vocab || dls.vocab.length === 0) {
    throw new Error("these DataLoaders have no vocab (class names): ClassificationInterpretation and the cleaner are for classification data");
  }
  return dls.vocab;
}
