/**
 * `ipsec-mesh agent --config-dir DIR [--dataplane netlink|none] [--state-dir DIR]`: the node agent in standalone
 * mode. DIR holds Kubernetes-style YAML (IPsecTunnel, IPsecMesh, v1 Secret) and one AgentSettings object; files
 * are re-read when they change. SIGTERM/SIGINT stop it cleanly (DELETEs sent, kernel state removed).
 */
import { watch } from 'node:fs';
import pino from 'pino';
import { Agent, type AgentOptions } from '../agent/agent.js';
import { type DesiredState, loadConfigDir } from '../agent/config-dir.js';
import { MemoryKernel } from '../agent/memory-kernel.js';
import { AgentMetrics } from '../agent/metrics.js';
import { SystemClock, systemRandom } from '../agent/runtime.js';
import { serveStatus } from '../agent/status.js';

export const AGENT_USAGE = `usage: ipsec-mesh agent --config-dir DIR [--dataplane netlink|none] [--state-dir DIR]

  --config-dir DIR     directory of YAML: IPsecTunnel, IPsecMesh, v1 Secret, and one AgentSettings (agent.yaml)
  --dataplane MODE     netlink (default): program the kernel's XFRM; none: negotiate and report only
  --state-dir DIR      overrides stateDir of AgentSettings (status socket: DIR/agent.sock)
`;

export interface AgentArgs {
  configDir: string;
  dataplane: 'netlink' | 'none';
  stateDir?: string;
}

export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
}

export function parseAgentArgs(argv: string[]): AgentArgs {
  let configDir: string | undefined;
  let dataplane: 'netlink' | 'none' = 'netlink';
  let stateDir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--config-dir':
        configDir = value();
        break;
      case '--dataplane': {
        const v = value();
        if (v !== 'netlink' && v !== 'none') throw new UsageError(`--dataplane must be netlink or none, not '${v}'`);
        dataplane = v;
        break;
      }
      case '--state-dir':
        stateDir = value();
        break;
      default:
        throw new UsageError(`unknown flag '${a}'`);
    }
  }
  if (!configDir) throw new UsageError('--config-dir is required (Kubernetes mode arrives with the operator)');
  return { configDir, dataplane, ...(stateDir ? { stateDir } : {}) };
}

async function kernelFor(dataplane: 'netlink' | 'none'): Promise<AgentOptions['kernel']> {
  if (dataplane === 'none') return new MemoryKernel(systemRandom);
  const { XfrmKernel } = await import('../agent/xfrm-kernel.js');
  return XfrmKernel.open();
}

export async function runAgent(argv: string[]): Promise<number> {
  let args: AgentArgs;
  try {
    args = parseAgentArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`ipsec-mesh agent: ${e.message}\n${AGENT_USAGE}`);
      return 2;
    }
    throw e;
  }
  const first = loadConfigDir(args.configDir);
  const bootLog = pino({ base: { component: 'agent' } });
  for (const p of first.problems)
    bootLog.error({ event: 'config-problem', file: p.file, where: p.where, path: p.path }, p.message);
  if (!first.settings) {
    bootLog.fatal({ event: 'no-settings' }, `no valid AgentSettings in ${args.configDir}; cannot start`);
    return 1;
  }
  const settings = { ...first.settings, ...(args.stateDir ? { stateDir: args.stateDir } : {}) };
  const log = pino({ level: settings.logLevel, base: { component: 'agent', node: settings.nodeName } });
  let kernel: AgentOptions['kernel'];
  try {
    kernel = await kernelFor(args.dataplane);
  } catch (e) {
    log.fatal({ event: 'dataplane-error' }, `cannot open the ${args.dataplane} data plane: ${(e as Error).message}`);
    return 1;
  }
  const ref: { agent?: Agent } = {};
  const metrics = new AgentMetrics(async () =>
    ref.agent ? ref.agent.metricsSnapshot() : { ikeByState: new Map(), children: 0, traffic: [] },
  );
  const espInUdp = args.dataplane === 'netlink' ? (await import('../xfrm/udp-encap.js')).enableEspInUdp : undefined;
  const agent = new Agent({
    settings,
    kernel,
    dataplane: args.dataplane,
    logger: log,
    clock: new SystemClock(),
    random: systemRandom,
    metrics,
    ...(espInUdp ? { espInUdp } : {}),
  });
  ref.agent = agent;
  try {
    await agent.start();
  } catch (e) {
    log.fatal({ event: 'transport-error' }, `cannot listen: ${(e as Error).message}`);
    return 1;
  }
  const server = serveStatus(settings.stateDir, () => agent.status());
  const metricsServer =
    settings.metricsPort > 0 ? metrics.serve(settings.metricsPort, settings.metricsAddress) : undefined;
  const apply = (d: DesiredState) => agent.apply({ tunnels: d.tunnels, secrets: d.secrets, problems: d.problems });
  apply(first);

  // Re-read the directory when it changes (debounced); settings changes need a restart.
  let pending: NodeJS.Timeout | undefined;
  const watcher = watch(args.configDir, () => {
    clearTimeout(pending);
    pending = setTimeout(() => {
      const next = loadConfigDir(args.configDir);
      for (const p of next.problems)
        log.error({ event: 'config-problem', file: p.file, where: p.where, path: p.path }, p.message);
      if (next.settings && JSON.stringify(next.settings) !== JSON.stringify(first.settings)) {
        log.warn({ event: 'settings-changed' }, 'AgentSettings changed; restart the agent to apply them');
      }
      log.info({ event: 'config-reloaded', tunnels: next.tunnels.length }, 'configuration re-read');
      apply(next);
    }, 200);
  });

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ event: 'signal', signal }, `received ${signal}, stopping`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  watcher.close();
  clearTimeout(pending);
  server.close();
  metricsServer?.close();
  await agent.stop();
  return 0;
}
