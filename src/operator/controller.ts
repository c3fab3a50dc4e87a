/**
 * The operator: informers feed de-duplicating work queues; narrow level-based reconcilers (tunnel, placement,
 * node, mesh, rbac) call the pure planners in plan.ts and execute the resulting writes.
 *
 * Key-material path (least privilege): the operator reads a tunnel's referenced Secret (get only, never list or
 * watch) and copies the key into one Secret per gateway node in the operator namespace
 * (ipsec-mesh-node-<node>). The agents' ServiceAccount may read Secrets only through a Role whose rule lists
 * exactly those Secret names (resourceNames), maintained by the operator; it has no access to any other Secret.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  API_VERSION,
  type IPsecMeshStatus,
  type IPsecNodeConfigSpec,
  type IPsecTunnelSpec,
  type IPsecTunnelStatus,
  type NodeTunnel,
  type NodeTunnelStatus,
  parseMeshSpec,
} from '../api/index.js';
import { EventRecorder } from './events.js';
import { Informer } from './informer.js';
import { KubeApiError, KubeClient } from './kube.js';
import {
  type Acceptance,
  acceptTunnel,
  canonical,
  type Election,
  electGateways,
  FINALIZER,
  findOverlaps,
  MESH_LABEL,
  meshTunnels,
  type NodeInfo,
  nodeConfigSpec,
  nodeSecretName,
  type Problem,
  renderNodeTunnel,
  sameStatus,
  secretKeyFor,
  tunnelManifest,
  tunnelStatus,
} from './plan.js';
import { WorkQueue } from './queue.js';
import {
  key,
  type LeaseObject,
  type MeshObject,
  type NodeConfigObject,
  type NodeObject,
  type SecretObject,
  splitKey,
  type TunnelObject,
} from './types.js';

export const FINALIZER_MANAGER = 'ipsec-mesh-operator-finalizers';
/** Label on an agent's heartbeat Lease naming its node; the Lease is `ipsec-mesh-agent-<node>`. */
export const AGENT_NODE_LABEL = 'ipsecmesh.io/agent-node';
export const agentLeaseName = (node: string) => `ipsec-mesh-agent-${node}`.slice(0, 253);
const GROUP_PATH = `/apis/${API_VERSION}`;

export interface Logger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
  debug(obj: Record<string, unknown>, msg: string): void;
}

export interface ControllerOptions {
  kubeconfig: KubeConfig;
  /** Namespace of the operator: node Secrets, the agent Secrets Role, Events about cluster-scoped objects. */
  namespace: string;
  /** This cluster's site name in IPsecMeshes; meshes are reported as LocalSiteNotFound without it. */
  site?: string;
  /** Labels selecting the gateway node pool (where agents run). */
  gatewaySelector: Record<string, string>;
  heartbeatTimeoutMs: number;
  resyncMs: number;
  /** Role granting the agents get on their node Secrets; empty string disables its management. */
  agentSecretsRole: string;
  identity: string;
  workers: number;
  secretTtlMs: number;
  log: Logger;
  registry: Registry;
}

interface SecretEntry {
  at: number;
  exists: boolean;
  data: Record<string, string>;
}

export class Controller {
  readonly client: KubeClient;
  private readonly tunnels: Informer<TunnelObject>;
  private readonly meshes: Informer<MeshObject>;
  private readonly nodeConfigs: Informer<NodeConfigObject>;
  private readonly nodes: Informer<NodeObject>;
  private readonly leases: Informer<LeaseObject>;
  private readonly tunnelQ = new WorkQueue();
  private readonly nodeQ = new WorkQueue();
  private readonly meshQ = new WorkQueue();
  private readonly globalQ = new WorkQueue<'placement' | 'rbac'>();
  private readonly events: EventRecorder;
  private readonly acceptance = new Map<string, Acceptance>();
  private readonly acceptanceSig = new Map<string, string>();
  private election: Election = new Map();
  private byNode = new Map<string, Set<string>>();
  private overlaps = new Map<string, string>();
  private nodeProblems = new Map<string, Problem>();
  private alive = new Map<string, boolean>();
  private readonly secrets = new Map<string, SecretEntry>();
  private readonly secretFetches = new Map<string, Promise<SecretEntry>>();
  private readonly appliedSecretHash = new Map<string, string>();
  /** The node Secrets' data as last applied (base64 values, as read from the users' Secrets; never logged). */
  private readonly appliedSecretData = new Map<string, Record<string, string>>();
  private appliedRole = '';
  private readonly agentSeen = new Map<string, Map<string, string>>();
  private readonly configGen = new Map<string, number>();
  private initialDone = false;
  private timers: NodeJS.Timeout[] = [];
  private running: Promise<void>[] = [];
  private readonly m: {
    reconciles: Counter<'controller' | 'result'>;
    duration: Histogram<'controller'>;
    depth: Gauge<'controller'>;
    api: Gauge<'verb'>;
    alive: Gauge;
    tunnels: Gauge<'state'>;
  };
  private readonly startedAt = Date.now();
  /** Reconciles performed, by controller (the bench reports them). */
  readonly counts: Record<string, number> = {};

