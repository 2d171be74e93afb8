/**
 * A forward pass that lets go of each layer's output once the layers that read it have run (issue 19,
 * item 4: peak memory).
 *
 * tfjs-layers runs a model's graph (`Container.call`, through its `execute`) inside the call's `tidy`.
 * In inference it disposes each layer's output once its readers have run; in training it keeps them
 * all until that `tidy` ends, after the last layer. A ResNet's forward pass thus ends holding every
 * BatchNorm output and every residual sum, which nothing reads any more (their ReLUs save their
 * outputs for the backward pass, not their inputs): ResNet-34 at 128 px, batch 32, held 1.30 GB of
 * tensors at the end of its forward pass, 0.50 GB of it freed a moment later by that `tidy`.
 * PyTorch frees each of them when its last reader has run.
 *
 * `installLeanForward` replaces `Container.call` with the same walk (the graph's nodes by decreasing
 * depth, each layer applied to the list of its inputs with the call's arguments, masks handed on as
 * tfjs-layers does) that counts, for each tensor, the layers still to read it and disposes it when
 * that count reaches 0, in training too. Disposing a tensor only drops its reference: what an op
 * saved for the backward pass is its own reference (tfjs keeps a clone), so the numbers and the
 * gradients are unchanged. Never disposed:
 *   1. the model's inputs and outputs (the caller's), and outputs of stateful layers (tfjs-layers'
 *      own rule);
 *   2. a tensor a layer hands on unchanged while another reader still needs it (counted per tensor,
 *      not per graph edge);
 *   3. kept tensors (`tf.keep`: a hook's stored value) and variables (a layer may return its weights).
 * `TSFAST_LEAN_FORWARD=0` keeps tfjs-layers' own call (for a custom gradient that reads, without
 * `save`, a tensor this would have disposed).
 *
 * The walk is also where the native engine runs a BatchNorm and the ReLU that alone reads it as one op in
 * training (`setReluFusion`, native/batchnorm.ts), and in inference a convolution with the BatchNorm (and
 * ReLU) after it as one convolution (`setConvBnFusion`, native/conv-bn.ts). `model.predict` runs the walk
 * too (`leanPredictLoop`).
 */
import * as tf from "./tf";

interface SymbolicTensor {
  id: number;
  name: string;
}
interface LayerLike {
  getClassName(): string;
  apply(inputs: tf.Tensor[], kwargs?: Record<string, unknown>): tf.Tensor | tf.Tensor[];
  computeMask(inputs: tf.Tensor[], mask: (tf.Tensor | null)[]): tf.Tensor | tf.Tensor[] | null;
  supportsMasking: boolean;
  stateful: boolean;
}
interface GraphNode {
  outboundLayer: LayerLike;
  inputTensors: SymbolicTensor[];
  outputTensors: SymbolicTensor[];
}
interface ContainerLike {
  inputs: SymbolicTensor[];
  outputs: SymbolicTensor[];
  nodesByDepth: Record<string, GraphNode[]>;
}
type Computed = [tf.Tensor, tf.Tensor | null];
type CallFn = (this: ContainerLike, inputs: tf.Tensor | tf.Tensor[], kwargs?: Record<string, unknown>) => tf.Tensor[];

let installed = false;

/**
 * A layer's call fused with the plain ReLU that alone reads its output: the ReLU'd output, or undefined
 * to run the two apart. The native engine sets one for BatchNormalization in training (native/batchnorm.ts).
 * The fused call stands for both layers' `apply`: it must check what their calls would (it runs only in
 * a built model's graph, where `apply`'s input checks have passed at build time).
 */
export type ReluFusion = (layer: unknown, x: tf.Tensor, kwargs: Record<string, unknown> | undefined) => tf.Tensor | undefined;
let reluFusion: ReluFusion | undefined;

/** Install (or with undefined remove) the fused BatchNorm + ReLU call the walk tries (see `ReluFusion`). */
export function setReluFusion(f: ReluFusion | undefined): void {
  reluFusion = f;
}

