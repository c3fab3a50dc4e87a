/**
 * Two or more engines over the simulated network: peer configuration builders and a Pair harness that steps the
 * world until a condition holds. Scenario tests assert SA states, kernel calls and timers.
 */
import { selectorFromCidr } from '../../src/ike/codec/payloads/ts.js';
import { createNobleProvider, createNodeProvider } from '../../src/ike/crypto/index.js';
import { parseProposals } from '../../src/ike/crypto/proposals.js';
import type { CryptoProvider } from '../../src/ike/crypto/provider.js';
import { Engine, type EngineOptions } from '../../src/ike/engine.js';
import type { ConfigLookup, ConfiguredIdentity } from '../../src/ike/ports.js';
import type { ChildSa } from '../../src/ike/sa/child-sa.js';
import { type ChildConfig, DEFAULT_RETRANSMIT, type PeerConfig } from '../../src/ike/sa/config.js';
import type { EngineEvent } from '../../src/ike/sa/events.js';
import type { IkeSa } from '../../src/ike/sa/ike-sa.js';
import { sameIdentity } from '../../src/ike/tasks/ike-auth.js';
import type { LinkConditions } from '../sim/network.js';
import { type SimHost, SimWorld } from '../sim/world.js';

export const PSK = new TextEncoder().encode('a pre-shared key for tests only');
const providers = { node: createNodeProvider(), noble: createNobleProvider() };

export interface SiteSpec {
  name: string;
  address: string;
  subnet: string;
  id?: ConfiguredIdentity;
}

export const SITE_A: SiteSpec = { name: 'a', address: '192.0.2.1', subnet: '198.18.1.0/24' };
export const SITE_B: SiteSpec = { name: 'b', address: '203.0.113.2', subnet: '198.18.2.0/24' };
export const SITE_C: SiteSpec = { name: 'c', address: '198.51.100.3', subnet: '198.18.3.0/24' };

export interface ConfigOptions {
  ike?: string;
  esp?: string;
  psk?: Uint8Array;
  /** Authentication other than the PSK (e.g. certificates). */
  auth?: PeerConfig['auth'];
  ikeRekeyMs?: number;
  childRekeyMs?: number;
  jitterMs?: number;
  dpdMs?: number;
  dpdAction?: PeerConfig['dpdAction'];
  natt?: PeerConfig['natt'];
  mode?: ChildConfig['mode'];
  startAction?: ChildConfig['startAction'];
  childless?: PeerConfig['childless'];
  fragmentation?: boolean;
  fragmentSize?: number;
  windowSize?: number;
  localId?: ConfiguredIdentity;
  remoteId?: ConfiguredIdentity | null;
  localSubnets?: string[];
  remoteSubnets?: string[];
  retransmit?: Partial<PeerConfig['retransmit']>;
  children?: number;
}

export function fqdn(site: SiteSpec): ConfiguredIdentity {
  return site.id ?? { type: 'fqdn', value: `site-${site.name}.example` };
}

/** The configuration `local` uses for its tunnel to `remote`. */
export function peerConfig(local: SiteSpec, remote: SiteSpec, o: ConfigOptions = {}): PeerConfig {
  const child = (i: number): ChildConfig => ({
    name: i === 0 ? 'net' : `net${i}`,
    proposals: parseProposals(o.esp ?? 'aes128gcm16', 'esp').proposals,
    localTs: (o.localSubnets ?? [local.subnet]).map((c) =>
      selectorFromCidr(c, i === 0 ? {} : { ipProtocol: 17, startPort: i, endPort: i }),
    ),
    remoteTs: (o.remoteSubnets ?? [remote.subnet]).map((c) =>
      selectorFromCidr(c, i === 0 ? {} : { ipProtocol: 17, startPort: i, endPort: i }),
    ),
    mode: o.mode ?? 'tunnel',
    lifetime: {
      rekeyMs: o.childRekeyMs ?? 3_600_000,
      jitterMs: o.jitterMs ?? 0,
      overMs: Math.max(60_000, (o.childRekeyMs ?? 3_600_000) / 10),
    },
    replayWindow: 32,
    startAction: o.startAction ?? 'start',
  });
  return {
    name: `${local.name}-${remote.name}`,
    local: { address: local.address, port: 500 },
    remote: { address: remote.address, port: 500 },
    localId: o.localId ?? fqdn(local),
    remoteId: o.remoteId === null ? undefined : (o.remoteId ?? fqdn(remote)),
    auth: o.auth ?? { method: 'psk', psk: o.psk ?? PSK },
    ikeProposals: parseProposals(o.ike ?? 'aes128gcm16-prfsha256-x25519', 'ike').proposals,
    ikeLifetime: {
      rekeyMs: o.ikeRekeyMs ?? 4 * 3_600_000,
      jitterMs: o.jitterMs ?? 0,
      overMs: Math.max(60_000, (o.ikeRekeyMs ?? 4 * 3_600_000) / 10),
    },
    dpdIntervalMs: o.dpdMs ?? 0,
    dpdAction: o.dpdAction ?? 'restart',
    natt: o.natt ?? 'auto',
    childless: o.childless ?? 'never',
    fragmentation: o.fragmentation ?? true,
    fragmentSize: o.fragmentSize ?? 1280,
    windowSize: o.windowSize ?? 1,
    retransmit: { ...DEFAULT_RETRANSMIT, ...o.retransmit },
    halfOpenTimeoutMs: 30_000,
    children: Array.from({ length: o.children ?? 1 }, (_, i) => child(i)),
  };
}

