/**
 * `ipsec-mesh operator [flags]`: runs the Kubernetes operator (see src/operator). Exported as runOperator(argv)
 * for src/cli/main.ts; resolves with the exit code after SIGTERM/SIGINT or a lost leader lease.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { parseDuration } from '../api/common.js';
import { Operator, type OperatorConfig } from '../operator/operator.js';

export const OPERATOR_USAGE = `usage: ipsec-mesh operator [flags]

  --kubeconfig PATH          kubeconfig (default: in-cluster service account, then $KUBECONFIG/~/.kube/config)
  --namespace NS             operator namespace (default: $POD_NAMESPACE or ipsec-mesh-system)
  --site NAME                this cluster's site name in IPsecMeshes
  --gateway-selector K=V,..  labels of the gateway node pool (where agents run; default: all nodes)
  --heartbeat-timeout DUR    agent heartbeat age after which a gateway is dead (default 30s)
  --resync DUR               periodic full resync (default 5m)
  --agent-secrets-role NAME  Role the operator keeps pointed at the node Secrets (default ipsec-mesh-agent-secrets; '' disables)
  --workers N                tunnel reconcile workers (default 4)
  --no-leader-elect          run without leader election (single replica)
  --lease-name NAME          leader Lease (default ipsec-mesh-operator)
  --lease-duration DUR       (default 15s)   --renew-deadline DUR (default 10s)   --retry-period DUR (default 2s)
  --identity ID              leader identity (default hostname-pid)
  --metrics-addr HOST:PORT   /metrics, /healthz, /readyz (default 0.0.0.0:8080; '' disables)
  --log-level LEVEL          trace|debug|info|warn|error (default info)
`;

export function parseOperatorArgs(argv: string[], env: NodeJS.ProcessEnv = process.env) {
  const flags = new Map<string, string>();
  const bools = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}'`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (a === '--no-leader-elect' || a === '--help') bools.add(a.slice(2));
    else {
      const v = argv[++i];
      if (v === undefined) throw new Error(`flag ${a} needs a value`);
      flags.set(a.slice(2), v);
    }
  }
  const known = new Set([
    'kubeconfig',
    'namespace',
    'site',
    'gateway-selector',
    'heartbeat-timeout',
    'resync',
    'agent-secrets-role',
    'workers',
    'lease-name',
    'lease-duration',
    'renew-deadline',
    'retry-period',
    'identity',
    'metrics-addr',
    'log-level',
  ]);
  for (const f of flags.keys()) if (!known.has(f)) throw new Error(`unknown flag --${f}`);
  const dur = (name: string, def: string) => {
    const v = flags.get(name) ?? def;
    const ms = parseDuration(v);
    if (ms === undefined) throw new Error(`--${name}: '${v}' is not a duration (e.g. 30s, 5m)`);
    return ms;
  };
  const selector: Record<string, string> = {};
  for (const part of (flags.get('gateway-selector') ?? '').split(',').filter(Boolean)) {
    const [k, v] = part.split('=');
    if (!k || v === undefined) throw new Error(`--gateway-selector: '${part}' is not key=value`);
    selector[k] = v;
  }
  const workers = Number(flags.get('workers') ?? 4);
  if (!Number.isInteger(workers) || workers < 1) throw new Error('--workers must be a positive integer');
  return {
    help: bools.has('help'),
    kubeconfigPath: flags.get('kubeconfig'),
    namespace: flags.get('namespace') ?? env.POD_NAMESPACE ?? 'ipsec-mesh-system',
    site: flags.get('site') || undefined,
    gatewaySelector: selector,
    heartbeatTimeoutMs: dur('heartbeat-timeout', '30s'),
    resyncMs: dur('resync', '5m'),
    agentSecretsRole: flags.get('agent-secrets-role') ?? 'ipsec-mesh-agent-secrets',
    workers,
    leaderElection: !bools.has('no-leader-elect'),
    leaseName: flags.get('lease-name') ?? 'ipsec-mesh-operator',
    leaseDurationMs: dur('lease-duration', '15s'),
    renewDeadlineMs: dur('renew-deadline', '10s'),
    retryPeriodMs: dur('retry-period', '2s'),
    identity: flags.get('identity'),
    metricsAddr: flags.get('metrics-addr') ?? '0.0.0.0:8080',
    logLevel: flags.get('log-level') ?? 'info',
  };
}

/** Entry point for `ipsec-mesh operator`. */
export async function runOperator(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parseOperatorArgs>;
  try {
    args = parseOperatorArgs(argv);
  } catch (e) {
    console.error(`ipsec-mesh operator: ${(e as Error).message}\n${OPERATOR_USAGE}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(OPERATOR_USAGE);
    return 0;
  }
  const log = pino({ level: args.logLevel, base: { component: 'operator' } });
  const kc = new KubeConfig();
  if (args.kubeconfigPath) kc.loadFromFile(args.kubeconfigPath);
  else kc.loadFromDefault();
  const cfg: OperatorConfig = {
    kubeconfig: kc,
    namespace: args.namespace,
    site: args.site,
    gatewaySelector: args.gatewaySelector,
    heartbeatTimeoutMs: args.heartbeatTimeoutMs,
    resyncMs: args.resyncMs,
    agentSecretsRole: args.agentSecretsRole,
    identity: args.identity,
    workers: args.workers,
    leaderElection: args.leaderElection,
    leaseName: args.leaseName,
    leaseDurationMs: args.leaseDurationMs,
    renewDeadlineMs: args.renewDeadlineMs,
    retryPeriodMs: args.retryPeriodMs,
    metricsAddr: args.metricsAddr,
    log: {
      info: (o, m) => log.info(o, m),
      warn: (o, m) => log.warn(o, m),
      error: (o, m) => log.error(o, m),
      debug: (o, m) => log.debug(o, m),
    },
  };
  const op = new Operator(cfg);
  const onSignal = (sig: string) => {
    log.info({ signal: sig }, 'shutting down');
    void op.stop(0);
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  await op.start();
  log.info({ identity: op.identity, namespace: args.namespace, site: args.site }, 'operator started');
  return op.done;
}