/**
 * A convolution's call, the BatchNorm's that alone reads its output and, with `relu`, the plain ReLU's that
 * alone reads the BatchNorm's, as one op: the last layer's output, or undefined to run them apart. The
 * native engine sets one for inference (native/conv-bn.ts); it must check what the layers' calls would.
 */
export type ConvBnFusion = (conv: unknown, bn: unknown, x: tf.Tensor, relu: boolean, kwargs: Record<string, unknown> | undefined, residual?: Residual) => tf.Tensor | undefined;
/**
 * A residual Add after the BatchNorm, offered to `ConvBnFusion`: `add`'s layer, its other input `into`, which
 * nothing reads after the Add (the fusion may write the sum into its array and return `into` itself), and
 * whether a plain ReLU alone reads the sum. The fusion returns `into` when it took the Add (and that ReLU),
 * another tensor when it fused the convolution and BatchNorm only (with `relu` false: the BatchNorm's output).
 */
export interface Residual {
  add: unknown;
  into: tf.Tensor;
  relu: boolean;
}
let convBnFusion: ConvBnFusion | undefined;

/** Install (or with undefined remove) the fused convolution + BatchNorm (+ ReLU) call the walk tries. */
export function setConvBnFusion(f: ConvBnFusion | undefined): void {
  convBnFusion = f;
}

/** The fused convolution call the walk tries now (undefined: none, e.g. `TSFAST_FUSE_CONV_BN=0`). */
export function getConvBnFusion(): ConvBnFusion | undefined {
  return convBnFusion;
}

/** The class names of the convolution layers the walk offers `convBnFusion` (which checks their calls). */
const CONV_CLASSES = new Set(["Conv2D", "PaddedConv2D"]);

/** tfjs-layers' own ReLU and Activation calls (what a layer's `call` is unless someone wrapped or replaced it). */
const reluProtoCall = (Object.getPrototypeOf(tf.layers.reLU({})) as { call: unknown }).call;
const activationProtoCall = (Object.getPrototypeOf(tf.layers.activation({ activation: "relu" })) as { call: unknown }).call;

/** Whether `layer` is, by its configuration, a ReLU with nothing else to it: a ReLU without a cap, or Activation("relu"). */
function reluLayer(layer: LayerLike): boolean {
  const l = layer as LayerLike & { maxValue?: number | null; activation?: { getClassName(): string } };
  if (l.getClassName() === "ReLU") return l.maxValue == null;
  return l.getClassName() === "Activation" && l.activation?.getClassName() === "relu";
}

/**
 * Whether `layer`'s call is, right now, tfjs-layers' own ReLU call with nothing around it: not a hook
 * (tsfast's replace `call`), not a subclass's or a patched `call`, not tfjs's `setCallHook`. Asked at
 * each call, as hooks come and go.
 */
function plainReluNow(layer: LayerLike): boolean {
  const l = layer as LayerLike & { call?: unknown; _callHook?: unknown };
  if (l._callHook != null || !reluLayer(layer)) return false;
  return l.getClassName() === "ReLU" ? l.call === reluProtoCall : l.call === activationProtoCall;
}

/**
 * For each node of `c` that `from` accepts, with one output that is not a model output and that one node
 * input alone reads, that reader when `to` accepts it: facts of the graph, cached per container and `kind`
 * (whether the layers' calls are plain is asked at each call).
 */
