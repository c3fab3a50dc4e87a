/**
 * The node agent: hosts the IKEv2 engine on a UDP transport, keeps the engine's tunnels in line with the desired
 * state (from a config directory or an IPsecNodeConfig), and reports SA state. The kernel data plane is a port
 * (XFRM over netlink, or in-memory for `--dataplane=none`).
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { parseDuration } from '../api/common.js';
import type { NodeTunnel } from '../api/nodeconfig.js';
import { formatIp } from '../ike/codec/ip.js';
import type { AddressRangeSelector } from '../ike/codec/payloads/ts.js';
import { createNodeProvider } from '../ike/crypto/index.js';
import { formatProposal } from '../ike/crypto/proposals.js';
import type { CryptoProvider } from '../ike/crypto/provider.js';
import { Engine } from '../ike/engine.js';
import type { Clock, ConfigLookup, ConfiguredIdentity, Endpoint, KernelIpsec, Random } from '../ike/ports.js';
import type { ChildSa } from '../ike/sa/child-sa.js';
import type { PeerConfig } from '../ike/sa/config.js';
import type { EngineEvent } from '../ike/sa/events.js';
import type { IkeSa } from '../ike/sa/ike-sa.js';
import { kernelSelectorOf, spiHex } from '../ike/sa/ike-sa.js';
import { sameIdentity } from '../ike/tasks/ike-auth.js';
import { canonical } from '../operator/plan.js';
import { DEFAULT_OWNERSHIP } from '../xfrm/ownership.js';
import type { XfrmEvent } from '../xfrm/socket.js';
import { DataplaneGuards } from './dataplane-guards.js';
import type { AddressControl } from './floating.js';
import type { AgentMetrics } from './metrics.js';
import { peerConfig, TunnelConfigError, tunnelKey } from './peers.js';
import type { AgentSettings } from './settings.js';
import type { AgentStatus, ChildSaView, ErrorView, IkeSaView, TunnelView } from './status.js';
import { UdpTransport } from './transport.js';
import type { RestingPolicy } from './xfrm-kernel.js';

/** How long SAs left by a previous agent stay after their tunnel's new CHILD SA is installed. */
const STALE_GRACE_MS = 2000;

export interface DesiredTunnels {
  tunnels: NodeTunnel[];
  /** Key material by node-secret key. */
  secrets: Map<string, Uint8Array>;
  problems?: AgentStatus['configProblems'];
}

interface TunnelEntry {
  spec: NodeTunnel;
  fingerprint: string;
  /** Digest of the certificate material: a renewal swaps the credentials in place (see apply). */
  certDigest?: string;
  config?: PeerConfig;
  configError?: { reason: string; message: string };
  lastError?: ErrorView;
}

/** Digest of a certificate tunnel's material in the node Secret ('' for PSK tunnels). */
function certificateDigest(spec: NodeTunnel, secrets: ReadonlyMap<string, Uint8Array>): string {
  const c = spec.auth.certificate;
  if (!c) return '';
  const h = createHash('sha256');
  for (const k of [c.certKey, c.privateKeyKey, c.caKey]) {
    const v = k ? secrets.get(k) : undefined;
    h.update(String(v?.length ?? -1)).update(v ?? new Uint8Array(0));
  }
  return h.digest('hex');
}

/** What a kernel data plane may offer beyond the engine's port (XFRM does; the in-memory one does not). */
export interface DataplaneExtras {
  onEvent(fn: (ev: XfrmEvent) => void): () => void;
  installBypass(ports: number[]): Promise<void>;
  setResting(list: import('./xfrm-kernel.js').RestingPolicy[]): Promise<void>;
  dumpPolicies(): Promise<import('../xfrm/messages.js').XfrmPolicy[]>;
  owned(): Promise<{
    sas: import('../xfrm/messages.js').XfrmSa[];
    policies: import('../xfrm/messages.js').XfrmPolicy[];
  }>;
  deleteXfrmSa(sa: import('../xfrm/messages.js').XfrmSa): Promise<void>;
  deleteXfrmPolicy(p: import('../xfrm/messages.js').XfrmPolicy): Promise<void>;
  adoptPolicies(p: import('../xfrm/messages.js').XfrmPolicy[]): void;
  releaseAdopted(reqid?: number): Promise<number>;
}

export interface AgentOptions {
  settings: AgentSettings;
  kernel: KernelIpsec & Partial<DataplaneExtras>;
  metrics?: AgentMetrics;
  /** Enable kernel ESP-in-UDP decapsulation on the NAT-T sockets (XFRM data plane). */
  espInUdp?: (socket: import('node:dgram').Socket) => void;
  dataplane: string;
  logger: Logger;
  clock: Clock;
  random: Random;
  provider?: CryptoProvider;
  /** Transport override (tests); by default UDP sockets on the settings' addresses. */
  transport?: UdpTransport;
  /** Adds/removes floating gateway addresses (src/agent/floating.ts); without it floating tunnels are refused. */
  addresses?: AddressControl;
}

