/**
 * fastai's hooks: see what a layer computes while the model runs (in a `fit`, `predict`, anything).
 *
 * PyTorch has forward hooks; tfjs-layers does not, so a `Hook` wraps the layer's `call` (the
 * method every model execution path goes through, training or not) and restores it on `remove()`.
 * The forward pass runs inside `tf.tidy` / `tf.variableGrads` scopes that dispose every
 * intermediate tensor; a hook keeps what its function returns (`tf.keep`) and disposes it when the
 * next call replaces it, or on `remove()`. As in fastai, `stored` is the LAST call's value: a
 * callback that wants every batch (`ActivationStats`) reads it after each batch.
 */
import * as tf from "../engine/tf";

type Layer = tf.layers.Layer;

/** What a hook keeps from one call: by default a copy of the output (fastai's `hook_output`). */
export type HookFunc<T extends tf.TensorContainer> = (output: tf.Tensor, inputs: tf.Tensor[], layer: Layer) => T;

/** Options of `hookOutput` / `hookOutputs`. */
export interface HookOptions<T extends tf.TensorContainer> {
  /** What to keep from each call (default: a copy of the output); runs in a `tf.tidy`, its tensors are kept. */
  func?: HookFunc<T>;
}

interface CallableLayer {
  call: (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];
}

const copyOutput = (o: tf.Tensor): tf.Tensor => o.clone();

/** Keep every tensor of a container out of the enclosing scopes (a forward pass's `tidy`). */
function keepAll(c: tf.TensorContainer): void {
  if (c instanceof tf.Tensor) tf.keep(c);
  else if (Array.isArray(c)) c.forEach(keepAll);
  else if (c && typeof c === "object") Object.values(c as Record<string, tf.TensorContainer>).forEach(keepAll);
}

/** fastai's `Hook`: runs `func` on every call of `layer` and keeps the last result in `stored`. */
export class Hook<T extends tf.TensorContainer = tf.Tensor> {
  /** The last call's value (undefined until the layer runs); the hook owns it. */
  stored: T | undefined;
  /** Calls seen since the hook was added. */
  calls = 0;
  private removed = false;
  private readonly original: CallableLayer["call"];

  constructor(
    readonly layer: Layer,
    readonly func: HookFunc<T>,
  ) {
    const target = layer as unknown as CallableLayer;
    if ((target as { __tsfastHooked?: boolean }).__tsfastHooked) {
      throw new Error(`layer "${layer.name}" already has a hook; remove() it first`);
    }
    this.original = target.call;
    const hook = this;
    target.call = function (this: CallableLayer, inputs, kwargs) {
      const out = hook.original.call(this, inputs, kwargs);
      hook.record(Array.isArray(inputs) ? inputs : [inputs], Array.isArray(out) ? out[0]! : out);
      return out;
    };
    (target as { __tsfastHooked?: boolean }).__tsfastHooked = true;
  }

  private record(inputs: tf.Tensor[], output: tf.Tensor): void {
    const value = tf.tidy(() => this.func(output, inputs, this.layer));
    keepAll(value);
    this.clear();
    this.stored = value;
    this.calls += 1;
  }

  /** Dispose `stored` (the hook stays). */
  clear(): void {
    if (this.stored !== undefined) tf.dispose(this.stored);
    this.stored = undefined;
  }

  /** Unhook the layer and dispose `stored`; calling it twice is harmless. */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    const target = this.layer as unknown as CallableLayer & { __tsfastHooked?: boolean };
    target.call = this.original;
    delete target.__tsfastHooked;
    this.clear();
  }
}

/** fastai's `Hooks`: one `Hook` per layer, removed together. */
export class Hooks<T extends tf.TensorContainer = tf.Tensor> {
  readonly hooks: Hook<T>[];
  constructor(layers: Layer[], func: HookFunc<T>) {
    this.hooks = [];
    try {
      for (const l of layers) this.hooks.push(new Hook(l, func));
    } catch (e) {
      this.remove();
      throw e;
    }
  }
  /** Each hook's last value, in layer order. */
  get stored(): (T | undefined)[] {
    return this.hooks.map((h) => h.stored);
  }
  /** The hooked layers' names. */
  get names(): string[] {
    return this.hooks.map((h) => h.layer.name);
  }
  /** Dispose every hook's `stored`. */
  clear(): void {
    for (const h of this.hooks) h.clear();
  }
  /** Unhook every layer and dispose what was stored. */
  remove(): void {
    for (const h of this.hooks) h.remove();
  }
}

