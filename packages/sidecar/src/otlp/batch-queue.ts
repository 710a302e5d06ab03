// A bounded queue that hands items to a sink in batches, one batch at a time.
// Items are sent when a full batch is queued, when the schedule delay has passed
// since the first unsent item, or on flush/shutdown. push() never blocks or
// throws; overflow is counted as dropped. Background timers are unref'd, so an
// idle queue never keeps the process alive.
//
// Fair share: with `ownerOf`, items wait in one lane per owner (an agent
// process). A full queue drops from its longest lane, not whoever comes
// next, and batches take from every lane in turn: an agent that floods the
// exporter loses its own spans, never another agent's.
//
// Why not OpenTelemetry's BatchSpanProcessor / BatchLogRecordProcessor (same
// 2048/512/1000 ms defaults): they have one FIFO, so one agent's flood drops
// every other agent's spans, and they count nothing of what they drop or what
// failed. The exporters behind this queue are OpenTelemetry's own.

import { asError } from '@agentrace/protocol';


export interface BatchQueueOptions<T = unknown> {
  /** Items waiting to be sent at most; more are dropped (counted). */
  maxQueueSize: number;
  /** Items per batch at most. */
  maxBatchSize: number;
  /** How long a partial batch waits before it is sent, in ms. */
  scheduleDelayMs: number;
  /** Whose item it is, for fair share between owners; one lane for all if undefined. */
  ownerOf?: (item: T) => unknown;
}

/** What became of the items of one batch; exported + failed should equal the batch size. */
export interface BatchOutcome {
  exported: number;
  failed: number;
}

/** Sends one batch. `signal` aborts when the queue shuts down. Should not throw (a throw counts the batch as failed). */
export type BatchSink<T> = (batch: T[], signal: AbortSignal) => Promise<BatchOutcome>;

export interface BatchCounts {
  exported: number;
  failed: number;
  dropped: number;
}

interface Waiter {
  target: number;
  resolve: () => void;
}

export class BatchQueue<T> {
  /** One FIFO lane per owner, in the order owners first came. */
  private lanes = new Map<unknown, T[]>();
  /** Items in all lanes. */
  private size = 0;
  /** Items ever accepted into the queue. */
  private accepted = 0;
  /** Items ever taken out of the queue into a batch. */
  private taken = 0;
  /** Items whose fate is known (sent, failed or dropped after being accepted). */
  private settled = 0;
  /** Every item up to this sequence number is sent even in a partial batch. */
  private drainTarget = 0;
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Items of the batch being sent; counted as failed if shutdown stops waiting for them. */
  private inFlight = 0;
  private abandoned = false;
  private waiters: Waiter[] = [];
  private readonly abort = new AbortController();
  private readonly counts: BatchCounts = { exported: 0, failed: 0, dropped: 0 };

  constructor(
    private readonly options: BatchQueueOptions<T>,
    private readonly sink: BatchSink<T>,
    private readonly onError: (error: Error) => void,
  ) {
    if (!(options.maxQueueSize >= 1) || !(options.maxBatchSize >= 1) || !(options.scheduleDelayMs >= 0)) {
      throw new RangeError('BatchQueue: maxQueueSize and maxBatchSize must be >= 1, scheduleDelayMs >= 0');
    }
  }

  /** Enqueues what fits; the rest is dropped and counted. Never throws. */
  push(items: readonly T[]): void {
    if (items.length === 0) return;
    if (this.closed) {
      this.counts.dropped += items.length;
      return;
    }
    const ownerOf = this.options.ownerOf;
    let n = 0;
    let longest: T[] | undefined;
    for (const item of items) {
      const owner = ownerOf ? ownerOf(item) : undefined;
      let lane = this.lanes.get(owner);
      if (this.size >= this.options.maxQueueSize) {
        // Full: the longest lane gives up its newest item, unless this is it.
        if (!ownerOf) {
          this.counts.dropped++;
          continue;
        }
        const mine = lane?.length ?? 0;
        if (longest === undefined || (longest !== lane && longest.length <= mine + 1)) longest = this.longestLane();
        if (longest === undefined || longest === lane || mine + 1 >= longest.length) {
          this.counts.dropped++;
          continue;
        }
        longest.pop();
        this.size--;
        this.counts.dropped++;
        this.settle(1);
      }
      if (!lane) {
        lane = [];
        this.lanes.set(owner, lane);
      }
      lane.push(item);
      this.size++;
      n++;
    }
    this.accepted += n;
    if (this.size >= this.options.maxBatchSize) this.kick();
    else if (n > 0) this.schedule();
  }

