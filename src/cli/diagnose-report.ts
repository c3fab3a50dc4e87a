/**
 * The report of `ipsec-mesh diagnose`: pure functions from gathered facts (status socket, configuration, probes,
 * /proc/crypto, routes) to a list of checks, each ok / warn / fail / n/a with a detail and, when not ok, the fix.
 * No I/O here (src/cli/diagnose.ts gathers the facts), no key material (PSKs are compared, never shown).
 */

import type { ChildSaView, TunnelView } from '../agent/status.js';
import type { IPsecMeshSpec } from '../api/mesh.js';
import type { NodeTunnel, NodeTunnelStatus } from '../api/nodeconfig.js';
import { NoProposalChosenError, parseProposals, selectProposal } from '../ike/crypto/proposals.js';
import { explainNoProposal, kernelNames } from '../ike/sa/explain.js';
import { canonical, meshTunnels } from '../operator/plan.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'n/a';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

export interface DiagnoseReport {
  tunnel: string;
  time: string;
  checks: Check[];
  /** The worst status among the checks. */
  overall: CheckStatus;
}

/** What diagnose knows of one side's configuration (from a config directory). */
export interface SideConfig {
  key: string;
  localAddress: string;
  remoteAddress: string;
  localSubnets: string[];
  remoteSubnets: string[];
  localId?: string;
  remoteId?: string;
  ikeProposals: string[];
  espProposals: string[];
  auth: 'psk' | 'certificate';
  /** A digest of the PSK, only ever compared. */
  pskDigest?: string;
  /** Validity of this side's own certificate (certificate tunnels). */
  certValidity?: { notBefore: string; notAfter: string; subject: string };
}

export type ProbeResult = { answered: true; what: string } | { answered: false; why: string };

/** Facts only Kubernetes mode has (src/cli/diagnose-kube.ts). */
export interface KubeFacts {
  /** Reading the tunnel failed (API server unreachable, Forbidden, not found): the report says so and stops there. */
  problem?: { status: 'warn' | 'fail'; detail: string; fix: string };
  /** Elected gateway node (status.gateway). */
  gateway?: string;
  /** The tunnel's conditions (type, status, reason, message). */
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
  /** The gateway's heartbeat Lease, or why it could not be read. */
  heartbeat?: { lease: string; renewTime?: string; durationSeconds?: number } | { lease: string; error: string };
  /** The API server's clock (HTTP Date header) when it was asked. */
  serverTime?: Date;
  /** Generation rendered into the gateway's IPsecNodeConfig, and the one the agent reports as applied. */
  applied?: { rendered?: number; applied?: number };
  /** The PSK or certificate Secret could not be read (e.g. Forbidden): why. */
  secretProblem?: string;
  /** UDP probes run from this machine (an admin host), not from the gateway. */
  probesFromHere?: boolean;
}

export interface DiagnoseInputs {
  tunnel: string;
  now: Date;
  /** Kubernetes mode: facts from the API server; the checks that need the gateway's own host say so. */
  kube?: KubeFacts;
  /** The peer side's live view (its cluster's status), to compare SPIs. */
  peerLive?: TunnelView;
  /** Where the peer side came from and what could not be compared (e.g. its PSK), shown with the agreement. */
  peerNote?: string;
  /** Why there is no peer side to compare (a hint). */
  peerMissing?: string;
  /** Both tunnels come from an IPsecMesh of the same name: the canonical differences of the two clusters' specs. */
  meshDiff?: { mesh: string; differences: string[] };
  /** The agent's live view of the tunnel (status socket); undefined when no agent answered or it lacks the tunnel. */
  live?: TunnelView;
  liveError?: string;
  dataplane?: string;
  config?: SideConfig;
  peer?: SideConfig;
  probes?: { port500?: ProbeResult; port4500?: ProbeResult };
  /** Names in /proc/crypto, and whether the kernel has ESP (esp4/esp6 loaded, built in or loadable). */
  kernel?: { crypto: Set<string>; esp: 'loaded' | 'loadable' | 'missing' };
  route?: { dev: string; mtu: number; routeMtu?: number } | { error: string };
}

const RANK: Record<CheckStatus, number> = { 'n/a': 0, ok: 1, warn: 2, fail: 3 };

export function buildReport(i: DiagnoseInputs): DiagnoseReport {
  const checks = i.kube
    ? i.kube.problem
      ? [tunnelResource(i)]
      : [
          tunnelResource(i),
          agentHeartbeat(i),
          agentApplied(i),
          liveState(i),
          reachability(i),
          espPasses(i),
          proofOfEncryption(i),
          pathMtu(i),
          kernelSupport(i),
          clockSkew(i),
          agreement(i),
          sameSas(i),
          ...(i.meshDiff ? [meshAgreement(i.meshDiff)] : []),
        ]
    : [liveState(i), reachability(i), espPasses(i), pathMtu(i), kernelSupport(i), clockSkew(i), agreement(i)];
  const overall = checks.reduce<CheckStatus>((w, c) => (RANK[c.status] > RANK[w] ? c.status : w), 'n/a');
  return { tunnel: i.tunnel, time: i.now.toISOString(), checks, overall };
}

