/**
 * Kubernetes mode of the agent: the desired state is this node's IPsecNodeConfig (watched, nothing else), the key
 * material comes from the node's Secret in the operator namespace (read by name, as the agent's RBAC allows), and
 * the agent reports a heartbeat and its SA state in the IPsecNodeConfig status (server-side apply, field manager
 * `ipsec-mesh-agent`). The operator aggregates that status into each IPsecTunnel.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, VERSION } from '../api/common.js';
import type { NodeTunnelStatus } from '../api/nodeconfig.js';
import { parseNodeConfigSpec } from '../api/resources.js';
import { AGENT_NODE_LABEL, agentLeaseName } from '../operator/controller.js';
import { Informer } from '../operator/informer.js';
import { KubeApiError, KubeClient } from '../operator/kube.js';
import type { Agent } from './agent.js';
import type { TunnelView } from './status.js';

export const AGENT_FIELD_MANAGER = 'ipsec-mesh-agent';
const NODECONFIGS = `/apis/${GROUP}/${VERSION}/ipsecnodeconfigs`;

interface NodeConfigObject {
  metadata: { name: string; generation?: number; resourceVersion?: string };
  spec?: unknown;
}

interface SecretObject {
  data?: Record<string, string>;
}

export interface KubeSourceOptions {
  kc: KubeConfig;
  nodeName: string;
  secretNamespace: string;
  agent: Agent;
  logger: Logger;
  version: string;
  /** Heartbeat and status period (the operator's heartbeat timeout must be several times this). */
  heartbeatMs: number;
}

/** The agent's status of one tunnel in the IPsecNodeConfig status schema. */
export function nodeTunnelStatus(t: TunnelView, generation: number | undefined): NodeTunnelStatus {
  const ike = t.ikeSA;
  const s: NodeTunnelStatus = { namespace: t.namespace, name: t.name };
  if (generation !== undefined) s.generation = generation;
  s.ikeSA = {
    state: ike.state,
    ...(ike.state !== 'Down' ? { spis: { initiator: ike.spiI, responder: ike.spiR } } : {}),
    ...(ike.algorithms ? { algorithms: ike.algorithms } : {}),
    localAddress: ike.local,
    remoteAddress: ike.remote,
    ...(ike.establishedAt ? { establishedAt: ike.establishedAt } : {}),
    ...(ike.rekeyAt ? { rekeyAt: ike.rekeyAt } : {}),
    natDetected: ike.natDetected,
  };
  const children = t.childSAs.filter((c) => c.state !== 'deleted' && c.state !== 'rekeyed').slice(0, 64);
  s.childSAs = children.map((c) => ({
    name: c.name,
    state:
      c.state === 'installed'
        ? 'Installed'
        : c.state === 'rekeying'
          ? 'Rekeying'
          : c.state === 'deleting'
            ? 'Deleting'
            : 'Installing',
    spis: { in: c.spiIn, out: c.spiOut },
    ...(c.algorithms ? { algorithms: c.algorithms } : {}),
    trafficSelectors: { local: c.localTs, remote: c.remoteTs },
    bytesIn: Number(c.bytesIn ?? 0),
    bytesOut: Number(c.bytesOut ?? 0),
    packetsIn: Number(c.packetsIn ?? 0),
    packetsOut: Number(c.packetsOut ?? 0),
    ...(c.installedAt ? { installedAt: c.installedAt } : {}),
    ...(c.rekeyAt ? { rekeyAt: c.rekeyAt } : {}),
  }));
  if (t.espBlocked) s.espBlocked = { since: t.espBlocked.since, message: t.espBlocked.message.slice(0, 1024) };
  if (t.encrypted) {
    const e = t.encrypted;
    s.encrypted = {
      status: e.status,
      reason: e.reason.slice(0, 128),
      message: e.message.slice(0, 4096),
      lastTransitionTime: e.lastTransitionTime,
      checkedAt: e.checkedAt,
      restored: e.restored,
    };
  }
  if (t.mtu) {
    const m = t.mtu;
    s.mtu = {
      underlayMtu: m.underlayMtu,
      innerMtu: m.innerMtu,
      overhead: m.overhead,
      mss: m.mss,
      clamp: m.clamp,
      routeMtu: m.routeMtu,
      ...(m.error ? { error: `${m.error.code}: ${m.error.message}`.slice(0, 1024) } : {}),
    };
  }
  // A negotiation error counts while the tunnel is not up; once an IKE SA and a CHILD SA are (again), an earlier
  // failure is history (it stays in the agent's own status) and must not hold the tunnel's Ready at False.
  const up = (ike.state === 'Established' || ike.state === 'Rekeying') && children.some((c) => c.state === 'installed');
  const err =
    t.configError ??
    (ike.lastError && !up ? { reason: camel(ike.lastError.code), message: ike.lastError.message } : undefined);
  if (err) s.error = { reason: err.reason.slice(0, 128), message: err.message.slice(0, 4096) };
  return s;
}

