/**
 * The IKEv2 engine: owns the IKE SAs of one node, routes received packets to them, answers new IKE_SA_INITs
 * (with stateless cookies under load), starts negotiations, and schedules rekeys and liveness checks.
 * Pure: everything external comes in through the ports (src/ike/ports.ts).
 */

import { peekHeader } from './codec/header.js';
import { parseIp } from './codec/ip.js';
import { decodeMessage, encodeMessage, type IkeMessage } from './codec/message.js';
import { cookieNotify, cookieOf, notify } from './codec/payloads/notify.js';
import { ExchangeType, HeaderFlag, IKE_HEADER_LENGTH, NotifyType, PayloadType, ProtocolId } from './constants.js';
import type { CryptoProvider } from './crypto/provider.js';
import type { Endpoint, EnginePorts } from './ports.js';
import type { ChildSa } from './sa/child-sa.js';
import type { ChildConfig, PeerConfig } from './sa/config.js';
import type { EngineContext } from './sa/context.js';
import { CookieJar } from './sa/cookie.js';
import type { EngineEvent } from './sa/events.js';
import { IkeSa, type IkeTask, type PacketMeta, spiHex } from './sa/ike-sa.js';
import { ChildCreateTask } from './tasks/child-create.js';
import { ChildDeleteTask } from './tasks/child-delete.js';
import { ChildRekeyTask } from './tasks/child-rekey.js';
import { EspCheckTask } from './tasks/esp-check.js';
import { IkeAuthTask } from './tasks/ike-auth.js';
import { IkeDeleteTask } from './tasks/ike-delete.js';
import { IkeDpdTask } from './tasks/ike-dpd.js';
import { IkeInitTask } from './tasks/ike-init.js';
import { IkeNatdTask } from './tasks/ike-natd.js';
import { IkeRekeyTask } from './tasks/ike-rekey.js';
import { InformationalResponder } from './tasks/informational.js';

