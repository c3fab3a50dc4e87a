/** Real-world ports for the engine: a monotonic clock with Node timers, and OpenSSL randomness. */
import { randomFillSync } from 'node:crypto';
import type { Cancel, Clock, Random } from '../ike/ports.js';

export class SystemClock implements Clock {
  private readonly origin = performance.now();
  now(): number {
    return performance.now() - this.origin;
  }
  wallNow(): number {
    return Date.now();
  }
  setTimer(delayMs: number, fn: () => void): Cancel {
    // Node caps timers at 2^31-1 ms; longer lifetimes are re-armed in steps.
    const max = 0x7fffffff;
    let handle: NodeJS.Timeout;
    let cancelled = false;
    const arm = (remaining: number) => {
      handle = setTimeout(
        () => {
          if (cancelled) return;
          if (remaining > max) arm(remaining - max);
          else fn();
        },
        Math.min(Math.max(0, remaining), max),
      );
      handle.unref?.();
    };
    arm(delayMs);
    return () => {
      cancelled = true;
      clearTimeout(handle);
    };
  }
}

/**
 * OpenSSL randomness, drawn in 8 KiB blocks: one system call per block instead of one per nonce or SPI. Each
 * caller gets its own copy, so no long-lived value pins the block.
 */
export function pooledRandom(blockSize = 8192): Random {
  let pool = new Uint8Array(0);
  let offset = 0;
  return (length) => {
    if (length > blockSize) return randomFillSync(new Uint8Array(length));
    if (offset + length > pool.length) {
      pool = randomFillSync(new Uint8Array(blockSize));
      offset = 0;
    }
    const out = pool.slice(offset, offset + length);
    // Never hand out the same bytes twice.
    pool.fill(0, offset, offset + length);
    offset += length;
    return out;
  };
}

export const systemRandom: Random = pooledRandom();