export class Agent implements ConfigLookup<PeerConfig> {
  readonly engine: Engine;
  readonly transport: UdpTransport;
  private readonly tunnels = new Map<string, TunnelEntry>();
  /** Kernel reqid per tunnel, inside the owned range (src/xfrm/ownership.ts). */
  private readonly reqids = new Map<string, number>();
  /** SAs a previous agent left in the kernel, kept carrying traffic until new ones replace them. */
  private stale: import('../xfrm/messages.js').XfrmSa[] = [];
  private adoptedPolicies: import('../xfrm/messages.js').XfrmPolicy[] = [];
  private firstApply = true;
  /** Floating addresses this agent holds (added to the interface, sockets bound) and the last desired state. */
  private readonly floating = new Set<string>();
  private readonly floatingFailed = new Map<string, string>();
  private floatingBusy = false;
  private lastDesired: DesiredTunnels | undefined;
  /** Key material of the tunnels as last applied (see keepKnownSecrets). */
  private knownSecrets = new Map<string, Uint8Array>();
  private readonly lastAcquire = new Map<string, number>();
  private problems: AgentStatus['configProblems'] = [];
  private keepaliveTimer: (() => void) | undefined;
  private readonly log: Logger;
  /** Route MTU / MSS clamping, proof of encryption, ESP-blocked fallback (src/agent/dataplane-guards.ts). */
  private readonly guards: DataplaneGuards;
  /** Tunnels moved to forced UDP encapsulation because ESP was blocked, with when and why. */
  private readonly forcedEncap = new Map<string, { since: string; message: string }>();

  constructor(private readonly o: AgentOptions) {
    this.log = o.logger;
    const s = o.settings;
    this.guards = new DataplaneGuards({
      settings: s,
      kernel: o.kernel,
      logger: o.logger,
      clock: o.clock,
      metrics: o.metrics,
      ikeSas: () => this.engine.ikeSas(),
      checkEspReceived: (sa, child) => this.engine.checkEspReceived(sa, child),
      tunnels: () => [...this.tunnels.keys()],
      onEspBlocked: (key, message) => this.forceEncapsulation(key, message),
    });
    this.transport =
      o.transport ??
      new UdpTransport({
        addresses: s.addresses,
        ikePort: s.ikePort,
        nattPort: s.nattPort,
        initRate: s.initRateLimit,
        onError: (m) => this.log.warn({ event: 'transport-error' }, m),
      });
    this.engine = new Engine(
      { sender: this.transport, clock: o.clock, random: o.random, kernel: o.kernel, config: this },
      { provider: o.provider ?? createNodeProvider(), cookieThreshold: s.cookieThreshold },
    );
    this.transport.onReceive((p, from, to) => this.engine.receive(p, from, to));
    this.engine.on((e) => this.onEvent(e));
  }

  async start(): Promise<void> {
    await this.transport.start();
    const k = this.o.kernel;
    if (this.o.espInUdp) {
      for (const s of this.transport.nattSockets()) {
        try {
          this.o.espInUdp(s);
        } catch (e) {
          // Without it the kernel cannot decapsulate ESP in UDP: tunnels through a NAT will not carry traffic.
          this.log.error(
            { event: 'esp-in-udp-unavailable' },
            `cannot enable ESP-in-UDP on the NAT-T socket: ${(e as Error).message}`,
          );
        }
      }
    }
    if (k.installBypass) await k.installBypass([this.o.settings.ikePort, this.o.settings.nattPort]);
    if (k.owned) {
      // Restart safety: what a previous agent left keeps carrying traffic until new SAs replace it.
      const owned = await k.owned();
      this.stale = owned.sas;
      // Our own IKE bypass policies (installed just above, no template) are not a previous agent's state.
      owned.policies = owned.policies.filter((p) => p.tmpls.length > 0);
      this.adoptedPolicies = owned.policies;
      // They keep their subnet pairs (no resting block/trap policy over them) until new CHILD SAs take over.
      k.adoptPolicies?.(owned.policies);
      if (owned.sas.length + owned.policies.length > 0) {
        this.log.info(
          { event: 'kernel-state-adopted', sas: owned.sas.length, policies: owned.policies.length },
          'found kernel state of a previous agent',
        );
      }
      // Whatever is still stale after two minutes goes (its tunnel never came back).
      this.o.clock.setTimer(120_000, () => void this.dropStale(undefined, 'stale after restart'));
    }
    k.onEvent?.((ev) => this.onKernelEvent(ev));
    this.guards.start();
    const tick = () => {
      // NAT keepalives (RFC 3948 §2.3) for IKE SAs whose own side is behind a NAT.
      for (const sa of this.engine.ikeSas()) {
        if (sa.state === 'established' && sa.natLocal) this.transport.keepalive(sa.local, sa.remote);
      }
      this.keepaliveTimer = this.o.clock.setTimer(20_000, tick);
    };
    this.keepaliveTimer = this.o.clock.setTimer(20_000, tick);
    this.log.info(
      {
        event: 'agent-started',
        node: this.o.settings.nodeName,
        addresses: this.o.settings.addresses,
        dataplane: this.o.dataplane,
      },
      'agent started',
    );
  }

