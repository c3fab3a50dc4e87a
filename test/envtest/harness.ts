/**
 * A real control plane for tests: etcd + kube-apiserver on loopback with RBAC authorization, a service-account
 * signing key generated here, and a static admin token. Binaries come from scripts/build-k8s-tools.sh (cache outside
 * the repo; built on first use). Everything started is stopped and its temp dir removed in stop(), also when a
 * test fails or the process exits.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export function toolsDir(): string {
  if (process.env.IPSEC_MESH_K8S_BIN) return process.env.IPSEC_MESH_K8S_BIN;
  return join(process.env.IPSEC_MESH_CACHE ?? '/var/cache/ipsec-mesh', 'bin');
}

/** Make sure kube-apiserver, etcd, kubectl and helm exist; builds them (idempotent, slow the first time). */
export function ensureTools(): string {
  const dir = toolsDir();
  const need = ['kube-apiserver', 'etcd', 'kubectl', 'helm'];
  if (need.every((b) => existsSync(join(dir, b)))) return dir;
  if (process.env.IPSEC_MESH_K8S_BIN) {
    throw new Error(`IPSEC_MESH_K8S_BIN=${dir} lacks one of ${need.join(', ')}: run scripts/build-k8s-tools.sh`);
  }
  execFileSync('bash', [join(repoRoot, 'scripts/build-k8s-tools.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
  for (const b of need) if (!existsSync(join(dir, b))) throw new Error(`build-k8s-tools.sh did not produce ${b}`);
  return dir;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
/** Kill this child when the test process exits, whatever happens. */
export function track(p: ChildProcess): void {
  live.add(p);
  p.once('exit', () => live.delete(p));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

async function stopProcess(p: ChildProcess | undefined, ms = 10_000): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), ms);
  await done;
  clearTimeout(t);
}

export interface ControlPlaneOptions {
  /** Extra kube-apiserver flags. */
  apiserverArgs?: string[];
  /** Echo the control plane's output to stderr. */
  verbose?: boolean;
  /** Write an audit log (level Metadata) to auditLogPath: who did which verb on which resource. */
  audit?: boolean;
  /** Address the API server listens on and is reached at (default 127.0.0.1); its certificate names it. */
  address?: string;
}

/** The control plane died under a test (killed from outside, crashed): retrying cannot help. */
export class ControlPlaneGone extends Error {
  override name = 'ControlPlaneGone';
}

export interface HttpResult {
  status: number;
  body: string;
  json<T = unknown>(): T;
}

export class ControlPlane {
  readonly dir: string;
  readonly bin: string;
  etcdUrl = '';
  server = '';
  readonly adminToken = randomBytes(24).toString('hex');
  caData = '';
  private etcd?: ChildProcess;
  private apiserver?: ChildProcess;
  private logTail: string[] = [];

  constructor(private readonly opts: ControlPlaneOptions = {}) {
    this.bin = ensureTools();
    this.dir = mkdtempSync(join(tmpdir(), 'ipsec-mesh-envtest-'));
  }

  static async start(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const cp = new ControlPlane(opts);
    try {
      await cp.startProcesses();
    } catch (e) {
      const tail = cp.logTail.slice(-40).join('');
      await cp.stop();
      throw new Error(`control plane did not start: ${(e as Error).message}\n--- log tail ---\n${tail}`);
    }
    return cp;
  }

  private spawnLogged(cmd: string, args: string[], name: string): ChildProcess {
    const p = spawn(join(this.bin, cmd), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(p);
    const onData = (b: Buffer) => {
      this.logTail.push(`[${name}] ${b.toString()}`);
      if (this.logTail.length > 200) this.logTail.splice(0, 100);
      if (this.opts.verbose) process.stderr.write(`[${name}] ${b}`);
    };
    p.stdout?.on('data', onData);
    p.stderr?.on('data', onData);
    return p;
  }

  private async startProcesses(): Promise<void> {
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    this.etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    mkdirSync(join(this.dir, 'etcd'), { mode: 0o700 });
    this.etcd = this.spawnLogged(
      'etcd',
      [
        `--data-dir=${join(this.dir, 'etcd')}`,
        `--listen-client-urls=${this.etcdUrl}`,
        `--advertise-client-urls=${this.etcdUrl}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=default=${peer}`,
        '--unsafe-no-fsync',
        '--log-level=error',
        '--quota-backend-bytes=4294967296',
      ],
      'etcd',
    );
    await this.waitFor(async () => {
      const r = await fetch(`${this.etcdUrl}/health`).catch(() => undefined);
      return r?.status === 200;
    }, 'etcd health');

    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const saKey = join(this.dir, 'sa.key');
    const saPub = join(this.dir, 'sa.pub');
    writeFileSync(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(saPub, publicKey.export({ type: 'spki', format: 'pem' }));
    const tokens = join(this.dir, 'tokens.csv');
    writeFileSync(tokens, `${this.adminToken},envtest-admin,envtest-admin,"system:masters"\n`, { mode: 0o600 });
    const auditArgs: string[] = [];
    if (this.opts.audit) {
      const policy = join(this.dir, 'audit-policy.yaml');
      writeFileSync(
        policy,
        'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: Metadata\n',
      );
      auditArgs.push(
        `--audit-policy-file=${policy}`,
        `--audit-log-path=${this.auditLogPath}`,
        '--audit-log-mode=blocking',
      );
    }
    const certDir = join(this.dir, 'pki');
    mkdirSync(certDir);
    const address = this.opts.address ?? '127.0.0.1';
    this.server = `https://${address}:${apiPort}`;
    this.apiserver = this.spawnLogged(
      'kube-apiserver',
      [
        `--etcd-servers=${this.etcdUrl}`,
        `--secure-port=${apiPort}`,
        `--bind-address=${address}`,
        `--advertise-address=${address}`,
        `--cert-dir=${certDir}`,
        '--authorization-mode=RBAC',
        `--token-auth-file=${tokens}`,
        `--service-account-key-file=${saPub}`,
        `--service-account-signing-key-file=${saKey}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        '--api-audiences=https://kubernetes.default.svc.cluster.local',
        // Service IPs are only allocated, never routed: a benchmarking range, per DESIGN.md.
        '--service-cluster-ip-range=198.19.255.0/24',
        '--allow-privileged=true',
        '--disable-admission-plugins=ServiceAccount',
        '--endpoint-reconciler-type=none',
        '--v=0',
        ...auditArgs,
        ...(this.opts.apiserverArgs ?? []),
      ],
      'kube-apiserver',
    );
    this.apiserver.once('exit', (code) => this.logTail.push(`[kube-apiserver] exited with ${code}\n`));
    await this.waitFor(
      async () => {
        if (this.apiserver?.exitCode !== null) throw new Error('kube-apiserver exited');
        const r = await this.request('GET', '/readyz').catch(() => undefined);
        return r?.status === 200;
      },
      'kube-apiserver /readyz',
      120_000,
    );
    const crt = join(certDir, 'apiserver.crt');
    this.caData = readFileSync(crt).toString('base64');
    // RBAC bootstrap and the default namespace are created by post-start hooks; wait for the namespace.
    await this.waitFor(async () => (await this.request('GET', '/api/v1/namespaces/default')).status === 200, 'ns');
  }

  get auditLogPath(): string {
    return join(this.dir, 'audit.log');
  }

  /** Audit events (one JSON object per line) so far. */
  auditEvents(): Array<{
    verb: string;
    user: { username: string };
    objectRef?: { resource?: string; subresource?: string; apiGroup?: string; namespace?: string; name?: string };
    responseStatus?: { code?: number };
  }> {
    if (!existsSync(this.auditLogPath)) return [];
    return readFileSync(this.auditLogPath, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  }

  private async waitFor(fn: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await fn()) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  /** Raw HTTPS request as the given bearer token (admin by default). */
  request(method: string, path: string, body?: unknown, token = this.adminToken, contentType = 'application/json') {
    if (this.server && this.apiserver && this.apiserver.exitCode !== null && path !== '/readyz') {
      return Promise.reject(new ControlPlaneGone(`kube-apiserver exited unexpectedly (${this.apiserver.exitCode})`));
    }
    return new Promise<HttpResult>((resolve, reject) => {
      const u = new URL(this.server + path);
      const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
      const req = httpsRequest(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname + u.search,
          method,
          rejectUnauthorized: false,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(data ? { 'content-type': contentType, 'content-length': Buffer.byteLength(data) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            resolve({ status: res.statusCode ?? 0, body: text, json: <T>() => JSON.parse(text) as T });
          });
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  }

  /**
   * Stream a watch (admin): onEvent for every event until stop(). Starts from the current state (the API
   * server sends ADDED for existing objects when no resourceVersion is given).
   */
  watch(path: string, onEvent: (type: string, obj: Record<string, any>) => void): { stop(): void } {
    let stopped = false;
    let req: ReturnType<typeof httpsRequest> | undefined;
    let rv = '';
    const connect = () => {
      if (stopped) return;
      const u = new URL(
        `${this.server}${path}${path.includes('?') ? '&' : '?'}watch=true&allowWatchBookmarks=true${rv ? `&resourceVersion=${rv}` : ''}`,
      );
      let buf = '';
      const again = () => {
        if (!stopped) setTimeout(connect, 500);
      };
      req = httpsRequest(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname + u.search,
          rejectUnauthorized: false,
          headers: { authorization: `Bearer ${this.adminToken}`, accept: 'application/json' },
        },
        (res) => {
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buf += chunk;
            let i = buf.indexOf('\n');
            while (i >= 0) {
              const line = buf.slice(0, i);
              buf = buf.slice(i + 1);
              if (line) {
                const ev = JSON.parse(line) as { type?: string; object?: Record<string, any> };
                const objRv = ev.object?.metadata?.resourceVersion as string | undefined;
                if (ev.type === 'ERROR' || !ev.type)
                  rv = ''; // expired or not ready: start over
                else if (objRv) rv = objRv;
                if (ev.type && ev.type !== 'BOOKMARK' && ev.type !== 'ERROR' && ev.object?.metadata) {
                  onEvent(ev.type, ev.object);
                }
              }
              i = buf.indexOf('\n');
            }
          });
          res.on('end', again);
          res.on('error', () => undefined);
        },
      );
      req.on('error', again);
      req.end();
    };
    connect();
    return {
      stop: () => {
        stopped = true;
        req?.destroy();
      },
    };
  }

  /** A kubeconfig for the given token (admin by default), written under the temp dir. */
  writeKubeconfig(name = 'admin', token = this.adminToken): string {
    const file = join(this.dir, `${name}.kubeconfig`);
    writeFileSync(file, this.kubeconfigYaml(name, token), { mode: 0o600 });
    return file;
  }

  kubeconfigYaml(name = 'admin', token = this.adminToken): string {
    return stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'envtest', cluster: { server: this.server, 'certificate-authority-data': this.caData } }],
      users: [{ name, user: { token } }],
      contexts: [{ name, context: { cluster: 'envtest', user: name } }],
      'current-context': name,
    });
  }

  /** Ensure a namespace and ServiceAccount exist and return a token for it (TokenRequest API). */
  async serviceAccountToken(namespace: string, name: string, expirationSeconds = 3600): Promise<string> {
    await this.ensure(`/api/v1/namespaces`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    await this.ensure(`/api/v1/namespaces/${namespace}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name, namespace },
    });
    const r = await this.request('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: ['https://kubernetes.default.svc.cluster.local'], expirationSeconds },
    });
    if (r.status !== 201) throw new Error(`TokenRequest ${namespace}/${name}: ${r.status} ${r.body}`);
    return r.json<{ status: { token: string } }>().status.token;
  }

  /** POST unless it exists already. */
  async ensure(collectionPath: string, obj: unknown): Promise<void> {
    const r = await this.request('POST', collectionPath, obj);
    if (r.status !== 201 && r.status !== 409) throw new Error(`create ${collectionPath}: ${r.status} ${r.body}`);
  }

  /** Run the built kubectl against this control plane (admin unless a kubeconfig is given). */
  kubectl(args: string[], opts: { kubeconfig?: string; input?: string } = {}): string {
    const kc = opts.kubeconfig ?? this.writeKubeconfig();
    return execFileSync(join(this.bin, 'kubectl'), ['--kubeconfig', kc, ...args], {
      input: opts.input,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }

  async stop(): Promise<void> {
    await stopProcess(this.apiserver);
    await stopProcess(this.etcd);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Run the built helm. */
export function helm(args: string[], opts: { input?: string } = {}): string {
  return execFileSync(join(ensureTools(), 'helm'), args, {
    input: opts.input,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, HELM_CACHE_HOME: join(tmpdir(), 'ipsec-mesh-helm-cache') },
  });
}
