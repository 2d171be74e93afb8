/**
 * A first-in first-out queue that runs at most `concurrency` jobs at a time and refuses new jobs
 * (503) once `maxQueue` are waiting, so a burst of requests queues instead of piling work (and
 * tensors) onto the model all at once.
 */
import { HttpError } from "./errors";

/** Bounded-concurrency FIFO job queue. */
export class JobQueue {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    /** Jobs run at once. */
    readonly concurrency: number,
    /** Jobs allowed to wait; one more gets a 503. */
    readonly maxQueue: number,
  ) {
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new Error(`concurrency must be a positive integer, got ${concurrency}`);
    }
    if (!Number.isInteger(maxQueue) || maxQueue < 0) {
      throw new Error(`maxQueue must be a non-negative integer, got ${maxQueue}`);
    }
  }

  /** Jobs running now. */
  get active(): number {
    return this.running;
  }

  /** Jobs waiting for a slot. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Run `job` when a slot is free; rejects with a 503 `HttpError` when the queue is full. */
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxQueue) {
        throw new HttpError(503, "busy", `the server is busy: ${this.running} predictions running and ${this.waiting.length} waiting (maxQueue); retry shortly`, {
          "Retry-After": "1",
        });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await job();
    } finally {
      // Hand the slot straight to the next waiter, so `running` never dips and lets a newcomer jump the line.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