  async stop(): Promise<void> {
    this.keepaliveTimer?.();
    this.guards.halt();
    for (const key of this.tunnels.keys()) this.engine.terminate(key, 'agent stopping');
    // Give the DELETEs a moment to leave, then stop.
    await new Promise((r) => setTimeout(r, 200));
    this.engine.shutdown();
    await this.engine.idle();
    // A stopping gateway gives its floating addresses up for the next elected node.
    for (const a of [...this.floating]) await this.releaseFloating(a, true);
    await this.guards.stop();
    await this.transport.stop();
    this.log.info({ event: 'agent-stopped' }, 'agent stopped');
  }

  // ---- desired state -------------------------------------------------------------------------------------------

  /**
   * A renewed certificate (the Secret changed, nothing else): swap the credentials of the running configuration
   * in place. Established SAs keep running; at its next IKE rekey the engine reauthenticates the IKE SA with the new
   * certificate (make-before-break, Engine.reauthenticate), and any other new IKE_AUTH uses it too. Bad new
   * material is reported and the old credentials stay in force.
   */
  private renewCredentials(key: string, entry: TunnelEntry, desired: DesiredTunnels, certDigest: string): void {
    try {
      const fresh = peerConfig(entry.spec, (k) => desired.secrets.get(k), { ikePort: this.o.settings.ikePort });
      entry.config!.auth = fresh.auth;
      entry.certDigest = certDigest;
      this.log.info(
        { event: 'credentials-renewed', tunnel: key },
        `tunnel ${key}: certificate renewed; used from the next IKE rekey (reauthentication) on`,
      );
    } catch (e) {
      if (!(e instanceof TunnelConfigError)) throw e;
      this.log.error(
        { event: 'credentials-renewal-failed', tunnel: key, reason: e.reason },
        `tunnel ${key}: renewed certificate not used: ${e.message}`,
      );
    }
  }

