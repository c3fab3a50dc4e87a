/**
 * A de-duplicating, rate-limited work queue in the style of client-go's workqueue:
 * - a key is queued at most once; a key added while being processed is re-queued after it finishes;
 * - addRateLimited() delays a key by a per-key exponential back-off (base * 2^failures, capped), combined with an
 *   overall token bucket so that a storm of failures cannot hammer the API server;
 * - forget() resets a key's back-off after a success.
 * Time is injectable for tests.
 */

export interface QueueClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: QueueClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface QueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Token bucket for rate-limited re-adds: sustained rate and burst. */
  qps?: number;
  burst?: number;
  clock?: QueueClock;
}

export class WorkQueue<K extends string = string> {
  private readonly queue: K[] = [];
  private head = 0;
  private readonly queued = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly dirty = new Set<K>();
  private readonly failures = new Map<K, number>();
  private readonly delayed = new Map<K, { at: number; handle: unknown }>();
  private readonly waiters: Array<() => void> = [];
  private shuttingDown = false;
  private tokens: number;
  private lastRefill: number;
  private readonly clock: QueueClock;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  private readonly qps: number;
  private readonly burst: number;

  constructor(opts: QueueOptions = {}) {
    this.clock = opts.clock ?? realClock;
    this.baseDelayMs = opts.baseDelayMs ?? 5;
    this.maxDelayMs = opts.maxDelayMs ?? 300_000;
    this.qps = opts.qps ?? 10;
    this.burst = opts.burst ?? 100;
    this.tokens = this.burst;
    this.lastRefill = this.clock.now();
  }

  get length(): number {
    return this.queue.length - this.head;
  }

  get delayedCount(): number {
    return this.delayed.size;
  }

  add(key: K): void {
    if (this.shuttingDown) return;
    const d = this.delayed.get(key);
    if (d) {
      this.clock.clearTimeout(d.handle);
      this.delayed.delete(key);
    }
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.waiters.shift()?.();
  }

  /** Add after a delay; an earlier pending delayed add wins, an immediate add() cancels the delay. */
  addAfter(key: K, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    const at = this.clock.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) this.clock.clearTimeout(existing.handle);
    const handle = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, handle });
  }

  /** Back-off delay the next addRateLimited(key) would use. */
  when(key: K): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const perItem = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(n, 40));
    // token bucket
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastRefill) / 1000) * this.qps);
    this.lastRefill = now;
    this.tokens -= 1;
    const bucket = this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
    return Math.max(perItem, bucket);
  }

  addRateLimited(key: K): number {
    const d = this.when(key);
    this.addAfter(key, d);
    return d;
  }

  forget(key: K): void {
    this.failures.delete(key);
  }

  retries(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** Next key, or undefined once shut down and drained. */
  async get(): Promise<K | undefined> {
    while (this.length === 0) {
      if (this.shuttingDown) return undefined;
      await new Promise<void>((r) => this.waiters.push(r));
    }
    const key = this.queue[this.head++] as K;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.queued.delete(key);
    this.processing.add(key);
    return key;
  }

  done(key: K): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  shutdown(): void {
    this.shuttingDown = true;
    for (const d of this.delayed.values()) this.clock.clearTimeout(d.handle);
    this.delayed.clear();
    for (const w of this.waiters.splice(0)) w();
  }

  /** Run `workers` loops calling handler(key); errors are reported and the key retried with back-off. */
  run(
    workers: number,
    handler: (key: K) => Promise<void>,
    onError: (key: K, err: unknown, retryInMs: number) => void,
  ): Promise<void> {
    const loop = async () => {
      for (;;) {
        const key = await this.get();
        if (key === undefined) return;
        try {
          await handler(key);
          this.forget(key);
        } catch (err) {
          const retry = this.shuttingDown ? 0 : this.addRateLimited(key);
          onError(key, err, retry);
        } finally {
          this.done(key);
        }
      }
    };
    return Promise.all(Array.from({ length: workers }, loop)).then(() => undefined);
  }
}
