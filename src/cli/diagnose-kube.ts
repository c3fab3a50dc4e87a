/**
 * `ipsec-mesh diagnose --kubeconfig FILE --tunnel NS/NAME`: gathers the facts for one tunnel from the API server(s)
 * (the IPsecTunnel, the gateway's IPsecNodeConfig entry and status, the PSK/certificate Secret as a digest or a
 * validity, the agent's heartbeat Lease, the server's clock) and, with --peer-kubeconfig, the same for the peer's
 * tunnel in the other cluster. The report itself is src/cli/diagnose-report.ts. No key material leaves this file:
 * a PSK becomes a digest at once, a certificate its validity.
 */
import { X509Certificate } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import type { TunnelView } from '../agent/status.js';
import { GROUP, VERSION } from '../api/common.js';
import type { IPsecMeshSpec } from '../api/mesh.js';
import type { NodeTunnel, NodeTunnelStatus } from '../api/nodeconfig.js';
import type { IPsecTunnelSpec } from '../api/tunnel.js';
import { agentLeaseName } from '../operator/controller.js';
import { MESH_LABEL, SITE_LABEL } from '../operator/plan.js';
import {
  type DiagnoseInputs,
  type KubeFacts,
  meshPeerSide,
  meshSpecDiff,
  type SideConfig,
  tunnelViewFromStatus,
} from './diagnose-report.js';

const API = `/apis/${GROUP}/${VERSION}`;

export interface KubeDiagnoseArgs {
  kubeconfig: string;
  context?: string;
  tunnel?: string;
  peerKubeconfig?: string;
  peerContext?: string;
  peerTunnel?: string;
  namespace: string;
  probe: boolean;
  probeTimeoutMs: number;
}

/** A failed API call, with what it means for the user (typed, never a stack trace in the report). */
export class KubeReadError extends Error {
  readonly code = 'ERR_DIAGNOSE_KUBE';
  constructor(
    message: string,
    readonly status: number,
    readonly fix: string,
  ) {
    super(message);
  }
}

interface Obj<S = Record<string, unknown>, T = Record<string, unknown>> {
  metadata: {
    name: string;
    namespace?: string;
    generation?: number;
    labels?: Record<string, string>;
    uid?: string;
  };
  spec?: S;
  status?: T;
  data?: Record<string, string>;
}

type TunnelObj = Obj<
  IPsecTunnelSpec,
  { gateway?: string; conditions?: NonNullable<KubeFacts['conditions']>; observedGeneration?: number }
>;
type NodeConfigObj = Obj<{ secretNamespace?: string; tunnels?: NodeTunnel[] }, { tunnels?: NodeTunnelStatus[] }>;

/** A small read-only client: GETs with the kubeconfig's credentials, the server's Date header kept. */
export class KubeReader {
  serverTime?: Date;
  readonly server: string;

  private constructor(
    private readonly kc: KubeConfig,
    readonly what: string,
  ) {
    this.server = kc.getCurrentCluster()?.server ?? '';
  }

  private get label(): string {
    return this.what === 'peer' ? "the peer cluster's" : "this cluster's";
  }

  static load(file: string, context: string | undefined, what: string): KubeReader {
    const kc = new KubeConfig();
    try {
      kc.loadFromFile(file);
    } catch (e) {
      throw new KubeReadError(
        `cannot load ${what === 'peer' ? 'the peer' : 'the'} kubeconfig ${file}: ${e instanceof Error ? e.message.split('\n')[0] : e}`,
        0,
        'give a readable kubeconfig file',
      );
    }
    if (context) {
      if (!kc.getContexts().some((c) => c.name === context))
        throw new KubeReadError(
          `${what === 'peer' ? 'the peer' : 'the'} kubeconfig ${file} has no context ${context}`,
          0,
          `use one of: ${kc
            .getContexts()
            .map((c) => c.name)
            .join(', ')}`,
        );
      kc.setCurrentContext(context);
    }
    if (!kc.getCurrentCluster()?.server)
      throw new KubeReadError(
        `${what === 'peer' ? 'the peer' : 'the'} kubeconfig ${file} names no cluster server`,
        0,
        'fix the kubeconfig',
      );
    return new KubeReader(kc, what);
  }