  /** Converge the engine on the desired tunnels: start new ones, restart changed ones, delete removed ones. */
  apply(desiredIn: DesiredTunnels): void {
    const desired = this.keepKnownSecrets(desiredIn);
    this.lastDesired = desired;
    this.problems = desired.problems ?? [];
    const wanted = new Map(desired.tunnels.map((t) => [tunnelKey(t), t]));
    // Floating addresses first: a tunnel on one waits (is not configured) until the address is ours.
    const floatingWanted = new Set(desired.tunnels.filter((t) => t.local.floating).map((t) => t.local.address));
    if ([...floatingWanted].some((a) => !this.floating.has(a) && !this.floatingFailed.has(a))) {
      void this.claimFloating(floatingWanted);
    }
    for (const [key, entry] of this.tunnels) {
      if (!wanted.has(key)) {
        this.tunnels.delete(key);
        this.forcedEncap.delete(key);
        this.engine.terminate(key, 'tunnel removed from the configuration');
        this.log.info({ event: 'tunnel-removed', tunnel: key }, `tunnel ${key} removed`);
        void entry;
      }
    }
    for (let [key, spec] of wanted) {
      const secretDigest = spec.auth.psk
        ? createHash('sha256')
            .update(desired.secrets.get(spec.auth.psk.key) ?? new Uint8Array(0))
            .digest('hex')
        : '';
      const fingerprint = `${canonical(spec)}|${secretDigest}`;
      const certDigest = certificateDigest(spec, desired.secrets);
      const existing = this.tunnels.get(key);
      if (existing && existing.fingerprint === fingerprint) {
        if (existing.certDigest !== certDigest && existing.config)
          this.renewCredentials(key, existing, desired, certDigest);
        if (existing.certDigest === certDigest || existing.config) continue;
      }
      if (existing) {
        this.engine.terminate(key, 'tunnel configuration changed');
        this.log.info({ event: 'tunnel-changed', tunnel: key }, `tunnel ${key} changed; renegotiating`);
      }
      const entry: TunnelEntry = { spec, fingerprint, certDigest };
      try {
        spec = { ...spec, reqid: this.reqidFor(key, spec.reqid) };
        entry.spec = spec;
        entry.config = peerConfig(spec, (k) => desired.secrets.get(k), {
          ikePort: this.o.settings.ikePort,
          fragmentSize: this.o.settings.ikeFragmentSize,
          retransmit: {
            timeoutMs: parseDuration(this.o.settings.retransmit.timeout) ?? 4000,
            base: this.o.settings.retransmit.base,
            tries: this.o.settings.retransmit.tries,
          },
        });
        // ESP was found blocked on this path: stay on UDP encapsulation across configuration changes.
        if (this.forcedEncap.has(key) && entry.config.natt === 'auto')
          entry.config = { ...entry.config, natt: 'force' };
        const failed = this.floatingFailed.get(spec.local.address);
        if (spec.local.floating && failed) throw new TunnelConfigError('FloatingAddressFailed', failed);
        if (!this.o.settings.addresses.includes(spec.local.address) && !this.floating.has(spec.local.address)) {
          if (spec.local.floating) continue; // being claimed; apply() runs again when it is ours
          throw new TunnelConfigError(
            'LocalAddressNotBound',
            `spec.local.address ${spec.local.address} is not one of the agent's addresses (${this.o.settings.addresses.join(', ')})`,
          );
        }
      } catch (e) {
        if (!(e instanceof TunnelConfigError)) throw e;
        entry.config = undefined;
        entry.configError = { reason: e.reason, message: e.message };
        this.log.error({ event: 'tunnel-config-error', tunnel: key, reason: e.reason }, e.message);
      }
      this.tunnels.set(key, entry);
      if (!existing) this.log.info({ event: 'tunnel-added', tunnel: key }, `tunnel ${key} added`);
      if (entry.config?.children.some((c) => c.startAction === 'start')) {
        // (not inside `metrics?.`: optional chaining would skip the initiation when there are no metrics)
        const sa = this.engine.initiate(entry.config);
        this.o.metrics?.initiated(sa.uid);
      }
    }
    for (const key of this.reqids.keys()) if (!this.tunnels.has(key)) this.reqids.delete(key);
    // Floating addresses no tunnel uses any more go (after the DELETEs of the removed tunnels left from them).
    for (const a of this.floating) {
      if (!floatingWanted.has(a)) this.o.clock.setTimer(500, () => void this.releaseFloating(a));
    }
    for (const a of this.floatingFailed.keys()) if (!floatingWanted.has(a)) this.floatingFailed.delete(a);
    void this.converge();
  }

  /**
   * A running tunnel whose unchanged spec suddenly lacks its key material (a Secret read between two writes of the
   * operator, a Secret deleted by mistake) keeps the material it has: tearing a working tunnel down for that would
   * lose traffic. A tunnel that never had its material still reports SecretNotFound.
   */
  private keepKnownSecrets(desired: DesiredTunnels): DesiredTunnels {
    const secrets = new Map(desired.secrets);
    const keep = new Map<string, Uint8Array>();
    for (const t of desired.tunnels) {
      const key = tunnelKey(t);
      const running = this.tunnels.get(key)?.config !== undefined;
      const a = t.auth;
      const refs = [a.psk?.key, a.certificate?.certKey, a.certificate?.privateKeyKey, a.certificate?.caKey];
      for (const k of refs) {
        if (!k) continue;
        const have = secrets.get(k);
        const known = this.knownSecrets.get(k);
        if (have) keep.set(k, have);
        else if (known && running) {
          secrets.set(k, known);
          keep.set(k, known);
          this.log.warn(
            { event: 'secret-missing-kept', tunnel: key },
            `key material ${k} is missing from the desired state; the running tunnel keeps what it has`,
          );
        }
      }
    }
    this.knownSecrets = keep;
    return { ...desired, secrets };
  }

  /** Add the wanted floating addresses to the interface and listen on them, then apply the desired state again. */
  private async claimFloating(wanted: Set<string>): Promise<void> {
    if (this.floatingBusy) return;
    this.floatingBusy = true;
    try {
      for (const a of wanted) {
        if (this.floating.has(a) || this.floatingFailed.has(a)) continue;
        const near = this.o.settings.addresses.find((x) => isIP(x) === isIP(a));
        try {
          if (!this.o.addresses) throw new Error('this agent has no address control (data plane without netlink)');
          if (!near) throw new Error(`the agent has no address of the same family to put ${a} next to`);
          await this.o.addresses.claim(a, near);
          const natt = await this.transport.bind(a);
          this.o.espInUdp?.(natt);
          this.floating.add(a);
          this.log.info({ event: 'floating-address-claimed', address: a }, `holding floating address ${a}`);
        } catch (e) {
          const message = `floating address ${a}: ${(e as Error).message}`;
          this.floatingFailed.set(a, message);
          this.log.error({ event: 'floating-address-failed', address: a }, message);
        }
      }
    } finally {
      this.floatingBusy = false;
    }
    if (this.lastDesired) this.apply(this.lastDesired);
  }

