/**
 * Backprop that lets go of memory as it goes (issue 19, item 4: peak memory).
 *
 * tfjs-core's `engine.gradients` walks the tape backward, one op at a time, but frees nothing until
 * the walk is over: every op's saved forward tensors (the activations its gradient reads) and
 * every intermediate gradient stay alive to the end. At the end of a ResNet's backward pass the
 * process holds all activations *and* a gradient of each, where PyTorch by then holds neither.
 *
 * Once an op's gradient has run, tfjs never reads that op's saved tensors or the gradients of its
 * outputs again (the tape is in creation order, so an output's gradient is complete before its op
 * is reached, and each op is reached once). `installEarlyRelease` disposes them then: when the
 * walk reaches the next op, so tfjs has stored the finished op's input gradients first.
 * Never disposed early:
 *   1. anything an op's gradient returned as an input's gradient (a custom gradient may hand back
 *      its `dy` or a saved tensor unchanged), nor a tensor returned more than once (for two inputs,
 *      or handed on unchanged by a later op);
 *   2. the `dy` a caller passed to `tf.grad`/`engine.gradients` (theirs, not ours);
 *   3. anything during a higher-order gradient (`gradientDepth > 0`), where tfjs keeps the tape on purpose.
 * The numbers are untouched: only when memory is released changes.
 */
import * as tf from "./tf";

type Grads = Record<string, () => tf.Tensor>;
interface TapeNode {
  saved?: tf.Tensor[];
  outputs?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Grads;
}
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  getTensorsForGradient(kernelName: string, inputs: Record<string, tf.Tensor>, outputs: tf.Tensor[]): tf.Tensor[];
  addTapeNode(...args: unknown[]): void;
  gradients(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients?: boolean): unknown;
}

/** One finished op's tensors, waiting for tfjs to store its input gradients. */
interface Finished {
  candidates: tf.Tensor[];
  returned: tf.Tensor[];
}

let installed = false;
/** How often each tensor was returned as an input's gradient (more than once: shared, kept). */
const timesReturned = new WeakMap<tf.Tensor, number>();
const callersDy = new Set<tf.Tensor>();
let finished: Finished | undefined;

function releaseFinished(): void {
  const f = finished;
  finished = undefined;
  if (!f) return;
  const keep = new Set(f.returned);
  for (const t of f.candidates) {
    if (keep.has(t) || callersDy.has(t) || (timesReturned.get(t) ?? 0) > 1) continue;
    t.dispose();
  }
}

/**
 * Only an op with a large saved tensor or output (whose gradient is as large) is worth the wrapper:
 * small ops (a tabular model's, a bias's) would pay its bookkeeping for nothing. The same size as
 * the native pool's floor (lib/engine/native/pool.ts).
 */
const RELEASE_MIN_SIZE = 1 << 14;
function worthReleasing(node: TapeNode): boolean {
  return (node.saved ?? []).some((t) => t.size >= RELEASE_MIN_SIZE) || (node.outputs ?? []).some((t) => t.size >= RELEASE_MIN_SIZE);
}

/** Whether `installEarlyRelease` has run in this process. */
export function earlyReleaseInstalled(): boolean {
  return installed;
}

/** Make tfjs's backward pass dispose each op's saved tensors and output gradients once used (idempotent). */
export function installEarlyRelease(): void {
  if (installed) return;
  installed = true;
  const engine = tf.engine() as unknown as EngineInternals;
  leanAdd(engine);
  const addTapeNode = engine.addTapeNode;
  const gradients = engine.gradients;

  engine.gradients = function (this: EngineInternals, f, xs, dy, allowNoGradients) {
    // A gradient computed inside another's backward pass (from a custom gradient) must not release
    // the outer op's tensors, which its remaining input gradients may still read: set them aside.
    const outer = finished;
    finished = undefined;
    if (dy) callersDy.add(dy);
    try {
      return gradients.call(this, f, xs, dy, allowNoGradients);
    } finally {
      if (dy) callersDy.delete(dy);
      // tfjs has disposed this call's last op's tensors itself
      finished = outer;
    }
  };

  engine.addTapeNode = function (this: EngineInternals, ...args: unknown[]) {
    addTapeNode.apply(this, args);
    const tape = this.state.activeTape;
    const node = tape?.[tape.length - 1];
    const gradient = node?.gradient;
    if (!node || !gradient || !worthReleasing(node)) return;
    node.gradient = (dys) => {
      releaseFinished(); // the op before this one in the walk: its input gradients are stored now
      const byInput = gradient(dys);
      if (this.state.gradientDepth !== 0) return byInput;
      const done: Finished = { candidates: [...dys.filter((d): d is tf.Tensor => d != null), ...(node.saved ?? [])], returned: [] };
      finished = done;
      const wrapped: Grads = {};
      for (const [name, thunk] of Object.entries(byInput)) {
        wrapped[name] = () => {
          const g = thunk();
          done.returned.push(g);
          timesReturned.set(g, (timesReturned.get(g) ?? 0) + 1);
          return g;
        };
      }
      return wrapped;
    };
  };
}

/**
 * tfjs's Add keeps both its inputs for the backward pass only to read their shapes (to sum a
 * broadcast input's gradient back to its shape). A residual block's Add thus kept its branch's last
 * BatchNorm output alive to the end of the forward pass, which nothing else needs: 62 MiB of ResNet-34's
 * step at 128 px, batch 32. When both inputs have one shape, nothing is kept, and the gradient is `dy`
 * for each (what tfjs's gives then); a broadcasting Add runs tfjs's own gradient.
 */
function leanAdd(engine: EngineInternals): void {
  const original = tf.getGradient(tf.Add);
  if (!original) return;
  const toSave = engine.getTensorsForGradient;
  engine.getTensorsForGradient = function (this: EngineInternals, kernelName, inputs, outputs) {
    if (kernelName === tf.Add && inputs["a"] && inputs["b"] && tf.util.arraysEqual(inputs["a"].shape, inputs["b"].shape)) return [];
    return toSave.call(this, kernelName, inputs, outputs);
  };
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      if (saved.length) return original.gradFunc(dy, saved, attrs);
      const g = dy as tf.Tensor; // Add has one output
      return { a: () => tf.reshape(g, g.shape), b: () => tf.reshape(g, g.shape) };
    },
  });
}
