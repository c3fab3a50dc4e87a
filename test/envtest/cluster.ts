/**
 * Fixture for the operator integration tests and the bench: a control plane with the chart's CRDs and RBAC
 * installed from `helm template` output, gateway Node objects, operator processes running with the operator
 * ServiceAccount's token, and fake agents acting with the agent ServiceAccount's token.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ControlPlane, ControlPlaneGone, type ControlPlaneOptions, freePort, helm, track } from './harness.js';

export const NS = 'ipsec-mesh-system';
export const RELEASE = 'ipsec-mesh';
export const OPERATOR_SA = 'ipsec-mesh-operator';
export const AGENT_SA = 'ipsec-mesh-agent';
export const AGENT_ROLE = 'ipsec-mesh-agent-secrets';
export const LEASE = 'ipsec-mesh-operator';
export const GROUP_PATH = '/apis/ipsecmesh.io/v1alpha1';
const chartDir = fileURLToPath(new URL('../../charts/ipsec-mesh', import.meta.url));
const runOperatorTs = fileURLToPath(new URL('./run-operator.ts', import.meta.url));

export function renderChart(extra: string[] = []): string {
  return helm(['template', RELEASE, chartDir, '--namespace', NS, '--include-crds', '--set', 'site=a', ...extra]);
}

export class Cluster {
  operatorToken = '';
  agentToken = '';
  operatorKubeconfig = '';
  private readonly operators = new Set<OperatorProcess>();

  private constructor(readonly cp: ControlPlane) {}

  static async start(opts: ControlPlaneOptions = {}): Promise<Cluster> {
    const cp = await ControlPlane.start(opts);
    const c = new Cluster(cp);
    try {
      await c.install();
    } catch (e) {
      await cp.stop();
      throw e;
    }
    return c;
  }

  private async install(): Promise<void> {
    const cp = this.cp;
    await cp.ensure('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    cp.kubectl(['apply', '--server-side', '-f', '-'], { input: renderChart() });
    cp.kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
    this.operatorToken = await cp.serviceAccountToken(NS, OPERATOR_SA, 7200);
    this.agentToken = await cp.serviceAccountToken(NS, AGENT_SA, 7200);
    this.operatorKubeconfig = cp.writeKubeconfig('operator', this.operatorToken);
  }

  async addNode(name: string, labels: Record<string, string>, address: string): Promise<void> {
    const r = await this.cp.request('POST', '/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels },
      status: { addresses: [{ type: 'InternalIP', address }] },
    });
    if (r.status !== 201) throw new Error(`create node ${name}: ${r.status} ${r.body}`);
  }

  async startOperator(extra: string[] = [], identity = `op-${Math.random().toString(36).slice(2, 8)}`) {
    const port = await freePort();
    // A prebuilt bundle when the test passed one (inside UML compiling through tsx costs tens of seconds).
    const entry = process.env.IPSEC_MESH_OPERATOR_BUNDLE;
    const args = [
      ...(entry ? [entry] : ['--import', 'tsx', runOperatorTs]),
      '--kubeconfig',
      this.operatorKubeconfig,
      '--namespace',
      NS,
      '--site',
      'a',
      '--gateway-selector',
      'ipsecmesh.io/gateway=true',
      '--agent-secrets-role',
      AGENT_ROLE,
      '--lease-name',
      LEASE,
      '--identity',
      identity,
      '--metrics-addr',
      `127.0.0.1:${port}`,
      ...extra,
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    const op = new OperatorProcess(child, identity, port);
    this.operators.add(op);
    child.once('exit', () => this.operators.delete(op));
    return op;
  }

  /**
   * A fake agent for `node` with a token bound to an agent Pod on that node, as the kubelet would issue it: the
   * token carries the node name, which the chart's ValidatingAdmissionPolicy checks.
   */
  async agent(node: string): Promise<FakeAgent> {
    const name = `agent-${node}`;
    const podPath = `/api/v1/namespaces/${NS}/pods`;
    const r = await this.cp.request('POST', podPath, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: { 'app.kubernetes.io/component': 'agent' } },
      spec: { nodeName: node, serviceAccountName: AGENT_SA, containers: [{ name: 'agent', image: 'ipsec-mesh:test' }] },
    });
    if (r.status !== 201 && r.status !== 409) throw new Error(`create pod ${name}: ${r.status} ${r.body}`);
    const pod = (await this.cp.request('GET', `${podPath}/${name}`)).json<{ metadata: { uid: string } }>();
    const t = await this.cp.request('POST', `/api/v1/namespaces/${NS}/serviceaccounts/${AGENT_SA}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: ['https://kubernetes.default.svc.cluster.local'],
        expirationSeconds: 7200,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid: pod.metadata.uid },
      },
    });
    if (t.status !== 201) throw new Error(`TokenRequest for ${name}: ${t.status} ${t.body}`);
    return new FakeAgent(this.cp, t.json<{ status: { token: string } }>().status.token, node);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.operators].map((o) => o.kill('SIGKILL')));
    await this.cp.stop();
  }
}

export class OperatorProcess {
  readonly log: string[] = [];
  constructor(
    readonly child: ChildProcess,
    readonly identity: string,
    readonly metricsPort: number,
  ) {
    const onData = (b: Buffer) => {
      this.log.push(b.toString());
      if (this.log.length > 2000) this.log.splice(0, 1000);
      if (process.env.IPSEC_MESH_TEST_VERBOSE) process.stderr.write(`[${identity}] ${b}`);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  async metrics(): Promise<string> {
    const r = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`);
    return r.text();
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const c = this.child;
    if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
      setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
    });
  }
}