  private async releaseFloating(a: string, stopping = false): Promise<void> {
    const still = this.lastDesired?.tunnels.some((t) => t.local.floating && t.local.address === a);
    if ((still && !stopping) || !this.floating.has(a)) return;
    this.floating.delete(a);
    try {
      await this.transport.unbind(a);
      await this.o.addresses?.release(a);
      this.log.info({ event: 'floating-address-released', address: a }, `released floating address ${a}`);
    } catch (e) {
      this.log.error({ event: 'floating-address-failed', address: a }, (e as Error).message);
    }
  }

  /** ESP is blocked towards this tunnel's peer: renegotiate with forced UDP encapsulation (src/agent/esp-block.ts). */
  private forceEncapsulation(key: string, message: string): void {
    const entry = this.tunnels.get(key);
    const config = entry?.config;
    if (!entry || config?.natt !== 'auto') return;
    entry.config = { ...config, natt: 'force' };
    this.forcedEncap.set(key, { since: new Date(this.o.clock.wallNow()).toISOString(), message });
    this.log.warn({ event: 'esp-blocked', tunnel: key }, message);
    this.engine.terminate(key, 'ESP blocked; moving to UDP encapsulation');
    const sa = this.engine.initiate(entry.config);
    this.o.metrics?.initiated(sa.uid);
  }

  /** A reqid in the owned range for a tunnel, stable while the tunnel exists (probing past collisions). */
  private reqidFor(key: string, hint: number): number {
    const have = this.reqids.get(key);
    if (have !== undefined) return have;
    const used = new Set(this.reqids.values());
    const span = DEFAULT_OWNERSHIP.reqidMax - DEFAULT_OWNERSHIP.reqidMin + 1;
    let r = DEFAULT_OWNERSHIP.reqidMin + (hint % span);
    while (used.has(r)) r = DEFAULT_OWNERSHIP.reqidMin + ((r - DEFAULT_OWNERSHIP.reqidMin + 1) % span);
    this.reqids.set(key, r);
    return r;
  }

  /** Resting policies (fail closed / trap), then, after the first configuration, garbage collection. */
  private async converge(): Promise<void> {
    const k = this.o.kernel;
    try {
      if (k.setResting) {
        const list: RestingPolicy[] = [];
        for (const e of this.tunnels.values()) {
          const c = e.config;
          if (!c) continue;
          const trap = e.spec.startAction === 'trap' || e.spec.ike.dpd.action === 'hold';
          if (!trap && !e.spec.failClosed) continue;
          const child = c.children[0]!;
          for (const l of child.localTs) {
            for (const r of child.remoteTs) {
              list.push({
                kind: trap ? 'trap' : 'block',
                local: kernelSelectorOf(l),
                remote: kernelSelectorOf(r),
                reqid: child.reqid!,
                localAddress: c.local.address,
                remoteAddress: c.remote.address,
              });
            }
          }
        }
        await k.setResting(list);
      }
      if (this.firstApply && k.owned) {
        this.firstApply = false;
        await this.collectGarbage();
      }
    } catch (e) {
      this.log.error({ event: 'kernel-error', operation: 'converge' }, (e as Error).message);
      this.o.metrics?.kernelErrors.inc();
    }
  }

  /** Remove owned kernel state of tunnels that are no longer configured (after a restart). */
  private async collectGarbage(): Promise<void> {
    const k = this.o.kernel;
    const wanted = new Set(this.reqids.values());
    const gone = this.stale.filter((sa) => !wanted.has(sa.info.reqid));
    this.stale = this.stale.filter((sa) => wanted.has(sa.info.reqid));
    for (const sa of gone) await k.deleteXfrmSa?.(sa);
    let policies = 0;
    for (const p of this.adoptedPolicies) {
      const reqid = p.tmpls[0]?.reqid;
      if (reqid !== undefined && !wanted.has(reqid)) {
        await k.deleteXfrmPolicy?.(p);
        policies++;
      }
    }
    this.adoptedPolicies = [];
    if (gone.length + policies > 0) {
      this.log.info(
        { event: 'kernel-gc', sas: gone.length, policies },
        'removed kernel state of tunnels no longer configured',
      );
    }
  }

