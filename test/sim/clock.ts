/**
 * A fake monotonic clock for simulations: time only moves when a test calls `advance`, `advanceTo`, `runNext` or
 * `runUntil`, and every timer callback runs synchronously inside that call, in time order (equal times run in the
 * order they were scheduled). Timers sit in a binary heap keyed by (time, sequence number), so 100k+ pending timers
 * cost O(log n) per operation; cancelled timers are removed lazily and the heap is compacted when they pile up.
 *
 * Asynchronous code (the kernel port returns promises) needs microtasks to run between timers, as they would under
 * Node's real event loop. The synchronous methods never yield, so promise continuations only run after they return;
 * the `*Async` variants (`advanceAsync`, `runUntilAsync`, `flush`) drain the microtask queue after every callback.
 * `flush` uses `setImmediate` purely as a "microtask queue is empty" barrier: no real time is waited for.
 */
import type { Cancel, Clock } from '../../src/ike/ports.js';

/** A pending timer as shown by `pendingTimers()`. */
export interface PendingTimer {
  /** Monotonic time in ms at which the timer fires. */
  at: number;
  label?: string;
}

export interface FakeClockOptions {
  /** Initial value of `now()`, ms (default 0). */
  start?: number;
  /** Wall-clock time in ms since the epoch that corresponds to `now() === 0` (default 2026-01-01T00:00:00Z). */
  epochMs?: number;
  /**
   * Livelock guard: the most timers that may fire at one instant without time moving on before `advance` throws
   * (a zero-delay timer that keeps re-arming itself). Default 1,000,000.
   */
  maxTimersPerInstant?: number;
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  label: string | undefined;
  state: 'pending' | 'fired' | 'cancelled';
}

export const DEFAULT_EPOCH_MS = Date.UTC(2026, 0, 1);

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

export class FakeClock implements Clock {
  private current: number;
  private readonly epochMs: number;
  private readonly maxPerInstant: number;
  private heap: Timer[] = [];
  private cancelledInHeap = 0;
  private seq = 0;
  private firedTotal = 0;
  /** Time of the last fired timer and how many fired at that time in a row (livelock guard). */
  private instant = Number.NaN;
  private firedAtInstant = 0;
  /** Set while a callback runs: advancing time from inside a timer callback is a test bug. */
  private inCallback = false;
  /** Set while an `*Async` run is in progress: two overlapping runs would interleave unpredictably. */
  private asyncRun = false;

  constructor(options: FakeClockOptions = {}) {
    this.current = options.start ?? 0;
    this.epochMs = options.epochMs ?? DEFAULT_EPOCH_MS;
    this.maxPerInstant = options.maxTimersPerInstant ?? 1_000_000;
    if (!Number.isFinite(this.current)) throw new RangeError('FakeClock: start must be finite');
  }

  now(): number {
    return this.current;
  }

  wallNow(): number {
    return this.epochMs + this.current;
  }

  /**
   * Schedule `fn` after `delayMs` (clamped to >= 0). A third, optional `label` shows up in `pendingTimers()`;
   * `Clock` callers that pass two arguments are unaffected. Throws RangeError on a non-finite delay, which in
   * the engine is always a bug (Node would silently treat it as 1 ms).
   */
  setTimer(delayMs: number, fn: () => void, label?: string): Cancel {
    if (typeof delayMs !== 'number' || !Number.isFinite(delayMs)) {
      throw new RangeError(`FakeClock.setTimer: delay must be a finite number, got ${String(delayMs)}`);
    }
    return this.schedule(this.current + Math.max(0, delayMs), fn, label);
  }

  /** Schedule `fn` at an absolute monotonic time (clamped to >= now); exact, without delay arithmetic. */
  setTimerAt(time: number, fn: () => void, label?: string): Cancel {
    if (typeof time !== 'number' || !Number.isFinite(time)) {
      throw new RangeError(`FakeClock.setTimerAt: time must be a finite number, got ${String(time)}`);
    }
    return this.schedule(Math.max(this.current, time), fn, label);
  }

  private schedule(at: number, fn: () => void, label: string | undefined): Cancel {
    const timer: Timer = { at, seq: this.seq++, fn, label, state: 'pending' };
    this.push(timer);
    return () => this.cancel(timer);
  }

  /** `setTimer` with the label first, for call sites that read better that way. */
  setLabeledTimer(label: string, delayMs: number, fn: () => void): Cancel {
    return this.setTimer(delayMs, fn, label);
  }

  /** Number of live (not fired, not cancelled) timers. */
  get pendingCount(): number {
    return this.heap.length - this.cancelledInHeap;
  }

  /** Number of timer callbacks run so far. */
  get firedCount(): number {
    return this.firedTotal;
  }

  /** Time of the earliest live timer, or undefined when none is pending. */
  nextTimerAt(): number | undefined {
    return this.peek()?.at;
  }

  /** Live timers in firing order. O(n log n): meant for assertions, not hot loops. */
  pendingTimers(): PendingTimer[] {
    return this.heap
      .filter((t) => t.state === 'pending')
      .sort((a, b) => (before(a, b) ? -1 : 1))
      .map((t) => (t.label === undefined ? { at: t.at } : { at: t.at, label: t.label }));
  }

