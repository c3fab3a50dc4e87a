/**
 * Pure planning: snapshots in, decisions out. No I/O, no clocks (time is a parameter), no randomness.
 * - acceptTunnel: spec validity and secret resolution -> Accepted or a problem (reason + message)
 * - findOverlaps: tunnels whose local AND remote subnets overlap an older tunnel's (ambiguous kernel policies)
 * - electGateways: sticky, least-loaded gateway election among live nodes matching each tunnel's nodeSelector
 * - renderNodeTunnel / nodeConfigSpec: the IPsecNodeConfig entry an agent needs
 * - tunnelStatus: aggregated status and conditions (observedGeneration, preserved transition times)
 * - meshTunnels: the IPsecTunnels an IPsecMesh implies for the local site
 */
import {
  API_VERSION,
  type ChildSaStatus,
  type Condition,
  cidrRange,
  type IPsecMeshSpec,
  type IPsecNodeConfigSpec,
  type IPsecTunnelSpec,
  type IPsecTunnelStatus,
  type NodeTunnel,
  type NodeTunnelStatus,
  parseTunnelSpec,
} from '../api/index.js';

export const FINALIZER = 'ipsecmesh.io/teardown';
export const MESH_LABEL = 'ipsecmesh.io/mesh';
export const SITE_LABEL = 'ipsecmesh.io/remote-site';

export interface Problem {
  reason: string;
  message: string;
}

// ---- acceptance ----------------------------------------------------------------------------------------------

export type SecretLookup = (namespace: string, name: string) => { exists: boolean; keys: string[] } | undefined;

export type Acceptance = { ok: true; spec: IPsecTunnelSpec } | { ok: false; problem: Problem };

/** Validate a tunnel's spec (in case admission was bypassed or an older CRD is installed) and its Secret refs. */
export function acceptTunnel(namespace: string, rawSpec: unknown, secrets: SecretLookup): Acceptance {
  const parsed = parseTunnelSpec(rawSpec);
  if (!parsed.ok) {
    return {
      ok: false,
      problem: { reason: 'InvalidSpec', message: parsed.error.errors.map((e) => `${e.path}: ${e.message}`).join('; ') },
    };
  }
  const spec = parsed.value;
  const refs: Array<{ name: string; key: string; what: string }> = [];
  if (spec.auth.psk) refs.push({ ...spec.auth.psk.secretRef, what: 'pre-shared key' });
  if (spec.auth.certificate) {
    refs.push({ name: spec.auth.certificate.secretRef.name, key: 'tls.crt', what: 'certificate' });
    refs.push({ name: spec.auth.certificate.secretRef.name, key: 'tls.key', what: 'private key' });
    const ca = spec.auth.certificate.remoteCA?.secretRef;
    refs.push(
      ca
        ? { ...ca, what: 'remote CA' }
        : { name: spec.auth.certificate.secretRef.name, key: 'ca.crt', what: 'remote CA' },
    );
  }
  for (const ref of refs) {
    const s = secrets(namespace, ref.name);
    if (s === undefined)
      return { ok: false, problem: { reason: 'SecretPending', message: `reading Secret ${ref.name}` } };
    if (!s.exists) {
      return {
        ok: false,
        problem: { reason: 'SecretNotFound', message: `Secret ${namespace}/${ref.name} (${ref.what}) not found` },
      };
    }
    if (!s.keys.includes(ref.key)) {
      return {
        ok: false,
        problem: {
          reason: 'SecretKeyNotFound',
          message: `Secret ${namespace}/${ref.name} has no key "${ref.key}" (${ref.what})`,
        },
      };
    }
  }
  return { ok: true, spec };
}

// ---- overlaps ------------------------------------------------------------------------------------------------

export interface OverlapInput {
  key: string;
  /** Sort order: the older tunnel keeps its selectors (creationTimestamp, then key). */
  order: string;
  local: string[];
  remote: string[];
}

/**
 * Tunnels whose local and remote subnets both overlap those of an older tunnel: two tunnels would install
 * ambiguous XFRM policies. Returns key -> key of the older tunnel. O(n log n + overlapping pairs) via a sweep
 * over the remote ranges.
 */