function liveState(i: DiagnoseInputs): Check {
  const name = 'live SA state';
  const t = i.live;
  if (!t) return { name, status: 'warn', detail: i.liveError ?? 'the agent does not report this tunnel' };
  const ike = t.ikeSA;
  const children = t.childSAs.filter((c) => c.state.toLowerCase() === 'installed');
  const parts = [`IKE ${ike.state}${ike.algorithms ? ` ${ike.algorithms}` : ''}${ike.natDetected ? ' (NAT)' : ''}`];
  for (const c of children)
    parts.push(`CHILD ${c.name} ${c.algorithms} ${c.localTs.join(',')} === ${c.remoteTs.join(',')}`);
  if (t.configError) {
    return {
      name,
      status: 'fail',
      detail: `config error ${t.configError.reason}: ${t.configError.message}`,
      fix: t.configError.message,
    };
  }
  const err = ike.lastError;
  if (ike.state === 'Established' && children.length > 0) {
    return { name, status: 'ok', detail: parts.join('; ') };
  }
  const detail = `${parts.join('; ')}${children.length === 0 ? '; no CHILD SA installed' : ''}${err ? `; last error ${err.code}` : ''}`;
  const fix = err ? (/ Fix: (.*)$/.exec(err.message)?.[1] ?? err.message) : undefined;
  const out: Check = { name, status: 'fail', detail: err ? `${detail}: ${err.message.split(' Fix: ')[0]}` : detail };
  if (fix) out.fix = fix;
  return out;
}

function reachability(i: DiagnoseInputs): Check {
  const name = 'UDP 500/4500 to the peer';
  const ike = i.live?.ikeSA;
  const p = i.probes ?? {};
  const shown = (r: ProbeResult | undefined, port: number) =>
    r === undefined
      ? `${port} not probed`
      : r.answered
        ? `${port} answered (${r.what})`
        : `${port} no answer (${r.why})`;
  const probes = `${shown(p.port500, 500)}, ${shown(p.port4500, 4500)}${i.kube?.probesFromHere ? ' (from this machine, not from the gateway)' : ''}`;
  if (ike?.state === 'Established' || ike?.state === 'Rekeying') {
    return { name, status: 'ok', detail: `IKE SA established with ${ike.remote}; probes: ${probes}` };
  }
  if (i.kube && !p.port500 && !p.port4500) {
    // Diagnose usually runs on an admin host: judge from the gateway agent's IKE state and its last error.
    const err = ike?.lastError;
    if (
      err &&
      /no response|no answer|timed? ?out|unreachable|retransmi|peer_?dead/i.test(`${err.code} ${err.message}`)
    ) {
      return {
        name,
        status: 'fail',
        detail: `the gateway agent gets no answer from ${ike?.remote ?? 'the peer'}: ${err.message.split(' Fix: ')[0]}`,
        fix:
          / Fix: (.*)$/.exec(err.message)?.[1] ??
          "check spec.remote.address and spec.remote.port, that the peer's IKE daemon runs, and that no firewall drops UDP 500/4500",
      };
    }
    if (err) {
      return {
        name,
        status: 'ok',
        detail: `the peer answers the gateway agent (it reports ${err.code}, not a timeout); not probed (--probe probes from this machine)`,
      };
    }
    return {
      name,
      status: ike ? 'warn' : 'n/a',
      detail: ike
        ? `IKE SA ${ike.state} with no error yet; not probed (--probe probes from this machine)`
        : 'no live IKE state; not probed',
    };
  }
  if (p.port500?.answered || p.port4500?.answered) {
    const both = p.port500?.answered && p.port4500?.answered;
    const r: Check = { name, status: both ? 'ok' : 'warn', detail: `peer answers: ${probes}` };
    if (!both)
      r.fix = 'allow UDP 500 and 4500 both ways between the gateways (NAT-T and IKE_AUTH after NAT detection use 4500)';
    return r;
  }
  if (!p.port500 && !p.port4500) return { name, status: 'n/a', detail: 'not probed and no live IKE SA' };
  const addr = i.config?.remoteAddress ?? ike?.remote ?? 'the peer';
  return {
    name,
    status: 'fail',
    detail: `no answer from ${addr}: ${probes}`,
    fix: `check spec.remote.address (${addr}), that the peer's IKE daemon runs, and that no firewall drops UDP 500/4500`,
  };
}