  /**
   * Move time forward by `ms`, running every timer due up to and including the new time, in order; timers that
   * callbacks schedule run too when due. Returns the number of callbacks run. If a callback throws, the error
   * propagates and time stays at that timer's time.
   */
  advance(ms: number): number {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`FakeClock.advance: bad duration ${String(ms)}`);
    return this.advanceTo(this.current + ms);
  }

  /** Like `advance`, to an absolute time (>= now). */
  advanceTo(time: number): number {
    this.assertNotInCallback('advanceTo');
    if (!(time >= this.current) || !Number.isFinite(time)) {
      throw new RangeError(`FakeClock.advanceTo: ${String(time)} is before now (${this.current})`);
    }
    let ran = 0;
    for (;;) {
      const next = this.peek();
      if (next === undefined || next.at > time) break;
      this.fire(next);
      ran++;
    }
    this.current = time;
    return ran;
  }

  /** Jump to the earliest pending timer and run it (only it). Returns false when no timer is pending. */
  runNext(): boolean {
    this.assertNotInCallback('runNext');
    const next = this.peek();
    if (next === undefined) return false;
    this.fire(next);
    return true;
  }

  /**
   * Run timers one at a time until `predicate()` holds or `maxMs` have passed. The predicate is checked before
   * anything runs and after every callback. Returns true when it held; on false, time is now + maxMs.
   */
  runUntil(predicate: () => boolean, maxMs: number): boolean {
    this.assertNotInCallback('runUntil');
    if (!(maxMs >= 0)) throw new RangeError(`FakeClock.runUntil: bad duration ${String(maxMs)}`);
    const deadline = this.current + maxMs;
    if (predicate()) return true;
    for (;;) {
      const next = this.peek();
      if (next === undefined || next.at > deadline) break;
      this.fire(next);
      if (predicate()) return true;
    }
    this.current = deadline;
    return predicate();
  }

  /** Let every queued microtask (promise continuation) run. No real time passes. */
  async flush(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** `advance` that drains microtasks before the first and after every callback. Resolves to callbacks run. */
  async advanceAsync(ms: number): Promise<number> {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`FakeClock.advanceAsync: bad duration ${String(ms)}`);
    return this.exclusive('advanceAsync', async () => {
      const target = this.current + ms;
      let ran = 0;
      await this.flush();
      for (;;) {
        const next = this.peek();
        if (next === undefined || next.at > target) break;
        this.fire(next);
        ran++;
        await this.flush();
      }
      this.current = target;
      return ran;
    });
  }

  /** `runUntil` that drains microtasks before every predicate check. */
  async runUntilAsync(predicate: () => boolean, maxMs: number): Promise<boolean> {
    if (!(maxMs >= 0)) throw new RangeError(`FakeClock.runUntilAsync: bad duration ${String(maxMs)}`);
    return this.exclusive('runUntilAsync', async () => {
      const deadline = this.current + maxMs;
      await this.flush();
      if (predicate()) return true;
      for (;;) {
        const next = this.peek();
        if (next === undefined || next.at > deadline) break;
        this.fire(next);
        await this.flush();
        if (predicate()) return true;
      }
      this.current = deadline;
      return predicate();
    });
  }

  // --- internals ---

  private fire(timer: Timer): void {
    this.popTop();
    if (timer.at === this.instant) {
      if (++this.firedAtInstant > this.maxPerInstant) {
        throw new Error(
          `FakeClock: more than ${this.maxPerInstant} timers fired at t=${timer.at} without time moving ` +
            `(runaway zero-delay timer? last label: ${timer.label ?? 'none'})`,
        );
      }
    } else {
      this.instant = timer.at;
      this.firedAtInstant = 1;
    }
    this.current = timer.at;
    timer.state = 'fired';
    this.firedTotal++;
    this.inCallback = true;
    try {
      timer.fn();
    } finally {
      this.inCallback = false;
    }
  }

  private assertNotInCallback(what: string): void {
    if (this.inCallback) throw new Error(`FakeClock.${what} called from inside a timer callback`);
    if (this.asyncRun) throw new Error(`FakeClock.${what} called while an async advance/runUntil is in progress`);
  }

  private async exclusive<T>(what: string, body: () => Promise<T>): Promise<T> {
    this.assertNotInCallback(what);
    this.asyncRun = true;
    try {
      return await body();
    } finally {
      this.asyncRun = false;
    }
  }

  private cancel(timer: Timer): void {
    if (timer.state !== 'pending') return;
    timer.state = 'cancelled';
    this.cancelledInHeap++;
    if (this.cancelledInHeap > 1024 && this.cancelledInHeap * 2 > this.heap.length) this.compact();
  }

  /** Earliest live timer, discarding cancelled ones from the top. */
  private peek(): Timer | undefined {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined) return undefined;
      if (top.state === 'pending') return top;
      this.popTop();
      this.cancelledInHeap--;
    }
  }

  private compact(): void {
    this.heap = this.heap.filter((t) => t.state === 'pending');
    this.cancelledInHeap = 0;
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private push(timer: Timer): void {
    const heap = this.heap;
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!before(timer, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = timer;
  }

  private popTop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    heap[0] = last;
    this.siftDown(0);
  }

  private siftDown(start: number): void {
    const heap = this.heap;
    const n = heap.length;
    const item = heap[start]!;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let child = l;
      if (r < n && before(heap[r]!, heap[l]!)) child = r;
      const c = heap[child]!;
      if (!before(c, item)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = item;
  }
}
