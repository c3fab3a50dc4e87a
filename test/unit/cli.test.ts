import { describe, expect, it } from 'vitest';
import { listSuites, runBench } from '../../src/cli/bench.js';
import { createBenchContext } from '../../src/cli/bench-report.js';

describe('bench CLI', () => {
  it('prints one JSON line per result with --json', () => {
    const lines: string[] = [];
    const ctx = createBenchContext(true, [], (l) => lines.push(l));
    ctx.report({ suite: 's', name: 'n', value: 1.5, unit: 'ops/s', provider: 'node' });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toEqual({ suite: 's', name: 'n', value: 1.5, unit: 'ops/s', provider: 'node' });
  });

  it('rejects an unknown suite with exit code 2', async () => {
    expect(await runBench(['no-such-suite'], () => {})).toBe(2);
  });

  it('lists the suites in test/bench', () => {
    expect(listSuites()).toContain('crypto');
  });
});