export function findOverlaps(tunnels: OverlapInput[]): Map<string, string> {
  type Iv = { family: number; first: bigint; last: bigint; t: OverlapInput };
  const ivs: Iv[] = [];
  for (const t of tunnels) {
    for (const r of t.remote) {
      const rg = cidrRange(r);
      if (rg) ivs.push({ ...rg, t });
    }
  }
  ivs.sort((a, b) => a.family - b.family || (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const result = new Map<string, string>();
  const active: Iv[] = [];
  const localOverlap = (a: OverlapInput, b: OverlapInput) =>
    a.local.some((x) => b.local.some((y) => rangesOverlap(x, y)));
  for (const iv of ivs) {
    for (let i = active.length - 1; i >= 0; i--) {
      const a = active[i]!;
      if (a.family !== iv.family || a.last < iv.first) active.splice(i, 1);
    }
    for (const a of active) {
      if (a.t.key === iv.t.key || !localOverlap(a.t, iv.t)) continue;
      const [older, newer] = a.t.order <= iv.t.order ? [a.t, iv.t] : [iv.t, a.t];
      if (!result.has(newer.key) && !result.has(older.key)) result.set(newer.key, older.key);
    }
    active.push(iv);
  }
  return result;
}

function rangesOverlap(a: string, b: string): boolean {
  const x = cidrRange(a);
  const y = cidrRange(b);
  return !!x && !!y && x.family === y.family && x.first <= y.last && y.first <= x.last;
}

// ---- gateway election ----------------------------------------------------------------------------------------

export interface NodeInfo {
  name: string;
  labels: Record<string, string>;
  /** Address the agent uses as local IKE address unless the tunnel sets one (InternalIP). */
  address?: string;
  /** A live agent heartbeat within the timeout. */
  alive: boolean;
}

export interface ElectionInput {
  key: string;
  nodeSelector: Record<string, string>;
  current?: string;
  /** Tunnels of one group go to one node (they share a floating local address, which only one node may hold). */
  group?: string;
}

export type Election = Map<string, { node: string } | { node: undefined; problem: Problem }>;

export function matches(labels: Record<string, string>, selector: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/**
 * Sticky, spreading election: a tunnel keeps its gateway while that node is alive and still matches; otherwise it
 * moves to the eligible live node with the fewest tunnels (ties by name). Tunnels of one group share a node: the
 * first of them (by key) that keeps its node decides, else the first placed. Deterministic for a given input.
 */
export function electGateways(tunnels: ElectionInput[], nodes: NodeInfo[]): Election {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const load = new Map<string, number>(nodes.map((n) => [n.name, 0]));
  const out: Election = new Map();
  const pending: ElectionInput[] = [];
  const groupNode = new Map<string, string>();
  const sorted = [...tunnels].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const t of sorted) {
    const cur = t.current ? byName.get(t.current) : undefined;
    if (t.group !== undefined && groupNode.has(t.group)) pending.push(t);
    else if (cur?.alive && matches(cur.labels, t.nodeSelector)) {
      out.set(t.key, { node: cur.name });
      load.set(cur.name, (load.get(cur.name) ?? 0) + 1);
      if (t.group !== undefined) groupNode.set(t.group, cur.name);
    } else pending.push(t);
  }
  const live = nodes.filter((n) => n.alive).sort((a, b) => (a.name < b.name ? -1 : 1));
  // Cache the eligible set per distinct selector: 10,000 tunnels usually share a handful of selectors.
  const eligibleBySelector = new Map<string, NodeInfo[]>();
  for (const t of pending) {
    const g = t.group !== undefined ? byName.get(groupNode.get(t.group) ?? '') : undefined;
    if (g?.alive && matches(g.labels, t.nodeSelector)) {
      out.set(t.key, { node: g.name });
      load.set(g.name, (load.get(g.name) ?? 0) + 1);
      continue;
    }
    const sk = JSON.stringify(Object.entries(t.nodeSelector).sort());
    let eligible = eligibleBySelector.get(sk);
    if (!eligible) {
      eligible = live.filter((n) => matches(n.labels, t.nodeSelector));
      eligibleBySelector.set(sk, eligible);
    }
    let best: NodeInfo | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (const n of eligible) {
      const l = load.get(n.name) ?? 0;
      if (l < bestLoad) {
        best = n;
        bestLoad = l;
      }
    }
    if (best) {
      out.set(t.key, { node: best.name });
      load.set(best.name, bestLoad + 1);
      if (t.group !== undefined && !groupNode.has(t.group)) groupNode.set(t.group, best.name);
    } else {
      const sel = Object.entries(t.nodeSelector)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      const matching = nodes.filter((n) => matches(n.labels, t.nodeSelector)).length;
      out.set(t.key, {
        node: undefined,
        problem: {
          reason: 'NoEligibleGateway',
          message:
            matching === 0
              ? `no gateway node matches nodeSelector {${sel}}`
              : `${matching} node(s) match nodeSelector {${sel}} but none has a live agent`,
        },
      });
    }
  }
  return out;
}

// ---- node configuration --------------------------------------------------------------------------------------

/** Stable 31-bit reqid from the tunnel UID (FNV-1a), never 0. */
export function reqidFor(uid: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < uid.length; i++) {
    h ^= uid.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h & 0x7fffffff || 1;
}

/** Data key in the node Secret for a tunnel's item. Secret keys allow [-._a-zA-Z0-9]. */
export function secretKeyFor(namespace: string, name: string, item: 'psk' | 'tls.crt' | 'tls.key' | 'ca.crt'): string {
  return `${namespace}.${name}.${item}`;
}

export interface TunnelRef {
  namespace: string;
  name: string;
  uid: string;
  generation: number;
  spec: IPsecTunnelSpec;
}

export function renderNodeTunnel(t: TunnelRef, node: NodeInfo): NodeTunnel | Problem {
  const address = t.spec.local.address ?? node.address;
  if (!address) {
    return {
      reason: 'NoLocalAddress',
      message: `node ${node.name} has no InternalIP and spec.local.address is not set`,
    };
  }
  const s = t.spec;
  const auth: NodeTunnel['auth'] = {};
  if (s.auth.psk) auth.psk = { key: secretKeyFor(t.namespace, t.name, 'psk') };
  if (s.auth.certificate) {
    auth.certificate = {
      certKey: secretKeyFor(t.namespace, t.name, 'tls.crt'),
      privateKeyKey: secretKeyFor(t.namespace, t.name, 'tls.key'),
      caKey: secretKeyFor(t.namespace, t.name, 'ca.crt'),
    };
  }
  return {
    namespace: t.namespace,
    name: t.name,
    uid: t.uid,
    generation: t.generation,
    local: {
      address,
      subnets: s.local.subnets,
      ...(s.local.id ? { id: s.local.id } : {}),
      ...(s.local.floating && s.local.address ? { floating: true } : {}),
    },
    remote: {
      address: s.remote.address,
      port: s.remote.port,
      subnets: s.remote.subnets,
      ...(s.remote.id ? { id: s.remote.id } : {}),
    },
    auth,
    ike: s.ike,
    esp: s.esp,
    natt: s.natt,
    startAction: s.startAction,
    failClosed: s.failClosed,
    reqid: reqidFor(t.uid),
  };
}

export function nodeSecretName(node: string): string {
  return `ipsec-mesh-node-${node}`.slice(0, 253);
}

export function nodeConfigSpec(node: string, tunnels: NodeTunnel[], secretNamespace: string): IPsecNodeConfigSpec {
  const sorted = [...tunnels].sort((a, b) =>
    a.namespace === b.namespace ? (a.name < b.name ? -1 : 1) : a.namespace < b.namespace ? -1 : 1,
  );
  return {
    nodeName: node,
    ...(sorted.length ? { secretName: nodeSecretName(node), secretNamespace } : {}),
    tunnels: sorted,
  };
}

// ---- status --------------------------------------------------------------------------------------------------

export interface StatusInput {
  generation: number;
  acceptance: { ok: true } | { ok: false; problem: Problem };
  overlapWith?: string;
  election?: { node: string } | { node: undefined; problem: Problem };
  /** The tunnel entry in the gateway's IPsecNodeConfig status, if the agent reported one. */
  agent?: NodeTunnelStatus;
  /** The gateway's NodeConfig spec already carries this tunnel at this generation. */
  configured: boolean;
  previous?: IPsecTunnelStatus;
  now: string;
}

function cond(
  type: string,
  status: Condition['status'],
  reason: string,
  message: string,
): Omit<Condition, 'lastTransitionTime'> {
  return { type, status, reason, message };
}

export function tunnelStatus(inp: StatusInput): IPsecTunnelStatus {
  const conds: Array<Omit<Condition, 'lastTransitionTime'>> = [];
  let gateway: string | undefined;
  let ikeSA: IPsecTunnelStatus['ikeSA'];
  let childSAs: ChildSaStatus[] = [];
  let ready: Omit<Condition, 'lastTransitionTime'>;
  let degraded: Omit<Condition, 'lastTransitionTime'> = cond('Degraded', 'False', 'AsExpected', 'no problems');
  let ike = cond('IKEEstablished', 'Unknown', 'NoGateway', 'no gateway assigned');
  let child = cond('ChildSAInstalled', 'Unknown', 'NoGateway', 'no gateway assigned');
  /** Proof of encryption from the gateway's agent (only when it reports one). */
  let encrypted: Omit<Condition, 'lastTransitionTime'> | undefined;

  const problem: Problem | undefined = !inp.acceptance.ok
    ? inp.acceptance.problem
    : inp.overlapWith
      ? {
          reason: 'SubnetOverlap',
          message: `local and remote subnets overlap those of IPsecTunnel ${inp.overlapWith}; the older tunnel wins`,
        }
      : undefined;
  if (problem) {
    conds.push(cond('Accepted', 'False', problem.reason, problem.message));
    ready = cond('Ready', 'False', problem.reason, problem.message);
    degraded = cond('Degraded', 'True', problem.reason, problem.message);
  } else {
    conds.push(cond('Accepted', 'True', 'Accepted', 'spec is valid and its Secrets resolve'));
    const el = inp.election;
    if (!el || el.node === undefined) {
      const p = el && el.node === undefined ? el.problem : { reason: 'Pending', message: 'gateway election pending' };
      ready = cond('Ready', 'False', p.reason, p.message);
      if (el) degraded = cond('Degraded', 'True', p.reason, p.message);
    } else {
      gateway = el.node;
      const a = inp.agent;
      if (!inp.configured || !a || (a.generation !== undefined && a.generation < inp.generation)) {
        ready = cond(
          'Ready',
          'False',
          'WaitingForAgent',
          `waiting for the agent on ${gateway} to apply generation ${inp.generation}`,
        );
        ike = cond('IKEEstablished', 'Unknown', 'WaitingForAgent', `waiting for the agent on ${gateway}`);
        child = cond('ChildSAInstalled', 'Unknown', 'WaitingForAgent', `waiting for the agent on ${gateway}`);
      } else {
        ikeSA = a.ikeSA;
        childSAs = a.childSAs ?? [];
        const established = a.ikeSA?.state === 'Established' || a.ikeSA?.state === 'Rekeying';
        const installed = childSAs.filter((c) => c.state === 'Installed' || c.state === 'Rekeying').length;
        ike = established
          ? cond('IKEEstablished', 'True', 'Established', `IKE SA established with ${a.ikeSA?.remoteAddress ?? 'peer'}`)
          : cond(
              'IKEEstablished',
              'False',
              a.ikeSA?.state ?? 'NotStarted',
              `IKE SA is ${a.ikeSA?.state ?? 'not started'}`,
            );
        child =
          installed > 0
            ? cond('ChildSAInstalled', 'True', 'Installed', `${installed} CHILD SA(s) installed`)
            : cond('ChildSAInstalled', 'False', 'NotInstalled', 'no CHILD SA installed');
        if (a.encrypted) {
          encrypted = cond('Encrypted', a.encrypted.status, a.encrypted.reason, a.encrypted.message);
          if (a.encrypted.status === 'False')
            degraded = cond('Degraded', 'True', a.encrypted.reason, a.encrypted.message);
        }
        if (a.espBlocked && degraded.status === 'False') {
          // Working, through the fallback: say why the tunnel runs in UDP 4500.
          degraded = cond(
            'Degraded',
            'True',
            'EspBlocked',
            `ESP (IP protocol 50) is blocked on the path; UDP encapsulation (port 4500) since ${a.espBlocked.since}: ${a.espBlocked.message}`,
          );
        }
        if (a.error) {
          ready = cond('Ready', 'False', a.error.reason, a.error.message);
          degraded = cond('Degraded', 'True', a.error.reason, a.error.message);
        } else if (established && installed > 0) {
          ready = cond('Ready', 'True', 'TunnelUp', `IKE SA and ${installed} CHILD SA(s) up on ${gateway}`);
        } else {
          ready = cond('Ready', 'False', established ? 'ChildSANotInstalled' : 'IKENotEstablished', ike.message);
        }
      }
    }
  }
  conds.push(ready, ike, child, ...(encrypted ? [encrypted] : []), degraded);
  const prev = new Map((inp.previous?.conditions ?? []).map((c) => [c.type, c]));
  const conditions: Condition[] = conds.map((c) => {
    const p = prev.get(c.type);
    return {
      ...c,
      observedGeneration: inp.generation,
      lastTransitionTime: p && p.status === c.status ? p.lastTransitionTime : inp.now,
    };
  });
  const status: IPsecTunnelStatus = {
    observedGeneration: inp.generation,
    conditions,
    childSACount: childSAs.filter((c) => c.state === 'Installed' || c.state === 'Rekeying').length,
  };
  if (gateway) status.gateway = gateway;
  if (ikeSA) status.ikeSA = ikeSA;
  if (childSAs.length) status.childSAs = childSAs;
  return status;
}

/** Status equality ignoring lastTransitionTime (which only moves with status changes anyway). */
export function sameStatus(a: IPsecTunnelStatus | undefined, b: IPsecTunnelStatus): boolean {
  if (!a) return false;
  return canonical(a) === canonical(b);
}

export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(
          Object.entries(val as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)),
        )
      : val,
  );
}

