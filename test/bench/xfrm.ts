/**
 * `npm run bench -- xfrm [--json] [--tunnels N]`: the XFRM layer against a real ESP-capable kernel, in User-Mode Linux
 * (the host kernel has no ESP): batched install of N tunnels (default 10,000), dump and reconcile of the resulting
 * owned objects, per-operation latency. The measurements run inside UML (_xfrm-uml.ts); this file boots it and
 * relays the results. UML's syscalls are slower than a native kernel's: treat the figures as a lower bound.
 */
import { fileURLToPath } from 'node:url';
import type { BenchContext, BenchResult } from '../../src/cli/bench-report.js';
import { runInUml } from '../uml/harness.js';

export async function run(ctx: BenchContext): Promise<void> {
  const i = ctx.args.indexOf('--tunnels');
  const tunnels = i >= 0 ? Number(ctx.args[i + 1]) : 10_000;
  const res = await runInUml({
    script: fileURLToPath(new URL('./_xfrm-uml.ts', import.meta.url)),
    args: [String(tunnels)],
    timeoutMs: 600_000,
    mem: '2G',
  });
  const lines = res.output.split('\n').filter((l) => l.startsWith('BENCH '));
  if (res.exitCode !== 0) {
    throw new Error(
      `xfrm bench failed in UML (exit ${res.exitCode}, timedOut ${res.timedOut}):\n${res.output.slice(-3000)}`,
    );
  }
  ctx.report({ suite: 'xfrm', name: 'UML boot to script start', value: Math.round(res.bootMs ?? -1), unit: 'ms' });
  for (const l of lines) ctx.report(JSON.parse(l.slice('BENCH '.length)) as BenchResult);
}
