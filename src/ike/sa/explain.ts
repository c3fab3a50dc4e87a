/**
 * Explanations of negotiation failures: what we offered, what the peer offered or answered (as far as IKEv2
 * reveals it), the specific mismatch, and the configuration change that would fix it, naming the field of the
 * IPsecTunnel resource. Pure text builders: no I/O, and never key material (only proposals, selectors, identities,
 * addresses and kernel algorithm names go in).
 *
 * Every explanation reads `<what happened>. We offered: ... Peer: ... Mismatch: ... Fix: ...` (parts that the
 * protocol does not reveal are left out), so a reader, a test and `ipsec-mesh diagnose` find the fix in one place.
 */

import { formatIp } from '../codec/ip.js';
import type { Proposal } from '../codec/payloads/sa-types.js';
import { isAddressRange, type TrafficSelector } from '../codec/payloads/ts.js';
import { KeId, TransformType } from '../constants.js';
import { formatProposal, type NoProposalChosenError, type ProposalKind } from '../crypto/proposals.js';
import { kernelEncryption, kernelIntegrity } from './kernel-algorithms.js';

/** The IPsecTunnel fields a fix points at. */
export const FIELD = {
  ikeProposals: 'spec.ike.proposals',
  espProposals: 'spec.esp.proposals',
  localSubnets: 'spec.local.subnets',
  remoteSubnets: 'spec.remote.subnets',
  localId: 'spec.local.id',
  remoteId: 'spec.remote.id',
  remoteAddress: 'spec.remote.address',
  psk: 'the PSK Secret (spec.auth.psk.secretRef)',
  certificate: 'the certificate Secret (spec.auth.certificate.secretRef)',
} as const;

export interface ExplanationParts {
  /** What happened, one clause. */
  what: string;
  offered?: string;
  peer?: string;
  mismatch?: string;
  fix: string;
}

export function explanation(p: ExplanationParts): string {
  const parts = [p.what];
  if (p.offered) parts.push(`We offered: ${p.offered}`);
  if (p.peer) parts.push(`Peer: ${p.peer}`);
  if (p.mismatch) parts.push(`Mismatch: ${p.mismatch}`);
  parts.push(`Fix: ${p.fix}`);
  return parts.map((s) => (/[.!?]$/.test(s) ? s : `${s}.`)).join(' ');
}

export function proposalList(ps: readonly Pick<Proposal, 'transforms'>[]): string {
  return ps.map(formatProposal).join(', ') || '(none)';
}

/**
 * Our first proposal with its key exchange method replaced by `group`: what to add to the proposals when the peer
 * insists on a group we do not offer (INVALID_KE_PAYLOAD naming an unoffered group).
 */
export function withGroup(ps: readonly Proposal[], group: number): string | undefined {
  const first = ps[0];
  if (!first || KeId[group] === undefined) return undefined;
  const transforms = first.transforms.filter((t) => t.type !== TransformType.KE);
  transforms.push({ type: TransformType.KE, id: group });
  return formatProposal({ transforms });
}

/** Responder: none of the initiator's proposals matches ours (we see both sides). */
export function explainNoProposal(
  kind: ProposalKind,
  ours: readonly Pick<Proposal, 'transforms'>[],
  e: NoProposalChosenError,
): string {
  const what = kind === 'ike' ? 'IKE' : 'ESP';
  const field = kind === 'ike' ? FIELD.ikeProposals : FIELD.espProposals;
  const theirs = [...new Set(e.mismatches.map((m) => m.theirs))];
  const first = e.mismatches[0];
  const mismatch = first
    ? first.types
        .map((t) => `${t.type}: ours ${t.ours.join('/') || '(none)'} vs theirs ${t.theirs.join('/') || '(none)'}`)
        .join('; ') +
      (e.mismatches.length > 1
        ? ` (in '${first.ours}' vs '${first.theirs}'; ${e.mismatches.length - 1} more pairs differ)`
        : '')
    : 'one side offered no proposals';
  return explanation({
    what: `no common ${what} proposal with the initiator; answered NO_PROPOSAL_CHOSEN`,
    offered: proposalList(ours),
    peer: `proposes ${theirs.length === 1 ? 'only ' : ''}${theirs.join(', ') || '(none)'} for ${what}`,
    mismatch,
    fix: theirs[0]
      ? `add \`${theirs[0]}\` to ${field} (or add one of ours to the peer's ${what} proposals)`
      : `configure ${what} proposals on the peer`,
  });
}

/** The XFRM algorithm names a negotiated ESP proposal maps to (what the kernel must support). */
export function kernelNames(p: Pick<Proposal, 'transforms'>): string[] {
  const names: string[] = [];
  for (const t of p.transforms) {
    try {
      if (t.type === TransformType.ENCR) names.push(kernelEncryption(t.id).name);
      if (t.type === TransformType.INTEG && t.id !== 0) names.push(kernelIntegrity(t.id).name);
    } catch {
      names.push(`${formatProposal({ transforms: [t] })} (no XFRM name)`);
    }
  }
  return names;
}