  /** GET path; 404 -> undefined; anything else non-2xx -> KubeReadError naming the resource. */
  async get<T>(path: string, resource: string): Promise<T | undefined> {
    const url = new URL(this.server);
    const opts: RequestOptions = {
      host: url.hostname,
      port: url.port || (url.protocol === 'http:' ? 80 : 443),
      path: `${url.pathname.replace(/\/$/, '')}${path}`,
      method: 'GET',
      headers: { accept: 'application/json' },
    };
    await this.kc.applyToHTTPSOptions(opts);
    const doRequest = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const { status, body, date } = await new Promise<{ status: number; body: string; date?: string }>(
      (resolve, reject) => {
        const req = doRequest(opts, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              ...(res.headers.date ? { date: res.headers.date } : {}),
            }),
          );
        });
        req.on('error', reject);
        req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
        req.end();
      },
    ).catch((e: NodeJS.ErrnoException) => {
      throw new KubeReadError(
        `cannot reach ${this.label} API server ${this.server}: ${e.code ?? e.message}`,
        0,
        `check the kubeconfig (--${this.what === 'peer' ? 'peer-' : ''}kubeconfig/--${this.what === 'peer' ? 'peer-' : ''}context), that the API server runs and that this machine can reach it`,
      );
    });
    if (date) this.serverTime = new Date(date);
    if (status >= 200 && status < 300) return JSON.parse(body) as T;
    if (status === 404) return undefined;
    let reason = '';
    try {
      reason = (JSON.parse(body) as { message?: string }).message ?? '';
    } catch {
      // not a Status object
    }
    if (status === 401)
      throw new KubeReadError(
        `${this.label} API server rejected the credentials (401)`,
        401,
        'renew the token or certificate in the kubeconfig',
      );
    if (status === 403)
      throw new KubeReadError(
        `Forbidden: cannot read ${resource} in ${this.what === 'peer' ? 'the peer cluster' : 'this cluster'}${reason ? ` (${reason.slice(0, 300)})` : ''}`,
        403,
        `grant get on ${resource} to the kubeconfig's user (e.g. a ClusterRole with ipsecmesh.io resources, leases and secrets)`,
      );
    throw new KubeReadError(
      `reading ${resource} from ${this.label} API server: ${status} ${reason.slice(0, 300)}`,
      status,
      'retry; if it persists check the API server',
    );
  }
}

const splitKey = (key: string): { namespace: string; name: string } | undefined => {
  const m = /^([^/]+)\/([^/]+)$/.exec(key);
  return m ? { namespace: m[1]!, name: m[2]! } : undefined;
};

const decode = (v: string | undefined) => (v === undefined ? undefined : Buffer.from(v, 'base64'));

/** Everything diagnose learns about one side's tunnel in one cluster. */
export interface KubeSide {
  tunnel: TunnelObj;
  key: string;
  facts: KubeFacts;
  config: SideConfig;
  live?: TunnelView;
  liveError?: string;
  /** Rendered local address (spec.local.address, else the gateway's IPsecNodeConfig entry). */
  localAddress?: string;
}