  constructor(private readonly o: ControllerOptions) {
    this.client = new KubeClient(o.kubeconfig, { maxSockets: 32 });
    const onError = (what: string) => (e: unknown) => o.log.warn({ informer: what, error: errText(e) }, 'watch error');
    const sel = Object.entries(o.gatewaySelector)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    this.tunnels = new Informer(
      o.kubeconfig,
      this.client,
      `${GROUP_PATH}/ipsectunnels`,
      {
        onAdd: (t) => this.onTunnel(t),
        onUpdate: (t) => this.onTunnel(t),
        onDelete: (t) => this.onTunnel(t),
      },
      { onError: onError('ipsectunnels') },
    );
    this.meshes = new Informer(
      o.kubeconfig,
      this.client,
      `${GROUP_PATH}/ipsecmeshes`,
      {
        onAdd: (m) => this.meshQ.add(key(m)),
        onUpdate: (m) => this.meshQ.add(key(m)),
        onDelete: (m) => this.meshQ.add(key(m)),
      },
      { onError: onError('ipsecmeshes') },
    );
    this.nodeConfigs = new Informer(
      o.kubeconfig,
      this.client,
      `${GROUP_PATH}/ipsecnodeconfigs`,
      {
        onAdd: (c) => this.onNodeConfig(c),
        onUpdate: (c) => this.onNodeConfig(c),
        onDelete: (c) => this.onNodeConfig(c, true),
      },
      { onError: onError('ipsecnodeconfigs') },
    );
    this.nodes = new Informer(
      o.kubeconfig,
      this.client,
      '/api/v1/nodes',
      {
        onAdd: (n) => this.onNode(n),
        onUpdate: (n) => this.onNode(n),
        onDelete: (n) => this.onNode(n),
      },
      { onError: onError('nodes'), ...(sel ? { labelSelector: sel } : {}) },
    );
    this.leases = new Informer(
      o.kubeconfig,
      this.client,
      `/apis/coordination.k8s.io/v1/namespaces/${o.namespace}/leases`,
      {
        onAdd: (l) => this.onLease(l),
        onUpdate: (l) => this.onLease(l),
        onDelete: (l) => this.onLease(l),
      },
      { onError: onError('leases'), labelSelector: AGENT_NODE_LABEL },
    );
    this.events = new EventRecorder(this.client, {
      component: 'ipsec-mesh-operator',
      instance: o.identity,
      clusterNamespace: o.namespace,
    });
    const reg = o.registry;
    this.m = {
      reconciles: new Counter({
        name: 'ipsec_mesh_operator_reconciles_total',
        help: 'Reconciles by controller and result.',
        labelNames: ['controller', 'result'],
        registers: [reg],
      }),
      duration: new Histogram({
        name: 'ipsec_mesh_operator_reconcile_seconds',
        help: 'Reconcile duration.',
        labelNames: ['controller'],
        buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10],
        registers: [reg],
      }),
      depth: new Gauge({
        name: 'ipsec_mesh_operator_queue_depth',
        help: 'Keys waiting in each work queue.',
        labelNames: ['controller'],
        registers: [reg],
        collect: () => {
          this.m.depth.set({ controller: 'tunnel' }, this.tunnelQ.length);
          this.m.depth.set({ controller: 'node' }, this.nodeQ.length);
          this.m.depth.set({ controller: 'mesh' }, this.meshQ.length);
        },
      }),
      api: new Gauge({
        name: 'ipsec_mesh_operator_api_requests',
        help: 'Kubernetes API requests issued since start, by HTTP verb.',
        labelNames: ['verb'],
        registers: [reg],
        collect: () => {
          for (const [verb, n] of Object.entries(this.client.stats.byVerb)) this.m.api.set({ verb }, n);
        },
      }),
      alive: new Gauge({
        name: 'ipsec_mesh_operator_live_gateways',
        help: 'Gateway nodes with a live agent heartbeat.',
        registers: [reg],
        collect: () => this.m.alive.set([...this.alive.values()].filter(Boolean).length),
      }),
      tunnels: new Gauge({
        name: 'ipsec_mesh_operator_tunnels',
        help: 'Tunnels by state (placed, unplaced, rejected).',
        labelNames: ['state'],
        registers: [reg],
        collect: () => {
          let placed = 0;
          let unplaced = 0;
          for (const e of this.election.values()) e.node ? placed++ : unplaced++;
          this.m.tunnels.set({ state: 'placed' }, placed);
          this.m.tunnels.set({ state: 'unplaced' }, unplaced);
          this.m.tunnels.set({ state: 'rejected' }, [...this.acceptance.values()].filter((a) => !a.ok).length);
        },
      }),
    };
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------------

