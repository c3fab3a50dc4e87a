/**
 * A thin NETLINK_XFRM socket on npm `netlink`'s RawNetlinkSocket: request/ACK matching by sequence number, dumps,
 * windowed batches, typed errors and the EXPIRE/ACQUIRE multicast events. No policy of its own: apply.ts decides.
 *
 * Network namespaces: a netlink socket talks to the namespace of the process that opened it. Node cannot setns(2),
 * so to program another namespace run the process inside it (`ip netns exec NS node ...`); tests do exactly that.
 */
import { constants as osConstants } from 'node:os';
import { RawNetlinkSocket } from 'netlink';
import { addressBytes } from './address.js';
import {
  NETLINK_XFRM,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  SPI_MAX,
  SPI_MIN,
  XFRM_MSG_ACQUIRE,
  XFRM_MSG_ALLOCSPI,
  XFRM_MSG_DELPOLICY,
  XFRM_MSG_DELSA,
  XFRM_MSG_EXPIRE,
  XFRM_MSG_GETPOLICY,
  XFRM_MSG_GETSA,
  XFRM_MSG_NEWPOLICY,
  XFRM_MSG_NEWSA,
  XFRM_MSG_POLEXPIRE,
  XFRM_MSG_UPDPOLICY,
  XFRM_MSG_UPDSA,
  XFRM_POLICY_TYPE_MAIN,
  XFRMA_IF_ID,
  XFRMA_MARK,
  XFRMA_POLICY_TYPE,
  XFRMA_SRCADDR,
} from './constants.js';
import {
  decodeAcquireBody,
  decodeExpireBody,
  decodePolexpireBody,
  decodePolicyBody,
  decodeSaBody,
  encodePolicyBody,
  encodeSaBody,
  type XfrmAcquireEvent,
  type XfrmExpireEvent,
  type XfrmPolexpireEvent,
  type XfrmPolicy,
  type XfrmSa,
} from './messages.js';
import { decodeNlError, decodeNlMsgs, encodeAttrs, encodeNlMsg, type NlAttr, type NlMsg } from './netlink.js';
import {
  encodeU32,
  encodeXfrmMark,
  encodeXfrmUserpolicyId,
  encodeXfrmUserpolicyType,
  encodeXfrmUsersaId,
  encodeXfrmUserspiInfo,
  type XfrmLifetimeCur,
  type XfrmMark,
  type XfrmSelector,
  type XfrmUsersaInfo,
  xfrmLifetimeCfg,
  xfrmLifetimeCur,
  xfrmSelector,
} from './structs.js';

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));

/** A failed XFRM operation: the kernel's errno (name and number) and which operation failed. */
export class XfrmError extends Error {
  override name = 'XfrmError';
  /** errno name, e.g. 'EEXIST', 'ESRCH', 'ENOENT', 'EPERM'; 'ETIMEDOUT' for a local timeout. */
  readonly code: string;
  readonly errno: number;
  /** Operation, e.g. 'addSa', 'deletePolicy'. */
  readonly op: string;
  constructor(op: string, errno: number, detail?: string) {
    const code = ERRNO_NAMES.get(errno) ?? `E${errno}`;
    super(`xfrm ${op}: ${code} (${errno})${detail ? `: ${detail}` : ''}`);
    this.code = code;
    this.errno = errno;
    this.op = op;
  }
}

export type XfrmEvent = XfrmExpireEvent | XfrmAcquireEvent | XfrmPolexpireEvent;

/** Identifies one SA (`ip xfrm state get src S dst D proto P spi X`). */
export interface SaId {
  daddr: string;
  spi: number;
  proto: number;
  family: number;
  /** Narrows the lookup to SAs from this source (XFRMA_SRCADDR). */
  saddr?: string;
  mark?: XfrmMark;
}

/** Identifies one policy: by selector + direction, or by kernel index (`ip xfrm policy get|delete ...`). */
export interface PolicyId {
  sel: XfrmSelector;
  dir: number;
  /** When non-zero the kernel looks the policy up by index alone. */
  index?: number;
  mark?: XfrmMark;
  ifId?: number;
  type?: number;
}

export interface AllocSpiRequest {
  /** Our (the SA's source) and the peer's (destination) addresses of the inbound SA: src = peer, dst = us. */
  saddr: string;
  daddr: string;
  family: number;
  proto: number;
  mode: number;
  reqid: number;
  min?: number;
  max?: number;
  mark?: XfrmMark;
}

/** One request in a batch. */
export interface XfrmRequest {
  op: string;
  type: number;
  flags: number;
  body: Buffer;
}

