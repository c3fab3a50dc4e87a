/**
 * `npm run bench -- agent [--json] [--tunnels 1,10,100]`: time from agent start to traffic flowing, for N tunnels
 * between two of our agents, in User-Mode Linux with kernel ESP (_agent-uml.ts does the measuring inside; this file
 * boots UML and relays the results). The agents run from the same bundle the UML tests use (test/uml/support/
 * bundle.ts). UML is slow at process start-up and system calls: the figures are an upper bound for real hosts.
 */
import { fileURLToPath } from 'node:url';
import type { BenchContext, BenchResult } from '../../src/cli/bench-report.js';
import { runInUml } from '../uml/harness.js';
import { buildAgentBundle } from '../uml/support/bundle.js';

export async function run(ctx: BenchContext): Promise<void> {
  const i = ctx.args.indexOf('--tunnels');
  const counts = i >= 0 ? String(ctx.args[i + 1]) : '1,10,100';
  const res = await runInUml({
    script: fileURLToPath(new URL('./_agent-uml.ts', import.meta.url)),
    args: [counts],
    env: { IPSEC_MESH_AGENT_BUNDLE: buildAgentBundle() },
    timeoutMs: 900_000,
    mem: '2G',
  });
  if (res.exitCode !== 0) {
    throw new Error(
      `agent bench failed in UML (exit ${res.exitCode}, timedOut ${res.timedOut}):\n${res.output.slice(-3000)}`,
    );
  }
  ctx.report({ suite: 'agent', name: 'UML boot to script start', value: Math.round(res.bootMs ?? -1), unit: 'ms' });
  for (const l of res.output.split('\n').filter((x) => x.startsWith('BENCH ')))
    ctx.report(JSON.parse(l.slice('BENCH '.length)) as BenchResult);
}