const soleReaderCache = new WeakMap<ContainerLike, Map<string, Map<GraphNode, GraphNode>>>();
function soleReader(c: ContainerLike, kind: string, from: (n: GraphNode) => boolean, to: (n: GraphNode) => boolean): Map<GraphNode, GraphNode> {
  let byKind = soleReaderCache.get(c);
  if (!byKind) soleReaderCache.set(c, (byKind = new Map()));
  let m = byKind.get(kind);
  if (!m) {
    m = new Map();
    const reads = readers(c);
    const outputIds = new Set(c.outputs.map((x) => x.id));
    const nodes = Object.values(c.nodesByDepth).flat();
    for (const n of nodes) {
      if (n.outputTensors.length !== 1 || !from(n)) continue;
      const out = n.outputTensors[0]!;
      if (outputIds.has(out.id) || reads.get(out.id) !== 1) continue;
      const next = nodes.find((r) => r.inputTensors.some((x) => x.id === out.id));
      if (next && next.outputTensors.length === 1 && to(next)) m.set(n, next);
    }
    byKind.set(kind, m);
  }
  return m;
}

const isClass = (n: GraphNode, name: string, inputs: number) => n.outboundLayer.getClassName() === name && n.inputTensors.length === inputs;
/** A two-input Add node whose inputs are two different tensors. */
const isPairAdd = (n: GraphNode) => isClass(n, "Add", 2) && n.inputTensors[0]!.id !== n.inputTensors[1]!.id;
const isReluNode = (n: GraphNode) => n.inputTensors.length === 1 && reluLayer(n.outboundLayer);
/** Each BatchNormalization node whose output one ReLU node alone reads (see `reluLayer`): that ReLU node. */
const reluAfter = (c: ContainerLike) => soleReader(c, "bn-relu", (n) => isClass(n, "BatchNormalization", 1), isReluNode);
/** Each one-input convolution node (CONV_CLASSES) whose output one BatchNormalization node alone reads: that node. */
const bnAfter = (c: ContainerLike) => soleReader(c, "conv-bn", (n) => CONV_CLASSES.has(n.outboundLayer.getClassName()) && n.inputTensors.length === 1, (n) => isClass(n, "BatchNormalization", 1));
/** Each BatchNormalization node whose output a two-input Add alone reads (a residual block's last): that Add node. */
const addAfter = (c: ContainerLike) => soleReader(c, "bn-add", (n) => isClass(n, "BatchNormalization", 1), isPairAdd);
/** Each such Add node whose output one ReLU node alone reads: that ReLU node. */
const reluAfterAdd = (c: ContainerLike) => soleReader(c, "add-relu", isPairAdd, isReluNode);

/** How many node inputs of `c`'s graph read each symbolic tensor (by id). */
const readersCache = new WeakMap<ContainerLike, Map<number, number>>();
function readers(c: ContainerLike): Map<number, number> {
  let m = readersCache.get(c);
  if (!m) {
    m = new Map();
    for (const nodes of Object.values(c.nodesByDepth)) {
      for (const node of nodes) for (const x of node.inputTensors) m.set(x.id, (m.get(x.id) ?? 0) + 1);
    }
    readersCache.set(c, m);
  }
  return m;
}

