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
import { AgentSettings } from '../agent/settings.js';
import { serveStatus } from '../agent/status.js';
import { API_VERSION, parseDuration } from '../api/common.js';

export const AGENT_USAGE = `usage: ipsec-mesh agent --config-dir DIR [options]          (standalone)
       ipsec-mesh agent --kubernetes --node-name NAME [options] (in a cluster)

  --config-dir DIR       directory of YAML: IPsecTunnel, IPsecMesh, v1 Secret, and one AgentSettings (agent.yaml)
  --kubernetes           take the desired state from this node's IPsecNodeConfig and its node Secret
  --node-name NAME       the node this agent runs on (Kubernetes mode)
  --secret-namespace NS  namespace of the node Secret (the operator's namespace)
  --address IP           local IKE address to listen on (repeatable; Kubernetes mode)
  --ike-port PORT        UDP port for IKE (Kubernetes mode; default 500; standalone: ikePort in AgentSettings)
  --natt-port PORT       UDP port for NAT-T/ESP-in-UDP (Kubernetes mode; default 4500; standalone: nattPort)
  --kubeconfig FILE      kubeconfig (default: in-cluster, or $KUBECONFIG)
  --heartbeat DURATION   status/heartbeat period (default 5s)
  --metrics-port PORT    Prometheus metrics (Kubernetes mode; standalone: metricsPort in AgentSettings)
  --log-level LEVEL      trace|debug|info|warn|error
  --dataplane MODE       netlink (default): program the kernel's XFRM; none: negotiate and report only
  --state-dir DIR        status socket directory (default /run/ipsec-mesh)
`;

const VERSION_STRING = '0.1.0';

export interface AgentArgs {
  configDir?: string;
  kubernetes: boolean;
  nodeName?: string;
  secretNamespace?: string;
  addresses: string[];
  kubeconfig?: string;
  heartbeat: string;
  metricsPort?: number;
  ikePort?: number;
  nattPort?: number;
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  dataplane: 'netlink' | 'none';
  stateDir?: string;
}

export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
}

