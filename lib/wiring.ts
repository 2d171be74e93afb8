/**
 * The one place where upper floors register themselves with lower ones. A lower floor never
 * imports an upper one (nor guesses a `require` path to find it); it offers a setter, and this
 * file, imported by `lib/index.ts` and the `tsfast` command, calls it once:
 *   - the data floor's `prepareInputs` becomes the learner's `predict` preprocessing;
 *   - importing `models/layers` registers the custom layer classes (`AdaptiveConcatPool2d`,
 *     `SigmoidRange`) with tfjs, so `loadLearner` can restore any export;
 *   - importing `models/collab` registers the collaborative-filtering layers (`ColumnEmbedding`, `DotBias`).
 */
import { prepareInputs } from "./data/inference";
import { setInferencePreparer, type PrepareInferenceBatch } from "./learner/predict";
import "./models/layers";
import "./models/collab";

setInferencePreparer(prepareInputs as unknown as PrepareInferenceBatch);