/** Run `c`'s graph on `inputs`, disposing each intermediate tensor after its last reader (see above). */
function walk(c: ContainerLike, inputs: tf.Tensor[], callKwargs: Record<string, unknown> | undefined): tf.Tensor[] {
  const computed = new Map<number, Computed>();
  c.inputs.forEach((x, i) => computed.set(x.id, [inputs[i]!, null]));
  const reads = readers(c);
  const pending = new Map<tf.Tensor, number>(); // readers still to come, per concrete tensor
  const own = new Set<tf.Tensor>(inputs);
  const outputIds = new Set(c.outputs.map((x) => x.id));
  const release = (t: tf.Tensor): void => {
    if (own.has(t) || (pending.get(t) ?? 0) > 0 || t.isDisposed || t.kept || t instanceof tf.Variable) return;
    pending.delete(t);
    t.dispose();
  };
  let kwargs = callKwargs;
  const depths = Object.keys(c.nodesByDepth).map(Number).sort((a, b) => b - a);
  for (const depth of depths) {
    for (const node of c.nodesByDepth[depth]!) {
      if (node.outputTensors.every((x) => computed.has(x.id))) continue; // an input layer's node
      const got = node.inputTensors.map((x) => computed.get(x.id));
      if (got.some((d) => d === undefined)) continue; // not reached from the inputs: tfjs-layers skips it too
      const xs = (got as Computed[]).map((d) => d[0]);
      const masks = (got as Computed[]).map((d) => d[1]);
      if (masks.some((m) => m != null)) kwargs = { ...(kwargs ?? {}), mask: masks[0] }; // as tfjs-layers hands masks on
      const layer = node.outboundLayer;
      const bn = convBnFusion && masks.every((mk) => mk == null) ? bnAfter(c).get(node) : undefined;
      if (bn) {
        // A residual block's last convolution: its BatchNorm read by an Add alone whose other input is here and
        // read by nothing else any more (not a model input or output, not kept, not a variable): the sum can be
        // written into that tensor's array, as the identity's last reader (the fusion checks its storage).
        const add = addAfter(c).get(bn);
        const otherId = add?.inputTensors.find((x) => x.id !== bn.outputTensors[0]!.id)?.id;
        const other = otherId === undefined ? undefined : computed.get(otherId)?.[0];
        const into = other && pending.get(other) === 1 && !own.has(other) && !other.kept && !other.isDisposed && !(other instanceof tf.Variable) ? other : undefined;
        const addRelu = into ? reluAfterAdd(c).get(add!) : undefined;
        const residual = into ? { add: add!.outboundLayer, into, relu: addRelu !== undefined && plainReluNow(addRelu.outboundLayer) } : undefined;
        const bnRelu = reluAfter(c).get(bn); // none when an Add reads the BatchNorm
        const withRelu = bnRelu !== undefined && plainReluNow(bnRelu.outboundLayer);
        const y = convBnFusion!(layer, bn.outboundLayer, xs[0]!, withRelu, kwargs, residual);
        if (y) {
          // the last fused layer's output: the nodes after the conv are then skipped (an input missing, or their output there)
          const last = residual && y === residual.into ? (residual.relu ? addRelu! : add!) : withRelu ? bnRelu! : bn;
          const x = last.outputTensors[0]!;
          computed.set(x.id, [y, null]);
          if (outputIds.has(x.id) || last.outboundLayer.stateful) own.add(y);
          if (last === add || last === addRelu) pending.set(y, (pending.get(y) ?? 0) - 1); // the Add's read of the identity, done
          pending.set(y, (pending.get(y) ?? 0) + (reads.get(x.id) ?? 0));
          for (const t of xs) pending.set(t, (pending.get(t) ?? 0) - 1);
          for (const t of xs) release(t);
          release(y);
          continue;
        }
      }
      const relu = reluFusion && masks.every((mk) => mk == null) ? reluAfter(c).get(node) : undefined;
      const fused = relu && plainReluNow(relu.outboundLayer) ? reluFusion!(layer, xs[0]!, kwargs) : undefined;
      if (relu && fused) {
        // the ReLU's output, computed with the BatchNorm's: the ReLU node is then skipped (its output is there)
        const x = relu.outputTensors[0]!;
        computed.set(x.id, [fused, null]);
        if (outputIds.has(x.id) || relu.outboundLayer.stateful) own.add(fused);
        pending.set(fused, (pending.get(fused) ?? 0) + (reads.get(x.id) ?? 0));
        for (const t of xs) pending.set(t, (pending.get(t) ?? 0) - 1);
        for (const t of xs) release(t);
        release(fused);
        continue;
      }
      const out = layer.apply(xs, kwargs);
      const outs = Array.isArray(out) ? out : [out];
      const outMask = layer.supportsMasking ? layer.computeMask(xs, masks) : null;
      node.outputTensors.forEach((x, i) => {
        const t = outs[i]!;
        if (!computed.has(x.id)) computed.set(x.id, [t, (Array.isArray(outMask) ? outMask[0] : outMask) ?? null]);
        if (outputIds.has(x.id) || layer.stateful) own.add(t);
        pending.set(t, (pending.get(t) ?? 0) + (reads.get(x.id) ?? 0));
      });
      // This node has read its inputs; then the outputs nobody reads (a layer's unused second output).
      for (const t of xs) pending.set(t, (pending.get(t) ?? 0) - 1);
      for (const t of xs) release(t);
      for (const t of outs) release(t);
    }
  }
  return c.outputs.map((x) => {
    const v = computed.get(x.id);
    if (!v) throw new Error(`Could not compute output ${x.name} : ${x.id}`);
    return v[0];
  });
}