function camel(code: string): string {
  return code
    .toLowerCase()
    .split('_')
    .map((w) => (w ? w[0]!.toUpperCase() + w.slice(1) : ''))
    .join('');
}

export class KubeSource {
  private readonly client: KubeClient;
  private informer: Informer<NodeConfigObject> | undefined;
  private current: NodeConfigObject | undefined;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> = Promise.resolve();
  private stopped = false;
  private generations = new Map<string, number>();

  constructor(private readonly o: KubeSourceOptions) {
    this.client = new KubeClient(o.kc);
  }

  async start(): Promise<void> {
    const log = this.o.logger;
    this.informer = new Informer<NodeConfigObject>(
      this.o.kc,
      this.client,
      NODECONFIGS,
      {
        onAdd: (obj) => this.changed(obj),
        onUpdate: (obj) => this.changed(obj),
        onDelete: () => this.changed(undefined),
      },
      {
        fieldSelector: `metadata.name=${this.o.nodeName}`,
        onError: (e) =>
          log.warn({ event: 'watch-error' }, `watching the node configuration: ${(e as Error).message ?? e}`),
      },
    );
    await this.informer.start();
    // The heartbeat runs on its own timer: a slow sync (a Secret read, a large status patch, a busy API server)
    // must not delay it, or the operator takes a live gateway for dead and moves its tunnels.
    const beat = () => {
      if (this.stopped) return;
      if (!this.renewing) {
        this.renewing = true;
        void this.renewLease().finally(() => {
          this.renewing = false;
        });
      }
      this.leaseTimer = setTimeout(beat, this.o.heartbeatMs);
    };
    beat();
    const tick = () => {
      if (this.stopped) return;
      // Periodic resync re-reads the node Secret (key rotation) and reports status as the heartbeat.
      this.schedule(true);
      this.timer = setTimeout(tick, this.o.heartbeatMs);
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.leaseTimer);
    this.informer?.stop?.();
    this.client.close();
  }

  private changed(obj: NodeConfigObject | undefined): void {
    if (obj && obj.metadata.name !== this.o.nodeName) return;
    this.current = obj;
    this.schedule(false);
  }

  private schedule(heartbeat: boolean): void {
    this.syncing = this.syncing
      .then(() => this.sync(heartbeat))
      .catch((e: unknown) => {
        this.o.logger.error({ event: 'sync-error' }, (e as Error).message ?? String(e));
      });
  }