function espPasses(i: DiagnoseInputs): Check {
  const name = 'ESP passes';
  const t = i.live;
  if (t?.espBlocked) {
    return {
      name,
      status: 'warn',
      detail: `ESP was found blocked since ${t.espBlocked.since}; the tunnel uses UDP encapsulation (4500): ${t.espBlocked.message}`,
      fix: 'allow IP protocol 50 between the gateways to drop the UDP encapsulation overhead',
    };
  }
  const children = t?.childSAs.filter((c) => c.state.toLowerCase() === 'installed') ?? [];
  const counted = children.filter((c) => c.packetsOut !== undefined);
  if (counted.length === 0) {
    return {
      name,
      status: 'n/a',
      detail:
        i.dataplane === 'none' ? 'dataplane none: no kernel counters' : 'no installed CHILD SA with kernel counters',
    };
  }
  const out = counted.reduce((s, c) => s + BigInt(c.packetsOut ?? '0'), 0n);
  const inn = counted.reduce((s, c) => s + BigInt(c.packetsIn ?? '0'), 0n);
  const udp = counted.some((c) => c.encapsulation);
  const detail = `${out} packets out, ${inn} in${udp ? ' (UDP-encapsulated)' : ''}`;
  if (out >= 10n && inn === 0n) {
    return {
      name,
      status: 'fail',
      detail: `${detail}: outbound rises with nothing inbound, ESP is probably dropped on the path (or the peer does not send)`,
      fix: 'allow IP protocol 50 between the gateways, or set natt: force on the tunnel to use UDP 4500 (the agent does this by itself, AgentSettings espBlockedFallback mode auto, when the peer is an ipsec-mesh agent that confirms it received nothing)',
    };
  }
  return {
    name,
    status: out === 0n && inn === 0n ? 'n/a' : 'ok',
    detail: out === 0n && inn === 0n ? `${detail}: no traffic yet` : detail,
  };
}

function pathMtu(i: DiagnoseInputs): Check {
  const name = 'path MTU to the peer';
  const m = i.live?.mtu;
  if (i.kube) {
    if (!m) return { name, status: 'n/a', detail: 'the gateway agent reports no MTU for this tunnel' };
    const detail = `gateway agent: underlay ${m.underlayMtu} - ESP ${m.overhead} = inner ${m.innerMtu}, MSS ${m.mss}, clamp ${m.clamp}, route mtu ${m.routeMtu ? 'set' : 'not set'}${m.error ? `; error: ${m.error.message}` : ''}`;
    if (m.error || m.clamp === 'failed')
      return {
        name,
        status: 'warn',
        detail,
        fix: 'see the agent log on the gateway; set mtu.underlayMtu in AgentSettings if the path MTU is known',
      };
    if (m.underlayMtu > 0 && m.underlayMtu < 1280)
      return {
        name,
        status: 'warn',
        detail,
        fix: 'the underlay MTU is below 1280: set mtu.underlayMtu in AgentSettings and keep clampMss on',
      };
    return { name, status: 'ok', detail };
  }
  const agent = m
    ? `; agent: underlay ${m.underlayMtu} (${m.underlaySource}) - ESP ${m.overhead} = inner ${m.innerMtu}, MSS ${m.mss}`
    : '';
  const r = i.route;
  if (!r) return { name, status: m ? 'ok' : 'n/a', detail: `route not looked up${agent}` };
  if ('error' in r)
    return {
      name,
      status: 'warn',
      detail: `no route to the peer: ${r.error}${agent}`,
      fix: 'add a route towards spec.remote.address',
    };
  const mtu = r.routeMtu ?? r.mtu;
  const detail = `via ${r.dev}, ${r.routeMtu ? `route mtu ${r.routeMtu}` : `interface mtu ${r.mtu}`}${agent}`;
  if (mtu < 1280) {
    return {
      name,
      status: 'warn',
      detail,
      fix: 'the underlay MTU is below 1280: set mtu.underlayMtu in AgentSettings and keep clampMss on',
    };
  }
  return { name, status: 'ok', detail };
}

