/**
 * `ipsec-mesh bench operator [--tunnels N] [--nodes M] [--json]`: the operator on a real etcd + kube-apiserver
 * (test/envtest), N IPsecTunnels (default 10,000) over M gateway nodes (default 50) with live fake agents.
 * The tunnels exist before the operator starts (a cold start of a big cluster, or a leader failover).
 * Reports: time until every node config carries every tunnel, time until every tunnel status names its gateway,
 * reconciles per second, operator peak RSS, and the API requests the operator issued (by verb).
 */
import { readFileSync } from 'node:fs';
import type { BenchContext } from '../../src/cli/bench-report.js';
import { Cluster, type FakeAgent, GROUP_PATH } from '../envtest/cluster.js';

function flag(args: string[], name: string, def: number): number {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : def;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer`);
  return v;
}

function rssKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`${field}:\\s+(\\d+) kB`));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function metric(text: string, name: string): Array<{ labels: string; value: number }> {
  const out: Array<{ labels: string; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = line.match(/^[a-z_]+(\{[^}]*\})?\s+([0-9.e+-]+)$/);
    if (m) out.push({ labels: m[1] ?? '', value: Number(m[2]) });
  }
  return out;
}

async function pool<T>(items: T[], concurrency: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (i < items.length) await fn(items[i++] as T);
    }),
  );
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

export async function run(ctx: BenchContext): Promise<void> {
  const tunnels = flag(ctx.args, 'tunnels', 10_000);
  const nodes = flag(ctx.args, 'nodes', 50);
  const report = (name: string, value: number, unit: string, extra: Record<string, unknown> = {}) =>
    ctx.report({ suite: 'operator', name, value, unit, tunnels, nodes, ...extra });
  const cluster = await Cluster.start();
  const agents: FakeAgent[] = [];
  try {
    const cp = cluster.cp;
    for (let i = 0; i < nodes; i++) {
      await cluster.addNode(`gw-${i}`, { 'ipsecmesh.io/gateway': 'true' }, `198.51.100.${1 + i}`);
    }
    await cp.ensure('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } });
    await cp.ensure('/api/v1/namespaces/bench/secrets', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'psk' },
      data: { psk: Buffer.from('bench-pre-shared-key-0123456789abcdef').toString('base64') },
    });
    const t0 = performance.now();
    await pool(
      Array.from({ length: tunnels }, (_, i) => i),
      32,
      async (i) => {
        const a = `${i >> 8}.${i & 255}`;
        const r = await cp.request('POST', `${GROUP_PATH}/namespaces/bench/ipsectunnels`, {
          apiVersion: 'ipsecmesh.io/v1alpha1',
          kind: 'IPsecTunnel',
          metadata: { name: `t-${i}` },
          spec: {
            local: { subnets: [`198.18.${a}/32`] },
            remote: { address: `203.0.113.${1 + (i % 250)}`, subnets: [`198.19.${a}/32`] },
            auth: { psk: { secretRef: { name: 'psk' } } },
          },
        });
        if (r.status !== 201) throw new Error(`create t-${i}: ${r.status} ${r.body}`);
      },
    );
    report('create tunnels (bench client, 32 parallel)', (performance.now() - t0) / 1000, 's');

    for (let i = 0; i < nodes; i++) agents.push(await cluster.agent(`gw-${i}`));
    // Watch node configs and tunnels from the start: note when every tunnel is in a config / has a gateway.
    const perNode = new Map<string, number>();
    let placedAt = 0;
    let statusAt = 0;
    let resolvePlaced!: (v: number[]) => void;
    let resolveStatus!: () => void;
    const placedPromise = new Promise<number[]>((r) => {
      resolvePlaced = r;
    });
    const statusPromise = new Promise<void>((r) => {
      resolveStatus = r;
    });
    // An agent starts heartbeating (every 5 s) once its node config appears, as a real agent watching it would.
    const beating = new Set<string>();
    let agentsUpAt = 0;
    let resolveAgents!: () => void;
    const agentsUp = new Promise<void>((r) => {
      resolveAgents = r;
    });
    const byNode = new Map(agents.map((a) => [a.node, a]));
    const cfgWatch = cp.watch(`${GROUP_PATH}/ipsecnodeconfigs`, (type, obj) => {
      const a = byNode.get(obj.metadata.name);
      if (type === 'ADDED' && a && !beating.has(a.node)) {
        beating.add(a.node);
        void a.heartbeat().then(() => {
          a.start(5000);
          if (beating.size === nodes && !agentsUpAt) {
            agentsUpAt = performance.now();
            resolveAgents();
          }
        });
      }
      perNode.set(obj.metadata.name, type === 'DELETED' ? 0 : (obj.spec?.tunnels?.length ?? 0));
      const total = [...perNode.values()].reduce((a, b) => a + b, 0);
      if (total === tunnels && !placedAt) {
        placedAt = performance.now();
        resolvePlaced([...perNode.values()]);
      }
    });
    const withGateway = new Set<string>();
    const tunWatch = cp.watch(`${GROUP_PATH}/namespaces/bench/ipsectunnels`, (_type, obj) => {
      if (obj.status?.gateway) withGateway.add(obj.metadata.name);
      if (withGateway.size === tunnels && !statusAt) {
        statusAt = performance.now();
        resolveStatus();
      }
    });
    const start = performance.now();
    const op = await cluster.startOperator(['--no-leader-elect', '--heartbeat-timeout', '30s']);
    let peakRss = 0;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, rssKiB(op.pid, 'VmRSS'));
    }, 250);
    await within(agentsUp, 600_000, 'every agent heartbeating');
    const configsUp = (agentsUpAt - start) / 1000;
    // Every tunnel in some node config: watched, not polled (polling 50 big objects would load the API server).
    const placed = await within(placedPromise, 1_500_000, 'every tunnel in a node config');
    const tConfigs = (placedAt - start) / 1000;
    await within(statusPromise, 1_500_000, 'every tunnel status written');
    const tStatus = (statusAt - start) / 1000;
    cfgWatch.stop();
    tunWatch.stop();
    clearInterval(sampler);
    const text = await op.metrics();
    const hwm = rssKiB(op.pid, 'VmHWM');
    const reconciles = metric(text, 'ipsec_mesh_operator_reconciles_total').reduce((s, m) => s + m.value, 0);
    const tunnelRec = metric(text, 'ipsec_mesh_operator_reconciles_total')
      .filter((m) => m.labels.includes('controller="tunnel"'))
      .reduce((s, m) => s + m.value, 0);
    const api = metric(text, 'ipsec_mesh_operator_api_requests');
    const byVerb = Object.fromEntries(api.map((m) => [m.labels.replace(/.*verb="([^"]+)".*/, '$1'), m.value]));
    const apiTotal = api.reduce((s, m) => s + m.value, 0);
    report('operator start -> every gateway has its node config', configsUp, 's');
    report('operator start -> every tunnel in a node config', tConfigs, 's', {
      minPerNode: Math.min(...placed),
      maxPerNode: Math.max(...placed),
    });
    report('operator start -> every tunnel status written', tStatus, 's');
    report('reconciles per second (all controllers)', reconciles / tStatus, '1/s', { reconciles, tunnelRec });
    report('operator peak RSS', Math.round(Math.max(peakRss, hwm) / 1024), 'MiB');
    report('API requests issued by the operator', apiTotal, 'requests', { byVerb, perTunnel: apiTotal / tunnels });
    await op.kill('SIGTERM');
  } finally {
    for (const a of agents) a.stop();
    await cluster.stop();
  }
}