/** A ConfigLookup over a fixed list, matching addresses and identities as the agent will. */
export class StaticConfigs implements ConfigLookup<PeerConfig> {
  constructor(public configs: PeerConfig[]) {}
  byAddresses(local: { address: string }, remote: { address: string }): PeerConfig[] {
    return this.configs.filter((c) => c.local.address === local.address && c.remote.address === remote.address);
  }
  byIdentities(remoteId: ConfiguredIdentity, localId: ConfiguredIdentity | undefined, candidates: PeerConfig[]) {
    return candidates.find(
      (c) =>
        (c.remoteId === undefined || sameIdentity(c.remoteId, remoteId)) &&
        (!localId || sameIdentity(c.localId, localId)),
    );
  }
}

export interface Node {
  site: SiteSpec;
  host: SimHost;
  engine: Engine;
  configs: StaticConfigs;
  events: EngineEvent[];
}

export class Sim {
  readonly world: SimWorld;
  readonly nodes = new Map<string, Node>();
  private readonly provider: CryptoProvider;

  constructor(
    seed: number | string,
    options: {
      conditions?: Partial<LinkConditions>;
      kernelLatencyMs?: number;
      provider?: 'node' | 'noble';
      engine?: Partial<EngineOptions>;
      /** Wall-clock ms at simulated time 0 (certificate validity). */
      epochMs?: number;
    } = {},
  ) {
    const worldOptions: ConstructorParameters<typeof SimWorld>[0] = {
      seed,
      kernel: { missingSaErrno: 'ESRCH', strictLarval: true },
    };
    if (options.conditions) worldOptions.conditions = options.conditions;
    if (options.kernelLatencyMs !== undefined) worldOptions.kernelLatencyMs = options.kernelLatencyMs;
    if (options.epochMs !== undefined) worldOptions.epochMs = options.epochMs;
    this.world = new SimWorld(worldOptions);
    this.provider = providers[options.provider ?? 'node'];
    this.engineOptions = options.engine ?? {};
  }

  private readonly engineOptions: Partial<EngineOptions>;

  add(site: SiteSpec, configs: PeerConfig[]): Node {
    const host = this.world.host(site.name, site.address);
    const lookup = new StaticConfigs(configs);
    const engine = new Engine(host.ports(lookup), { provider: this.provider, ...this.engineOptions });
    const node: Node = { site, host, engine, configs: lookup, events: [] };
    engine.on((e) => node.events.push(e));
    for (const port of [500, 4500]) {
      // Route through `node.engine` so a test can replace the engine (a restarted agent).
      this.world.network.listen(host.endpoint(port), (p, from, to) => node.engine.receive(p, from, to));
    }
    this.nodes.set(site.name, node);
    return node;
  }

  /** Replace a node's engine with a fresh one (the old one must have been shut down: a restarted agent). */
  restart(name: string): Engine {
    const node = this.nodes.get(name)!;
    const engine = new Engine(node.host.ports(node.configs), { provider: this.provider, ...this.engineOptions });
    engine.on((e) => node.events.push(e));
    node.engine = engine;
    return engine;
  }