function kernelSupport(i: DiagnoseInputs): Check {
  const name = 'kernel support for the ESP algorithms';
  if (i.kube) {
    const err = i.live?.ikeSA.lastError;
    if (err && /kernel rejected/i.test(err.message)) {
      return {
        name,
        status: 'fail',
        detail: `the gateway's kernel rejected the CHILD SA: ${err.message.split(' Fix: ')[0]}`,
        fix:
          / Fix: (.*)$/.exec(err.message)?.[1] ??
          'keep only algorithms the gateway kernel has in spec.esp.proposals, or load its crypto modules',
      };
    }
    return {
      name,
      status: 'n/a',
      detail: `the gateway's /proc/crypto cannot be read from here; run ipsec-mesh diagnose on ${i.kube.gateway ?? 'the gateway'} for this check`,
    };
  }
  if (i.dataplane === 'none') return { name, status: 'n/a', detail: 'dataplane none: the kernel is not used' };
  const k = i.kernel;
  if (!k || !i.config) return { name, status: 'n/a', detail: 'configuration or /proc/crypto not available' };
  if (k.esp === 'missing') {
    return {
      name,
      status: 'fail',
      detail: 'this kernel has no ESP (esp4/esp6 neither loaded, built in nor available as modules)',
      fix: 'use a kernel with CONFIG_INET_ESP / CONFIG_INET6_ESP and CONFIG_XFRM_USER',
    };
  }
  const missing: string[] = [];
  const seen: string[] = [];
  for (const s of i.config.espProposals) {
    let parsed: ReturnType<typeof parseProposals>;
    try {
      parsed = parseProposals(s, 'esp');
    } catch (e) {
      missing.push(`${s} (${e instanceof Error ? e.message : e})`);
      continue;
    }
    for (const p of parsed.proposals) {
      for (const n of kernelNames(p)) {
        if (seen.includes(n)) continue;
        seen.push(n);
        // The kernel instantiates templates on first use: the inner cipher is what must exist.
        const base = n.replace(/^[a-z0-9]+\((.*)\)$/, '$1');
        const present =
          k.crypto.has(n) || [...k.crypto].some((c) => c === base || n.includes(`(${c})`) || n.includes(`${c},`));
        if (!present) missing.push(n);
      }
    }
  }
  const detail = `ESP ${k.esp}; algorithms ${seen.join(', ') || '(none)'}`;
  if (missing.length) {
    return {
      name,
      status: 'warn',
      detail: `${detail}; not in /proc/crypto yet: ${missing.join(', ')} (the kernel may load them on first use)`,
      fix: `modprobe the crypto modules (e.g. gcm, authenc, chacha20poly1305), or keep only algorithms this kernel has in spec.esp.proposals`,
    };
  }
  return { name, status: 'ok', detail };
}

/** This machine's clock against the API server's (Date header, 1 s resolution). */
export function judgeClock(local: Date, server: Date, limitMs = 30_000): { status: 'ok' | 'warn'; detail: string } {
  const skew = local.getTime() - server.getTime();
  const s = Math.round(Math.abs(skew) / 1000);
  const detail = `this machine's clock is ${s} s ${skew >= 0 ? 'ahead of' : 'behind'} the API server's`;
  return { status: Math.abs(skew) > limitMs ? 'warn' : 'ok', detail };
}

function clockSkew(i: DiagnoseInputs): Check {
  const name = 'clock vs certificates';
  if (i.kube?.serverTime) {
    const c = judgeClock(i.now, i.kube.serverTime);
    const certs = i.config?.auth === 'certificate' ? clockCerts(i, name) : undefined;
    if (certs && certs.status === 'fail') return { ...certs, detail: `${c.detail}; ${certs.detail}` };
    const detail = `${c.detail}${certs ? `; ${certs.detail}` : '; not a certificate tunnel'}`;
    return c.status === 'warn'
      ? {
          name,
          status: 'warn',
          detail,
          fix: 'synchronise the clocks (NTP); certificate validity and heartbeats are judged by clocks',
        }
      : { name, status: 'ok', detail };
  }
  if (i.config?.auth !== 'certificate') return { name, status: 'n/a', detail: 'not a certificate tunnel' };
  return clockCerts(i, name);
}

function clockCerts(i: DiagnoseInputs, name: string): Check {
  const now = i.now.getTime();
  const problems: string[] = [];
  const known: string[] = [];
  for (const [who, v] of [
    ['our', i.config?.certValidity],
    ["the peer's", i.peer?.certValidity],
  ] as const) {
    if (!v) continue;
    known.push(`${who} ${v.subject} valid ${v.notBefore} .. ${v.notAfter}`);
    if (now < Date.parse(v.notBefore)) problems.push(`${who} certificate is not yet valid by this clock`);
    if (now > Date.parse(v.notAfter)) problems.push(`${who} certificate expired by this clock`);
  }
  if (!i.peer?.certValidity)
    known.push(`peer certificate unknown (give ${i.kube ? '--peer-kubeconfig' : '--peer-config-dir'} to check it)`);
  if (i.kube?.secretProblem) known.push(i.kube.secretProblem);
  if (problems.length) {
    return {
      name,
      status: 'fail',
      detail: `${problems.join('; ')}: ${known.join('; ')}`,
      fix: "check both gateways' clocks (NTP) or renew the certificate",
    };
  }
  return {
    name,
    status: 'ok',
    detail: `${i.kube ? 'certificates' : `local clock ${i.now.toISOString()}`}; ${known.join('; ')}`,
  };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const x = [...new Set(a)].sort();
  const y = [...new Set(b)].sort();
  return x.length === y.length && x.every((v, k) => v === y[k]);
}

