/**
 * The one place where upper floors register themselves with lower ones. A lower floor never
 * imports an upper one (nor guesses a `require` path to find it); it offers a setter, and this
 * file, imported by `lib/index.ts` and the `tsfast` command, calls it once:
 *   - the data floor's `prepareInputs` becomes the learner's `predict` preprocessing;
 *   - a table's spec (kind "tabular") routes `predict` inputs, row objects, to `prepareTabularRows`;
 *   - importing `models/layers` registers the custom layer classes (`AdaptiveConcatPool2d`,
 *     `SigmoidRange`) with tfjs, so `loadLearner` can restore any export;
 *   - importing `models/collab` registers the collaborative-filtering layers (`ColumnEmbedding`, `DotBias`);
 *   - a text spec (kind "text") routes `predict` inputs, strings, to `prepareTextInputs`; importing
 *     `models/awd-lstm` registers `AwdLstmLM` and `AwdLstmClassifierEncoder`.
 */
import { prepareInputs } from "./data/inference";
import { setInferencePreparer, type PrepareInferenceBatch } from "./learner/predict";
import "./models/layers";
import "./models/collab";

// ---- tables: a tabular export's spec says kind "tabular"; its inputs are row objects (models/tabular registers TabularColumns)
import { isTabularSpec, prepareTabularRows } from "./tabular/data";
import type { TabularRow } from "./tabular/core";
import "./models/tabular";
const prepareTables = (spec: unknown, inputs: unknown[]) =>
  isTabularSpec(spec) ? prepareTabularRows(spec, inputs as TabularRow[]) : (prepareInputs as unknown as PrepareInferenceBatch)(spec, inputs as (string | Buffer)[]);
// ---- end tables

// ---- text: a text export's spec says kind "text"; its inputs are strings
import { isTextSpec, prepareTextInputs } from "./text/data";
import "./models/awd-lstm";
const prepareAll = (spec: unknown, inputs: unknown[]) => (isTextSpec(spec) ? prepareTextInputs(spec, inputs) : prepareTables(spec, inputs));
// ---- end text

setInferencePreparer(prepareAll as unknown as PrepareInferenceBatch);