export async function readSide(
  r: KubeReader,
  tunnel: TunnelObj,
  operatorNamespace: string,
  digest: (psk: Uint8Array) => string,
): Promise<KubeSide> {
  const ns = tunnel.metadata.namespace ?? 'default';
  const key = `${ns}/${tunnel.metadata.name}`;
  const spec = tunnel.spec!;
  const facts: KubeFacts = { conditions: tunnel.status?.conditions ?? [] };
  const gateway = tunnel.status?.gateway;
  if (gateway) facts.gateway = gateway;
  let entry: NodeTunnel | undefined;
  let st: NodeTunnelStatus | undefined;
  let liveError: string | undefined;
  let leaseNs = operatorNamespace;
  if (gateway) {
    try {
      const nc = await r.get<NodeConfigObj>(`${API}/ipsecnodeconfigs/${gateway}`, `ipsecnodeconfigs/${gateway}`);
      if (!nc) liveError = `the gateway ${gateway} has no IPsecNodeConfig`;
      else {
        if (nc.spec?.secretNamespace) leaseNs = nc.spec.secretNamespace;
        entry = nc.spec?.tunnels?.find((t) => t.namespace === ns && t.name === tunnel.metadata.name);
        st = nc.status?.tunnels?.find((t) => t.namespace === ns && t.name === tunnel.metadata.name);
        facts.applied = {
          ...(entry ? { rendered: entry.generation } : {}),
          ...(st?.generation !== undefined ? { applied: st.generation } : {}),
        };
        if (!st) liveError = `the agent on ${gateway} reports nothing for ${key} yet`;
      }
    } catch (e) {
      liveError = e instanceof Error ? e.message : String(e);
    }
    const lease = agentLeaseName(gateway);
    try {
      const l = await r.get<Obj<{ renewTime?: string; leaseDurationSeconds?: number }>>(
        `/apis/coordination.k8s.io/v1/namespaces/${leaseNs}/leases/${lease}`,
        `leases/${lease} in ${leaseNs}`,
      );
      facts.heartbeat = l
        ? {
            lease: `${leaseNs}/${lease}`,
            ...(l.spec?.renewTime ? { renewTime: l.spec.renewTime } : {}),
            ...(l.spec?.leaseDurationSeconds !== undefined ? { durationSeconds: l.spec.leaseDurationSeconds } : {}),
          }
        : { lease: `${leaseNs}/${lease}`, error: 'not found: the agent has never sent a heartbeat' };
    } catch (e) {
      facts.heartbeat = { lease: `${leaseNs}/${lease}`, error: e instanceof Error ? e.message : String(e) };
    }
  } else liveError = 'no gateway elected yet';
  const localAddress = spec.local.address ?? entry?.local.address;
  const config: SideConfig = {
    key,
    localAddress: localAddress ?? '(no gateway yet)',
    remoteAddress: spec.remote.address,
    localSubnets: spec.local.subnets,
    remoteSubnets: spec.remote.subnets,
    localId: spec.local.id ?? localAddress ?? '(no gateway yet)',
    remoteId: spec.remote.id ?? spec.remote.address,
    ikeProposals: spec.ike.proposals,
    espProposals: spec.esp.proposals,
    auth: spec.auth.certificate ? 'certificate' : 'psk',
  };
  const ref = spec.auth.psk?.secretRef ?? spec.auth.certificate?.secretRef;
  if (ref) {
    try {
      const s = await r.get<Obj>(`/api/v1/namespaces/${ns}/secrets/${ref.name}`, `secrets/${ref.name} in ${ns}`);
      if (!s) facts.secretProblem = `Secret ${ns}/${ref.name} not found`;
      else if (spec.auth.psk) {
        const psk = decode(s.data?.[spec.auth.psk.secretRef.key]);
        if (psk) config.pskDigest = digest(psk);
        else facts.secretProblem = `Secret ${ns}/${ref.name} has no key ${spec.auth.psk.secretRef.key}`;
      } else {
        const pem = decode(s.data?.['tls.crt']);
        if (pem) {
          try {
            const x = new X509Certificate(pem);
            config.certValidity = {
              notBefore: new Date(x.validFrom).toISOString(),
              notAfter: new Date(x.validTo).toISOString(),
              subject: x.subject.replace(/\n/g, ', '),
            };
          } catch {
            facts.secretProblem = `Secret ${ns}/${ref.name}: tls.crt is not a certificate`;
          }
        }
      }
    } catch (e) {
      facts.secretProblem = `${e instanceof Error ? e.message : String(e)} (key not compared)`;
    }
  }
  const side: KubeSide = { tunnel, key, facts, config };
  if (localAddress) side.localAddress = localAddress;
  if (st) side.live = tunnelViewFromStatus(entry, st);
  if (liveError) side.liveError = liveError;
  return side;
}

const sameSet = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && [...a].sort().every((v, k) => v === [...b].sort()[k]);

/** Our local port, when the agent reports its IKE endpoint (address:port). */
const localPort = (s: KubeSide): number | undefined => {
  const m = /:(\d+)$/.exec(s.live?.ikeSA.local ?? '');
  return m ? Number(m[1]) : undefined;
};

async function renderedLocal(r: KubeReader, t: TunnelObj): Promise<string | undefined> {
  if (t.spec?.local.address) return t.spec.local.address;
  const gw = t.status?.gateway;
  if (!gw) return undefined;
  const nc = await r
    .get<NodeConfigObj>(`${API}/ipsecnodeconfigs/${gw}`, `ipsecnodeconfigs/${gw}`)
    .catch(() => undefined);
  return nc?.spec?.tunnels?.find((x) => x.namespace === t.metadata.namespace && x.name === t.metadata.name)?.local
    .address;
}