  /** Delete stale SAs (of one reqid once its new CHILD SA is in, or all of them). */
  private async dropStale(reqid: number | undefined, reason: string): Promise<void> {
    const drop = this.stale.filter((sa) => reqid === undefined || sa.info.reqid === reqid);
    this.stale = this.stale.filter((sa) => !drop.includes(sa));
    for (const sa of drop) {
      try {
        await this.o.kernel.deleteXfrmSa?.(sa);
      } catch (e) {
        this.log.error({ event: 'kernel-error', operation: 'delete-stale' }, (e as Error).message);
      }
    }
    // Adopted policies no new CHILD SA took over (its subnets changed, or the tunnel never came back) go too.
    let policies = 0;
    try {
      policies = (await this.o.kernel.releaseAdopted?.(reqid)) ?? 0;
    } catch (e) {
      this.log.error({ event: 'kernel-error', operation: 'release-adopted' }, (e as Error).message);
    }
    if (drop.length + policies === 0) return;
    this.log.info({ event: 'stale-sas-removed', reqid, count: drop.length, policies }, reason);
  }

  private findChild(spi: number): { sa: IkeSa; child: ChildSa } | undefined {
    for (const sa of this.engine.ikeSas()) {
      for (const child of sa.children) if (child.spiIn === spi || child.spiOut === spi) return { sa, child };
    }
    return undefined;
  }

  /** Kernel events: soft EXPIRE -> rekey; hard EXPIRE without a successor -> error and renegotiation; ACQUIRE -> start. */
  private onKernelEvent(ev: XfrmEvent): void {
    if (ev.kind === 'expire') {
      const spi = ev.sa.info.id.spi >>> 0;
      const found = this.findChild(spi);
      if (!found) return;
      const { child } = found;
      const owner = child.owner as IkeSa;
      const tunnel = owner.config.name;
      if (!ev.hard) {
        if (child.state === 'installed' && !child.replacedBy && owner.state === 'established') {
          this.log.info({ event: 'soft-expire', tunnel, spi: hex8(spi) }, 'kernel soft limit reached; rekeying');
          this.engine.rekeyChild(owner, child);
        }
        return;
      }
      if (child.state === 'installed' || child.state === 'rekeying') {
        const message = `CHILD SA ${hex8(spi)} reached its hard limit before it could be rekeyed; renegotiating`;
        const entry = this.tunnels.get(tunnel);
        if (entry)
          entry.lastError = { code: 'HARD_EXPIRY', message, at: new Date(this.o.clock.wallNow()).toISOString() };
        this.log.error({ event: 'hard-expire', tunnel, spi: hex8(spi) }, message);
        this.engine.deleteChild(owner, child, 'hard expiry');
        if (child.config.startAction !== 'none') this.engine.createChild(owner, child.config);
      }
      return;
    }
    if (ev.kind === 'acquire') {
      const reqid = ev.tmpls[0]?.reqid;
      const entry = [...this.tunnels.values()].find((e) => e.spec.reqid === reqid);
      if (!entry?.config) return;
      const key = tunnelKey(entry.spec);
      const now = this.o.clock.now();
      if (now - (this.lastAcquire.get(key) ?? Number.NEGATIVE_INFINITY) < 5000) return;
      this.lastAcquire.set(key, now);
      const busy = this.engine
        .ikeSas()
        .some((s) => s.config.name === key && (s.state === 'connecting' || s.state === 'established'));
      if (busy) return;
      this.log.info({ event: 'acquire', tunnel: key }, 'traffic for a trapped tunnel; negotiating');
      // (not inside `metrics?.`: optional chaining would skip the initiation when there are no metrics)
      const sa = this.engine.initiate(entry.config);
      this.o.metrics?.initiated(sa.uid);
    }
  }

  // ---- ConfigLookup (the engine asks when a peer initiates) -----------------------------------------------------

  private configs(): PeerConfig[] {
    const out: PeerConfig[] = [];
    for (const e of this.tunnels.values()) if (e.config) out.push(e.config);
    return out;
  }

  byAddresses(local: Endpoint, remote: Endpoint): PeerConfig[] {
    const all = this.configs().filter((c) => c.local.address === local.address);
    const exact = all.filter((c) => c.remote.address === remote.address);
    // A peer behind a NAT arrives from another address: its identity decides in IKE_AUTH.
    return exact.length > 0 ? exact : all;
  }