  node(name: string): Node {
    return this.nodes.get(name)!;
  }

  get clock() {
    return this.world.clock;
  }

  /** Run until `pred` holds or `maxMs` of simulated time pass. */
  async until(pred: () => boolean, maxMs = 120_000): Promise<boolean> {
    if (pred()) return true;
    return this.world.clock.runUntilAsync(pred, maxMs);
  }

  async run(ms: number): Promise<void> {
    await this.world.clock.advanceAsync(ms);
  }
}

export function established(node: Node, peer?: string): IkeSa[] {
  return node.engine.ikeSas().filter((s) => s.state === 'established' && (!peer || s.config.name === peer));
}

export function installedChildren(node: Node): ChildSa[] {
  return node.engine
    .ikeSas()
    .filter((s) => s.state === 'established')
    .flatMap((s) => s.children)
    .filter((c) => c.state === 'installed' && c.outboundInstalled);
}

/** A pair of sites a and b, each configured for the other; `a` initiates unless told otherwise. */
export function pair(
  seed: number | string,
  o: ConfigOptions & { b?: ConfigOptions; sim?: ConstructorParameters<typeof Sim>[1] } = {},
) {
  const sim = new Sim(seed, o.sim);
  const { b: bOptions, sim: _s, ...aOptions } = o;
  const a = sim.add(SITE_A, [peerConfig(SITE_A, SITE_B, aOptions)]);
  const b = sim.add(SITE_B, [peerConfig(SITE_B, SITE_A, { ...aOptions, startAction: 'none', ...bOptions })]);
  return { sim, a, b, configA: a.configs.configs[0]!, configB: b.configs.configs[0]! };
}

/** IKE header fields of a raw packet (no decoding beyond the fixed header). */
export function headerOf(bytes: Uint8Array): {
  exchange: number;
  response: boolean;
  mid: number;
  firstPayload: number;
} {
  return {
    exchange: bytes[18]!,
    response: (bytes[19]! & 0x20) !== 0,
    mid: ((bytes[20]! << 24) | (bytes[21]! << 16) | (bytes[22]! << 8) | bytes[23]!) >>> 0,
    firstPayload: bytes[16]!,
  };
}

/** Drop the next `count` packets from `fromAddress` matching the exchange/response (all when count is Infinity). */
export function dropNext(
  sim: Sim,
  match: { from?: string; exchange?: number; response?: boolean; mid?: number },
  count = 1,
): { dropped: () => number; remove: () => void } {
  let dropped = 0;
  const remove = sim.world.network.addFilter((p) => {
    if (dropped >= count) return undefined;
    const h = headerOf(p.bytes);
    if (match.from !== undefined && p.from.address !== match.from) return undefined;
    if (match.exchange !== undefined && h.exchange !== match.exchange) return undefined;
    if (match.response !== undefined && h.response !== match.response) return undefined;
    if (match.mid !== undefined && h.mid !== match.mid) return undefined;
    dropped++;
    return 'drop';
  });
  return { dropped: () => dropped, remove };
}

/** Settle: both sides have exactly `n` installed CHILD SAs with outbound SAs, and one established IKE SA each. */
export function steady(a: Node, b: Node, n = 1): boolean {
  return (
    established(a).length === 1 &&
    established(b).length === 1 &&
    installedChildren(a).length === n &&
    installedChildren(b).length === n &&
    a.engine.ikeSas().every((s) => s.state === 'established') &&
    b.engine.ikeSas().every((s) => s.state === 'established') &&
    a.engine.ikeSas().every((s) => s.children.every((c) => c.state === 'installed')) &&
    b.engine.ikeSas().every((s) => s.children.every((c) => c.state === 'installed'))
  );
}

export function kernelEmpty(node: Node): boolean {
  return node.host.kernel.sas().length === 0 && node.host.kernel.policies().length === 0;
}

/** Count kernel SAs by direction. */
export function kernelCounts(node: Node): { in: number; out: number; policies: number } {
  const sas = node.host.kernel.sas();
  return {
    in: sas.filter((s) => s.direction === 'in').length,
    out: sas.filter((s) => s.direction === 'out').length,
    policies: node.host.kernel.policies().length,
  };
}