/** The tunnel in `r`'s cluster that is the other end of `ours` (mesh label, else addresses and ports). */
async function findPeerTunnel(
  r: KubeReader,
  ours: KubeSide,
  ourSite: string | undefined,
  exclude?: string,
): Promise<TunnelObj | undefined> {
  const list =
    (await r.get<{ items: TunnelObj[] }>(`${API}/ipsectunnels`, 'ipsectunnels (all namespaces)'))?.items ?? [];
  const candidates = list.filter((t) => `${t.metadata.namespace}/${t.metadata.name}` !== exclude && t.spec);
  const mesh = ours.tunnel.metadata.labels?.[MESH_LABEL];
  if (mesh) {
    const same = candidates.filter((t) => t.metadata.labels?.[MESH_LABEL] === mesh);
    const bySite = ourSite ? same.find((t) => t.metadata.labels?.[SITE_LABEL] === ourSite) : undefined;
    const found = bySite ?? same.find((t) => sameSet(t.spec!.remote.subnets, ours.config.localSubnets));
    if (found) return found;
  }
  const port = localPort(ours);
  const matching: TunnelObj[] = [];
  for (const t of candidates) {
    if (t.spec!.remote.address !== ours.config.localAddress) continue;
    if (port !== undefined && t.spec!.remote.port !== port) continue;
    if ((await renderedLocal(r, t)) !== ours.config.remoteAddress) continue;
    matching.push(t);
  }
  // Several on one address (e.g. one gateway for many tunnels): the one whose subnets mirror ours.
  return (
    matching.find(
      (t) =>
        sameSet(t.spec!.remote.subnets, ours.config.localSubnets) &&
        sameSet(t.spec!.local.subnets, ours.config.remoteSubnets),
    ) ?? (matching.length === 1 ? matching[0] : undefined)
  );
}

type MeshObj = Obj<IPsecMeshSpec>;