  private async sync(heartbeat: boolean): Promise<void> {
    const log = this.o.logger;
    const cfg = this.current;
    const problems: { file: string; where: string; path: string; message: string }[] = [];
    let tunnels: NonNullable<ReturnType<typeof parseNodeConfigSpec> & { ok: true }>['value']['tunnels'] = [];
    const secrets = new Map<string, Uint8Array>();
    if (cfg?.spec !== undefined) {
      const r = parseNodeConfigSpec(cfg.spec);
      if (r.ok) {
        tunnels = r.value.tunnels;
        if (r.value.secretName) {
          const ns = r.value.secretNamespace ?? this.o.secretNamespace;
          try {
            const s = await this.client.get<SecretObject>(`/api/v1/namespaces/${ns}/secrets/${r.value.secretName}`);
            for (const [k, v] of Object.entries(s.data ?? {}))
              secrets.set(k, Uint8Array.from(Buffer.from(v, 'base64')));
          } catch (e) {
            const why = e instanceof KubeApiError ? `${e.status} ${e.reason}` : (e as Error).message;
            log.error(
              { event: 'secret-error', secret: `${ns}/${r.value.secretName}` },
              `cannot read the node Secret: ${why}`,
            );
            problems.push({ file: `secret ${ns}/${r.value.secretName}`, where: '', path: '', message: why });
          }
        }
      } else {
        for (const e of r.error.errors)
          problems.push({ file: `IPsecNodeConfig ${this.o.nodeName}`, where: '', path: e.path, message: e.message });
        log.error({ event: 'invalid-node-config' }, r.error.message);
      }
    }
    this.generations = new Map(tunnels.map((t) => [`${t.namespace}/${t.name}`, t.generation]));
    this.o.agent.apply({ tunnels, secrets, problems });
    if (heartbeat || cfg) await this.report(cfg);
  }

  /**
   * The heartbeat: the Lease `ipsec-mesh-agent-<node>` in the operator namespace, renewed by server-side apply
   * (the operator elects only nodes whose Lease is fresh). The agent may create and patch that one Lease only.
   */
  private async renewLease(): Promise<void> {
    const name = agentLeaseName(this.o.nodeName);
    try {
      await this.client.request(
        'PATCH',
        `/apis/coordination.k8s.io/v1/namespaces/${this.o.secretNamespace}/leases/${name}`,
        {
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace: this.o.secretNamespace, labels: { [AGENT_NODE_LABEL]: this.o.nodeName } },
            spec: {
              holderIdentity: this.o.nodeName,
              leaseDurationSeconds: Math.max(1, Math.ceil((3 * this.o.heartbeatMs) / 1000)),
              // MicroTime: six fractional digits.
              renewTime: new Date().toISOString().replace('Z', '000Z'),
            },
          },
          contentType: 'application/apply-patch+yaml',
          query: { fieldManager: AGENT_FIELD_MANAGER, force: 'true' },
        },
      );
    } catch (e) {
      const why = e instanceof KubeApiError ? `${e.status} ${e.reason}: ${e.message}` : (e as Error).message;
      this.o.logger.warn({ event: 'heartbeat-error' }, `cannot renew the heartbeat Lease: ${why}`);
    }
  }

  private lastReport = '';
  private leaseTimer: NodeJS.Timeout | undefined;
  /** A Lease renewal is in flight (renewals never pile up behind a slow API server). */
  private renewing = false;
  private readonly startedAt = new Date().toISOString();

  private async report(cfg: NodeConfigObject | undefined): Promise<void> {
    if (!cfg) return; // no object yet: the operator creates it for every gateway-pool node
    const s = await this.o.agent.status();
    const tunnels = s.tunnels.map((t) => nodeTunnelStatus(t, this.generations.get(`${t.namespace}/${t.name}`)));
    // Report when something changed (counters included), at most once per period.
    const text = JSON.stringify([cfg.metadata.generation, tunnels]);
    if (text === this.lastReport) return;
    const status = {
      agent: {
        version: this.o.version,
        startedAt: this.startedAt,
        ...(cfg.metadata.generation !== undefined ? { observedGeneration: cfg.metadata.generation } : {}),
      },
      tunnels,
    };
    try {
      await this.client.request('PATCH', `${NODECONFIGS}/${this.o.nodeName}/status`, {
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'IPsecNodeConfig',
          metadata: { name: this.o.nodeName },
          status,
        },
        contentType: 'application/apply-patch+yaml',
        query: { fieldManager: AGENT_FIELD_MANAGER, force: 'true' },
      });
      this.lastReport = text;
    } catch (e) {
      const why = e instanceof KubeApiError ? `${e.status} ${e.reason}: ${e.message}` : (e as Error).message;
      this.o.logger.warn({ event: 'status-error' }, `cannot report status: ${why}`);
    }
  }
}