export interface XfrmSocketOptions {
  /** Multicast groups to join (XFRMNLGRP_*), e.g. [XFRMNLGRP_EXPIRE, XFRMNLGRP_ACQUIRE]. */
  groups?: number[];
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  /** Requests in flight in a batch (default 256; bounded by the socket receive buffer holding the ACKs). */
  window?: number;
  /** Requests packed into one sendmsg datagram in a batch (default 64). */
  perDatagram?: number;
  /** SO_RCVBUF (default 1 MiB; the kernel caps it at net.core.rmem_max). */
  recvBufferSize?: number;
}

interface Pending {
  op: string;
  dump: boolean;
  replies: NlMsg[];
  resolve(msgs: NlMsg[]): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

export class XfrmSocket {
  private readonly raw: RawNetlinkSocket;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(ev: XfrmEvent) => void>();
  private readonly errorListeners = new Set<(err: Error) => void>();
  private seq = (Math.random() * 0x7fffffff) >>> 0;
  private closed = false;
  private readonly timeoutMs: number;
  private readonly window: number;
  private readonly perDatagram: number;
  private readonly subscribed: boolean;
  readonly port: number;

  private constructor(opts: XfrmSocketOptions) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.window = opts.window ?? 256;
    this.perDatagram = opts.perDatagram ?? 64;
    this.raw = new RawNetlinkSocket(NETLINK_XFRM, {
      recvBufferSize: opts.recvBufferSize ?? 1 << 20,
      sendBufferSize: 1 << 20,
    });
    this.port = this.raw.address().port;
    for (const g of opts.groups ?? []) this.raw.addMembership(g);
    this.subscribed = (opts.groups?.length ?? 0) > 0;
    this.raw.on('message', (buf) => this.receive(buf));
    this.raw.on('error', (err) => this.failAll(err));
    this.updateRef();
  }