  byIdentities(remoteId: ConfiguredIdentity, localId: ConfiguredIdentity | undefined, candidates: PeerConfig[]) {
    return candidates.find(
      (c) =>
        (c.remoteId === undefined || sameIdentity(c.remoteId, remoteId)) &&
        (localId === undefined || sameIdentity(c.localId, localId)),
    );
  }

  // ---- events and status ---------------------------------------------------------------------------------------

  private onEvent(e: EngineEvent): void {
    this.o.metrics?.onEngineEvent(e);
    if (e.type === 'child-installed' || e.type === 'child-deleted' || e.type === 'ike-deleted') this.guards.changed();
    const tunnel = 'sa' in e ? e.sa.peer : undefined;
    const entry = tunnel ? this.tunnels.get(tunnel) : undefined;
    const base = { event: e.type, tunnel };
    switch (e.type) {
      case 'ike-established':
        this.log.info(
          { ...base, spiI: e.sa.spiI, spiR: e.sa.spiR, algorithms: e.algorithms, nat: e.natLocal || e.natRemote },
          `IKE SA established with ${tunnel}`,
        );
        break;
      case 'child-installed':
        // The new CHILD SA carries the tunnel now: SAs a previous agent left for it can go.
        // (after a grace: the peer may still send on them until it has installed its side of the new CHILD SA)
        if (this.stale.length > 0) {
          const reqid = e.sa.reqid;
          this.o.clock.setTimer(STALE_GRACE_MS, () => void this.dropStale(reqid, 'replaced after restart'));
        }
        this.log.info(
          {
            ...base,
            spiIn: hex8(e.sa.spiIn),
            spiOut: hex8(e.sa.spiOut),
            algorithms: e.algorithms,
            rekey: e.rekeyOf !== undefined,
          },
          `CHILD SA installed for ${tunnel}`,
        );
        break;
      case 'ike-failed':
      case 'child-failed':
        if (entry)
          entry.lastError = {
            code: e.failure.code,
            message: e.failure.message,
            at: new Date(this.o.clock.wallNow()).toISOString(),
          };
        this.log.warn({ ...base, code: e.failure.code }, e.failure.message);
        break;
      case 'peer-dead':
        if (entry)
          entry.lastError = {
            code: 'PEER_DEAD',
            message: `peer did not answer liveness checks`,
            at: new Date(this.o.clock.wallNow()).toISOString(),
          };
        this.log.warn(base, `peer of ${tunnel} is dead`);
        break;
      case 'kernel-error':
        this.log.error({ ...base, operation: e.operation }, e.message);
        break;
      default:
        this.log.info(base, `${e.type} ${tunnel ?? ''}`.trim());
    }
  }

  private wall(monotonic: number | undefined): string | undefined {
    if (monotonic === undefined) return undefined;
    return new Date(this.o.clock.wallNow() + (monotonic - this.o.clock.now())).toISOString();
  }

  private async childView(sa: IkeSa, c: ChildSa): Promise<ChildSaView> {
    const view: ChildSaView = {
      name: c.config.name,
      state: c.state,
      spiIn: hex8(c.spiIn),
      spiOut: hex8(c.spiOut),
      algorithms: c.proposal ? formatChild(c) : '',
      localTs: c.localTs.map(selectorText),
      remoteTs: c.remoteTs.map(selectorText),
      mode: c.mode,
      encapsulation: sa.natDetected,
    };
    if (c.installedAt !== undefined) view.installedAt = new Date(c.installedAt).toISOString();
    const rekeyAt = this.wall(c.rekeyAt);
    if (rekeyAt) view.rekeyAt = rekeyAt;
    if (c.inboundInstalled && c.outboundInstalled) {
      try {
        const inC = await this.o.kernel.querySa({ spi: c.spiIn, protocol: 'esp', destination: sa.local.address });
        const outC = await this.o.kernel.querySa({ spi: c.spiOut, protocol: 'esp', destination: sa.remote.address });
        if (inC && outC) {
          view.bytesIn = inC.bytes.toString();
          view.packetsIn = inC.packets.toString();
          view.bytesOut = outC.bytes.toString();
          view.packetsOut = outC.packets.toString();
        }
      } catch {
        // counters are best effort
      }
    }
    return view;
  }

  /** Counts for the metrics gauges. */
  async metricsSnapshot(): Promise<import('./metrics.js').SaSnapshot> {
    const s = await this.status();
    const ikeByState = new Map<string, number>();
    let children = 0;
    const traffic: import('./metrics.js').SaSnapshot['traffic'] = [];
    for (const t of s.tunnels) {
      ikeByState.set(t.ikeSA.state, (ikeByState.get(t.ikeSA.state) ?? 0) + 1);
      const key = `${t.namespace}/${t.name}`;
      let bi = 0;
      let bo = 0;
      let pi = 0;
      let po = 0;
      for (const c of t.childSAs) {
        if (c.state === 'installed') children++;
        bi += Number(c.bytesIn ?? 0);
        bo += Number(c.bytesOut ?? 0);
        pi += Number(c.packetsIn ?? 0);
        po += Number(c.packetsOut ?? 0);
      }
      traffic.push({ tunnel: key, direction: 'in', bytes: bi, packets: pi });
      traffic.push({ tunnel: key, direction: 'out', bytes: bo, packets: po });
    }
    return { ikeByState, children, traffic };
  }