/** Whether `installLeanForward` replaced tfjs-layers' model call in this process. */
export function leanForwardInstalled(): boolean {
  return installed;
}

const container = Object.getPrototypeOf(tf.LayersModel.prototype) as { call: CallFn; runInternalGraph?: unknown };
const tfjsCall = container.call;
const leanCall: CallFn = function (inputs, kwargs) {
  return tf.tidy(() => walk(this, Array.isArray(inputs) ? inputs : [inputs], kwargs));
};

/**
 * `model.predict` and `predictOnBatch` run tfjs-layers' own graph executor (`execute`), batch by batch,
 * which the walk does not reach. `leanPredictLoop` is tfjs-layers' `predictLoop` with each batch run by
 * the model's call instead (`apply(batch, { training: false })`, so the walk): the same batches (slices
 * of `batchSize` along the first axis), the same layers on them in inference, the outputs concatenated.
 */
type PredictLoop = (this: tf.LayersModel, ins: tf.Tensor | tf.Tensor[], batchSize?: number, verbose?: boolean) => tf.Tensor | tf.Tensor[];
const modelProto = tf.LayersModel.prototype as unknown as { predictLoop?: PredictLoop; checkNumSamples?: (ins: tf.Tensor | tf.Tensor[]) => number };
const tfjsPredictLoop = modelProto.predictLoop;
const leanPredictLoop: PredictLoop = function (ins, batchSize = 32, verbose = false) {
  if (verbose) return tfjsPredictLoop!.call(this, ins, batchSize, verbose); // tfjs-layers' own refusal
  return tf.tidy(() => {
    const n = (this as unknown as { checkNumSamples(x: tf.Tensor | tf.Tensor[]): number }).checkNumSamples(ins);
    const list = Array.isArray(ins) ? ins : [ins];
    const outs: tf.Tensor[][] = this.outputs.map(() => []);
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const got = tf.tidy(() => {
        const batch = list.map((t) => tf.slice(t, start, size));
        const y = this.apply(Array.isArray(ins) ? batch : batch[0]!, { training: false }) as tf.Tensor | tf.Tensor[];
        return Array.isArray(y) ? y : [y];
      });
      got.forEach((t, i) => outs[i]!.push(t));
    }
    // concat even of one part, as tfjs-layers: a new tensor, never one the walk hands on (a kept hook value, a weight)
    const res = outs.map((parts) => tf.concat(parts, 0));
    return res.length === 1 ? res[0]! : res;
  });
};

/** Make every tfjs-layers model free its intermediate tensors during the forward pass, `predict` too (idempotent). */
export function installLeanForward(): void {
  if (installed || process.env["TSFAST_LEAN_FORWARD"] === "0") return;
  // Another tfjs-layers than the one this was written against (4.x): keep its own call.
  if (typeof tfjsCall !== "function" || typeof container.runInternalGraph !== "function") return;
  container.call = leanCall;
  if (typeof tfjsPredictLoop === "function" && typeof modelProto.checkNumSamples === "function") modelProto.predictLoop = leanPredictLoop;
  installed = true;
}

/** Run `f` with tfjs-layers' own model call and `predict` (tests compare both walks). */
export function withTfjsCall<T>(f: () => T): T {
  const current = container.call, currentPredict = modelProto.predictLoop;
  container.call = tfjsCall;
  modelProto.predictLoop = tfjsPredictLoop;
  try {
    return f();
  } finally {
    container.call = current;
    modelProto.predictLoop = currentPredict;
  }
}
