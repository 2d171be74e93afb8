/**
 * A first-in first-out queue that groups waiting items into batches: at most `concurrency`
 * batches run at once, each of at most `maxBatch` items, and new items are refused (503) once
 * `maxQueue` are waiting. A burst of requests therefore queues — and is computed a batch at a
 * time — instead of piling work (and tensors) onto the model all at once.
 */
import { HttpError } from "./errors";

/** Computes a whole batch; returns one result or one `Error` per item, in order. */
export type BatchFn<I, O> = (items: I[]) => Promise<(O | Error)[]>;

interface Waiting<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

/** Bounded-concurrency FIFO queue that runs its items in batches. */
export class BatchQueue<I, O> {
  private running = 0;
  private readonly waiting: Waiting<I, O>[] = [];

  constructor(
    /** Computes one batch. */
    private readonly fn: BatchFn<I, O>,
    /** Batches computed at once. */
    readonly concurrency: number,
    /** Items per batch, at most. */
    readonly maxBatch: number,
    /** Items allowed to wait; one more gets a 503. */
    readonly maxQueue: number,
  ) {
    for (const [name, v, min] of [["concurrency", concurrency, 1], ["maxBatch", maxBatch, 1], ["maxQueue", maxQueue, 0]] as const) {
      if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer ≥ ${min}, got ${v}`);
    }
  }

  /** Batches running now. */
  get active(): number {
    return this.running;
  }

  /** Items waiting for a batch. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Queue `item`; resolves with its result, rejects with its error, or with a 503 `HttpError` when the queue is full. */
  push(item: I): Promise<O> {
    if (this.waiting.length >= this.maxQueue && this.running >= this.concurrency) {
      return Promise.reject(
        new HttpError(503, "busy", `the server is busy: ${this.running} batches running and ${this.waiting.length} requests waiting (maxQueue); retry shortly`, {
          "Retry-After": "1",
        }),
      );
    }
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.pump();
    });
  }

  // Start batches while slots are free; each finished batch starts the next.
  private pump(): void {
    while (this.running < this.concurrency && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxBatch);
      this.running++;
      void this.runBatch(batch).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async runBatch(batch: Waiting<I, O>[]): Promise<void> {
    let results: (O | Error)[];
    try {
      results = await this.fn(batch.map((w) => w.item));
      if (results.length !== batch.length) throw new Error(`a batch of ${batch.length} gave ${results.length} results`);
    } catch (e) {
      for (const w of batch) w.reject(e);
      return;
    }
    batch.forEach((w, i) => {
      const r = results[i]!;
      if (r instanceof Error) w.reject(r);
      else w.resolve(r);
    });
  }
}