/** The kernel refused to install a negotiated CHILD SA (typically an algorithm it lacks: ENOENT/ENOSYS/EINVAL). */
export function explainKernelRejection(p: Pick<Proposal, 'transforms'> | undefined, e: unknown): string {
  const why = e instanceof Error ? e.message : String(e);
  const proposal = p ? formatProposal(p) : '(unknown)';
  const names = p ? kernelNames(p) : [];
  const algorithmProblem = /ENOENT|ENOSYS|EINVAL|EOPNOTSUPP|not found|not supported|algorithm/i.test(why);
  return explanation({
    what: `the kernel rejected the negotiated CHILD SA (${why})`,
    offered: `negotiated ESP ${proposal}, installed as XFRM ${names.join(' + ') || '(none)'}`,
    mismatch: algorithmProblem
      ? `this kernel does not provide ${names.join(' + ') || 'the algorithm'} for ESP (check /proc/crypto and the esp4/esp6 modules)`
      : 'the kernel refused the SA or its policy',
    fix: algorithmProblem
      ? `load the kernel modules (modprobe esp4 esp6 xfrm_user and the cipher, e.g. gcm/authenc/chacha20poly1305), or remove \`${proposal}\` from ${FIELD.espProposals} so that an algorithm this kernel has is negotiated; \`ipsec-mesh diagnose\` checks each configured algorithm`
      : 'check `ip xfrm state`/`ip xfrm policy` for conflicting entries of another tool, and the agent log',
  });
}

/** Retransmissions exhausted: the peer (or the path) stopped answering. */
export function explainNoResponse(o: {
  address: string;
  port: number;
  tries: number;
  exchange: string;
  /** The peer answered something earlier on this SA (so the address is right). */
  answeredBefore: boolean;
}): string {
  const where = `${o.address}:${o.port}`;
  if (!o.answeredBefore) {
    return explanation({
      what: `no response from ${where} to IKE_SA_INIT after ${o.tries} retransmits`,
      peer: 'never answered (not even with an error)',
      mismatch: 'the peer is down, does not listen on UDP 500, a firewall drops UDP 500/4500, or the address is wrong',
      fix: `check ${FIELD.remoteAddress} (${o.address}), that the peer runs, and that UDP 500 and 4500 pass both ways; \`ipsec-mesh diagnose\` probes them`,
    });
  }
  return explanation({
    what: `no response from ${where} to ${o.exchange} after ${o.tries} retransmits`,
    peer: 'answered earlier messages of this IKE SA, then stopped',
    mismatch:
      o.exchange === 'IKE_AUTH'
        ? `IKE_AUTH is the first large message and${o.port === 4500 ? ' goes to UDP 4500' : ''}: fragments lost to a small path MTU, or UDP 4500 filtered`
        : 'the peer went away, or the path started dropping UDP 500/4500',
    fix:
      o.exchange === 'IKE_AUTH'
        ? 'allow UDP 4500 as well as 500 towards the peer, and lower ikeFragmentSize (AgentSettings) if the path MTU is small; `ipsec-mesh diagnose` shows the path MTU'
        : 'check that the peer still runs and the path to it; `ipsec-mesh diagnose` probes UDP 500/4500',
  });
}

/** One selector as the YAML would say it: a CIDR when the range is a prefix, with protocol/ports only if narrowed. */
export function selectorText(ts: TrafficSelector): string {
  if (!isAddressRange(ts)) return `TS type ${ts.tsType}`;
  const a = ts.startAddress;
  const b = ts.endAddress;
  let prefix = 0;
  let cidr = true;
  for (let i = 0; i < a.length && cidr; i++) {
    for (let bit = 7; bit >= 0; bit--) {
      const x = (a[i]! >> bit) & 1;
      const y = (b[i]! >> bit) & 1;
      if (x === y && prefix === i * 8 + (7 - bit)) prefix++;
      else if (!(x === 0 && y === 1)) cidr = false;
    }
  }
  const addr = cidr ? `${formatIp(a)}/${prefix}` : `${formatIp(a)}-${formatIp(b)}`;
  const ports = ts.startPort === 0 && ts.endPort === 65535 ? '' : `:${ts.startPort}-${ts.endPort}`;
  return `${addr}${ts.ipProtocol ? ` proto ${ts.ipProtocol}` : ''}${ports}`;
}

export function selectorsText(list: readonly TrafficSelector[]): string {
  return list.length === 0 ? '(none)' : list.map(selectorText).join(', ');
}
