/**
 * An IKE SA (RFC 7296 §1.2): keys, peer, features, CHILD SAs, timers, and its task manager. It is the task
 * manager's host: it encodes, protects, fragments, decodes and verifies messages, and creates responder tasks.
 * Protocol logic lives in the tasks (src/ike/tasks); this class holds state and the kernel bookkeeping.
 */

import { UnsupportedCriticalPayloadError } from '../codec/errors.js';
import { type DecryptedFragment, decryptFragment, FragmentReassembler, fragmentMessage } from '../codec/fragment.js';
import { formatIp } from '../codec/ip.js';
import { decodeMessage, decryptMessage, encodeMessage, type IkeMessage, skfPayloadOf } from '../codec/message.js';
import type { PlainPayload } from '../codec/payloads/index.js';
import { notify } from '../codec/payloads/notify.js';
import type { Proposal } from '../codec/payloads/sa-types.js';
import type { AddressRangeSelector } from '../codec/payloads/ts.js';
import { checkRules } from '../codec/rules.js';
import { ExchangeType, HeaderFlag, NotifyType, PayloadType, ProtocolId } from '../constants.js';
import type { IkeSaKeys } from '../crypto/kdf.js';
import { formatProposal } from '../crypto/proposals.js';
import type { SkCipher } from '../crypto/provider.js';
import { DecodeError } from '../errors.js';
import type { Cancel, Endpoint, KernelPolicy, KernelSa, KernelSelector } from '../ports.js';
import type { Task } from '../tasks/task.js';
import { type DecodeOutcome, type RoutingHeader, TaskManager, type TaskManagerHost } from '../tasks/task-manager.js';
import type { ChildSa } from './child-sa.js';
import type { AuthConfig, PeerConfig } from './config.js';
import type { EngineContext } from './context.js';
import type { ChildSaRef, Failure, IkeSaRef } from './events.js';
import { explainNoResponse } from './explain.js';
import { kernelAlgorithms } from './kernel-algorithms.js';

export type IkeState =
  /** Negotiating (IKE_SA_INIT / IKE_AUTH). */
  | 'connecting'
  | 'established'
  /** Replaced by a rekeyed IKE SA; waiting for its deletion. */
  | 'rekeyed'
  | 'deleting'
  | 'destroyed';

export interface IkeSuite {
  encrId: number;
  keyLength?: number | undefined;
  integId?: number | undefined;
  prfId: number;
  keId: number;
}

/** The payload interface whose `type` may be T (also for payloads shared by two types, such as IDi/IDr). */
export type PayloadFor<T> = PlainPayload extends infer P
  ? P extends { type: infer U }
    ? T extends U
      ? P
      : never
    : never
  : never;

export type IkeTask = Task<IkeMessage, IkeMessage>;

/** Where a received packet came from and went to (the transport's view). */
export interface PacketMeta {
  from: Endpoint;
  to: Endpoint;
}

/** Creates responder tasks for requests; supplied by the engine (keeps this module free of task imports). */
export type ResponderTaskFactory = (sa: IkeSa, request: IkeMessage) => IkeTask[];

const ZERO_SPI = new Uint8Array(8);

/** Identity of a kernel policy: direction and selectors (what the kernel keys policies on, besides mark). */
export function policyKey(p: KernelPolicy): string {
  const sel = (s: KernelSelector) => `${s.startAddress}-${s.endAddress}/${s.protocol}/${s.startPort}-${s.endPort}`;
  return `${p.direction}|${sel(p.local)}|${sel(p.remote)}`;
}

/** A traffic selector as the kernel port takes it (textual addresses). */
export function kernelSelectorOf(ts: AddressRangeSelector): KernelSelector {
  return {
    family: ts.startAddress.length === 4 ? 4 : 6,
    startAddress: formatIp(ts.startAddress),
    endAddress: formatIp(ts.endAddress),
    protocol: ts.ipProtocol,
    startPort: ts.startPort,
    endPort: ts.endPort,
  };
}