// ---- meshes --------------------------------------------------------------------------------------------------

export interface DesiredTunnel {
  name: string;
  remoteSite: string;
  spec: IPsecTunnelSpec;
}

export type MeshPlan = { ok: true; tunnels: DesiredTunnel[] } | { ok: false; problem: Problem };

export function meshTunnels(meshName: string, spec: IPsecMeshSpec, localSite: string): MeshPlan {
  const local = spec.sites.find((s) => s.name === localSite);
  if (!local) {
    return {
      ok: false,
      problem: {
        reason: 'LocalSiteNotFound',
        message: `this cluster's site "${localSite}" is not among spec.sites (${spec.sites.map((s) => s.name).join(', ')})`,
      },
    };
  }
  const tunnels: DesiredTunnel[] = spec.sites
    .filter((s) => s.name !== localSite)
    .map((remote) => ({
      name: `${meshName}-${remote.name}`.slice(0, 253),
      remoteSite: remote.name,
      spec: {
        local: {
          nodeSelector: local.gateway.nodeSelector,
          subnets: local.subnets,
          ...(local.id ? { id: local.id } : {}),
          // A floating site address is the tunnels' local address, held by whichever node is elected.
          ...(local.gateway.floating ? { address: local.gateway.address } : {}),
          floating: local.gateway.floating,
        },
        remote: {
          address: remote.gateway.address,
          port: 500,
          subnets: remote.subnets,
          ...(remote.id ? { id: remote.id } : {}),
        },
        auth: spec.auth,
        ike: spec.ike,
        esp: spec.esp,
        natt: spec.natt,
        startAction: spec.startAction,
        failClosed: spec.failClosed,
      },
    }));
  return { ok: true, tunnels };
}

export function tunnelManifest(
  mesh: { name: string; namespace: string; uid: string },
  t: DesiredTunnel,
): Record<string, unknown> {
  return {
    apiVersion: API_VERSION,
    kind: 'IPsecTunnel',
    metadata: {
      name: t.name,
      namespace: mesh.namespace,
      labels: { [MESH_LABEL]: mesh.name, [SITE_LABEL]: t.remoteSite },
      ownerReferences: [
        { apiVersion: API_VERSION, kind: 'IPsecMesh', name: mesh.name, uid: mesh.uid, controller: true },
      ],
    },
    spec: t.spec,
  };
}
