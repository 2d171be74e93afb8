/**
 * The one TensorFlow.js namespace the whole library and every notebook share.
 *
 * `import { tf } from "tsfast"` gives tfjs-core plus tfjs-layers (`tf.layers`, `tf.model`, ...),
 * exactly like the `@tensorflow/tfjs` umbrella package. Importing tfjs from a second copy of the
 * package gives tensors that this library's `instanceof` checks reject; `guardSingleInstance`
 * warns when that happens.
 */
export * from "@tensorflow/tfjs-core";
export * from "@tensorflow/tfjs-layers";
// The types of the chained tensor methods (`x.reshape(...)`); `./chained` installs them at run time.
export type {} from "@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops";