function agreement(i: DiagnoseInputs): Check {
  const name = 'both sides agree';
  const a = i.config;
  const b = i.peer;
  if (!a || !b)
    return {
      name,
      status: 'n/a',
      detail:
        i.peerMissing ??
        (i.kube
          ? 'give --peer-kubeconfig FILE to compare both sides'
          : 'give --peer-config-dir DIR to compare both sides'),
    };
  const notes: string[] = i.peerNote ? [i.peerNote] : [];
  const problems: string[] = [];
  const fixes: string[] = [];
  for (const kind of ['ike', 'esp'] as const) {
    const ours = parseProposals(kind === 'ike' ? a.ikeProposals : a.espProposals, kind).proposals;
    const theirs = parseProposals(kind === 'ike' ? b.ikeProposals : b.espProposals, kind).proposals;
    try {
      selectProposal(ours, theirs);
    } catch (e) {
      if (!(e instanceof NoProposalChosenError)) throw e;
      const text = explainNoProposal(kind, ours, e);
      problems.push(`${kind.toUpperCase()} proposals do not intersect (${/Mismatch: ([^.]*)/.exec(text)?.[1] ?? ''})`);
      fixes.push(/Fix: (.*)$/.exec(text)?.[1] ?? text);
    }
  }
  if (!sameSet(a.localSubnets, b.remoteSubnets) || !sameSet(a.remoteSubnets, b.localSubnets)) {
    problems.push(
      `subnets do not mirror: ours ${a.localSubnets.join(',')} === ${a.remoteSubnets.join(',')}, peer's ${b.localSubnets.join(',')} === ${b.remoteSubnets.join(',')}`,
    );
    fixes.push(
      `set spec.local.subnets to ${b.remoteSubnets.join(',')} and spec.remote.subnets to ${b.localSubnets.join(',')} (or change the peer)`,
    );
  }
  if (a.remoteAddress !== b.localAddress) {
    problems.push(`our spec.remote.address ${a.remoteAddress} is not the peer's local address ${b.localAddress}`);
    fixes.push(`set spec.remote.address to ${b.localAddress}`);
  }
  if (a.remoteId && b.localId && a.remoteId !== b.localId) {
    problems.push(`our spec.remote.id ${a.remoteId} is not the peer's spec.local.id ${b.localId}`);
    fixes.push(`set spec.remote.id to ${b.localId}`);
  }
  if (b.remoteId && a.localId && b.remoteId !== a.localId) {
    problems.push(`the peer's spec.remote.id ${b.remoteId} is not our spec.local.id ${a.localId}`);
    fixes.push(`set the peer's spec.remote.id to ${a.localId}`);
  }
  if (a.auth !== b.auth) {
    problems.push(`we authenticate with ${a.auth}, the peer with ${b.auth}`);
    fixes.push('use the same authentication method (spec.auth) on both sides');
  } else if (a.auth === 'psk' && (a.pskDigest === undefined || b.pskDigest === undefined)) {
    notes.push(
      `PSKs not compared (n/a): ${a.pskDigest === undefined ? (i.kube?.secretProblem ?? 'our key could not be read') : "the peer's key cannot be read from here"}`,
    );
  } else if (a.auth === 'psk' && a.pskDigest !== b.pskDigest) {
    problems.push('the pre-shared keys differ (digests compared, keys not shown)');
    fixes.push('put the same key into the PSK Secret (spec.auth.psk.secretRef) on both sides');
  }
  const note = notes.length ? `; ${notes.join('; ')}` : '';
  if (problems.length === 0) {
    const psk = a.auth === 'psk' && a.pskDigest !== undefined && b.pskDigest !== undefined ? ', same PSK' : '';
    return {
      name,
      status: 'ok',
      detail: `proposals intersect, subnets mirror, identities and addresses match${psk}${note}`,
    };
  }
  return { name, status: 'fail', detail: `${problems.join('; ')}${note}`, fix: fixes.join('; ') };
}

// ---- Kubernetes mode -----------------------------------------------------------------------------------------

function tunnelResource(i: DiagnoseInputs): Check {
  const name = 'tunnel resource';
  const k = i.kube!;
  if (k.problem) return { name, ...k.problem };
  const cond = (t: string) => k.conditions?.find((c) => c.type === t);
  const ready = cond('Ready');
  const readyText = ready ? `Ready ${ready.status}${ready.reason ? ` (${ready.reason})` : ''}` : 'no Ready condition';
  if (!k.gateway) {
    const why = ready?.message ?? 'gateway election pending';
    return {
      name,
      status: 'warn',
      detail: `no gateway elected yet: ${why}`,
      fix: /nodeSelector|live agent/.test(why)
        ? 'label a node to match spec.local.nodeSelector and make sure the agent DaemonSet runs on it'
        : 'wait for the operator, or check its log and the tunnel Events (kubectl describe ipsectunnel)',
    };
  }
  const accepted = cond('Accepted');
  if (accepted?.status === 'False') {
    return {
      name,
      status: 'fail',
      detail: `not accepted: ${accepted.reason}: ${accepted.message ?? ''}`,
      fix: 'fix the spec or the referenced Secret named in the message',
    };
  }
  return { name, status: 'ok', detail: `gateway ${k.gateway}; ${readyText}` };
}