export async function gatherKube(
  a: KubeDiagnoseArgs,
  now: Date,
  tools: {
    digest: (psk: Uint8Array) => string;
    probe?: (address: string, port: number, proposals: string[]) => Promise<DiagnoseInputs['probes']>;
  },
): Promise<DiagnoseInputs> {
  const inputs: DiagnoseInputs = { tunnel: a.tunnel ?? '?', now, kube: {} };
  const fail = (e: unknown): DiagnoseInputs => {
    inputs.kube = {
      problem:
        e instanceof KubeReadError
          ? { status: 'fail', detail: e.message, fix: e.fix }
          : { status: 'fail', detail: e instanceof Error ? e.message : String(e), fix: 'see the message' },
    };
    return inputs;
  };
  const key = a.tunnel ? splitKey(a.tunnel) : undefined;
  if (!key) {
    inputs.kube = {
      problem: {
        status: 'fail',
        detail: `give the tunnel as --tunnel NAMESPACE/NAME${a.tunnel ? `, not '${a.tunnel}'` : ''}`,
        fix: 'kubectl get ipsectunnels -A lists them',
      },
    };
    return inputs;
  }
  let r: KubeReader;
  let side: KubeSide;
  try {
    r = KubeReader.load(a.kubeconfig, a.context, 'this');
    const t = await r.get<TunnelObj>(
      `${API}/namespaces/${key.namespace}/ipsectunnels/${key.name}`,
      `ipsectunnels/${key.name} in ${key.namespace}`,
    );
    if (!t) {
      inputs.kube = {
        problem: {
          status: 'fail',
          detail: `IPsecTunnel ${a.tunnel} not found in ${r.server}`,
          fix: 'check the namespace and name (kubectl get ipsectunnels -A), and --kubeconfig/--context',
        },
      };
      return inputs;
    }
    side = await readSide(r, t, a.namespace, tools.digest);
  } catch (e) {
    return fail(e);
  }
  inputs.kube = side.facts;
  if (r.serverTime) inputs.kube.serverTime = r.serverTime;
  inputs.config = side.config;
  if (side.live) inputs.live = side.live;
  if (side.liveError) inputs.liveError = side.liveError;

  // The peer side.
  const mesh = side.tunnel.metadata.labels?.[MESH_LABEL];
  const peerSite = side.tunnel.metadata.labels?.[SITE_LABEL];
  let ourMesh: MeshObj | undefined;
  let ourSite: string | undefined;
  if (mesh) {
    try {
      ourMesh = await r.get<MeshObj>(
        `${API}/namespaces/${key.namespace}/ipsecmeshes/${mesh}`,
        `ipsecmeshes/${mesh} in ${key.namespace}`,
      );
    } catch (e) {
      inputs.peerMissing = e instanceof Error ? e.message : String(e);
    }
    if (ourMesh?.spec && peerSite) {
      const d = meshPeerSide(mesh, ourMesh.spec, peerSite, side.config);
      if ('error' in d) inputs.peerMissing = d.error;
      else {
        ourSite = d.ourSite;
        if (!a.peerKubeconfig) {
          inputs.peer = d.side;
          inputs.peerNote = `peer side derived from IPsecMesh ${mesh} (site ${peerSite}) in this cluster`;
        }
      }
    }
  }
  try {
    if (a.peerKubeconfig) {
      const pr = KubeReader.load(a.peerKubeconfig, a.peerContext, 'peer');
      let pt: TunnelObj | undefined;
      if (a.peerTunnel) {
        const pk = splitKey(a.peerTunnel);
        if (!pk) throw new KubeReadError(`--peer-tunnel must be NAMESPACE/NAME, not '${a.peerTunnel}'`, 0, '');
        pt = await pr.get<TunnelObj>(
          `${API}/namespaces/${pk.namespace}/ipsectunnels/${pk.name}`,
          `ipsectunnels/${pk.name} in ${pk.namespace}`,
        );
        if (!pt) inputs.peerMissing = `IPsecTunnel ${a.peerTunnel} not found in the peer cluster ${pr.server}`;
      } else {
        pt = await findPeerTunnel(pr, side, ourSite);
        if (!pt)
          inputs.peerMissing = `no IPsecTunnel in the peer cluster ${pr.server} points back at ${side.config.localAddress} with mirrored subnets; give --peer-tunnel NS/NAME`;
      }
      if (pt) {
        const ps = await readSide(pr, pt, a.namespace, tools.digest);
        inputs.peer = ps.config;
        inputs.peerNote = `peer ${ps.key} in ${pr.server}`;
        if (ps.live) inputs.peerLive = ps.live;
        if (ps.facts.secretProblem) inputs.peerNote += `; ${ps.facts.secretProblem}`;
        const pmesh = pt.metadata.labels?.[MESH_LABEL];
        if (mesh && pmesh === mesh && ourMesh?.spec) {
          const theirs = await pr.get<MeshObj>(
            `${API}/namespaces/${pt.metadata.namespace}/ipsecmeshes/${mesh}`,
            `ipsecmeshes/${mesh} in ${pt.metadata.namespace}`,
          );
          inputs.meshDiff = {
            mesh,
            differences: theirs?.spec ? meshSpecDiff(ourMesh.spec, theirs.spec) : ['missing in the peer cluster'],
          };
        }
      }
    } else if (!mesh) {
      // Both ends managed by this cluster?
      const pt = await findPeerTunnel(r, side, undefined, side.key);
      if (pt) {
        const ps = await readSide(r, pt, a.namespace, tools.digest);
        inputs.peer = ps.config;
        inputs.peerNote = `peer ${ps.key} in this cluster`;
        if (ps.live) inputs.peerLive = ps.live;
      } else
        inputs.peerMissing =
          'the peer is not in this cluster; give --peer-kubeconfig FILE (and --peer-tunnel NS/NAME) to compare both sides';
    }
  } catch (e) {
    inputs.peerMissing = e instanceof KubeReadError ? `${e.message}${e.fix ? `; ${e.fix}` : ''}` : String(e);
  }
  if (a.probe && tools.probe) {
    inputs.kube.probesFromHere = true;
    const p = await tools.probe(side.config.remoteAddress, side.tunnel.spec!.remote.port, side.config.ikeProposals);
    if (p) inputs.probes = p;
  }
  inputs.tunnel = side.key;
  return inputs;
}
