/** Benchmark result reporting: one JSON line per result with --json, an aligned table otherwise. */

export interface BenchResult {
  suite: string;
  name: string;
  value: number;
  unit: string;
  [extra: string]: unknown;
}

export interface BenchContext {
  json: boolean;
  /** Remaining command-line arguments after the suite name (suite-specific flags). */
  args: string[];
  report(result: BenchResult): void;
}

export function createBenchContext(json: boolean, args: string[], out: (line: string) => void): BenchContext {
  return {
    json,
    args,
    report(result) {
      if (json) {
        out(JSON.stringify(result));
        return;
      }
      const extras = Object.entries(result)
        .filter(([k]) => !['suite', 'name', 'value', 'unit'].includes(k))
        .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
        .join(' ');
      const value = Number.isInteger(result.value) ? String(result.value) : result.value.toPrecision(6);
      out(
        `${result.suite.padEnd(10)} ${result.name.padEnd(48)} ${value.padStart(14)} ${result.unit.padEnd(10)} ${extras}`,
      );
    },
  };
}

/** Run `fn` repeatedly for about `ms` milliseconds (after a short warm-up) and return operations per second. */
export function opsPerSecond(fn: () => void, ms = 500): number {
  const warmUntil = performance.now() + Math.min(100, ms / 5);
  while (performance.now() < warmUntil) fn();
  let n = 0;
  const start = performance.now();
  let now = start;
  const end = start + ms;
  while (now < end) {
    for (let i = 0; i < 8; i++) fn();
    n += 8;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}