/** The agent heartbeat Lease judged against the API server's clock (Date header, 1 s resolution). */
export function judgeHeartbeat(
  hb: KubeFacts['heartbeat'],
  serverTime: Date | undefined,
  gateway: string | undefined,
): Check {
  const name = 'agent heartbeat';
  const node = gateway ?? 'the gateway';
  if (!hb) return { name, status: 'n/a', detail: 'no gateway, no heartbeat to check' };
  const fix = `check that the ipsec-mesh agent Pod runs on ${node} (kubectl -n <operator namespace> get pods -o wide) and read its log`;
  if ('error' in hb) return { name, status: 'warn', detail: `Lease ${hb.lease}: ${hb.error}`, fix };
  if (!hb.renewTime) return { name, status: 'fail', detail: `Lease ${hb.lease} was never renewed`, fix };
  if (!serverTime)
    return {
      name,
      status: 'warn',
      detail: `Lease ${hb.lease} renewed ${hb.renewTime}; the API server's clock is unknown`,
    };
  const renewed = Date.parse(hb.renewTime.replace(/(\.\d{3})\d+/, '$1'));
  const age = (serverTime.getTime() - renewed) / 1000;
  const limit = (hb.durationSeconds ?? 0) + 1; // the Date header has whole seconds
  const detail = `Lease ${hb.lease} renewed ${Math.max(0, Math.round(age))} s ago by the API server's clock (duration ${hb.durationSeconds ?? '?'} s)`;
  if (hb.durationSeconds === undefined || age > limit) {
    return {
      name,
      status: 'fail',
      detail: `${detail}: the agent on ${node} is not renewing it, the operator will move its tunnels`,
      fix,
    };
  }
  return { name, status: 'ok', detail };
}

function agentHeartbeat(i: DiagnoseInputs): Check {
  return judgeHeartbeat(i.kube?.heartbeat, i.kube?.serverTime, i.kube?.gateway);
}

/** Whether the agent has applied the newest rendered generation of the tunnel. */
export function judgeApplied(a: KubeFacts['applied'], gateway: string | undefined): Check {
  const name = 'agent applied';
  if (!a || a.rendered === undefined)
    return {
      name,
      status: gateway ? 'warn' : 'n/a',
      detail: gateway ? `the IPsecNodeConfig of ${gateway} has no entry for this tunnel yet` : 'no gateway',
      ...(gateway ? { fix: 'wait for the operator to render the tunnel, or check its log' } : {}),
    };
  if (a.applied === undefined)
    return {
      name,
      status: 'warn',
      detail: `generation ${a.rendered} rendered; the agent on ${gateway} reports nothing for it yet`,
      fix: `check the agent on ${gateway} (its log, its heartbeat)`,
    };
  if (a.applied < a.rendered)
    return {
      name,
      status: 'warn',
      detail: `the agent on ${gateway} runs generation ${a.applied}, the newest is ${a.rendered}`,
      fix: 'wait a heartbeat period; if it stays, read the agent log on the gateway',
    };
  return { name, status: 'ok', detail: `generation ${a.applied} applied by the agent on ${gateway}` };
}

function agentApplied(i: DiagnoseInputs): Check {
  return judgeApplied(i.kube?.applied, i.kube?.gateway);
}

function proofOfEncryption(i: DiagnoseInputs): Check {
  const name = 'proof of encryption';
  const e = i.live?.encrypted;
  const c = i.kube?.conditions?.find((x) => x.type === 'Encrypted');
  if (!e && !c) return { name, status: 'n/a', detail: 'the agent reports no encryption check (dataplane none?)' };
  const status = e?.status ?? c!.status;
  const detail = `Encrypted ${status} ${e?.reason ?? c?.reason ?? ''}: ${e?.message ?? c?.message ?? ''}`;
  if (status === 'True') return { name, status: 'ok', detail };
  if (status === 'False')
    return {
      name,
      status: 'fail',
      detail,
      fix: 'the kernel policies or outbound SAs do not cover every subnet pair: read the message and the agent log on the gateway',
    };
  return {
    name,
    status: 'warn',
    detail,
    fix: 'wait for the next check on the gateway; if it stays Unknown read the agent log',
  };
}