export function spiHex(spi: Uint8Array): string {
  let s = '';
  for (const b of spi) s += b.toString(16).padStart(2, '0');
  return s;
}

export function spiToBytes(spi: number): Uint8Array {
  return new Uint8Array([(spi >>> 24) & 0xff, (spi >>> 16) & 0xff, (spi >>> 8) & 0xff, spi & 0xff]);
}

export function bytesToSpi(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

export class IkeSa implements TaskManagerHost<IkeMessage, IkeMessage> {
  readonly uid: number;
  readonly tm: TaskManager<IkeMessage, IkeMessage>;
  state: IkeState = 'connecting';
  /** The configuration in force (for a responder: provisional until IKE_AUTH picks one by identity). */
  config: PeerConfig;
  /** Key in the engine's half-open table while a responder SA negotiates. */
  halfOpenKey: string | undefined;
  /** Responder: configurations matching the addresses, narrowed by identity in IKE_AUTH. */
  candidates: PeerConfig[];
  spiI: Uint8Array;
  spiR: Uint8Array;
  local: Endpoint;
  remote: Endpoint;
  natLocal = false;
  natRemote = false;
  suite: IkeSuite | undefined;
  proposal: Proposal | undefined;
  keys: Pick<IkeSaKeys, 'skD' | 'skPi' | 'skPr'> | undefined;
  cipherIn: SkCipher | undefined;
  cipherOut: SkCipher | undefined;
  ni: Uint8Array = new Uint8Array(0);
  nr: Uint8Array = new Uint8Array(0);
  /** IKE_SA_INIT request and response as sent/received (signed by AUTH). */
  initRequest: Uint8Array = new Uint8Array(0);
  initResponse: Uint8Array = new Uint8Array(0);
  peerFragmentation = false;
  peerChildless = false;
  /** RFC 7427 hash algorithms the peer announced (SIGNATURE_HASH_ALGORITHMS). */
  peerSignatureHashes: number[] = [];
  /** Remote identity as authenticated (ID payload body: type + reserved + data). */
  remoteIdBody: Uint8Array | undefined;
  children: ChildSa[] = [];
  establishedAt: number | undefined;
  /** Monotonic ms of creation and of establishment. */
  readonly createdMono: number;
  establishedMono: number | undefined;
  /** Monotonic ms of the planned IKE rekey. */
  rekeyAt: number | undefined;
  /** Monotonic ms of the last authenticated message from the peer. */
  lastInbound = 0;
  lastError: Failure | undefined;
  /** When this SA replaced another by rekeying: the old SA's uid. */
  rekeyOf: number | undefined;
  /**
   * The credentials proven in this SA's IKE_AUTH (inherited by IKE rekeys, RFC 7296 §2.18). When the
   * configuration's `auth` is another object by the time of the IKE rekey (a renewed certificate), the engine
   * reauthenticates instead of rekeying.
   */
  authUsed: AuthConfig | undefined;
  /** Reauthentication (RFC 7296 §2.8.3, make-before-break): this SA replaces the SA with this uid... */
  reauthOf: number | undefined;
  /** ...and the CHILD SA configurations it must carry before the old SA is deleted. */
  reauthChildren: string[] = [];
  /** On the old SA: the SA that reauthenticates it. */
  reauthBy: IkeSa | undefined;
  /** When this SA was replaced: the new SA. */
  replacedBy: IkeSa | undefined;
  /** Lowest nonce of the exchange that created this SA (IKE rekey collisions, RFC 7296 §2.8.2). */
  lowestNonce: Uint8Array | undefined;
  private timers = new Map<string, Cancel>();
  private readonly reassembly = new Map<string, FragmentReassembler>();

  constructor(
    readonly ctx: EngineContext,
    /** Whether we are the original initiator of this IKE SA (the I flag we send). */
    readonly originalInitiator: boolean,
    config: PeerConfig,
    options: {
      spiI: Uint8Array;
      spiR: Uint8Array;
      local: Endpoint;
      remote: Endpoint;
      candidates?: PeerConfig[];
      responderTasks: ResponderTaskFactory;
    },
  ) {
    this.uid = ctx.nextUid();
    this.config = config;
    this.candidates = options.candidates ?? [config];
    this.spiI = options.spiI;
    this.spiR = options.spiR;
    this.local = { ...options.local };
    this.remote = { ...options.remote };
    this.responderTaskFactory = options.responderTasks;
    this.tm = new TaskManager(this);
    this.tm.setOurWindow(config.windowSize);
    this.lastInbound = ctx.ports.clock.now();
    this.createdMono = ctx.ports.clock.now();
  }

  readonly responderTaskFactory: ResponderTaskFactory;

  /** Switch to another configuration (the responder's choice by identity in IKE_AUTH). */
  setConfig(config: PeerConfig): void {
    if (config === this.config) return;
    const old = this.config.name;
    this.config = config;
    this.tm.setOurWindow(config.windowSize);
    if (old !== config.name) this.ctx.configChanged(this, old);
  }

  // ---- identity ------------------------------------------------------------------------------------------------

  /** Our SPI: the one the peer puts in the header field of our role. */
  get localSpi(): Uint8Array {
    return this.originalInitiator ? this.spiI : this.spiR;
  }

  ref(): IkeSaRef {
    return { peer: this.config.name, uid: this.uid, spiI: spiHex(this.spiI), spiR: spiHex(this.spiR) };
  }

  childRef(c: ChildSa): ChildSaRef {
    return {
      ...this.ref(),
      child: c.config.name,
      childUid: c.uid,
      reqid: c.reqid,
      spiIn: c.spiIn,
      spiOut: c.spiOut,
    };
  }

  get natDetected(): boolean {
    return this.natLocal || this.natRemote || this.config.natt === 'force';
  }

  algorithms(): string {
    return this.proposal ? formatProposal(this.proposal) : '';
  }

  // ---- TaskManagerHost -----------------------------------------------------------------------------------------

  get clock() {
    return this.ctx.ports.clock;
  }

  get retransmit() {
    return this.config.retransmit;
  }

  createMessage(exchangeType: number, isResponse: boolean, messageId: number): IkeMessage {
    const m: IkeMessage = {
      initiatorSpi: this.spiI,
      responderSpi: exchangeType === ExchangeType.IKE_SA_INIT && !isResponse ? ZERO_SPI : this.spiR,
      exchangeType,
      flags: (this.originalInitiator ? HeaderFlag.INITIATOR : 0) | (isResponse ? HeaderFlag.RESPONSE : 0),
      messageId,
      payloads: [],
    };
    if (exchangeType !== ExchangeType.IKE_SA_INIT) m.encrypted = [];
    return m;
  }

  encode(message: IkeMessage): Uint8Array[] {
    if (message.exchangeType === ExchangeType.IKE_SA_INIT) {
      // The header SPIs are those at encoding time (the responder SPI is set once known).
      const bytes = encodeMessage({ ...message, initiatorSpi: this.spiI });
      if ((message.flags & HeaderFlag.RESPONSE) !== 0) this.initResponse = bytes;
      else this.initRequest = bytes;
      return [bytes];
    }
    const cipher = this.cipherOut;
    if (!cipher) throw new Error('no keys to protect the message');
    const msg = { ...message, initiatorSpi: this.spiI, responderSpi: this.spiR };
    const iv = this.ctx.ports.random;
    const whole = encodeMessage(msg, { cipher, iv });
    if (this.config.fragmentation && this.peerFragmentation && whole.length > this.config.fragmentSize) {
      return fragmentMessage(msg, { cipher, iv, maxSize: this.config.fragmentSize });
    }
    return [whole];
  }

  send(packets: Uint8Array[]): void {
    for (const p of packets) this.ctx.ports.sender.send(p, this.local, this.remote);
  }

  isNonFirstFragment(packet: Uint8Array): boolean {
    return packet.length >= 34 && packet[16] === PayloadType.SKF && ((packet[32]! << 8) | packet[33]!) !== 1;
  }

  decode(header: RoutingHeader, packet: Uint8Array, meta: unknown): DecodeOutcome<IkeMessage> {
    let msg: IkeMessage;
    try {
      msg = decodeMessage(packet);
    } catch (err) {
      if (header.exchangeType === ExchangeType.IKE_SA_INIT && err instanceof DecodeError) {
        return { kind: 'invalid', reason: err.message, notify: err.notify ?? NotifyType.INVALID_SYNTAX };
      }
      return { kind: 'invalid', reason: err instanceof Error ? err.message : String(err) };
    }
    if (header.exchangeType === ExchangeType.IKE_SA_INIT) {
      const problem = checkRules(msg);
      if (problem) return { kind: 'invalid', reason: problem.message, notify: NotifyType.INVALID_SYNTAX };
      if (header.isResponse) this.initResponse = packet.slice();
      else this.initRequest = packet.slice();
      this.noteInbound(meta, false);
      return { kind: 'message', message: msg };
    }
    const cipher = this.cipherIn;
    if (!cipher) return { kind: 'invalid', reason: 'protected message before keys exist' };
    let plain: IkeMessage;
    try {
      if (skfPayloadOf(msg)) {
        const frag: DecryptedFragment = decryptFragment(msg, cipher);
        const key = `${header.isResponse ? 'r' : 'q'}${header.messageId}`;
        let r = this.reassembly.get(key);
        if (!r) {
          r = new FragmentReassembler();
          this.reassembly.set(key, r);
          // Forget partial messages of message IDs far behind (keeps memory bounded).
          if (this.reassembly.size > 4) this.reassembly.delete(this.reassembly.keys().next().value!);
        }
        const result = r.add(frag);
        if (result.status !== 'complete') return { kind: 'incomplete' };
        this.reassembly.delete(key);
        plain = result.message;
      } else {
        plain = decryptMessage(msg, cipher);
      }
    } catch (err) {
      if (err instanceof DecodeError && err.code === 'DECODE_INTEGRITY') {
        return { kind: 'invalid', reason: 'integrity check failed' };
      }
      // Authenticated but malformed inside: answer requests with the notify the error maps to.
      const notifyType =
        err instanceof UnsupportedCriticalPayloadError
          ? NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD
          : err instanceof DecodeError
            ? (err.notify ?? NotifyType.INVALID_SYNTAX)
            : NotifyType.INVALID_SYNTAX;
      return { kind: 'invalid', reason: err instanceof Error ? err.message : String(err), notify: notifyType };
    }
    const problem = checkRules(plain);
    if (problem) return { kind: 'invalid', reason: problem.message, notify: NotifyType.INVALID_SYNTAX };
    this.noteInbound(meta, true);
    return { kind: 'message', message: plain };
  }

  private noteInbound(meta: unknown, authenticated: boolean): void {
    this.lastInbound = this.ctx.ports.clock.now();
    const m = meta as PacketMeta | undefined;
    if (!m || !authenticated) return;
    // Behind a NAT the peer's address or port may change; follow it on authenticated messages (RFC 7296 §2.23).
    if (this.natDetected && (m.from.address !== this.remote.address || m.from.port !== this.remote.port)) {
      const before = this.remote;
      this.remote = { ...m.from };
      this.local = { ...this.local, port: m.to.port };
      if (this.state === 'established' && before.address === m.from.address) void this.followNatMapping();
    }
  }

  /**
   * The peer's NAT gave it a new public port: move the CHILD SAs' UDP encapsulation there too, or our ESP would go
   * to a port the NAT no longer maps (RFC 7296 §2.23, RFC 3948). A changed public address would change the SA's
   * identity in the kernel; that needs MOBIKE-style re-addressing and is left to a new negotiation.
   */
  private async followNatMapping(): Promise<void> {
    const k = this.ctx.ports.kernel;
    if (!k.updateEncapsulation) return;
    for (const c of this.children) {
      if (c.state === 'deleted') continue;
      try {
        if (c.outboundInstalled) {
          await k.updateEncapsulation({
            spi: c.spiOut,
            destination: this.remote.address,
            encap: { sourcePort: this.local.port, destinationPort: this.remote.port },
          });
        }
        if (c.inboundInstalled) {
          await k.updateEncapsulation({
            spi: c.spiIn,
            destination: this.local.address,
            encap: { sourcePort: this.remote.port, destinationPort: this.local.port },
          });
        }
      } catch (err) {
        this.ctx.emit({
          type: 'kernel-error',
          sa: this.ref(),
          operation: 'updateEncapsulation',
          message: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  responderTasks(request: IkeMessage): IkeTask[] {
    return this.responderTaskFactory(this, request);
  }

  answerInvalid(response: IkeMessage, notifyType: number): void {
    const n = notify(notifyType);
    if (response.encrypted) response.encrypted.push(n);
    else response.payloads.push(n);
  }

  onBatchDone(_tasks: IkeTask[], status: 'done' | 'failed'): void {
    if (status === 'failed' && this.state === 'connecting') {
      this.destroy(this.lastError?.message ?? 'negotiation failed');
      // Start mode keeps trying (with back-off): the peer may not have its configuration yet, or it gets fixed.
      if (this.originalInitiator && this.config.children.some((c) => c.startAction === 'start')) {
        this.ctx.scheduleRestart(this.config, this.lastError?.message ?? 'negotiation failed');
      }
    }
  }

  onRetransmitsExhausted(exchangeType: number): void {
    const failure: Failure = {
      code: 'RETRANSMITS_EXHAUSTED',
      message: explainNoResponse({
        address: this.remote.address,
        port: this.remote.port,
        tries: this.config.retransmit.tries,
        exchange: ExchangeType[exchangeType] ?? String(exchangeType),
        answeredBefore: this.state !== 'connecting' || exchangeType !== ExchangeType.IKE_SA_INIT,
      }),
    };
    this.lastError = failure;
    if (this.state === 'connecting') {
      this.ctx.emit({ type: 'ike-failed', sa: this.ref(), failure });
      this.destroy(failure.message);
      if (this.originalInitiator && this.config.children.some((c) => c.startAction === 'start')) {
        this.ctx.scheduleRestart(this.config, failure.message);
      }
      return;
    }
    this.ctx.emit({ type: 'peer-dead', sa: this.ref() });
    this.handlePeerDead();
  }

  /** DPD action (RFC 7296 §2.4): clear removes everything; restart re-initiates; hold keeps trap state. */
  handlePeerDead(): void {
    const action = this.config.dpdAction;
    this.destroy('peer dead');
    if (action === 'restart') this.ctx.scheduleRestart(this.config, 'peer dead');
  }

  onError(err: unknown, where: string): void {
    const message = err instanceof Error ? err.message : String(err);
    this.ctx.emit({ type: 'kernel-error', sa: this.ref(), operation: where, message });
  }

  // ---- helpers for tasks ---------------------------------------------------------------------------------------

  fail(failure: Failure): void {
    this.lastError = failure;
    if (this.state === 'connecting') this.ctx.emit({ type: 'ike-failed', sa: this.ref(), failure });
  }

  setTimer(name: string, delayMs: number, fn: () => void): void {
    this.timers.get(name)?.();
    const cancel = this.ctx.ports.clock.setTimer(
      Math.max(0, delayMs),
      () => {
        this.timers.delete(name);
        if (this.state === 'destroyed') return;
        void this.tm.serialise(fn, `timer ${name}`);
      },
      `sa${this.uid}:${name}`,
    );
    this.timers.set(name, cancel);
  }

  cancelTimer(name: string): void {
    this.timers.get(name)?.();
    this.timers.delete(name);
  }

  hasTimer(name: string): boolean {
    return this.timers.has(name);
  }

  /** Random delay in [0, max) from the Random port. */
  jitter(maxMs: number): number {
    if (maxMs <= 0) return 0;
    const b = this.ctx.ports.random(4);
    const r = (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) / 2 ** 32;
    return Math.floor(r * maxMs);
  }

  // ---- kernel --------------------------------------------------------------------------------------------------

  private selector(ts: AddressRangeSelector): KernelSelector {
    return kernelSelectorOf(ts);
  }

  private kernelSa(
    child: ChildSa,
    direction: 'in' | 'out',
    keys: { encKey: Uint8Array; integKey: Uint8Array },
  ): KernelSa {
    const suite = child.suite!;
    const inbound = direction === 'in';
    const sa: KernelSa = {
      spi: inbound ? child.spiIn : child.spiOut,
      protocol: 'esp',
      mode: child.mode,
      source: inbound ? this.remote.address : this.local.address,
      destination: inbound ? this.local.address : this.remote.address,
      reqid: child.reqid,
      ...kernelAlgorithms(suite.encrId, suite.integId, keys),
      esn: suite.esn,
      replayWindow: child.config.replayWindow,
      lifetime: {},
      selectors: {
        local: this.selector(child.localTs[0]!),
        remote: this.selector(child.remoteTs[0]!),
      },
      direction,
    };
    if (this.natDetected) {
      sa.encap = inbound
        ? { sourcePort: this.remote.port, destinationPort: this.local.port }
        : { sourcePort: this.local.port, destinationPort: this.remote.port };
    }
    const c = child.config;
    if (c.lifeBytes) sa.lifetime.softBytes = (c.lifeBytes * 9n) / 10n;
    if (c.lifeBytes) sa.lifetime.hardBytes = c.lifeBytes;
    if (c.lifePackets) sa.lifetime.softPackets = (c.lifePackets * 9n) / 10n;
    if (c.lifePackets) sa.lifetime.hardPackets = c.lifePackets;
    sa.lifetime.hardSeconds = Math.ceil((c.lifetime.rekeyMs + c.lifetime.overMs) / 1000);
    return sa;
  }

  private policies(child: ChildSa): KernelPolicy[] {
    const out: KernelPolicy[] = [];
    for (const l of child.localTs) {
      for (const r of child.remoteTs) {
        const base = {
          reqid: child.reqid,
          mode: child.mode,
          local: this.selector(l),
          remote: this.selector(r),
        };
        out.push({ ...base, direction: 'out', source: this.local.address, destination: this.remote.address });
        out.push({ ...base, direction: 'in', source: this.remote.address, destination: this.local.address });
        if (child.mode === 'tunnel') {
          out.push({ ...base, direction: 'fwd', source: this.remote.address, destination: this.local.address });
        }
      }
    }
    return out;
  }

  /** Install the inbound SA (first, so the peer can use it as soon as it knows the SPI). */
  async installInbound(child: ChildSa, keys: { encKey: Uint8Array; integKey: Uint8Array }): Promise<void> {
    // The SPI was reserved with allocSpi: the kernel holds a larval SA that this updates (XFRM_MSG_UPDSA).
    await this.ctx.ports.kernel.updateSa(this.kernelSa(child, 'in', keys));
    child.inboundInstalled = true;
  }

  /** Install the outbound SA: from now on the kernel sends with it (the newest SA of a reqid wins). */
  async installOutbound(child: ChildSa, keys: { encKey: Uint8Array; integKey: Uint8Array }): Promise<void> {
    await this.ctx.ports.kernel.addSa(this.kernelSa(child, 'out', keys));
    child.outboundInstalled = true;
  }

  /**
   * Install the CHILD SA's policies. Policies are shared by every CHILD SA with the same selectors (a rekeyed or
   * duplicate CHILD SA has the same reqid), so the engine counts users and talks to the kernel only for the first.
   */
  /** Responder of a rekey: install the deferred outbound SA now (the old CHILD SA is going). */
  async activateOutbound(child: ChildSa): Promise<void> {
    const keys = child.pendingOutbound;
    if (!keys || child.outboundInstalled) return;
    child.pendingOutbound = undefined;
    try {
      await this.installOutbound(child, keys);
    } finally {
      keys.encKey.fill(0);
      keys.integKey.fill(0);
    }
  }

  /**
   * Install a CHILD SA's deferred outbound SA as soon as its inbound SA has carried a packet (the peer uses it, so
   * it has installed its side), or after `maxMs`.
   */
  activateWhenUsed(child: ChildSa, maxMs: number): void {
    const started = this.ctx.ports.clock.now();
    const poll = async (): Promise<void> => {
      if (child.state === 'deleted' || !child.pendingOutbound) return;
      let used = false;
      try {
        const c = await this.ctx.ports.kernel.querySa({
          spi: child.spiIn,
          protocol: 'esp',
          destination: this.local.address,
        });
        used = (c?.packets ?? 0n) > 0n;
      } catch {
        // counters are a hint only
      }
      if (used || this.ctx.ports.clock.now() - started >= maxMs) {
        await this.activateOutbound(child);
        return;
      }
      this.setTimer(`activate-${child.uid}`, 50, poll);
    };
    this.setTimer(`activate-${child.uid}`, 0, poll);
  }

  async installPolicies(child: ChildSa): Promise<void> {
    for (const p of this.policies(child)) {
      if (this.ctx.acquirePolicy(policyKey(p), child.uid)) await this.ctx.ports.kernel.addPolicy(p);
    }
    child.policiesInstalled = true;
  }

  /**
   * Remove a CHILD SA's kernel state. Policies stay when another CHILD SA with the same reqid replaced it.
   * Errors are reported, not thrown: a half-removed CHILD SA must not stop the rest of the cleanup.
   */
  async uninstall(child: ChildSa, reason: string): Promise<void> {
    const k = this.ctx.ports.kernel;
    child.clearTimers();
    if (child.pendingOutbound) {
      child.pendingOutbound.encKey.fill(0);
      child.pendingOutbound.integKey.fill(0);
      child.pendingOutbound = undefined;
    }
    const wasUp = child.inboundInstalled || child.outboundInstalled;
    const attempt = async (op: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        this.ctx.emit({
          type: 'kernel-error',
          sa: this.ref(),
          operation: op,
          message: err instanceof Error ? err.message : String(err),
        });
      }
    };
    if (child.policiesInstalled) {
      for (const p of this.policies(child)) {
        if (this.ctx.releasePolicy(policyKey(p), child.uid)) await attempt('deletePolicy', () => k.deletePolicy(p));
      }
    }
    child.policiesInstalled = false;
    if (child.outboundInstalled) {
      await attempt('deleteSa', () =>
        k.deleteSa({ spi: child.spiOut, protocol: 'esp', destination: this.remote.address }),
      );
    }
    child.outboundInstalled = false;
    if (child.inboundInstalled || (child.spiIn !== 0 && child.state === 'creating')) {
      // Also releases an SPI that was allocated but never installed (a larval SA in XFRM).
      await attempt('deleteSa', () =>
        k.deleteSa({ spi: child.spiIn, protocol: 'esp', destination: this.local.address }),
      );
    }
    child.inboundInstalled = false;
    const ref = this.childRef(child);
    child.state = 'deleted';
    this.children = this.children.filter((c) => c !== child);
    if (wasUp) this.ctx.emit({ type: 'child-deleted', sa: ref, reason });
  }

  findChildByInbound(spi: number): ChildSa | undefined {
    return this.children.find((c) => c.spiIn === spi);
  }

  findChildByOutbound(spi: number): ChildSa | undefined {
    return this.children.find((c) => c.spiOut === spi);
  }

  // ---- life cycle ----------------------------------------------------------------------------------------------

  /** Queue a task batch as initiator. */
  queue(tasks: IkeTask[]): void {
    this.tm.queue(tasks);
  }

  /**
   * Destroy the SA: timers and tasks stop, CHILD SAs leave the kernel (unless they moved to a rekeyed IKE SA).
   * Runs synchronously for bookkeeping; the kernel removals are queued.
   */
  destroy(reason: string): void {
    if (this.state === 'destroyed') return;
    const wasEstablished = this.state === 'established' || this.state === 'deleting' || this.state === 'rekeyed';
    this.state = 'destroyed';
    for (const c of this.timers.values()) c();
    this.timers.clear();
    this.tm.destroy(reason);
    this.ctx.unregister(this);
    const children = this.children;
    this.children = [];
    for (const c of children) void this.uninstall(c, reason);
    if (wasEstablished) this.ctx.emit({ type: 'ike-deleted', sa: this.ref(), reason });
  }

  /** Mark established: timers for rekey and liveness start. */
  established(): void {
    this.state = 'established';
    this.establishedAt = this.ctx.ports.clock.wallNow();
    this.establishedMono = this.ctx.ports.clock.now();
    this.cancelTimer('half-open');
    this.ctx.emit({
      type: 'ike-established',
      sa: this.ref(),
      algorithms: this.algorithms(),
      natLocal: this.natLocal,
      natRemote: this.natRemote,
    });
    this.ctx.onIkeEstablished(this);
  }

  /** Notify helper: the first notify of a type in a message (cleartext or inner). */
  static notifyOf(msg: IkeMessage, notifyType: number) {
    return IkeSa.find(msg, (p) => p.type === PayloadType.NOTIFY && p.notifyType === notifyType) as
      | Extract<PlainPayload, { type: PayloadType.NOTIFY }>
      | undefined;
  }

  /** The first payload matching `pred`, cleartext first, then inner (no allocation: called for every payload). */
  static find(msg: IkeMessage, pred: (p: PlainPayload) => boolean): PlainPayload | undefined {
    for (const p of msg.payloads) {
      if (p.type !== PayloadType.SK && p.type !== PayloadType.SKF && pred(p)) return p;
    }
    if (msg.encrypted) for (const p of msg.encrypted) if (pred(p)) return p;
    return undefined;
  }

  /** All payloads of a message: cleartext then inner. */
  static all(msg: IkeMessage): PlainPayload[] {
    const clear = msg.payloads.filter((p) => p.type !== PayloadType.SK && p.type !== PayloadType.SKF) as PlainPayload[];
    return msg.encrypted ? [...clear, ...msg.encrypted] : clear;
  }

  static payload<T extends PlainPayload['type']>(msg: IkeMessage, type: T): PayloadFor<T> | undefined {
    return IkeSa.find(msg, (p) => p.type === type) as PayloadFor<T> | undefined;
  }

  /** First error notify (type < 16384) in a message, if any. */
  static errorNotify(msg: IkeMessage) {
    return IkeSa.find(msg, (p) => p.type === PayloadType.NOTIFY && p.notifyType < 16384) as
      | Extract<PlainPayload, { type: PayloadType.NOTIFY }>
      | undefined;
  }

  /** Add a payload to the right part of an outgoing message. */
  static add(msg: IkeMessage, p: PlainPayload): void {
    if (msg.encrypted) msg.encrypted.push(p);
    else msg.payloads.push(p);
  }

  static protocolName(p: number): string {
    return p === ProtocolId.ESP ? 'ESP' : p === ProtocolId.AH ? 'AH' : 'IKE';
  }
}
