/**
 * NodeTunnel (what the operator renders for a node, or what standalone mode derives from the config directory)
 * plus its key material -> the engine's PeerConfig. Errors name the field and never contain key material.
 */
import { isIP } from 'node:net';
import { parseDuration } from '../api/common.js';
import type { NodeTunnel } from '../api/nodeconfig.js';
import { selectorFromCidr } from '../ike/codec/payloads/ts.js';
import { parseProposals } from '../ike/crypto/proposals.js';
import { ProposalError } from '../ike/errors.js';
import type { ConfiguredIdentity } from '../ike/ports.js';
import { DEFAULT_RETRANSMIT, type PeerConfig, type RetransmitConfig } from '../ike/sa/config.js';

export class TunnelConfigError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'TunnelConfigError';
  }
}

/** An identity string from a resource: IP address, email address, DN (not for PSK) or FQDN. */
export function parseIdentity(s: string, field: string): ConfiguredIdentity {
  const ip = isIP(s);
  if (ip === 4) return { type: 'ipv4', value: s };
  if (ip === 6) return { type: 'ipv6', value: s };
  if (s.includes('@')) return { type: 'rfc822', value: s };
  if (/^[A-Za-z]+=/.test(s)) {
    throw new TunnelConfigError(
      'UnsupportedIdentity',
      `${field}: distinguished-name identities need certificate authentication, which this agent does not support yet`,
    );
  }
  return { type: 'fqdn', value: s };
}

export function tunnelKey(t: Pick<NodeTunnel, 'namespace' | 'name'>): string {
  return `${t.namespace}/${t.name}`;
}

export interface PeerOptions {
  ikePort: number;
  retransmit?: RetransmitConfig;
}

function duration(s: string, field: string): number {
  const ms = parseDuration(s);
  if (ms === undefined) throw new TunnelConfigError('InvalidDuration', `${field}: '${s}' is not a duration`);
  return ms;
}

function proposals(list: string[], kind: 'ike' | 'esp', field: string) {
  try {
    return parseProposals(list, kind).proposals;
  } catch (e) {
    if (e instanceof ProposalError) throw new TunnelConfigError('InvalidProposal', `${field}: ${e.message}`);
    throw e;
  }
}

/**
 * Build the engine configuration of a tunnel. `secret(key)` returns the bytes of an item of the node Secret (or
 * the standalone Secret) and undefined when it is missing.
 */
export function peerConfig(t: NodeTunnel, secret: (key: string) => Uint8Array | undefined, o: PeerOptions): PeerConfig {
  if (!t.auth.psk) {
    throw new TunnelConfigError(
      'UnsupportedAuth',
      'spec.auth: certificate authentication is not supported by this agent yet; use psk',
    );
  }
  const psk = secret(t.auth.psk.key);
  if (!psk)
    throw new TunnelConfigError('SecretNotFound', `spec.auth.psk: the pre-shared key (${t.auth.psk.key}) is missing`);
  if (psk.length < 16)
    throw new TunnelConfigError('WeakPsk', 'spec.auth.psk: the pre-shared key must be at least 16 bytes');
  if (isIP(t.local.address) === 0) {
    throw new TunnelConfigError('InvalidAddress', `spec.local.address: '${t.local.address}' is not an IP address`);
  }
  if (isIP(t.remote.address) === 0) {
    throw new TunnelConfigError(
      'UnresolvedAddress',
      `spec.remote.address: '${t.remote.address}' is not an IP address (DNS names are not resolved yet)`,
    );
  }
  if (isIP(t.local.address) !== isIP(t.remote.address)) {
    throw new TunnelConfigError(
      'AddressFamilyMismatch',
      'spec.local.address and spec.remote.address are of different IP families',
    );
  }
  const ikeLife = duration(t.ike.lifetime, 'spec.ike.lifetime');
  const espLife = duration(t.esp.lifetime, 'spec.esp.lifetime');
  // Hard lifetime: 10 % past the rekey time, but at least 30 s, so a rekey slowed by retransmissions is not
  // overtaken by the kernel removing the SA.
  const life = (ms: number) => ({
    rekeyMs: ms,
    jitterMs: Math.round(ms / 10),
    overMs: Math.max(Math.round(ms / 10), 30_000),
  });
  const ts = (cidrs: string[]) => cidrs.map((c) => selectorFromCidr(c));
  return {
    name: tunnelKey(t),
    local: { address: t.local.address, port: o.ikePort },
    remote: { address: t.remote.address, port: t.remote.port },
    localId: t.local.id
      ? parseIdentity(t.local.id, 'spec.local.id')
      : { type: isIP(t.local.address) === 6 ? 'ipv6' : 'ipv4', value: t.local.address },
    remoteId: t.remote.id
      ? parseIdentity(t.remote.id, 'spec.remote.id')
      : { type: isIP(t.remote.address) === 6 ? 'ipv6' : 'ipv4', value: t.remote.address },
    auth: { method: 'psk', psk },
    ikeProposals: proposals(t.ike.proposals, 'ike', 'spec.ike.proposals'),
    ikeLifetime: life(ikeLife),
    dpdIntervalMs: duration(t.ike.dpd.interval, 'spec.ike.dpd.interval'),
    dpdAction: t.ike.dpd.action,
    natt: t.natt,
    childless: 'never',
    fragmentation: true,
    fragmentSize: 1280,
    windowSize: 1,
    retransmit: o.retransmit ?? DEFAULT_RETRANSMIT,
    halfOpenTimeoutMs: 30_000,
    children: [
      {
        name: t.name,
        proposals: proposals(t.esp.proposals, 'esp', 'spec.esp.proposals'),
        localTs: ts(t.local.subnets),
        remoteTs: ts(t.remote.subnets),
        mode: 'tunnel',
        lifetime: life(espLife),
        replayWindow: 32,
        startAction: t.startAction,
        reqid: t.reqid,
      },
    ],
  };
}