/** Compare both sides' live SAs: the same IKE SPIs, and CHILD SAs mirrored (our inbound SPI is their outbound). */
export function compareLiveSas(ours: TunnelView, theirs: TunnelView): { same: boolean; detail: string } {
  const installed = (t: TunnelView) =>
    t.childSAs.filter((c) => ['installed', 'rekeying'].includes(c.state.toLowerCase()));
  const problems: string[] = [];
  const a = ours.ikeSA;
  const b = theirs.ikeSA;
  const up = (s: string) => s === 'Established' || s === 'Rekeying';
  if (!up(a.state) || !up(b.state)) problems.push(`IKE SA ${a.state} here, ${b.state} on the peer`);
  else if (a.spiI !== b.spiI || a.spiR !== b.spiR)
    problems.push(`IKE SPIs differ: ${a.spiI}_i ${a.spiR}_r here, ${b.spiI}_i ${b.spiR}_r on the peer`);
  const mine = installed(ours);
  const peer = installed(theirs);
  const mirrored = (c: ChildSaView) => peer.some((p) => p.spiOut === c.spiIn && p.spiIn === c.spiOut);
  const lonely = mine.filter((c) => !mirrored(c));
  const theirsLonely = peer.filter((p) => !mine.some((c) => p.spiOut === c.spiIn && p.spiIn === c.spiOut));
  if (mine.length === 0 && peer.length === 0) problems.push('no CHILD SA installed on either side');
  for (const c of lonely) problems.push(`our CHILD SA ${c.spiIn}_i ${c.spiOut}_o has no mirror on the peer`);
  for (const p of theirsLonely) problems.push(`the peer's CHILD SA ${p.spiIn}_i ${p.spiOut}_o has no mirror here`);
  if (problems.length) return { same: false, detail: problems.join('; ') };
  return {
    same: true,
    detail: `both sides see the same SAs: IKE ${a.spiI}_i ${a.spiR}_r, CHILD ${mine.map((c) => `${c.spiIn}/${c.spiOut}`).join(', ')}`,
  };
}

function sameSas(i: DiagnoseInputs): Check {
  const name = 'live SAs of both sides';
  if (!i.live || !i.peerLive)
    return {
      name,
      status: 'n/a',
      detail: i.live ? "the peer's live state is not known (give --peer-kubeconfig)" : 'no live state here',
    };
  const down = (t: TunnelView) => !['Established', 'Rekeying'].includes(t.ikeSA.state);
  if (down(i.live) && down(i.peerLive))
    return { name, status: 'n/a', detail: 'no IKE SA on either side (see live SA state)' };
  const r = compareLiveSas(i.live, i.peerLive);
  return r.same
    ? { name, status: 'ok', detail: r.detail }
    : {
        name,
        status: 'warn',
        detail: r.detail,
        fix: 'a side holds SAs the other lost (restart, rekey race, or a third gateway): wait for DPD/rekey, or delete the stale SA by restarting that side’s agent',
      };
}

/** Top-level fields and sites in which two IPsecMesh specs differ (canonical JSON, key order ignored). */
export function meshSpecDiff(
  a: IPsecMeshSpec | Record<string, unknown>,
  b: IPsecMeshSpec | Record<string, unknown>,
): string[] {
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const out: string[] = [];
  for (const k of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
    if (k === 'sites') continue;
    if (canonical(x[k]) !== canonical(y[k])) out.push(`spec.${k}`);
  }
  type S = { name: string };
  const sa = new Map(((x.sites ?? []) as S[]).map((s) => [s.name, s]));
  const sb = new Map(((y.sites ?? []) as S[]).map((s) => [s.name, s]));
  for (const n of [...new Set([...sa.keys(), ...sb.keys()])].sort()) {
    if (!sa.has(n)) out.push(`site ${n} only in the peer cluster`);
    else if (!sb.has(n)) out.push(`site ${n} only in this cluster`);
    else if (canonical(sa.get(n)) !== canonical(sb.get(n))) out.push(`site ${n}`);
  }
  return out;
}

function meshAgreement(d: { mesh: string; differences: string[] }): Check {
  const name = 'same IPsecMesh in both clusters';
  if (d.differences.length === 0)
    return { name, status: 'ok', detail: `IPsecMesh ${d.mesh} is the same in both clusters` };
  return {
    name,
    status: 'fail',
    detail: `IPsecMesh ${d.mesh} differs between the clusters in: ${d.differences.join(', ')}`,
    fix: 'apply the same IPsecMesh manifest in every cluster (kubectl apply -f the one file)',
  };
}