export interface AgentTunnelState {
  namespace: string;
  name: string;
  generation?: number;
  ikeSA?: Record<string, unknown>;
  childSAs?: Array<Record<string, unknown>>;
  error?: { reason: string; message: string };
  espBlocked?: { since: string; message: string };
}

/** Plays a node agent with the agent ServiceAccount token: heartbeats and SA state in its node's config status. */
export class FakeAgent {
  private timer?: NodeJS.Timeout;
  tunnels: AgentTunnelState[] = [];
  lastError = '';

  constructor(
    private readonly cp: ControlPlane,
    readonly token: string,
    readonly node: string,
  ) {}

  get path(): string {
    return `${GROUP_PATH}/ipsecnodeconfigs/${this.node}`;
  }

  async config(): Promise<
    | { spec: { tunnels: Array<{ namespace: string; name: string; generation: number }> } & Record<string, unknown> }
    | undefined
  > {
    const r = await this.cp.request('GET', this.path, undefined, this.token);
    return r.status === 200 ? r.json() : undefined;
  }

  get leasePath(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/ipsec-mesh-agent-${this.node}`;
  }

  /** Renew the heartbeat Lease; report SA state into the node config status when it changed. */
  async heartbeat(): Promise<number> {
    const now = new Date().toISOString().replace('Z', '000Z');
    const r = await this.cp.request(
      'PATCH',
      `${this.leasePath}?fieldManager=ipsec-mesh-agent&force=true`,
      {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: {
          name: `ipsec-mesh-agent-${this.node}`,
          namespace: NS,
          labels: { 'ipsecmesh.io/agent-node': this.node },
        },
        spec: { holderIdentity: this.node, leaseDurationSeconds: 30, renewTime: now },
      },
      this.token,
      'application/apply-patch+yaml',
    );
    if (r.status !== 200 && r.status !== 201) {
      this.lastError = `${r.status} ${r.body}`;
      return r.status;
    }
    const state = JSON.stringify(this.tunnels);
    if (state !== this.reported) {
      const s = await this.report();
      if (s !== 200) return s;
      this.reported = state;
    }
    return 200;
  }

  private reported = '[]';

  async report(): Promise<number> {
    const r = await this.cp.request(
      'PATCH',
      `${this.path}/status?fieldManager=ipsec-mesh-agent&force=true`,
      {
        apiVersion: 'ipsecmesh.io/v1alpha1',
        kind: 'IPsecNodeConfig',
        metadata: { name: this.node },
        status: { agent: { version: 'fake' }, tunnels: this.tunnels },
      },
      this.token,
      'application/apply-patch+yaml',
    );
    if (r.status !== 200) this.lastError = `${r.status} ${r.body}`;
    return r.status;
  }

  /** Heartbeat every intervalMs (once the operator has created the node config). */
  start(intervalMs = 500): void {
    const tick = async () => {
      await this.heartbeat().catch((e: unknown) => {
        this.lastError = String(e);
      });
      this.timer = setTimeout(tick, intervalMs);
    };
    void tick();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export async function eventually<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  ms = 30_000,
  every = 200,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      if (e instanceof ControlPlaneGone) throw e;
      last = e;
    }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