/** Every layer under `model`, nested models included, depth first. */
export function allLayers(model: Layer): Layer[] {
  const sub = (model as unknown as { layers?: Layer[] }).layers;
  return Array.isArray(sub) ? sub.flatMap((l) => [l, ...allLayers(l)]) : [];
}

/** The layer called `name` anywhere in `model`, or an error listing names that exist. */
export function findLayer(model: tf.LayersModel, name: string): Layer {
  const all = allLayers(model);
  const found = all.find((l) => l.name === name);
  if (found) return found;
  const names = all.map((l) => l.name);
  const shown = names.slice(0, 30).join(", ") + (names.length > 30 ? `, ... (${names.length} layers)` : "");
  throw new Error(`the model has no layer "${name}"; its layers are: ${shown}`);
}

/** fastai's `hook_output`: keep the output of layer `layerName` (or a `func` of it) from its last call. */
export function hookOutput<T extends tf.TensorContainer = tf.Tensor>(model: tf.LayersModel, layerName: string, opts: HookOptions<T> = {}): Hook<T> {
  return new Hook(findLayer(model, layerName), opts.func ?? (copyOutput as unknown as HookFunc<T>));
}

/** fastai's `hook_outputs`: hooks on several layers (by name; default every layer with weights). */
export function hookOutputs<T extends tf.TensorContainer = tf.Tensor>(
  model: tf.LayersModel,
  layerNames?: string[],
  opts: HookOptions<T> = {},
): Hooks<T> {
  const layers = layerNames
    ? layerNames.map((n) => findLayer(model, n))
    : allLayers(model).filter((l) => !(l as unknown as { layers?: unknown }).layers && l.weights.length > 0);
  if (layers.length === 0) throw new Error("hookOutputs: no layers to hook (give their names)");
  return new Hooks(layers, opts.func ?? (copyOutput as unknown as HookFunc<T>));
}

/**
 * The book's `HookBwd` (a PyTorch backward hook): keeps the gradient of the loss (or whatever is
 * differentiated) with respect to `layer`'s output, from the last gradient computation the layer took
 * part in. tfjs has no backward hooks either: the layer's output passes through an identity whose
 * custom gradient records what flows back (`dy`) and passes it on unchanged. `output` keeps the same
 * call's output, so one hook gives Grad-CAM both the activations and their gradient. Install it on a
 * layer without another hook; `remove()` restores the layer.
 */
export class HookBwd {
  /** The gradient with respect to the layer's output from the last backward pass (the hook owns it). */
  stored: tf.Tensor | undefined;
  private readonly inner: Hook<tf.Tensor>;

  constructor(readonly layer: Layer) {
    this.inner = new Hook(layer, copyOutput);
    const target = layer as unknown as CallableLayer;
    const forward = target.call;
    const hook = this;
    const passThrough = tf.customGrad(((x: tf.Tensor) => ({
      value: x.clone(),
      gradFunc: (dy: tf.Tensor) => {
        if (hook.stored) hook.stored.dispose();
        hook.stored = tf.keep(dy.clone());
        return [dy.clone()];
      },
    })) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;
    target.call = function (this: CallableLayer, inputs, kwargs) {
      const out = forward.call(this, inputs, kwargs);
      return Array.isArray(out) ? [passThrough(out[0]!), ...out.slice(1)] : passThrough(out);
    };
  }

  /** The layer's output of the last forward call (the hook owns it). */
  get output(): tf.Tensor | undefined {
    return this.inner.stored;
  }

  /** Dispose `stored` and `output` (the hook stays). */
  clear(): void {
    this.stored?.dispose();
    this.stored = undefined;
    this.inner.clear();
  }

  /** Unhook the layer and dispose what was stored. */
  remove(): void {
    this.stored?.dispose();
    this.stored = undefined;
    this.inner.remove(); // restores the layer's own call (the pass-through wraps the inner hook's)
  }
}

/** A `HookBwd` on layer `layerName` of `model` (nested models searched; an unknown name lists the names). */
export function hookGrad(model: tf.LayersModel, layerName: string): HookBwd {
  return new HookBwd(findLayer(model, layerName));
}
