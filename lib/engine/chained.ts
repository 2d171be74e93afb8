/**
 * Chained tensor methods (`x.reshape([...])`, `x.add(y).relu()`), as in the `@tensorflow/tfjs`
 * umbrella package. tfjs-core ships them only as ES modules that would load a second tfjs-core in
 * Node, so tsfast installs the same methods on the one Tensor class it uses; their types come from
 * tfjs-core's own declarations.
 */
import * as tf from "./tf";

type AnyFn = (...args: unknown[]) => unknown;

/** Methods that call the op of the same name with the tensor as first argument. */
const SAME_NAME = `abs acos acosh add all any argMax argMin asin asinh atan atan2 atanh avgPool batchToSpaceND
  batchNorm broadcastTo cast ceil clipByValue conv1d conv2d conv2dTranspose cos cosh cumprod cumsum
  depthToSpace depthwiseConv2d dilation2d div divNoNan dot elu equal erf euclideanNorm exp expandDims
  expm1 fft floor floorDiv gather greater greaterEqual ifft irfft isFinite isInf isNaN leakyRelu less
  lessEqual localResponseNormalization log log1p logSigmoid logSoftmax logSumExp logicalAnd logicalNot
  logicalOr logicalXor matMul max maxPool maximum mean min minimum mirrorPad mod mul neg norm notEqual
  oneHot onesLike pad pool pow prelu prod reciprocal relu relu6 reshape resizeBilinear
  resizeNearestNeighbor reverse rfft round rsqrt selu separableConv2d sigmoid sign sin sinh slice softmax
  softplus spaceToBatchND split sqrt square squaredDifference squeeze step stridedSlice sub sum tan tanh
  tile topk transpose unique unsortedSegmentSum unstack zerosLike`.split(/\s+/);

/** Install the chained methods on tfjs's Tensor class (once; existing methods are kept). */
export function installChainedOps(): void {
  const proto = tf.Tensor.prototype as unknown as Record<string, AnyFn>;
  const ops = tf as unknown as Record<string, AnyFn>;
  const define = (name: string, fn: (self: tf.Tensor, ...args: unknown[]) => unknown) => {
    if (typeof proto[name] === "function") return;
    Object.defineProperty(proto, name, {
      configurable: true,
      writable: true,
      value: function (this: tf.Tensor, ...args: unknown[]) {
        this.throwIfDisposed();
        return fn(this, ...args);
      },
    });
  };
  for (const name of SAME_NAME) {
    const op = ops[name];
    if (typeof op === "function") define(name, (self, ...args) => op(self, ...args));
  }
  const reshape = (self: tf.Tensor, shape: number[]) => tf.reshape(self, shape);
  define("as1D", (self) => reshape(self, [self.size]));
  define("flatten", (self) => reshape(self, [self.size]));
  define("asScalar", (self) => reshape(self, []));
  for (const [name, rank] of [["as2D", 2], ["as3D", 3], ["as4D", 4], ["as5D", 5]] as const) {
    define(name, (self, ...dims) => reshape(self, (dims as number[]).slice(0, rank)));
  }
  define("reshapeAs", (self, other) => reshape(self, (other as tf.Tensor).shape));
  define("asType", (self, dtype) => tf.cast(self, dtype as tf.DataType));
  define("toBool", (self) => tf.cast(self, "bool"));
  define("toFloat", (self) => tf.cast(self, "float32"));
  define("toInt", (self) => tf.cast(self, "int32"));
  define("concat", (self, x, axis) => tf.concat([self, ...(x instanceof tf.Tensor ? [x] : (x as tf.Tensor[]))], axis as number));
  define("stack", (self, x, axis) => tf.stack([self, ...(x instanceof tf.Tensor ? [x] : (x as tf.Tensor[]))], axis as number));
  define("where", (self, cond, x) => tf.where(cond as tf.Tensor, self, x as tf.Tensor));
}