export function parseAgentArgs(argv: string[]): AgentArgs {
  const a: AgentArgs = { kubernetes: false, addresses: [], heartbeat: '5s', dataplane: 'netlink' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const [flag, inline] = eq >= 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--config-dir':
        a.configDir = value();
        break;
      case '--kubernetes':
        a.kubernetes = true;
        break;
      case '--node-name':
        a.nodeName = value();
        break;
      case '--secret-namespace':
        a.secretNamespace = value();
        break;
      case '--address':
        a.addresses.push(value());
        break;
      case '--kubeconfig':
        a.kubeconfig = value();
        break;
      case '--heartbeat':
        a.heartbeat = value();
        break;
      case '--metrics-port': {
        const v = Number(value());
        if (!Number.isInteger(v) || v < 0 || v > 65535) throw new UsageError('--metrics-port must be a port number');
        a.metricsPort = v;
        break;
      }
      case '--ike-port':
      case '--natt-port': {
        const raw = value();
        const v = Number(raw);
        if (!/^[0-9]+$/.test(raw) || !Number.isInteger(v) || v < 1 || v > 65535)
          throw new UsageError(`${flag} must be a UDP port number (1-65535), not '${raw}'`);
        if (flag === '--ike-port') a.ikePort = v;
        else a.nattPort = v;
        break;
      }
      case '--log-level': {
        const v = value();
        if (!['trace', 'debug', 'info', 'warn', 'error'].includes(v))
          throw new UsageError(`--log-level: unknown level '${v}'`);
        a.logLevel = v as AgentArgs['logLevel'];
        break;
      }
      case '--dataplane': {
        const v = value();
        if (v !== 'netlink' && v !== 'none') throw new UsageError(`--dataplane must be netlink or none, not '${v}'`);
        a.dataplane = v;
        break;
      }
      case '--state-dir':
        a.stateDir = value();
        break;
      default:
        throw new UsageError(`unknown flag '${arg}'`);
    }
  }
  if (a.kubernetes === (a.configDir !== undefined)) {
    throw new UsageError('give exactly one of --config-dir DIR (standalone) or --kubernetes');
  }
  if (a.kubernetes && !a.nodeName) throw new UsageError('--kubernetes needs --node-name');
  if (a.kubernetes && a.addresses.length === 0) throw new UsageError('--kubernetes needs at least one --address');
  if (!a.kubernetes && (a.ikePort !== undefined || a.nattPort !== undefined))
    throw new UsageError(
      '--ike-port/--natt-port are for --kubernetes; standalone, set ikePort/nattPort in AgentSettings',
    );
  if (a.ikePort !== undefined && a.ikePort === (a.nattPort ?? 4500))
    throw new UsageError('--ike-port and --natt-port must differ');
  if (a.nattPort !== undefined && a.nattPort === (a.ikePort ?? 500))
    throw new UsageError('--ike-port and --natt-port must differ');
  return a;
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
  const bootLog = pino({ base: { component: 'agent' } });
  let first: DesiredState | undefined;
  let settings: AgentSettings;
  if (args.configDir !== undefined) {
    first = loadConfigDir(args.configDir);
    for (const p of first.problems)
      bootLog.error({ event: 'config-problem', file: p.file, where: p.where, path: p.path }, p.message);
    if (!first.settings) {
      bootLog.fatal({ event: 'no-settings' }, `no valid AgentSettings in ${args.configDir}; cannot start`);
      return 1;
    }
    settings = {
      ...first.settings,
      ...(args.stateDir ? { stateDir: args.stateDir } : {}),
      ...(args.logLevel ? { logLevel: args.logLevel } : {}),
    };
  } else {
    const r = AgentSettings.safeParse({
      apiVersion: API_VERSION,
      kind: 'AgentSettings',
      nodeName: args.nodeName,
      addresses: args.addresses,
      ...(args.stateDir ? { stateDir: args.stateDir } : {}),
      ...(args.logLevel ? { logLevel: args.logLevel } : {}),
      ...(args.metricsPort !== undefined ? { metricsPort: args.metricsPort } : {}),
      ...(args.ikePort !== undefined ? { ikePort: args.ikePort } : {}),
      ...(args.nattPort !== undefined ? { nattPort: args.nattPort } : {}),
    });
    if (!r.success) {
      process.stderr.write(
        `ipsec-mesh agent: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}\n`,
      );
      return 2;
    }
    settings = r.data;
  }
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
  // Floating gateway addresses need rtnetlink, which comes with the netlink data plane.
  const addresses =
    args.dataplane === 'netlink' ? new (await import('../agent/floating.js')).RtnlAddresses() : undefined;
  const agent = new Agent({
    settings,
    kernel,
    dataplane: args.dataplane,
    logger: log,
    clock: new SystemClock(),
    random: systemRandom,
    metrics,
    ...(espInUdp ? { espInUdp } : {}),
    ...(addresses ? { addresses } : {}),
  });
  ref.agent = agent;
  try {
    await agent.start();
  } catch (e) {
    log.fatal({ event: 'transport-error' }, `cannot listen: ${(e as Error).message}`);
    return 1;
  }
  let server: ReturnType<typeof serveStatus> | undefined;
  try {
    server = serveStatus(settings.stateDir, () => agent.status());
    server.on('error', (e) => log.error({ event: 'status-socket-error' }, `status socket: ${e.message}`));
  } catch (e) {
    // Negotiation does not depend on it: run on, but say why `ipsec-mesh status` will not answer.
    log.error({ event: 'status-socket-error' }, `cannot serve status in ${settings.stateDir}: ${(e as Error).message}`);
  }
  const metricsServer =
    settings.metricsPort > 0 ? metrics.serve(settings.metricsPort, settings.metricsAddress) : undefined;
  let stopSource: () => void = () => {};
  if (args.configDir !== undefined && first) {
    const configDir = args.configDir;
    const initial = first;
    const apply = (d: DesiredState) => agent.apply({ tunnels: d.tunnels, secrets: d.secrets, problems: d.problems });
    apply(initial);
    // Re-read the directory when it changes (debounced); settings changes need a restart.
    let pending: NodeJS.Timeout | undefined;
    const watcher = watch(configDir, () => {
      clearTimeout(pending);
      pending = setTimeout(() => {
        const next = loadConfigDir(configDir);
        for (const p of next.problems)
          log.error({ event: 'config-problem', file: p.file, where: p.where, path: p.path }, p.message);
        if (next.settings && JSON.stringify(next.settings) !== JSON.stringify(initial.settings)) {
          log.warn({ event: 'settings-changed' }, 'AgentSettings changed; restart the agent to apply them');
        }
        log.info({ event: 'config-reloaded', tunnels: next.tunnels.length }, 'configuration re-read');
        apply(next);
      }, 200);
    });
    stopSource = () => {
      watcher.close();
      clearTimeout(pending);
    };
  } else {
    const { KubeConfig } = await import('@kubernetes/client-node');
    const { KubeSource } = await import('../agent/kube-source.js');
    const kc = new KubeConfig();
    if (args.kubeconfig) kc.loadFromFile(args.kubeconfig);
    else kc.loadFromDefault();
    const source = new KubeSource({
      kc,
      nodeName: settings.nodeName,
      secretNamespace: args.secretNamespace ?? 'ipsec-mesh-system',
      agent,
      logger: log,
      version: VERSION_STRING,
      heartbeatMs: parseDuration(args.heartbeat) ?? 5000,
    });
    await source.start();
    stopSource = () => source.stop();
  }

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ event: 'signal', signal }, `received ${signal}, stopping`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  stopSource();
  server?.close();
  metricsServer?.close();
  await agent.stop();
  addresses?.close();
  return 0;
}
