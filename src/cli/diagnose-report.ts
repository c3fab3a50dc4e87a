/**
 * The report of `ipsec-mesh diagnose`: pure functions from gathered facts (status socket, configuration, probes,
 * /proc/crypto, routes) to a list of checks, each ok / warn / fail / n/a with a detail and, when not ok, the fix.
 * No I/O here (src/cli/diagnose.ts gathers the facts), no key material (PSKs are compared, never shown).
 */

import type { TunnelView } from '../agent/status.js';
import { NoProposalChosenError, parseProposals, selectProposal } from '../ike/crypto/proposals.js';
import { explainNoProposal, kernelNames } from '../ike/sa/explain.js';

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

export interface DiagnoseInputs {
  tunnel: string;
  now: Date;
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
  const checks = [
    liveState(i),
    reachability(i),
    espPasses(i),
    pathMtu(i),
    kernelSupport(i),
    clockSkew(i),
    agreement(i),
  ];
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
  const probes = `${shown(p.port500, 500)}, ${shown(p.port4500, 4500)}`;
  if (ike?.state === 'Established' || ike?.state === 'Rekeying') {
    return { name, status: 'ok', detail: `IKE SA established with ${ike.remote}; probes: ${probes}` };
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

function clockSkew(i: DiagnoseInputs): Check {
  const name = 'clock vs certificates';
  if (i.config?.auth !== 'certificate') return { name, status: 'n/a', detail: 'not a certificate tunnel' };
  const now = i.now.getTime();
  const problems: string[] = [];
  const known: string[] = [];
  for (const [who, v] of [
    ['our', i.config.certValidity],
    ["the peer's", i.peer?.certValidity],
  ] as const) {
    if (!v) continue;
    known.push(`${who} ${v.subject} valid ${v.notBefore} .. ${v.notAfter}`);
    if (now < Date.parse(v.notBefore)) problems.push(`${who} certificate is not yet valid by this clock`);
    if (now > Date.parse(v.notAfter)) problems.push(`${who} certificate expired by this clock`);
  }
  if (!i.peer?.certValidity) known.push('peer certificate unknown (give --peer-config-dir to check it)');
  if (problems.length) {
    return {
      name,
      status: 'fail',
      detail: `${problems.join('; ')}: ${known.join('; ')}`,
      fix: "check both gateways' clocks (NTP) or renew the certificate",
    };
  }
  return { name, status: 'ok', detail: `local clock ${i.now.toISOString()}; ${known.join('; ')}` };
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
  if (!a || !b) return { name, status: 'n/a', detail: 'give --peer-config-dir DIR to compare both sides' };
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
  } else if (a.auth === 'psk' && a.pskDigest !== b.pskDigest) {
    problems.push('the pre-shared keys differ (digests compared, keys not shown)');
    fixes.push('put the same key into the PSK Secret (spec.auth.psk.secretRef) on both sides');
  }
  if (problems.length === 0) {
    return {
      name,
      status: 'ok',
      detail: 'proposals intersect, subnets mirror, identities and addresses match, same PSK',
    };
  }
  return { name, status: 'fail', detail: problems.join('; '), fix: fixes.join('; ') };
}

export function formatReport(r: DiagnoseReport): string {
  const lines = [`diagnose ${r.tunnel}  ${r.time}  overall ${r.overall.toUpperCase()}`];
  for (const c of r.checks) {
    lines.push(`  [${c.status.padEnd(4)}] ${c.name}: ${c.detail}`);
    if (c.fix && c.status !== 'ok') lines.push(`         fix: ${c.fix}`);
  }
  return lines.join('\n');
}