function compareAddresses(a: string, b: string): number {
  const x = parseIp(a);
  const y = parseIp(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

export interface EngineOptions {
  provider: CryptoProvider;
  /** Half-open IKE SAs (as responder) above which IKE_SA_INIT must carry a valid COOKIE (RFC 7296 §2.6). */
  cookieThreshold?: number;
  /** Nonce length in bytes (default 32). */
  nonceLength?: number;
  /** Delay before re-initiating after a failure, doubled per failure up to maxRestartDelayMs. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** First reqid handed out (reqids identify our CHILD SAs in the kernel). */
  reqidBase?: number;
  /**
   * Answer ESP_RECEIVED_QUERY notifies with the CHILD SA's inbound packet count (default true). Off, the engine
   * ignores them as any other implementation ignores an unknown status notify (tests of foreign peers).
   */
  answerEspQueries?: boolean;
}

export interface EngineStats {
  received: number;
  droppedMalformed: number;
  droppedUnknownSpi: number;
  cookiesSent: number;
  cookiesRejected: number;
  initRejectedNoConfig: number;
}

/** How long a reauthentication may take before the old IKE SA is rekeyed instead. */
export const REAUTH_FALLBACK_MS = 60_000;
/** How long the old IKE SA (and its CHILD SAs) stays after its replacement carries every CHILD SA. */
export const REAUTH_GRACE_MS = 3000;

export type EngineListener = (event: EngineEvent) => void;

export class Engine {
  readonly stats: EngineStats = {
    received: 0,
    droppedMalformed: 0,
    droppedUnknownSpi: 0,
    cookiesSent: 0,
    cookiesRejected: 0,
    initRejectedNoConfig: 0,
  };
  private readonly byLocalSpi = new Map<string, IkeSa>();
  /** IKE SAs by peer configuration name. */
  private readonly byPeer = new Map<string, Set<IkeSa>>();
  /** Responder SAs by initiator SPI and source, for retransmitted IKE_SA_INIT requests. */
  private readonly halfOpen = new Map<string, IkeSa>();
  private readonly listeners: EngineListener[] = [];
  private readonly reqids = new Map<string, number>();
  private readonly policyUsers = new Map<string, Set<number>>();
  private readonly restartBackoff = new Map<string, number>();
  private readonly restartPending = new Set<string>();
  private uid = 0;
  private nextReqid: number;
  private readonly cookies: CookieJar;
  private readonly ctx: EngineContext;
  private readonly options: Required<EngineOptions>;
  private stopped = false;

  constructor(
    readonly ports: EnginePorts<PeerConfig>,
    options: EngineOptions,
  ) {
    this.options = {
      cookieThreshold: 50,
      nonceLength: 32,
      restartDelayMs: 2000,
      maxRestartDelayMs: 120_000,
      reqidBase: 0x10000,
      answerEspQueries: true,
      ...options,
    };
    this.nextReqid = this.options.reqidBase;
    this.cookies = new CookieJar(options.provider, ports.random, () => ports.clock.now());
    this.ctx = this.makeContext();
  }

  on(listener: EngineListener): void {
    this.listeners.push(listener);
  }

  /** Every IKE SA the engine holds (including connecting and rekeyed ones). */
  ikeSas(): IkeSa[] {
    return [...new Set(this.byLocalSpi.values())];
  }

  /** Established IKE SAs of a peer configuration. */
  established(peer: string): IkeSa[] {
    return [...(this.byPeer.get(peer) ?? [])].filter((s) => s.state === 'established');
  }

  /** Responder IKE SAs still negotiating (what the cookie threshold counts). */
  halfOpenCount(): number {
    return this.halfOpen.size;
  }

  // ---- starting and stopping -----------------------------------------------------------------------------------

  /** Start negotiating with a peer as initiator: IKE_SA_INIT, then IKE_AUTH with the first CHILD SA. */
  initiate(config: PeerConfig): IkeSa {
    return this.start(
      config,
      config.children.filter((c) => c.startAction !== 'none'),
    );
  }

  /** A new IKE SA as initiator that creates the CHILD SAs of `children` (the first in IKE_AUTH unless childless). */
  private start(config: PeerConfig, children: ChildConfig[]): IkeSa {
    const sa = new IkeSa(this.ctx, true, config, {
      spiI: this.newSpi(),
      spiR: new Uint8Array(8),
      local: config.local,
      remote: config.remote,
      responderTasks: (s, req) => this.responderTasks(s, req),
    });
    this.ctx.register(sa);
    const tasks: IkeTask[] = [new IkeInitTask(sa), new IkeNatdTask(sa), new IkeAuthTask(sa)];
    const [first, ...rest] = children;
    const childless = config.childless === 'force' || (config.childless === 'prefer' && first === undefined);
    if (first && !childless) tasks.push(new ChildCreateTask(sa, { config: first, inAuth: true }));
    sa.queue(tasks);
    for (const c of childless && first ? [first, ...rest] : rest) {
      sa.queue([new ChildCreateTask(sa, { config: c, inAuth: false })]);
    }
    // No half-open timer for the initiator: its retransmissions bound the attempt (RFC 7296 §2.4).
    return sa;
  }

  /**
   * Reauthenticate an IKE SA whose credentials changed (RFC 7296 §2.8.3): a new IKE SA from scratch, with IKE_AUTH
   * under the current configuration and a CHILD SA for each configuration the old SA carries; once they are all
   * installed (they share reqids and policies with the old ones, so traffic moves over), the old SA is deleted.
   * Should the new SA fail, the old one is rekeyed as usual a minute later and keeps the tunnel up.
   */
  reauthenticate(old: IkeSa): IkeSa {
    const carried = old.config.children.filter((c) =>
      old.children.some((x) => x.config.name === c.name && x.state === 'installed'),
    );
    const sa = this.start(old.config, carried);
    sa.reauthOf = old.uid;
    sa.reauthChildren = carried.map((c) => c.name);
    old.reauthBy = sa;
    old.setTimer('reauth-fallback', REAUTH_FALLBACK_MS, () => {
      if (old.state === 'established' && old.reauthBy === sa && sa.state !== 'established') {
        old.reauthBy = undefined;
        this.rekeyIke(old);
      }
    });
    if (carried.length === 0) this.finishReauth(sa);
    return sa;
  }

  /** The reauthenticating SA carries every CHILD SA it must: delete the SA it replaces. */
  private finishReauth(sa: IkeSa): void {
    if (sa.reauthOf === undefined || sa.state !== 'established') return;
    const done = sa.reauthChildren.every((name) =>
      sa.children.some((c) => c.config.name === name && c.state === 'installed' && c.outboundInstalled),
    );
    if (!done) return;
    const old = this.ikeSas().find((o) => o.uid === sa.reauthOf);
    sa.reauthOf = undefined;
    // A grace period, as after INITIAL_CONTACT: the peer moves its outbound traffic to a replacing CHILD SA only
    // once the new inbound SA carries traffic (or after a second), and needs its old SAs until then.
    if (old) {
      sa.setTimer('reauth-delete', REAUTH_GRACE_MS, () => {
        if (old.state === 'established') this.deleteIke(old, 'reauthenticated');
      });
    }
  }

  /** Delete every IKE SA of a peer (sending DELETE), e.g. when its configuration is removed. */
  terminate(peer: string, reason = 'terminated'): void {
    this.restartPending.delete(peer);
    for (const sa of [...(this.byPeer.get(peer) ?? [])]) {
      if (sa.state === 'established') sa.queue([new IkeDeleteTask(sa, reason)]);
      else sa.destroy(reason);
    }
  }

  /** Create an additional CHILD SA on an established IKE SA. */
  createChild(sa: IkeSa, config: ChildConfig): void {
    sa.queue([new ChildCreateTask(sa, { config, inAuth: false })]);
  }

  rekeyChild(sa: IkeSa, child: ChildSa): void {
    sa.queue([new ChildRekeyTask(sa, child)]);
  }

  rekeyIke(sa: IkeSa): void {
    sa.queue([new IkeRekeyTask(sa)]);
  }

  deleteChild(sa: IkeSa, child: ChildSa, reason = 'deleted'): void {
    sa.queue([new ChildDeleteTask(sa, [child], reason)]);
  }

  deleteIke(sa: IkeSa, reason = 'deleted'): void {
    sa.queue([new IkeDeleteTask(sa, reason)]);
  }

  checkLiveness(sa: IkeSa): void {
    sa.queue([new IkeDpdTask(sa)]);
  }

  /**
   * A liveness check that also asks the peer how many packets it received on `child` (ipsec-mesh peers answer;
   * others answer empty). The answer lands in `child.peerReceived`, and in `sa.lastInbound` like any answer.
   */
  checkEspReceived(sa: IkeSa, child: ChildSa): void {
    sa.queue([new EspCheckTask(sa, child)]);
  }

  /** Stop: destroy every SA without sending anything (kernel state is removed). */
  shutdown(): void {
    this.stopped = true;
    for (const sa of this.ikeSas()) sa.destroy('shutdown');
  }

  /** Resolves when no SA has queued work (tests). */
  async idle(): Promise<void> {
    await Promise.all(this.ikeSas().map((s) => s.tm.idle()));
  }

  // ---- receiving -----------------------------------------------------------------------------------------------

  /** A UDP datagram arrived (without the non-ESP marker). Never throws. */
  receive(packet: Uint8Array, from: Endpoint, to: Endpoint): void {
    if (this.stopped) return;
    this.stats.received++;
    let h: ReturnType<typeof peekHeader>;
    try {
      h = peekHeader(packet);
    } catch {
      this.stats.droppedMalformed++;
      return;
    }
    if (h.majorVersion !== 2 || h.length !== packet.length || packet.length < IKE_HEADER_LENGTH) {
      this.stats.droppedMalformed++;
      return;
    }
    const senderIsOriginalInitiator = (h.flags & HeaderFlag.INITIATOR) !== 0;
    const isResponse = (h.flags & HeaderFlag.RESPONSE) !== 0;
    const header = { exchangeType: h.exchangeType, messageId: h.messageId, isResponse };
    const meta: PacketMeta = { from, to };
    if (
      h.exchangeType === ExchangeType.IKE_SA_INIT &&
      !isResponse &&
      senderIsOriginalInitiator &&
      h.responderSpi.every((b) => b === 0)
    ) {
      this.receiveInitRequest(packet, h.initiatorSpi, header, meta);
      return;
    }
    const ourSpi = senderIsOriginalInitiator ? h.responderSpi : h.initiatorSpi;
    const sa = this.byLocalSpi.get(spiHex(ourSpi));
    if (!sa || sa.state === 'destroyed') {
      this.stats.droppedUnknownSpi++;
      return;
    }
    // The other SPI must match too, once known (the IKE_SA_INIT response tells the initiator the responder SPI).
    const theirSpi = senderIsOriginalInitiator ? h.initiatorSpi : h.responderSpi;
    const known = sa.originalInitiator ? sa.spiR : sa.spiI;
    const learning = sa.originalInitiator && h.exchangeType === ExchangeType.IKE_SA_INIT && known.every((b) => b === 0);
    if (!learning && spiHex(theirSpi) !== spiHex(known)) {
      this.stats.droppedUnknownSpi++;
      return;
    }
    if (senderIsOriginalInitiator === sa.originalInitiator) {
      // Both claim the same role: not for this SA.
      this.stats.droppedUnknownSpi++;
      return;
    }
    void sa.tm.handle(header, packet, meta);
  }

  private receiveInitRequest(
    packet: Uint8Array,
    spiI: Uint8Array,
    header: { exchangeType: number; messageId: number; isResponse: boolean },
    meta: PacketMeta,
  ): void {
    const key = `${spiHex(spiI)}|${meta.from.address}|${meta.from.port}`;
    const existing = this.halfOpen.get(key);
    if (existing && existing.state !== 'destroyed') {
      // A retransmission: the task manager answers from its cache.
      void existing.tm.handle(header, packet, meta);
      return;
    }
    if (header.messageId !== 0) {
      this.stats.droppedMalformed++;
      return;
    }
    let msg: IkeMessage;
    try {
      msg = decodeMessage(packet);
    } catch {
      this.stats.droppedMalformed++;
      return;
    }
    const nonce = msg.payloads.find((p) => p.type === PayloadType.NONCE);
    if (this.halfOpenCount() >= this.options.cookieThreshold) {
      const first = msg.payloads[0];
      const cookie = first?.type === PayloadType.NOTIFY && first.notifyType === NotifyType.COOKIE ? first : undefined;
      const ni = nonce?.type === PayloadType.NONCE ? nonce.data : new Uint8Array(0);
      if (!cookie || !this.cookies.verify(cookieOf(cookie), ni, meta.from.address, spiI)) {
        if (cookie) this.stats.cookiesRejected++;
        this.stats.cookiesSent++;
        this.sendStateless(msg, cookieNotify(this.cookies.make(ni, meta.from.address, spiI)), meta);
        return;
      }
    }
    const candidates = this.ports.config.byAddresses(meta.to, meta.from);
    if (candidates.length === 0) {
      this.stats.initRejectedNoConfig++;
      this.sendStateless(msg, notify(NotifyType.NO_PROPOSAL_CHOSEN), meta);
      return;
    }
    const sa = new IkeSa(this.ctx, false, candidates[0]!, {
      spiI: spiI.slice(),
      spiR: this.newSpi(),
      local: meta.to,
      remote: meta.from,
      candidates,
      responderTasks: (s, req) => this.responderTasks(s, req),
    });
    this.ctx.register(sa);
    this.halfOpen.set(key, sa);
    sa.halfOpenKey = key;
    sa.setTimer('half-open', sa.config.halfOpenTimeoutMs, () => {
      if (sa.state === 'connecting') sa.destroy('half-open timeout');
    });
    void sa.tm.handle(header, packet, meta);
  }

  /** Answer an IKE_SA_INIT without keeping state (COOKIE, or NO_PROPOSAL_CHOSEN when no tunnel matches). */
  private sendStateless(req: IkeMessage, payload: ReturnType<typeof notify>, meta: PacketMeta): void {
    const res: IkeMessage = {
      initiatorSpi: req.initiatorSpi,
      responderSpi: new Uint8Array(8),
      exchangeType: ExchangeType.IKE_SA_INIT,
      flags: HeaderFlag.RESPONSE,
      messageId: 0,
      payloads: [payload],
    };
    this.ports.sender.send(encodeMessage(res), meta.to, meta.from);
  }

  private responderTasks(sa: IkeSa, req: IkeMessage): IkeTask[] {
    switch (req.exchangeType) {
      case ExchangeType.IKE_SA_INIT:
        if (sa.state !== 'connecting' || sa.keys) return [];
        return [
          new IkeInitTask(sa),
          new IkeNatdTask(sa),
          new IkeAuthTask(sa),
          new ChildCreateTask(sa, { inAuth: true }),
        ];
      case ExchangeType.CREATE_CHILD_SA: {
        const saP = IkeSa.payload(req, PayloadType.SA);
        if (saP?.proposals[0]?.protocol === ProtocolId.IKE) return [new IkeRekeyTask(sa)];
        return [new ChildCreateTask(sa, { inAuth: false })];
      }
      case ExchangeType.INFORMATIONAL:
        return [new InformationalResponder(sa)];
      default:
        return [];
    }
  }

  // ---- context for SAs and tasks -------------------------------------------------------------------------------

  private newSpi(): Uint8Array {
    for (;;) {
      const spi = this.ports.random(8);
      if (spi.some((b) => b !== 0) && !this.byLocalSpi.has(spiHex(spi))) return spi;
    }
  }

  private emit(event: EngineEvent): void {
    if (event.type === 'ike-established' || event.type === 'child-installed') this.restartBackoff.delete(event.sa.peer);
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A listener's failure must not break the engine.
      }
    }
  }

  private makeContext(): EngineContext {
    const engine = this;
    return {
      ports: this.ports,
      provider: this.options.provider,
      nonceLength: this.options.nonceLength,
      answerEspQueries: this.options.answerEspQueries,
      emit: (e) => engine.emit(e),
      register(sa) {
        engine.byLocalSpi.set(spiHex(sa.localSpi), sa);
        engine.indexPeer(sa, undefined);
      },
      unregister(sa) {
        const key = spiHex(sa.localSpi);
        if (engine.byLocalSpi.get(key) === sa) engine.byLocalSpi.delete(key);
        if (sa.halfOpenKey !== undefined) engine.halfOpen.delete(sa.halfOpenKey);
        engine.byPeer.get(sa.config.name)?.delete(sa);
      },
      configChanged: (sa, oldName) => engine.indexPeer(sa, oldName),
      nextUid: () => ++engine.uid,
      reqidFor(peer, child) {
        const key = `${peer}\u0000${child}`;
        let r = engine.reqids.get(key);
        if (r === undefined) {
          r = engine.nextReqid++;
          engine.reqids.set(key, r);
        }
        return r;
      },
      acquirePolicy(key, childUid) {
        let users = engine.policyUsers.get(key);
        if (!users) {
          users = new Set();
          engine.policyUsers.set(key, users);
        }
        users.add(childUid);
        return users.size === 1;
      },
      releasePolicy(key, childUid) {
        const users = engine.policyUsers.get(key);
        if (!users?.delete(childUid)) return false;
        if (users.size > 0) return false;
        engine.policyUsers.delete(key);
        return true;
      },
      sasOfPeer: (name) => [...(engine.byPeer.get(name) ?? [])].filter((s) => s.state !== 'destroyed'),
      onIkeEstablished: (sa) => {
        engine.scheduleIke(sa);
        engine.finishReauth(sa);
      },
      onChildInstalled: (sa, child) => {
        engine.scheduleChild(sa, child);
        engine.resolveDuplicates(sa.config.name);
        engine.finishReauth(sa);
      },
      scheduleChildRekey(sa, child, delayMs) {
        engine.childTimer(child, 'rekey', delayMs, () => engine.queueChildRekey(child));
        void sa;
      },
      scheduleChildCreate(sa, config, delayMs) {
        sa.setTimer(`create-${config.name}`, delayMs, () => {
          if (sa.state === 'established') engine.createChild(sa, config);
        });
      },
      scheduleIkeRekey(sa, delayMs) {
        sa.setTimer('rekey', delayMs, () => {
          if (sa.state === 'established') engine.rekeyIke(sa);
        });
      },
      scheduleRestart: (config, reason) => engine.scheduleRestart(config, reason),
    };
  }

  private indexPeer(sa: IkeSa, oldName: string | undefined): void {
    if (oldName !== undefined) this.byPeer.get(oldName)?.delete(sa);
    let set = this.byPeer.get(sa.config.name);
    if (!set) {
      set = new Set();
      this.byPeer.set(sa.config.name, set);
    }
    set.add(sa);
  }

  /**
   * Both ends of a tunnel may initiate at once (a mesh starts every tunnel from both sides): then two IKE SAs with
   * their CHILD SAs exist. RFC 7296 leaves the choice open; both ends here keep the IKE SA initiated by the end with
   * the lower IKE address, and that end's peer deletes its own duplicate once the kept SA carries every CHILD SA
   * (make-before-break: the remaining SAs share reqid and policies, so traffic just moves over).
   */
  resolveDuplicates(peer: string): void {
    // An SA being reauthenticated is no duplicate: its replacement deletes it.
    const sas = [...(this.byPeer.get(peer) ?? [])].filter(
      (s) => s.state === 'established' && (s.reauthBy === undefined || s.reauthBy.state === 'destroyed'),
    );
    const ours = sas.filter((s) => s.originalInitiator);
    const theirs = sas.filter((s) => !s.originalInitiator);
    if (ours.length === 0 || theirs.length === 0) return;
    const mine = ours[0]!;
    if (compareAddresses(mine.local.address, mine.remote.address) < 0) return; // we are lower: the peer gives way
    const keeper = theirs.find((s) =>
      s.config.children
        .filter((c) => c.startAction !== 'none')
        .every((c) =>
          s.children.some((x) => x.config.name === c.name && x.state === 'installed' && x.outboundInstalled),
        ),
    );
    if (!keeper) return;
    for (const dup of ours) {
      if (dup.state === 'established' && !dup.tm.initiatorTasks().some((t) => t instanceof IkeDeleteTask)) {
        this.deleteIke(dup, 'duplicate of an IKE SA the peer initiated');
      }
    }
  }

  /** Rekey and hard-expiry timers of an established IKE SA, and its liveness checks. */
  private scheduleIke(sa: IkeSa): void {
    if (sa.halfOpenKey !== undefined) {
      this.halfOpen.delete(sa.halfOpenKey);
      sa.halfOpenKey = undefined;
    }
    const life = sa.config.ikeLifetime;
    if (life.rekeyMs > 0) {
      const delay = life.rekeyMs - sa.jitter(life.jitterMs);
      sa.rekeyAt = this.ports.clock.now() + delay;
      sa.setTimer('rekey', delay, () => {
        if (sa.state !== 'established') return;
        // A renewed certificate: an IKE rekey would keep the old authentication, so authenticate anew.
        const renewed =
          sa.authUsed !== undefined && sa.authUsed !== sa.config.auth && sa.config.auth.method === 'certificate';
        if (renewed && sa.reauthBy === undefined) this.reauthenticate(sa);
        else this.rekeyIke(sa);
      });
      sa.setTimer('hard', life.rekeyMs + life.overMs, () => {
        if (sa.state === 'established') {
          sa.lastError = { code: 'HARD_EXPIRY', message: 'IKE SA reached its hard lifetime without a rekey' };
          this.deleteIke(sa, 'hard lifetime');
          if (sa.originalInitiator) this.scheduleRestart(sa.config, 'hard lifetime');
        }
      });
    }
    this.scheduleDpd(sa);
  }

  private scheduleDpd(sa: IkeSa): void {
    const interval = sa.config.dpdIntervalMs;
    if (interval <= 0) return;
    const since = this.ports.clock.now() - sa.lastInbound;
    // Next look when the SA will have been quiet for a full interval (or a full interval from now after a check).
    // (1 ms of slack so that fractional clocks cannot make the remaining wait vanish)
    const quiet = (t: number) => t >= interval - 1;
    sa.setTimer('dpd', quiet(since) ? interval : interval - since, () => {
      if (sa.state !== 'established') return;
      if (quiet(this.ports.clock.now() - sa.lastInbound) && !sa.tm.hasOutstanding()) this.checkLiveness(sa);
      this.scheduleDpd(sa);
    });
  }

  private childTimer(child: ChildSa, name: string, delayMs: number, fn: () => void): void {
    const owner = () => child.owner as IkeSa;
    const cancel = this.ports.clock.setTimer(
      Math.max(0, delayMs),
      () => {
        const sa = owner();
        if (!sa || sa.state === 'destroyed' || child.state === 'deleted') return;
        void sa.tm.serialise(fn, `child ${name}`);
      },
      `child${child.uid}:${name}`,
    );
    child.timers.push(cancel);
  }

  private queueChildRekey(child: ChildSa): void {
    const sa = child.owner as IkeSa;
    // Not when it is already being replaced (we answered the peer's rekey of it).
    if (child.state !== 'installed' || child.replacedBy) return;
    if (sa.state !== 'established') {
      // The IKE SA is being rekeyed or deleted: try again shortly on whichever SA owns the CHILD SA then.
      this.childTimer(child, 'rekey', 1000, () => this.queueChildRekey(child));
      return;
    }
    const already = sa.tm.initiatorTasks().some((t) => t instanceof ChildRekeyTask && t.old === child);
    if (!already) this.rekeyChild(sa, child);
  }

  /** Rekey and hard-expiry timers of a CHILD SA (with jitter so many tunnels spread out). */
  private scheduleChild(sa: IkeSa, child: ChildSa): void {
    child.owner = sa;
    const life = child.config.lifetime;
    if (life.rekeyMs <= 0) return;
    const delay = life.rekeyMs - sa.jitter(life.jitterMs);
    child.rekeyAt = this.ports.clock.now() + delay;
    child.expireAt = this.ports.clock.now() + life.rekeyMs + life.overMs;
    this.childTimer(child, 'rekey', delay, () => this.queueChildRekey(child));
    this.childTimer(child, 'hard', life.rekeyMs + life.overMs, () => {
      const owner = child.owner as IkeSa;
      if (child.state === 'installed' || child.state === 'rekeying') {
        this.emit({
          type: 'child-failed',
          sa: owner.ref(),
          child: child.config.name,
          failure: { code: 'HARD_EXPIRY', message: 'CHILD SA reached its hard lifetime without a successful rekey' },
        });
        this.deleteChild(owner, child, 'hard lifetime');
        if (child.config.startAction === 'start') owner.ctx.scheduleChildCreate(owner, child.config, 1000);
      }
    });
  }

  private scheduleRestart(config: PeerConfig, reason: string): void {
    if (this.stopped || this.restartPending.has(config.name)) return;
    const prev = this.restartBackoff.get(config.name) ?? 0;
    const delay = prev === 0 ? this.options.restartDelayMs : Math.min(prev * 2, this.options.maxRestartDelayMs);
    this.restartBackoff.set(config.name, delay);
    this.restartPending.add(config.name);
    this.ports.clock.setTimer(delay, () => {
      if (!this.restartPending.delete(config.name) || this.stopped) return;
      // Only a working or negotiating IKE SA makes the restart unnecessary; one that is being replaced or deleted
      // (or a lingering retired one) does not.
      const live = [...(this.byPeer.get(config.name) ?? [])].some(
        (s) => s.state === 'established' || s.state === 'connecting',
      );
      if (!live) this.initiate(config);
    });
    void reason;
  }
}