  async start(): Promise<void> {
    const log = this.o.log;
    await Promise.all([
      this.nodes.start(),
      this.nodeConfigs.start(),
      this.tunnels.start(),
      this.meshes.start(),
      this.leases.start(),
    ]);
    // Sticky placement across operator restarts and failovers: start from what the node configs say.
    for (const c of this.nodeConfigs.list()) {
      for (const t of c.spec?.tunnels ?? []) this.election.set(`${t.namespace}/${t.name}`, { node: c.metadata.name });
    }
    this.rebuildByNode();
    this.refreshLiveness();
    await this.primeAcceptance();
    // First placement: wait until every pool node's agent has beaten (or a grace period passed), so a cold start
    // does not pile every tunnel onto the first agents that happen to report. Existing placements are sticky.
    // The grace period starts once every pool node has its config (agents can only beat into an existing one);
    // tunnel workers start after the first placement so their writes do not delay the node configs.
    const grace = Math.min(10_000, this.o.heartbeatTimeoutMs / 2);
    let configsAt = 0;
    const w = this.o.workers;
    const settle = () => {
      if (this.initialDone) return;
      const pool = this.nodes.list();
      if (!configsAt && pool.every((n) => this.nodeConfigs.get(n.metadata.name))) configsAt = Date.now();
      const allAlive = pool.every((n) => this.alive.get(n.metadata.name));
      if (allAlive || (configsAt && Date.now() - configsAt >= grace) || Date.now() - this.startedAt > 300_000) {
        this.initialDone = true;
        this.globalQ.add('placement');
        this.running.push(
          this.tunnelQ.run(w, (k) => this.timed('tunnel', () => this.reconcileTunnel(k)), this.onErr('tunnel')),
        );
        log.info({ afterMs: Date.now() - this.startedAt, allAlive }, 'initial placement');
      } else this.timers.push(setTimeout(settle, 100));
    };
    log.info(
      { tunnels: this.tunnels.list().length, nodes: this.nodes.list().length, configs: this.nodeConfigs.list().length },
      'caches synced',
    );
    this.running.push(
      this.nodeQ.run(4, (k) => this.timed('node', () => this.reconcileNode(k)), this.onErr('node')),
      this.meshQ.run(2, (k) => this.timed('mesh', () => this.reconcileMesh(k)), this.onErr('mesh')),
      this.globalQ.run(
        1,
        (k) => this.timed(k, () => (k === 'placement' ? this.reconcilePlacement() : this.reconcileRbac())),
        this.onErr('global'),
      ),
    );
    this.enqueueAll();
    settle();
    const tick = Math.max(200, Math.min(5000, this.o.heartbeatTimeoutMs / 4));
    this.timers.push(setInterval(() => this.refreshLiveness(), tick));
    this.timers.push(setInterval(() => this.enqueueAll(), this.o.resyncMs));
    for (const t of this.timers) t.unref();
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const q of [this.tunnelQ, this.nodeQ, this.meshQ, this.globalQ]) q.shutdown();
    await Promise.all([
      this.tunnels.stop(),
      this.meshes.stop(),
      this.nodeConfigs.stop(),
      this.nodes.stop(),
      this.leases.stop(),
    ]);
    await Promise.allSettled(this.running);
    this.client.close();
  }

  private enqueueAll(): void {
    // Resync: forget what we believe we wrote, so drift (an edited Role, a deleted node Secret) is repaired.
    this.secrets.clear();
    this.appliedRole = '';
    for (const n of this.appliedSecretHash.keys()) this.appliedSecretHash.set(n, '');
    for (const t of this.tunnels.list()) this.tunnelQ.add(key(t));
    for (const m of this.meshes.list()) this.meshQ.add(key(m));
    for (const n of this.nodes.list()) this.nodeQ.add(n.metadata.name);
    for (const c of this.nodeConfigs.list()) this.nodeQ.add(c.metadata.name);
    this.globalQ.add('rbac');
    if (this.initialDone) this.globalQ.add('placement');
  }

  private async timed(controller: string, fn: () => Promise<void>): Promise<void> {
    const end = this.m.duration.startTimer({ controller });
    this.counts[controller] = (this.counts[controller] ?? 0) + 1;
    try {
      await fn();
      this.m.reconciles.inc({ controller, result: 'success' });
    } catch (e) {
      this.m.reconciles.inc({ controller, result: 'error' });
      throw e;
    } finally {
      end();
    }
  }

  private onErr(controller: string) {
    return (k: string, err: unknown, retryMs: number) =>
      this.o.log.warn({ controller, key: k, error: errText(err), retryMs }, 'reconcile failed; retrying');
  }

  // ---- event handlers ------------------------------------------------------------------------------------------

  private onTunnel(t: TunnelObject): void {
    this.tunnelQ.add(key(t));
    const mesh = t.metadata.labels?.[MESH_LABEL];
    if (mesh && t.metadata.namespace) this.meshQ.add(`${t.metadata.namespace}/${mesh}`);
  }

  private onNode(n: NodeObject): void {
    this.nodeQ.add(n.metadata.name);
    this.globalQ.add('rbac');
    if (this.initialDone) this.globalQ.addAfter('placement', 50);
  }

  private onNodeConfig(c: NodeConfigObject, deleted = false): void {
    const node = c.metadata.name;
    // Heartbeats and SA state only touch the status; re-check the spec only when it (generation) changed.
    const gen = deleted ? -1 : (c.metadata.generation ?? 0);
    if (this.configGen.get(node) !== gen) {
      this.configGen.set(node, gen);
      this.nodeQ.add(node);
    }
    // Tunnels whose agent-reported state changed, or that were added to/removed from this node's spec.
    const seen = this.agentSeen.get(node) ?? new Map<string, string>();
    const now = new Map<string, string>();
    for (const t of c.status?.tunnels ?? []) now.set(`${t.namespace}/${t.name}`, canonical(t));
    for (const t of deleted ? [] : (c.spec?.tunnels ?? [])) {
      const k = `${t.namespace}/${t.name}`;
      now.set(`spec:${k}`, String(t.generation));
    }
    for (const [k, v] of now) if (seen.get(k) !== v) this.tunnelQ.add(k.replace(/^spec:/, ''));
    for (const k of seen.keys()) if (!now.has(k)) this.tunnelQ.add(k.replace(/^spec:/, ''));
    this.agentSeen.set(node, now);
  }

  /** An agent is live while its heartbeat Lease was renewed within the timeout (and names its node). */
  private heartbeatLive(node: string): boolean {
    const l = this.leases.get(agentLeaseName(node), this.o.namespace);
    const t = l?.spec?.renewTime;
    if (!t || l?.spec?.holderIdentity !== node) return false;
    return Date.now() - Date.parse(t) < this.o.heartbeatTimeoutMs;
  }

  private onLease(l: LeaseObject): void {
    const node = l.metadata.labels?.[AGENT_NODE_LABEL];
    if (!node) return;
    const live = this.heartbeatLive(node);
    const was = this.alive.get(node);
    if (was !== live) {
      this.alive.set(node, live);
      if (live || was) this.o.log.info({ node, alive: live }, live ? 'agent heartbeat live' : 'agent heartbeat lost');
      if (this.initialDone) this.globalQ.addAfter('placement', 50);
    }
  }

  private refreshLiveness(): void {
    let changed = false;
    for (const n of this.nodes.list()) {
      const live = this.heartbeatLive(n.metadata.name);
      const was = this.alive.get(n.metadata.name);
      if (was !== live) {
        this.alive.set(n.metadata.name, live);
        changed = true;
        if (live || was) {
          this.o.log.info(
            { node: n.metadata.name, alive: live },
            live ? 'agent heartbeat live' : 'agent heartbeat lost',
          );
        }
      }
    }
    if (changed && this.initialDone) this.globalQ.add('placement');
  }

  // ---- secrets -------------------------------------------------------------------------------------------------

  private async secret(namespace: string, name: string): Promise<SecretEntry> {
    const k = `${namespace}/${name}`;
    const cached = this.secrets.get(k);
    // A missing Secret is re-read soon (users create it after the tunnel); a present one is cached longer.
    const ttl = cached?.exists ? this.o.secretTtlMs : Math.min(this.o.secretTtlMs, 2000);
    if (cached && Date.now() - cached.at < ttl) return cached;
    let p = this.secretFetches.get(k);
    if (!p) {
      p = (async () => {
        const s = await this.client.getOrUndefined<SecretObject>(`/api/v1/namespaces/${namespace}/secrets/${name}`);
        const e: SecretEntry = { at: Date.now(), exists: !!s, data: s?.data ?? {} };
        this.secrets.set(k, e);
        return e;
      })().finally(() => this.secretFetches.delete(k));
      this.secretFetches.set(k, p);
    }
    return p;
  }

  private static secretNames(spec: unknown): string[] {
    const a = (spec as { auth?: IPsecTunnelSpec['auth'] } | undefined)?.auth;
    const names = new Set<string>();
    if (a?.psk?.secretRef?.name) names.add(a.psk.secretRef.name);
    if (a?.certificate?.secretRef?.name) names.add(a.certificate.secretRef.name);
    if (a?.certificate?.remoteCA?.secretRef?.name) names.add(a.certificate.remoteCA.secretRef.name);
    return [...names];
  }

  // ---- tunnel reconciler ---------------------------------------------------------------------------------------

  private async reconcileTunnel(k: string): Promise<void> {
    const t = this.tunnels.get(splitKey(k).name, splitKey(k).namespace);
    if (!t) {
      if (this.acceptance.delete(k)) this.placementChanged();
      return;
    }
    const path = `${GROUP_PATH}/namespaces/${t.metadata.namespace}/ipsectunnels/${t.metadata.name}`;
    if (t.metadata.deletionTimestamp) {
      if (this.acceptance.delete(k)) this.placementChanged();
      const onNode = [...this.nodeConfigs.list()].some((c) =>
        (c.spec?.tunnels ?? []).some((x) => `${x.namespace}/${x.name}` === k),
      );
      if (!onNode && !this.election.get(k)?.node && t.metadata.finalizers?.includes(FINALIZER)) {
        await this.setFinalizer(path, t, false);
        this.o.log.info({ tunnel: k }, 'tunnel removed from all gateways; finalizer released');
      }
      return;
    }
    const acc = await this.accept(k, t);
    if (!t.metadata.finalizers?.includes(FINALIZER)) await this.setFinalizer(path, t, true);
    if (!acc.ok && (acc.problem.reason === 'SecretNotFound' || acc.problem.reason === 'SecretKeyNotFound')) {
      // Secrets are not watched (least privilege: get only); poll for the missing one with back-off.
      this.tunnelQ.addAfter(k, Math.min(30_000, 2500 * 2 ** Math.min(4, this.tunnelQ.retries(k))));
    }
    const el = this.election.get(k);
    // An accepted tunnel not yet through placement: wait for it instead of writing a transient status.
    if (acc.ok && !el && !this.overlaps.has(k)) return;
    const gw = el?.node;
    const cfg = gw ? this.nodeConfigs.get(gw) : undefined;
    const entry = cfg?.spec?.tunnels?.find((x) => x.namespace === t.metadata.namespace && x.name === t.metadata.name);
    const agent = cfg?.status?.tunnels?.find(
      (x) => x.namespace === t.metadata.namespace && x.name === t.metadata.name,
    ) as NodeTunnelStatus | undefined;
    const nodeProblem = this.nodeProblems.get(k);
    const generation = t.metadata.generation ?? 0;
    const status = tunnelStatus({
      generation,
      acceptance: acc.ok ? (nodeProblem ? { ok: false, problem: nodeProblem } : { ok: true }) : acc,
      overlapWith: this.overlaps.get(k),
      election: el,
      agent,
      configured: !!entry && entry.generation >= generation,
      previous: t.status,
      now: new Date().toISOString(),
    });
    if (sameStatus(t.status, status)) return;
    await this.client.applyStatus(path, {
      apiVersion: API_VERSION,
      kind: 'IPsecTunnel',
      metadata: { name: t.metadata.name, namespace: t.metadata.namespace },
      status,
    });
    this.tunnelEvents(t, t.status, status);
  }

  /** Validate a tunnel and resolve its Secrets; a changed verdict triggers placement and its node. */
  private async accept(k: string, t: TunnelObject): Promise<Acceptance> {
    const lookups = await Promise.all(
      Controller.secretNames(t.spec).map(async (n) => [n, await this.secret(t.metadata.namespace!, n)] as const),
    );
    const byName = new Map(lookups);
    const acc = acceptTunnel(t.metadata.namespace!, t.spec, (_ns, name) => {
      const e = byName.get(name);
      return e ? { exists: e.exists, keys: Object.keys(e.data) } : undefined;
    });
    const sig = acc.ok ? `ok:${t.metadata.generation}:${canonical(acc.spec)}` : `bad:${acc.problem.reason}`;
    this.acceptance.set(k, acc);
    if (this.acceptanceSig.get(k) !== sig) {
      this.acceptanceSig.set(k, sig);
      this.placementChanged();
      const node = this.election.get(k)?.node;
      if (node) this.nodeQ.addAfter(node, 250);
    }
    return acc;
  }

  /**
   * Before the workers start: judge every cached tunnel (reading each referenced Secret once) so the first
   * placement sees all of them and node configs are written at once, not after a round of per-tunnel writes.
   */
  private async primeAcceptance(): Promise<void> {
    const all = this.tunnels.list().filter((t) => !t.metadata.deletionTimestamp);
    await Promise.all(
      [...new Set(all.flatMap((t) => Controller.secretNames(t.spec).map((n) => `${t.metadata.namespace}/${n}`)))].map(
        (k) => this.secret(splitKey(k).namespace, splitKey(k).name).catch(() => undefined),
      ),
    );
    for (const t of all) await this.accept(key(t), t).catch(() => undefined);
  }

  private tunnelEvents(t: TunnelObject, prev: IPsecTunnelStatus | undefined, next: IPsecTunnelStatus): void {
    const obj = { ...t, apiVersion: API_VERSION, kind: 'IPsecTunnel' };
    const c = (s: IPsecTunnelStatus | undefined, type: string) => s?.conditions?.find((x) => x.type === type);
    if (prev?.gateway !== next.gateway && next.gateway) {
      if (prev?.gateway) {
        this.events.record(obj, 'Warning', 'GatewayFailover', `gateway moved from ${prev.gateway} to ${next.gateway}`);
      } else this.events.record(obj, 'Normal', 'GatewayElected', `gateway ${next.gateway} elected`);
    }
    const acc = c(next, 'Accepted');
    if (acc?.status === 'False' && c(prev, 'Accepted')?.reason !== acc.reason) {
      this.events.record(obj, 'Warning', acc.reason, acc.message);
    }
    const ready = c(next, 'Ready');
    const wasReady = c(prev, 'Ready');
    if (ready && wasReady?.status !== ready.status && (ready.status === 'True' || wasReady?.status === 'True')) {
      this.events.record(obj, ready.status === 'True' ? 'Normal' : 'Warning', ready.reason, ready.message);
    }
    const deg = c(next, 'Degraded');
    if (deg?.reason === 'EspBlocked' && c(prev, 'Degraded')?.reason !== 'EspBlocked') {
      this.events.record(obj, 'Warning', deg.reason, deg.message);
    }
    const ng = c(next, 'Ready');
    if (ng?.reason === 'NoEligibleGateway' && c(prev, 'Ready')?.reason !== 'NoEligibleGateway') {
      this.events.record(obj, 'Warning', ng.reason, ng.message);
    }
  }

  /** Add or remove our finalizer with server-side apply under a dedicated field manager (others' stay intact). */
  private async setFinalizer(path: string, obj: TunnelObject | MeshObject, present: boolean): Promise<void> {
    const kind = path.includes('/ipsecmeshes/') ? 'IPsecMesh' : 'IPsecTunnel';
    try {
      await this.client.request('PATCH', path, {
        body: {
          apiVersion: API_VERSION,
          kind,
          metadata: {
            name: obj.metadata.name,
            namespace: obj.metadata.namespace,
            uid: obj.metadata.uid,
            finalizers: present ? [FINALIZER] : [],
          },
        },
        contentType: 'application/apply-patch+yaml',
        query: { fieldManager: FINALIZER_MANAGER, force: 'true' },
      });
    } catch (e) {
      // Gone already (or recreated with another UID): nothing to do.
      if (e instanceof KubeApiError && (e.notFound || e.conflict || e.status === 422)) return;
      throw e;
    }
  }

  private placementChanged(): void {
    if (this.initialDone) this.globalQ.addAfter('placement', 100);
  }

  // ---- placement (gateway election) ------------------------------------------------------------------------------

  private async reconcilePlacement(): Promise<void> {
    const accepted: Array<{ key: string; spec: IPsecTunnelSpec; order: string }> = [];
    for (const [k, a] of this.acceptance) {
      if (!a.ok) continue;
      const t = this.tunnels.get(splitKey(k).name, splitKey(k).namespace);
      if (!t || t.metadata.deletionTimestamp) continue;
      accepted.push({ key: k, spec: a.spec, order: `${t.metadata.creationTimestamp ?? ''}|${k}` });
    }
    const overlaps = findOverlaps(
      accepted.map((a) => ({ key: a.key, order: a.order, local: a.spec.local.subnets, remote: a.spec.remote.subnets })),
    );
    const nodes: NodeInfo[] = this.nodes.list().map((n) => ({
      name: n.metadata.name,
      labels: n.metadata.labels ?? {},
      address: n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address,
      alive: this.alive.get(n.metadata.name) ?? false,
    }));
    const next = electGateways(
      accepted
        .filter((a) => !overlaps.has(a.key))
        .map((a) => ({
          key: a.key,
          nodeSelector: a.spec.local.nodeSelector,
          current: this.election.get(a.key)?.node,
          // A floating local address can be on one node only: its tunnels are elected together.
          ...(a.spec.local.floating && a.spec.local.address ? { group: `floating:${a.spec.local.address}` } : {}),
        })),
      nodes,
    );
    const prev = this.election;
    const touchedNodes = new Set<string>();
    for (const [k, e] of next) {
      const p = prev.get(k);
      if (p?.node !== e.node || (!p && !e.node) || (!e.node && p && !p.node && canonical(p) !== canonical(e))) {
        this.tunnelQ.add(k);
        if (p?.node) touchedNodes.add(p.node);
        if (e.node) touchedNodes.add(e.node);
      } else if (!p) this.tunnelQ.add(k);
    }
    for (const [k, p] of prev) {
      if (!next.has(k)) {
        this.tunnelQ.add(k);
        if (p.node) touchedNodes.add(p.node);
      }
    }
    for (const k of new Set([...overlaps.keys(), ...this.overlaps.keys()])) {
      if (overlaps.get(k) !== this.overlaps.get(k)) this.tunnelQ.add(k);
    }
    this.overlaps = overlaps;
    this.election = next;
    this.rebuildByNode();
    // Coalesce bursts (thousands of tunnels arriving) into few writes of each node config.
    for (const n of touchedNodes) this.nodeQ.addAfter(n, 250);
  }

  private rebuildByNode(): void {
    const by = new Map<string, Set<string>>();
    for (const [k, e] of this.election) {
      if (!e.node) continue;
      let s = by.get(e.node);
      if (!s) {
        s = new Set();
        by.set(e.node, s);
      }
      s.add(k);
    }
    this.byNode = by;
  }

  // ---- node reconciler -----------------------------------------------------------------------------------------

  private async reconcileNode(name: string): Promise<void> {
    const node = this.nodes.get(name);
    const cfg = this.nodeConfigs.get(name);
    const cfgPath = `${GROUP_PATH}/ipsecnodeconfigs/${name}`;
    const secretPath = `/api/v1/namespaces/${this.o.namespace}/secrets/${nodeSecretName(name)}`;
    if (!node) {
      // Node gone or no longer a gateway: its configuration and key material go too.
      if (cfg) await this.client.delete(cfgPath).catch(ignoreNotFound);
      if (this.appliedSecretHash.has(name) || cfg) {
        await this.client.delete(secretPath).catch(ignoreNotFound);
        this.appliedSecretHash.delete(name);
        this.appliedSecretData.delete(name);
        this.globalQ.add('rbac');
      }
      return;
    }
    const info: NodeInfo = {
      name,
      labels: node.metadata.labels ?? {},
      address: node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address,
      alive: this.alive.get(name) ?? false,
    };
    const entries: NodeTunnel[] = [];
    const data: Record<string, string> = {};
    for (const k of [...(this.byNode.get(name) ?? [])].sort()) {
      const acc = this.acceptance.get(k);
      const t = this.tunnels.get(splitKey(k).name, splitKey(k).namespace);
      if (!acc?.ok || !t || t.metadata.deletionTimestamp) continue;
      const ref = {
        namespace: t.metadata.namespace!,
        name: t.metadata.name,
        uid: t.metadata.uid ?? '',
        generation: t.metadata.generation ?? 0,
        spec: acc.spec,
      };
      const r = renderNodeTunnel(ref, info);
      if ('reason' in r) {
        if (this.nodeProblems.get(k)?.reason !== r.reason) this.tunnelQ.add(k);
        this.nodeProblems.set(k, r);
        continue;
      }
      if (this.nodeProblems.delete(k)) this.tunnelQ.add(k);
      // Copy the key material into the node Secret (values stay base64 as read; never logged).
      const a = acc.spec.auth;
      if (a.psk) {
        const s = await this.secret(ref.namespace, a.psk.secretRef.name);
        const v = s.data[a.psk.secretRef.key];
        if (v === undefined) continue;
        data[secretKeyFor(ref.namespace, ref.name, 'psk')] = v;
      } else if (a.certificate) {
        const s = await this.secret(ref.namespace, a.certificate.secretRef.name);
        const caRef = a.certificate.remoteCA?.secretRef;
        const ca = caRef ? (await this.secret(ref.namespace, caRef.name)).data[caRef.key] : s.data['ca.crt'];
        const crt = s.data['tls.crt'];
        const keyPem = s.data['tls.key'];
        if (crt === undefined || keyPem === undefined || ca === undefined) continue;
        data[secretKeyFor(ref.namespace, ref.name, 'tls.crt')] = crt;
        data[secretKeyFor(ref.namespace, ref.name, 'tls.key')] = keyPem;
        data[secretKeyFor(ref.namespace, ref.name, 'ca.crt')] = ca;
      }
      entries.push(r);
    }
    const nodeOwner = {
      apiVersion: 'v1',
      kind: 'Node',
      name,
      uid: node.metadata.uid ?? '',
    };
    const applySecret = async (d: Record<string, string>): Promise<void> => {
      const secretHash = canonical(d);
      if (this.appliedSecretHash.get(name) === secretHash) return;
      await this.client.apply(secretPath, {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: {
          name: nodeSecretName(name),
          namespace: this.o.namespace,
          labels: { 'app.kubernetes.io/managed-by': 'ipsec-mesh-operator', 'ipsecmesh.io/node': name },
        },
        data: d,
      });
      const isNew = !this.appliedSecretHash.has(name);
      this.appliedSecretHash.set(name, secretHash);
      this.appliedSecretData.set(name, d);
      if (isNew) this.globalQ.add('rbac');
    };
    // The agent reads its config and then its Secret: a key must be in the Secret before the config names it, and
    // stay there until the config no longer does. So: Secret with old and new keys, then config, then new keys only.
    const prev = this.appliedSecretData.get(name) ?? {};
    await applySecret({ ...prev, ...data });
    const spec: IPsecNodeConfigSpec = nodeConfigSpec(name, entries, this.o.namespace);
    const ownerOk = cfg?.metadata.ownerReferences?.some((r) => r.uid === nodeOwner.uid);
    if (!(cfg && ownerOk && canonical(cfg.spec) === canonical(spec)))
      await this.applyNodeConfig(cfgPath, name, nodeOwner, spec);
    await applySecret(data);
  }

  private async applyNodeConfig(
    cfgPath: string,
    name: string,
    nodeOwner: { apiVersion: string; kind: string; name: string; uid: string },
    spec: IPsecNodeConfigSpec,
  ): Promise<void> {
    await this.client.apply(cfgPath, {
      apiVersion: API_VERSION,
      kind: 'IPsecNodeConfig',
      metadata: {
        name,
        labels: { 'app.kubernetes.io/managed-by': 'ipsec-mesh-operator' },
        ownerReferences: [nodeOwner],
      },
      spec,
    });
  }

  // ---- rbac: the agents' view of node Secrets ------------------------------------------------------------------

  private async reconcileRbac(): Promise<void> {
    if (!this.o.agentSecretsRole) return;
    const names = [...this.appliedSecretHash.keys()].map(nodeSecretName).sort();
    const rules = names.length
      ? [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'], resourceNames: names }]
      : [];
    const sig = canonical(rules);
    if (sig === this.appliedRole) return;
    await this.client.apply(
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${this.o.namespace}/roles/${this.o.agentSecretsRole}`,
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: this.o.agentSecretsRole, namespace: this.o.namespace },
        rules,
      },
    );
    this.appliedRole = sig;
  }

  // ---- mesh reconciler -----------------------------------------------------------------------------------------

  private async reconcileMesh(k: string): Promise<void> {
    const { namespace, name } = splitKey(k);
    const m = this.meshes.get(name, namespace);
    if (!m) return;
    const path = `${GROUP_PATH}/namespaces/${namespace}/ipsecmeshes/${name}`;
    const owned = this.tunnels
      .list(namespace)
      .filter(
        (t) =>
          t.metadata.labels?.[MESH_LABEL] === name && t.metadata.ownerReferences?.some((r) => r.uid === m.metadata.uid),
      );
    const tunnelPath = (n: string) => `${GROUP_PATH}/namespaces/${namespace}/ipsectunnels/${n}`;
    if (m.metadata.deletionTimestamp) {
      for (const t of owned)
        if (!t.metadata.deletionTimestamp) await this.client.delete(tunnelPath(t.metadata.name)).catch(ignoreNotFound);
      if (owned.length === 0 && m.metadata.finalizers?.includes(FINALIZER)) await this.setFinalizer(path, m, false);
      return;
    }
    if (!m.metadata.finalizers?.includes(FINALIZER)) await this.setFinalizer(path, m, true);
    const generation = m.metadata.generation ?? 0;
    const parsed = parseMeshSpec(m.spec);
    let problem: Problem | undefined;
    let desired = 0;
    if (!parsed.ok) {
      problem = {
        reason: 'InvalidSpec',
        message: parsed.error.errors.map((e) => `${e.path}: ${e.message}`).join('; '),
      };
    } else if (!this.o.site) {
      problem = { reason: 'NoLocalSite', message: 'the operator was started without --site; meshes need it' };
    } else {
      const plan = meshTunnels(name, parsed.value, this.o.site);
      if (!plan.ok) problem = plan.problem;
      else {
        desired = plan.tunnels.length;
        const want = new Set(plan.tunnels.map((t) => t.name));
        for (const d of plan.tunnels) {
          const cur = this.tunnels.get(d.name, namespace);
          const manifest = tunnelManifest({ name, namespace, uid: m.metadata.uid ?? '' }, d);
          if (
            cur &&
            canonical(cur.spec) === canonical(d.spec) &&
            cur.metadata.labels?.[MESH_LABEL] === name &&
            cur.metadata.ownerReferences?.some((r) => r.uid === m.metadata.uid)
          ) {
            continue;
          }
          await this.client.apply(tunnelPath(d.name), manifest);
        }
        for (const t of owned)
          if (!want.has(t.metadata.name)) await this.client.delete(tunnelPath(t.metadata.name)).catch(ignoreNotFound);
      }
    }
    const ready = owned.filter((t) =>
      t.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    ).length;
    const prev = m.status;
    const now = new Date().toISOString();
    const readyCond = problem
      ? { type: 'Ready', status: 'False' as const, reason: problem.reason, message: problem.message }
      : ready === desired
        ? {
            type: 'Ready',
            status: 'True' as const,
            reason: 'AllTunnelsReady',
            message: `${ready}/${desired} tunnels ready`,
          }
        : {
            type: 'Ready',
            status: 'False' as const,
            reason: 'TunnelsNotReady',
            message: `${ready}/${desired} tunnels ready`,
          };
    const p = prev?.conditions?.find((c) => c.type === 'Ready');
    const status: IPsecMeshStatus = {
      observedGeneration: generation,
      conditions: [
        {
          ...readyCond,
          observedGeneration: generation,
          lastTransitionTime: p && p.status === readyCond.status ? p.lastTransitionTime : now,
        },
      ],
      ...(this.o.site ? { localSite: this.o.site } : {}),
      tunnels: owned.length,
      readyTunnels: ready,
    };
    if (prev && canonical(prev) === canonical(status)) return;
    await this.client.applyStatus(path, {
      apiVersion: API_VERSION,
      kind: 'IPsecMesh',
      metadata: { name, namespace },
      status,
    });
    if (problem && p?.reason !== problem.reason) {
      this.events.record(
        { ...m, apiVersion: API_VERSION, kind: 'IPsecMesh' },
        'Warning',
        problem.reason,
        problem.message,
      );
    }
  }

  /** For the bench and tests: current gateway of a tunnel. */
  gatewayOf(k: string): string | undefined {
    return this.election.get(k)?.node;
  }

  uptimeMs(): number {
    return Date.now() - this.startedAt;
  }
}

function ignoreNotFound(e: unknown): void {
  if (e instanceof KubeApiError && e.notFound) return;
  throw e;
}

export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