  async status(): Promise<AgentStatus> {
    const tunnels: TunnelView[] = [];
    for (const [key, entry] of [...this.tunnels.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const sas = this.engine.ikeSas().filter((s) => s.config.name === key && s.state !== 'destroyed');
      const sa = sas.find((s) => s.state === 'established') ?? sas.find((s) => s.state === 'connecting') ?? sas[0];
      const ike: IkeSaView = sa
        ? {
            state:
              sa.state === 'established'
                ? 'Established'
                : sa.state === 'connecting'
                  ? 'Connecting'
                  : sa.state === 'deleting'
                    ? 'Deleting'
                    : 'Rekeying',
            spiI: spiHex(sa.spiI),
            spiR: spiHex(sa.spiR),
            initiator: sa.originalInitiator,
            algorithms: sa.algorithms(),
            local: `${sa.local.address}:${sa.local.port}`,
            remote: `${sa.remote.address}:${sa.remote.port}`,
            natDetected: sa.natDetected,
          }
        : {
            state: 'Down',
            spiI: '0000000000000000',
            spiR: '0000000000000000',
            initiator: false,
            algorithms: '',
            local: `${entry.spec.local.address}:${this.o.settings.ikePort}`,
            remote: `${entry.spec.remote.address}:${entry.spec.remote.port}`,
            natDetected: false,
          };
      if (sa?.establishedAt !== undefined) ike.establishedAt = new Date(sa.establishedAt).toISOString();
      const rekeyAt = this.wall(sa?.rekeyAt);
      if (rekeyAt) ike.rekeyAt = rekeyAt;
      if (entry.lastError) ike.lastError = entry.lastError;
      const children: ChildSaView[] = [];
      for (const s of sas)
        for (const c of s.children) if (c.state !== 'deleted') children.push(await this.childView(s, c));
      const view: TunnelView = {
        namespace: entry.spec.namespace,
        name: entry.spec.name,
        local: entry.spec.local.address,
        remote: entry.spec.remote.address,
        ikeSA: ike,
        childSAs: children,
      };
      if (entry.configError) view.configError = entry.configError;
      const mtu = this.guards.mtu?.view(key);
      if (mtu) view.mtu = mtu;
      const espBlocked = this.forcedEncap.get(key);
      if (espBlocked) view.espBlocked = espBlocked;
      const encrypted = this.guards.encryption?.view(key);
      if (encrypted) view.encrypted = encrypted;
      tunnels.push(view);
    }
    return {
      node: this.o.settings.nodeName,
      time: new Date(this.o.clock.wallNow()).toISOString(),
      dataplane: this.o.dataplane,
      tunnels,
      configProblems: this.problems,
    };
  }
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function formatChild(c: ChildSa): string {
  // swanctl-style names of the chosen ESP transforms.
  return c.proposal ? formatProposalSafe(c) : '';
}

function formatProposalSafe(c: ChildSa): string {
  try {
    return formatProposal(c.proposal!);
  } catch {
    return '';
  }
}

/** A selector as CIDR when it is one (198.18.1.0/24), else as a range; with protocol/ports when restricted. */
export function selectorText(ts: AddressRangeSelector): string {
  const start = ts.startAddress;
  const end = ts.endAddress;
  let prefix = start.length * 8;
  for (let bit = 0; bit < start.length * 8; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if ((start[byte]! & mask) !== (end[byte]! & mask)) {
      prefix = bit;
      break;
    }
  }
  let cidr = true;
  for (let bit = prefix; bit < start.length * 8; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if ((start[byte]! & mask) !== 0 || (end[byte]! & mask) === 0) cidr = false;
  }
  const addr = cidr ? `${formatIp(start)}/${prefix}` : `${formatIp(start)}-${formatIp(end)}`;
  const proto =
    ts.ipProtocol !== 0
      ? `[${ts.ipProtocol}${ts.startPort === 0 && ts.endPort === 0xffff ? '' : `/${ts.startPort === ts.endPort ? ts.startPort : `${ts.startPort}-${ts.endPort}`}`}]`
      : '';
  return `${addr}${proto}`;
}