  /** Opens a NETLINK_XFRM socket in the calling process's network namespace. */
  static open(opts: XfrmSocketOptions = {}): XfrmSocket {
    return new XfrmSocket(opts);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [seq, p] of this.pending) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new XfrmError(p.op, osConstants.errno.ECANCELED, 'socket closed'));
      this.pending.delete(seq);
    }
    this.raw.close();
  }

  /** Receives EXPIRE / ACQUIRE / POLEXPIRE events (join their groups with `groups` at open). Returns an unsubscribe. */
  onEvent(fn: (ev: XfrmEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Socket-level errors (e.g. ENOBUFS: events were lost; resynchronise with a dump). */
  onError(fn: (err: Error) => void): () => void {
    this.errorListeners.add(fn);
    return () => this.errorListeners.delete(fn);
  }

  // ---- SAs -----------------------------------------------------------------------------------------------------------

  /**
   * Reserves an SPI for an inbound SA; the kernel creates a larval SA that must be completed with updateSa().
   * `ip xfrm state allocspi src PEER dst US proto esp mode tunnel reqid R min X max Y`
   */
  async allocSpi(r: AllocSpiRequest): Promise<number> {
    const info: XfrmUsersaInfo = {
      sel: xfrmSelector({ family: r.family }),
      id: { daddr: r.daddr, spi: 0, proto: r.proto },
      saddr: r.saddr,
      lft: xfrmLifetimeCfg(),
      curlft: xfrmLifetimeCur(),
      stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
      seq: 0,
      reqid: r.reqid,
      family: r.family,
      mode: r.mode,
      replayWindow: 0,
      flags: 0,
    };
    const attrs: NlAttr[] = r.mark ? [{ type: XFRMA_MARK, data: encodeXfrmMark(r.mark) }] : [];
    const body = Buffer.concat([
      encodeXfrmUserspiInfo({ info, min: r.min ?? SPI_MIN, max: r.max ?? SPI_MAX }),
      encodeAttrs(attrs),
    ]);
    const replies = await this.request('allocSpi', XFRM_MSG_ALLOCSPI, 0, body);
    const reply = replies.find((m) => m.type === XFRM_MSG_NEWSA);
    if (!reply) throw new XfrmError('allocSpi', osConstants.errno.EPROTO, 'no NEWSA reply');
    return decodeSaBody(reply.data).info.id.spi;
  }

  /** `ip xfrm state add src S dst D proto esp spi X reqid R mode tunnel aead|enc|auth-trunc ... [encap ...]` */
  async addSa(sa: XfrmSa): Promise<void> {
    await this.request('addSa', XFRM_MSG_NEWSA, NLM_F_CREATE | NLM_F_EXCL, encodeSaBody(sa));
  }

  /** `ip xfrm state update ...` (replaces an existing SA with the same daddr/spi/proto, completes a larval SA). */
  async updateSa(sa: XfrmSa): Promise<void> {
    await this.request('updateSa', XFRM_MSG_UPDSA, 0, encodeSaBody(sa));
  }

  /** `ip xfrm state get src S dst D proto esp spi X [mark M]` */
  async getSa(id: SaId): Promise<XfrmSa> {
    const replies = await this.request('getSa', XFRM_MSG_GETSA, 0, saIdBody(id));
    const reply = replies.find((m) => m.type === XFRM_MSG_NEWSA);
    if (!reply) throw new XfrmError('getSa', osConstants.errno.EPROTO, 'no NEWSA reply');
    return decodeSaBody(reply.data);
  }

  /** `ip xfrm state delete src S dst D proto esp spi X [mark M]` */
  async deleteSa(id: SaId): Promise<void> {
    await this.request('deleteSa', XFRM_MSG_DELSA, 0, saIdBody(id));
  }

  /** `ip xfrm state list` */
  async dumpSas(): Promise<XfrmSa[]> {
    const msgs = await this.request('dumpSas', XFRM_MSG_GETSA, NLM_F_DUMP, Buffer.alloc(0), true);
    return msgs.filter((m) => m.type === XFRM_MSG_NEWSA).map((m) => decodeSaBody(m.data));
  }

  /** The SA's current lifetime counters (bytes, packets, add/use time): `ip -s xfrm state get ...` ("lifetime current"). */
  async saCounters(id: SaId): Promise<XfrmLifetimeCur> {
    const sa = await this.getSa(id);
    return sa.curLifetime ?? sa.info.curlft;
  }

  // ---- policies ------------------------------------------------------------------------------------------------------

  /** `ip xfrm policy add src S dst D dir in|out|fwd priority P [index I] tmpl src ... dst ... proto esp reqid R mode tunnel` */
  async addPolicy(p: XfrmPolicy): Promise<void> {
    await this.request('addPolicy', XFRM_MSG_NEWPOLICY, NLM_F_CREATE | NLM_F_EXCL, encodePolicyBody(p));
  }

  /** `ip xfrm policy update ...` (creates or replaces the policy with the same selector/dir/mark/if_id). */
  async updatePolicy(p: XfrmPolicy): Promise<void> {
    await this.request('updatePolicy', XFRM_MSG_UPDPOLICY, 0, encodePolicyBody(p));
  }

  /** `ip xfrm policy get src S dst D dir D` or `ip xfrm policy get index I dir D` */
  async getPolicy(id: PolicyId): Promise<XfrmPolicy> {
    const replies = await this.request('getPolicy', XFRM_MSG_GETPOLICY, 0, policyIdBody(id));
    const reply = replies.find((m) => m.type === XFRM_MSG_NEWPOLICY);
    if (!reply) throw new XfrmError('getPolicy', osConstants.errno.EPROTO, 'no NEWPOLICY reply');
    return decodePolicyBody(reply.data);
  }

  /** `ip xfrm policy delete src S dst D dir D [mark M]` or `ip xfrm policy delete index I dir D` */
  async deletePolicy(id: PolicyId): Promise<void> {
    await this.request('deletePolicy', XFRM_MSG_DELPOLICY, 0, policyIdBody(id));
  }

  /** `ip xfrm policy list` (main and sub policy types; socket policies are not dumped by the kernel). */
  async dumpPolicies(): Promise<XfrmPolicy[]> {
    const msgs = await this.request('dumpPolicies', XFRM_MSG_GETPOLICY, NLM_F_DUMP, Buffer.alloc(0), true);
    return msgs.filter((m) => m.type === XFRM_MSG_NEWPOLICY).map((m) => decodePolicyBody(m.data));
  }

  // ---- batches -------------------------------------------------------------------------------------------------------

  /** Request builders for batch(): the same operations as the methods above. */
  static req = {
    addSa: (sa: XfrmSa): XfrmRequest => ({
      op: 'addSa',
      type: XFRM_MSG_NEWSA,
      flags: NLM_F_CREATE | NLM_F_EXCL,
      body: encodeSaBody(sa),
    }),
    updateSa: (sa: XfrmSa): XfrmRequest => ({ op: 'updateSa', type: XFRM_MSG_UPDSA, flags: 0, body: encodeSaBody(sa) }),
    deleteSa: (id: SaId): XfrmRequest => ({ op: 'deleteSa', type: XFRM_MSG_DELSA, flags: 0, body: saIdBody(id) }),
    addPolicy: (p: XfrmPolicy): XfrmRequest => ({
      op: 'addPolicy',
      type: XFRM_MSG_NEWPOLICY,
      flags: NLM_F_CREATE | NLM_F_EXCL,
      body: encodePolicyBody(p),
    }),
    updatePolicy: (p: XfrmPolicy): XfrmRequest => ({
      op: 'updatePolicy',
      type: XFRM_MSG_UPDPOLICY,
      flags: 0,
      body: encodePolicyBody(p),
    }),
    deletePolicy: (id: PolicyId): XfrmRequest => ({
      op: 'deletePolicy',
      type: XFRM_MSG_DELPOLICY,
      flags: 0,
      body: policyIdBody(id),
    }),
  };

  /**
   * Sends many requests, several per datagram, with at most `window` unacknowledged; resolves with one result per
   * request, in order: undefined for success, the XfrmError otherwise. Never rejects for a per-request error.
   * The window is refilled a whole datagram at a time, and one watchdog (no progress for `timeoutMs`) replaces
   * per-request timers.
   */
  async batch(reqs: readonly XfrmRequest[]): Promise<(XfrmError | undefined)[]> {
    const results: (XfrmError | undefined)[] = new Array(reqs.length);
    if (reqs.length === 0) return results;
    if (this.closed) throw new XfrmError('batch', osConstants.errno.EBADF, 'socket closed');
    return new Promise((resolve) => {
      let next = 0;
      let inFlight = 0;
      let done = 0;
      const mine = new Set<number>();
      let watchdog: NodeJS.Timeout | undefined;
      const arm = (): void => {
        if (watchdog) clearTimeout(watchdog);
        watchdog = setTimeout(() => {
          for (const seq of mine) {
            const p = this.pending.get(seq);
            if (p)
              this.finish(
                seq,
                p,
                new XfrmError(p.op, osConstants.errno.ETIMEDOUT, `no answer in ${this.timeoutMs} ms`),
              );
          }
        }, this.timeoutMs);
      };
      const settle = (i: number, seq: number, err: Error | undefined): void => {
        mine.delete(seq);
        results[i] = err
          ? err instanceof XfrmError
            ? err
            : new XfrmError(reqs[i]!.op, osConstants.errno.EIO, err.message)
          : undefined;
        inFlight--;
        done++;
        arm();
        if (done === reqs.length) {
          if (watchdog) clearTimeout(watchdog);
          resolve(results);
        } else if (inFlight <= this.window - this.perDatagram || next === reqs.length) {
          pump();
        }
      };
      const pump = (): void => {
        while (next < reqs.length && inFlight < this.window) {
          const n = Math.min(this.perDatagram, this.window - inFlight, reqs.length - next);
          const frames: Buffer[] = [];
          for (let k = 0; k < n; k++) {
            const i = next++;
            const r = reqs[i]!;
            inFlight++;
            const seq = this.nextSeq();
            mine.add(seq);
            frames.push(encodeNlMsg(r.type, r.flags | NLM_F_REQUEST | NLM_F_ACK, seq, this.port, r.body));
            this.pending.set(seq, {
              op: r.op,
              dump: false,
              replies: [],
              resolve: () => settle(i, seq, undefined),
              reject: (e) => settle(i, seq, e),
              timer: undefined,
            });
          }
          this.updateRef();
          this.send(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
        }
      };
      arm();
      pump();
    });
  }

  // ---- plumbing ------------------------------------------------------------------------------------------------------

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    if (this.seq === 0) this.seq = 1;
    return this.seq;
  }

  private send(buf: Buffer): void {
    this.raw.send(buf, { port: 0 }, (err) => {
      if (err) this.failAll(err);
    });
  }

  private track(seq: number, op: string, dump: boolean): Promise<NlMsg[]> {
    return new Promise<NlMsg[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        this.updateRef();
        reject(new XfrmError(op, osConstants.errno.ETIMEDOUT, `no answer in ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(seq, { op, dump, replies: [], resolve, reject, timer });
      this.updateRef();
    });
  }

  /** Sends one request; resolves with the reply messages (for a dump: every message before NLMSG_DONE). */
  async request(op: string, type: number, flags: number, body: Buffer, dump = false): Promise<NlMsg[]> {
    if (dump) {
      // A netlink socket runs one dump at a time (a second one gets EBUSY): queue them. A dump the kernel marks
      // NLM_F_DUMP_INTR (the table changed underneath it) may be inconsistent: run it again (a few times at most).
      const once = () => this.requestNow(op, type, flags, body, true);
      const run = this.dumpChain.then(async () => {
        let msgs = await once();
        for (let i = 0; i < 3 && msgs.some((m) => m.flags & NLM_F_DUMP_INTR); i++) msgs = await once();
        return msgs;
      });
      this.dumpChain = run.then(
        () => undefined,
        () => undefined,
      );
      return run;
    }
    return this.requestNow(op, type, flags, body, false);
  }

  private dumpChain: Promise<void> = Promise.resolve();

  private async requestNow(op: string, type: number, flags: number, body: Buffer, dump: boolean): Promise<NlMsg[]> {
    if (this.closed) throw new XfrmError(op, osConstants.errno.EBADF, 'socket closed');
    const seq = this.nextSeq();
    const f = flags | NLM_F_REQUEST | (dump ? 0 : NLM_F_ACK);
    const p = this.track(seq, op, dump);
    this.send(encodeNlMsg(type, f, seq, this.port, body));
    return p;
  }

  private finish(seq: number, p: Pending, err?: Error): void {
    if (p.timer) clearTimeout(p.timer);
    this.pending.delete(seq);
    this.updateRef();
    if (err) p.reject(err);
    else p.resolve(p.replies);
  }

  private receive(buf: Buffer): void {
    let msgs: NlMsg[];
    try {
      msgs = decodeNlMsgs(buf);
    } catch (err) {
      for (const fn of this.errorListeners) fn(err as Error);
      return;
    }
    for (const m of msgs) {
      const p = m.seq !== 0 ? this.pending.get(m.seq) : undefined;
      if (p) {
        if (m.type === NLMSG_ERROR) {
          const e = decodeNlError(m.data);
          this.finish(m.seq, p, e === 0 ? undefined : new XfrmError(p.op, -e));
        } else if (m.type === NLMSG_DONE) {
          this.finish(m.seq, p);
        } else if (m.type !== NLMSG_NOOP && m.type !== NLMSG_OVERRUN) {
          p.replies.push(m);
        }
        continue;
      }
      this.dispatchEvent(m);
    }
  }

  private dispatchEvent(m: NlMsg): void {
    if (this.listeners.size === 0) return;
    let ev: XfrmEvent | undefined;
    try {
      if (m.type === XFRM_MSG_EXPIRE) ev = decodeExpireBody(m.data);
      else if (m.type === XFRM_MSG_ACQUIRE) ev = decodeAcquireBody(m.data);
      else if (m.type === XFRM_MSG_POLEXPIRE) ev = decodePolexpireBody(m.data);
    } catch (err) {
      for (const fn of this.errorListeners) fn(err as Error);
      return;
    }
    if (ev) for (const fn of this.listeners) fn(ev);
  }

  private failAll(err: Error & { errno?: number }): void {
    for (const fn of this.errorListeners) fn(err);
    for (const [seq, p] of this.pending) {
      this.finish(seq, p, new XfrmError(p.op, err.errno ?? osConstants.errno.EIO, err.message));
    }
  }

  /** Keeps the event loop alive only while requests are pending or events are subscribed. */
  private updateRef(): void {
    if (this.closed) return;
    if (this.pending.size > 0 || this.subscribed) this.raw.ref();
    else this.raw.unref();
  }
}

function saIdBody(id: SaId): Buffer {
  const attrs: NlAttr[] = [];
  if (id.saddr !== undefined) attrs.push({ type: XFRMA_SRCADDR, data: padAddr(id.saddr, id.family) });
  if (id.mark) attrs.push({ type: XFRMA_MARK, data: encodeXfrmMark(id.mark) });
  return Buffer.concat([
    encodeXfrmUsersaId({ daddr: id.daddr, spi: id.spi, family: id.family, proto: id.proto }),
    encodeAttrs(attrs),
  ]);
}

function padAddr(addr: string, family: number): Buffer {
  const b = Buffer.alloc(16);
  b.set(addressBytes(addr, family), 0);
  return b;
}

function policyIdBody(id: PolicyId): Buffer {
  const attrs: NlAttr[] = [];
  if (id.mark) attrs.push({ type: XFRMA_MARK, data: encodeXfrmMark(id.mark) });
  if (id.ifId !== undefined) attrs.push({ type: XFRMA_IF_ID, data: encodeU32(id.ifId) });
  if (id.type !== undefined && id.type !== XFRM_POLICY_TYPE_MAIN) {
    attrs.push({ type: XFRMA_POLICY_TYPE, data: encodeXfrmUserpolicyType(id.type) });
  }
  return Buffer.concat([
    encodeXfrmUserpolicyId({ sel: id.sel, index: id.index ?? 0, dir: id.dir }),
    encodeAttrs(attrs),
  ]);
}