  private longestLane(): T[] | undefined {
    let best: T[] | undefined;
    for (const lane of this.lanes.values()) if (!best || lane.length > best.length) best = lane;
    return best;
  }

  /** Up to maxBatchSize items, taken from every lane in turn. */
  private takeBatch(): T[] {
    const max = this.options.maxBatchSize;
    const batch: T[] = [];
    while (batch.length < max && this.size > 0 && this.lanes.size > 0) {
      const share = Math.max(1, Math.floor((max - batch.length) / this.lanes.size));
      for (const [owner, lane] of this.lanes) {
        const part = lane.splice(0, Math.min(share, max - batch.length));
        for (const item of part) batch.push(item);
        this.size -= part.length;
        if (lane.length === 0) this.lanes.delete(owner);
        if (batch.length >= max) break;
      }
    }
    return batch;
  }

  /** Resolves once everything accepted so far is settled, or after timeoutMs. */
  flush(timeoutMs: number): Promise<void> {
    const target = this.accepted;
    if (this.settled >= target) return Promise.resolve();
    this.drainTarget = Math.max(this.drainTarget, target);
    this.kick();
    return this.waitSettled(target, timeoutMs);
  }

  /**
   * Stops accepting items, sends what is queued within timeoutMs, then aborts the
   * batch in flight and drops (counts) whatever is still queued.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + Math.max(0, timeoutMs);
    this.closed = true;
    await this.flush(timeoutMs);
    this.clearTimer();
    this.abort.abort();
    const left = this.size;
    if (left > 0) {
      this.lanes = new Map();
      this.size = 0;
      this.counts.dropped += left;
      this.settle(left);
    }
    const running = this.running;
    if (running === undefined) return;
    await raceTimeout(running, deadline - Date.now());
    if (this.running === undefined || this.inFlight === 0) return;
    // Still unanswered at the deadline: counted as failed now, so that a
    // shutdown line never leaves it out (its late answer is not counted again).
    this.counts.failed += this.inFlight;
    this.settle(this.inFlight);
    this.inFlight = 0;
    this.abandoned = true;
  }

  stats(): BatchCounts {
    return { ...this.counts };
  }

  /** Items accepted but not yet settled. */
  pending(): number {
    return this.accepted - this.settled;
  }

  private kick(): void {
    if (this.running !== undefined) return;
    this.clearTimer();
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.size > 0 && !this.abort.signal.aborted) {
        // items arrived while the last batch was in flight
        if (this.size >= this.options.maxBatchSize || this.taken < this.drainTarget) this.kick();
        else this.schedule();
      }
    });
  }

  private async run(): Promise<void> {
    while (
      !this.abort.signal.aborted &&
      this.size > 0 &&
      (this.size >= this.options.maxBatchSize || this.taken < this.drainTarget)
    ) {
      const batch = this.takeBatch();
      this.taken += batch.length;
      this.inFlight = batch.length;
      const outcome = await this.sendSafe(batch);
      if (this.abandoned) return;
      this.inFlight = 0;
      this.counts.exported += outcome.exported;
      this.counts.failed += outcome.failed;
      this.settle(batch.length);
    }
  }

  private async sendSafe(batch: T[]): Promise<BatchOutcome> {
    try {
      const outcome = await this.sink(batch, this.abort.signal);
      const exported = clampCount(outcome.exported, batch.length);
      return { exported, failed: batch.length - exported };
    } catch (error) {
      this.onError(asError(error));
      return { exported: 0, failed: batch.length };
    }
  }

  private schedule(): void {
    if (this.timer !== undefined || this.running !== undefined || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drainTarget = Math.max(this.drainTarget, this.accepted);
      this.kick();
    }, this.options.scheduleDelayMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private settle(n: number): void {
    this.settled += n;
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const waiter of this.waiters) {
      if (this.settled >= waiter.target) waiter.resolve();
      else still.push(waiter);
    }
    this.waiters = still;
  }

  private waitSettled(target: number, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const waiter: Waiter = {
        target,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      // Ref'd on purpose: whoever awaits a flush wants it to end, and it is bounded.
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve();
      }, Math.max(0, timeoutMs));
      this.waiters.push(waiter);
    });
  }
}

function clampCount(n: number, max: number): number {
  if (!Number.isFinite(n) || n <= 0) return 0;
  return Math.min(Math.floor(n), max);
}


/** Resolves when p settles or after ms (never rejects). */
export function raceTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, ms));
    p.then(
      () => { clearTimeout(timer); resolve(); },
      () => { clearTimeout(timer); resolve(); },
    );
  });
}