/** The agent's report of one tunnel (IPsecNodeConfig status entry) as the TunnelView the checks understand. */
export function tunnelViewFromStatus(entry: NodeTunnel | undefined, st: NodeTunnelStatus): TunnelView {
  const ike = st.ikeSA;
  const local = ike?.localAddress ?? entry?.local.address ?? '?';
  const remote = ike?.remoteAddress ?? (entry ? `${entry.remote.address}:${entry.remote.port}` : '?');
  const encap = !!ike?.natDetected || !!st.espBlocked || entry?.natt === 'force';
  const view: TunnelView = {
    namespace: st.namespace,
    name: st.name,
    local,
    remote,
    ikeSA: {
      state: ike?.state ?? 'Down',
      spiI: ike?.spis?.initiator ?? '0000000000000000',
      spiR: ike?.spis?.responder ?? '0000000000000000',
      initiator: false,
      algorithms: ike?.algorithms ?? '',
      local,
      remote,
      natDetected: !!ike?.natDetected,
      ...(ike?.establishedAt ? { establishedAt: ike.establishedAt } : {}),
      ...(ike?.rekeyAt ? { rekeyAt: ike.rekeyAt } : {}),
      ...(st.error ? { lastError: { code: st.error.reason, message: st.error.message, at: '' } } : {}),
    },
    childSAs: (st.childSAs ?? []).map((c) => ({
      name: c.name ?? '',
      state: c.state.toLowerCase(),
      spiIn: c.spis.in,
      spiOut: c.spis.out,
      algorithms: c.algorithms ?? '',
      localTs: c.trafficSelectors?.local ?? [],
      remoteTs: c.trafficSelectors?.remote ?? [],
      mode: 'tunnel' as const,
      encapsulation: encap,
      ...(c.installedAt ? { installedAt: c.installedAt } : {}),
      ...(c.rekeyAt ? { rekeyAt: c.rekeyAt } : {}),
      bytesIn: String(c.bytesIn ?? 0),
      bytesOut: String(c.bytesOut ?? 0),
      packetsIn: String(c.packetsIn ?? 0),
      packetsOut: String(c.packetsOut ?? 0),
    })),
  };
  if (st.espBlocked) view.espBlocked = { ...st.espBlocked };
  if (st.encrypted) view.encrypted = { ...st.encrypted };
  if (st.mtu) {
    view.mtu = {
      underlayMtu: st.mtu.underlayMtu,
      // The status does not say where the underlay MTU came from; Kubernetes mode does not show it.
      underlaySource: 'route',
      innerMtu: st.mtu.innerMtu,
      overhead: st.mtu.overhead,
      mss: st.mtu.mss,
      clamp: st.mtu.clamp,
      routeMtu: st.mtu.routeMtu,
      remoteSubnets: entry?.remote.subnets ?? [],
      ...(st.mtu.error ? { error: { code: 'MtuError', message: st.mtu.error } } : {}),
    };
  }
  return view;
}

/**
 * The peer's side of a mesh tunnel as the peer site's operator renders it from the same IPsecMesh: the tunnel of
 * `peerSite` whose remote is our site. Our site is the one whose subnets are our local subnets (or whose gateway
 * address is our local address). The peer's PSK is not known here.
 */
export function meshPeerSide(
  meshName: string,
  spec: IPsecMeshSpec,
  peerSite: string,
  ours: Pick<SideConfig, 'localAddress' | 'localSubnets'>,
): { side: SideConfig; ourSite: string } | { error: string } {
  const ourSite =
    spec.sites.find((s) => s.name !== peerSite && sameSet(s.subnets, ours.localSubnets)) ??
    spec.sites.find((s) => s.name !== peerSite && s.gateway.address === ours.localAddress);
  if (!ourSite) return { error: `no site of IPsecMesh ${meshName} has our subnets ${ours.localSubnets.join(',')}` };
  const plan = meshTunnels(meshName, spec, peerSite);
  if (!plan.ok) return { error: plan.problem.message };
  const t = plan.tunnels.find((x) => x.remoteSite === ourSite.name);
  if (!t) return { error: `IPsecMesh ${meshName} renders no tunnel from ${peerSite} to ${ourSite.name}` };
  const peer = spec.sites.find((s) => s.name === peerSite)!;
  const localAddress = t.spec.local.address ?? peer.gateway.address;
  const side: SideConfig = {
    key: `${peerSite}: ${t.name}`,
    localAddress,
    remoteAddress: t.spec.remote.address,
    localSubnets: t.spec.local.subnets,
    remoteSubnets: t.spec.remote.subnets,
    localId: t.spec.local.id ?? localAddress,
    remoteId: t.spec.remote.id ?? t.spec.remote.address,
    ikeProposals: t.spec.ike.proposals,
    espProposals: t.spec.esp.proposals,
    auth: t.spec.auth.certificate ? 'certificate' : 'psk',
  };
  return { side, ourSite: ourSite.name };
}

export function formatReport(r: DiagnoseReport): string {
  const lines = [`diagnose ${r.tunnel}  ${r.time}  overall ${r.overall.toUpperCase()}`];
  for (const c of r.checks) {
    lines.push(`  [${c.status.padEnd(4)}] ${c.name}: ${c.detail}`);
    if (c.fix && c.status !== 'ok') lines.push(`         fix: ${c.fix}`);
  }
  return lines.join('\n');
}
