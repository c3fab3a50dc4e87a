/**
 * A recording fake of the kernel IPsec data plane (the `KernelIpsec` port), with XFRM's bookkeeping:
 *  - SAs keyed by (destination, SPI, protocol), policies by (direction, selectors, mark, if_id);
 *  - `allocSpi` reserves a unique random SPI (>= 256, never handed out twice by one kernel) as a larval entry that
 *    `addSa`/`updateSa` later fill in and `deleteSa` may release;
 *  - adding an existing key rejects with code 'EEXIST'; deleting or updating a missing one rejects with 'ENOENT'
 *    (set `missingSaErrno: 'ESRCH'` for what Linux actually returns for SAs: xfrm_del_sa/xfrm_state_update give
 *    -ESRCH, while a missing policy is -ENOENT);
 *  - key lengths and ICV sizes are checked for the algorithm names the engine uses (EINVAL), unknown names give
 *    ENOSYS, like xfrm_user's attach_aead/attach_one_algo;
 *  - every call is recorded, in call order, with a summary that never contains key bytes;
 *  - hard lifetimes are enforced like the kernel's (with a clock): an SA is removed `lifetime.hardSeconds` after
 *    installation, or when `addTraffic` reaches its hard byte/packet limit; each removal is listed in `expirations`.
 *
 * Requests are processed in FIFO order like one netlink socket. With a clock and a latency, each request takes
 * effect and settles after the latency (after the previous request): the engine may only rely on kernel state once
 * the promise has resolved. Without latency, effects are immediate and promises already settled.
 */
import type { KernelIpsec, KernelPolicy, KernelSa, KernelSelector, SaCounters } from '../../src/ike/ports.js';
import type { FakeClock } from './clock.js';
import { canonicalAddress } from './network.js';
import type { SeededRandom } from './random.js';

export type KernelOp = 'allocSpi' | 'addSa' | 'updateSa' | 'deleteSa' | 'addPolicy' | 'deletePolicy' | 'querySa';

/** Linux errno values of the errors a test may inject or the fake may produce. */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EAGAIN: 11,
  ENOMEM: 12,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ENOSPC: 28,
  ENOSYS: 38,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
} as const;
export type ErrnoCode = keyof typeof ERRNO;

/** A rejected kernel request, shaped like Node's system errors (`code`, `errno`, `syscall`). */
export class KernelError extends Error {
  readonly code: ErrnoCode;
  readonly errno: number;
  readonly op: KernelOp;
  readonly syscall = 'netlink';
  constructor(op: KernelOp, code: ErrnoCode, detail: string) {
    super(`${op}: ${code}: ${detail}`);
    this.name = 'KernelError';
    this.op = op;
    this.code = code;
    this.errno = ERRNO[code];
  }
}

/** One recorded request. `summary` and `detail` never contain key bytes (only key lengths). */
export interface KernelCall {
  seq: number;
  op: KernelOp;
  /** Clock time of the call (0 without a clock). */
  at: number;
  /** One line, e.g. "addSa esp in spi=0xc0ffee01 203.0.113.2->192.0.2.1 reqid=1 tunnel rfc4106(gcm(aes))/288". */
  summary: string;
  detail: Record<string, unknown>;
  /** 'pending' until processed; 'ok' or the error code after. */
  result: 'pending' | 'ok' | ErrnoCode;
  settledAt?: number;
  /** The SPI `allocSpi` returned. */
  spi?: number;
}

export interface TrafficResult extends SaCounters {
  softExceeded: boolean;
  hardExceeded: boolean;
}

/** An SA the fake kernel removed by itself (hard lifetime), as XFRM would with an XFRM_MSG_EXPIRE (hard=1). */
export interface Expiration {
  at: number;
  spi: number;
  protocol: 'esp' | 'ah';
  destination: string;
  direction: 'in' | 'out';
  reqid: number;
  reason: 'hard-seconds' | 'hard-bytes' | 'hard-packets';
}

export interface RecordingKernelOptions {
  /** Seeded stream for SPIs (fork one per kernel). */
  random: SeededRandom;
  /** Needed for latency and for `lastUsed`/`at` times. */
  clock?: FakeClock;
  /** Processing time per request, ms (constant or per operation). Default 0. */
  latencyMs?: number | ((op: KernelOp) => number);
  /** Name shown in error messages and `describe()`. */
  name?: string;
  /** Error for deleting/updating a missing SA: 'ENOENT' (default) or Linux's real 'ESRCH'. */
  missingSaErrno?: 'ENOENT' | 'ESRCH';
  /**
   * Linux's NEWSA on an SPI reserved by allocSpi fails with EEXIST (the larval state is found); strongSwan
   * therefore fills reserved inbound SAs with UPDSA. true = behave like that; false (default) = accept addSa too.
   */
  strictLarval?: boolean;
  /** Check algorithm names and key/ICV lengths (default true). */
  validateAlgorithms?: boolean;
  /** Remove SAs at their hard lifetime (default true; time-based expiry needs a clock). */
  enforceLifetimes?: boolean;
  /** Called after the kernel removed an SA by itself. */
  onExpire?: (e: Expiration) => void;
}

interface StoredSa {
  sa: KernelSa;
  counters: SaCounters;
  installedAt: number;
  cancelExpiry: (() => void) | undefined;
}

interface Reservation {
  spi: number;
  protocol: 'esp' | 'ah';
  source: string;
  destination: string;
  reqid: number;
}

interface Injection {
  code: ErrnoCode;
  remaining: number;
  when: ((call: KernelCall) => boolean) | undefined;
}

type SaId = { spi: number; protocol: 'esp' | 'ah'; destination: string };

function saKey(id: SaId): string {
  return `${canonicalAddress(id.destination)}|${id.spi >>> 0}|${id.protocol}`;
}

function selectorText(s: KernelSelector): string {
  const range =
    s.startAddress === s.endAddress
      ? canonicalAddress(s.startAddress)
      : `${canonicalAddress(s.startAddress)}-${canonicalAddress(s.endAddress)}`;
  const ports = s.startPort === 0 && s.endPort === 65535 ? '' : `:${s.startPort}-${s.endPort}`;
  return `${range}${s.protocol ? `/${s.protocol}` : ''}${ports}`;
}

function markText(m: { value: number; mask: number } | undefined): string {
  if (!m) return '0/0';
  return `${(m.value & m.mask) >>> 0}/${m.mask >>> 0}`;
}

function policyKey(p: Pick<KernelPolicy, 'direction' | 'local' | 'remote' | 'mark' | 'ifId'>): string {
  const sel = (s: KernelSelector) =>
    `${s.family}:${canonicalAddress(s.startAddress)}-${canonicalAddress(s.endAddress)}:${s.protocol}:${s.startPort}-${s.endPort}`;
  return `${p.direction}|${sel(p.local)}|${sel(p.remote)}|${markText(p.mark)}|${p.ifId ?? 0}`;
}

function hexSpi(spi: number): string {
  return `0x${(spi >>> 0).toString(16).padStart(8, '0')}`;
}

/** Key lengths in bytes (including the 4-byte salt of RFC 4106/7539/3686) the kernel accepts per algorithm. */
const ENCRYPTION: Record<string, { keyBytes: number[]; icvBits?: number[] }> = {
  'rfc4106(gcm(aes))': { keyBytes: [20, 28, 36], icvBits: [64, 96, 128] },
  'rfc4309(ccm(aes))': { keyBytes: [19, 27, 35], icvBits: [64, 96, 128] },
  'rfc7539esp(chacha20,poly1305)': { keyBytes: [36], icvBits: [128] },
  'cbc(aes)': { keyBytes: [16, 24, 32] },
  'rfc3686(ctr(aes))': { keyBytes: [20, 28, 36] },
  'cbc(des3_ede)': { keyBytes: [24] },
  'ecb(cipher_null)': { keyBytes: [0] },
};
const INTEGRITY: Record<string, { keyBytes: number; truncationBits: number[] }> = {
  'hmac(sha1)': { keyBytes: 20, truncationBits: [96, 160] },
  'hmac(sha256)': { keyBytes: 32, truncationBits: [96, 128] },
  'hmac(sha384)': { keyBytes: 48, truncationBits: [192] },
  'hmac(sha512)': { keyBytes: 64, truncationBits: [256] },
  'xcbc(aes)': { keyBytes: 16, truncationBits: [96] },
  'cmac(aes)': { keyBytes: 16, truncationBits: [96] },
};

function algorithmProblem(sa: KernelSa): { code: ErrnoCode; why: string } | undefined {
  const enc = ENCRYPTION[sa.encryption.name];
  if (!enc) return { code: 'ENOSYS', why: `unknown encryption algorithm ${sa.encryption.name}` };
  if (!enc.keyBytes.includes(sa.encryption.key.length)) {
    return { code: 'EINVAL', why: `${sa.encryption.name} key of ${sa.encryption.key.length} bytes` };
  }
  if (enc.icvBits) {
    if (sa.encryption.icvBits === undefined || !enc.icvBits.includes(sa.encryption.icvBits)) {
      return { code: 'EINVAL', why: `${sa.encryption.name} needs icvBits in ${enc.icvBits.join('/')}` };
    }
    if (sa.integrity) return { code: 'EINVAL', why: 'an AEAD SA cannot also have an integrity algorithm' };
  } else if (sa.integrity) {
    const integ = INTEGRITY[sa.integrity.name];
    if (!integ) return { code: 'ENOSYS', why: `unknown integrity algorithm ${sa.integrity.name}` };
    if (sa.integrity.key.length !== integ.keyBytes) {
      return { code: 'EINVAL', why: `${sa.integrity.name} key of ${sa.integrity.key.length} bytes` };
    }
    if (!integ.truncationBits.includes(sa.integrity.truncationBits)) {
      return { code: 'EINVAL', why: `${sa.integrity.name} truncated to ${sa.integrity.truncationBits} bits` };
    }
  }
  return undefined;
}

/** Everything about an SA except key bytes. */
export function redactSa(sa: KernelSa): Record<string, unknown> {
  const { encryption, integrity, ...rest } = sa;
  const out: Record<string, unknown> = {
    ...structuredClone(rest),
    encryption: { name: encryption.name, keyBits: encryption.key.length * 8, icvBits: encryption.icvBits },
  };
  if (integrity) {
    out.integrity = {
      name: integrity.name,
      keyBits: integrity.key.length * 8,
      truncationBits: integrity.truncationBits,
    };
  }
  return out;
}

function saSummary(op: string, sa: KernelSa): string {
  const alg = `${sa.encryption.name}/${sa.encryption.key.length * 8}${
    sa.encryption.icvBits ? ` icv=${sa.encryption.icvBits}` : ''
  }${sa.integrity ? ` ${sa.integrity.name}/${sa.integrity.truncationBits}` : ''}`;
  const encap = sa.encap ? ` encap=${sa.encap.sourcePort}->${sa.encap.destinationPort}` : '';
  const mark = sa.mark ? ` mark=${markText(sa.mark)}` : '';
  return (
    `${op} ${sa.protocol} ${sa.direction} spi=${hexSpi(sa.spi)} ${sa.source}->${sa.destination} reqid=${sa.reqid} ` +
    `${sa.mode} ${alg}${sa.esn ? ' esn' : ''}${encap}${mark} ` +
    `${selectorText(sa.selectors.local)}==${selectorText(sa.selectors.remote)}`
  );
}

function policySummary(op: string, p: Pick<KernelPolicy, 'direction' | 'local' | 'remote' | 'mark' | 'ifId'>) {
  const full = p as Partial<KernelPolicy>;
  const tmpl = full.reqid !== undefined ? ` reqid=${full.reqid} ${full.mode} ${full.source}->${full.destination}` : '';
  const mark = p.mark ? ` mark=${markText(p.mark)}` : '';
  const ifId = p.ifId ? ` if_id=${p.ifId}` : '';
  return `${op} ${p.direction} ${selectorText(p.local)}==${selectorText(p.remote)}${tmpl}${mark}${ifId}`;
}

export class RecordingKernel implements KernelIpsec {
  readonly name: string;
  /** Every request in call order. */
  readonly calls: KernelCall[] = [];
  private readonly random: SeededRandom;
  private readonly clock: FakeClock | undefined;
  private readonly latency: (op: KernelOp) => number;
  private readonly missingSaErrno: 'ENOENT' | 'ESRCH';
  private readonly strictLarval: boolean;
  private readonly validateAlgorithms: boolean;
  private readonly enforceLifetimes: boolean;
  private readonly onExpire: ((e: Expiration) => void) | undefined;
  /** SAs this kernel removed by itself, in order. */
  readonly expirations: Expiration[] = [];
  private readonly saMap = new Map<string, StoredSa>();
  private readonly reservations = new Map<string, Reservation>();
  private readonly policyMap = new Map<string, KernelPolicy>();
  private readonly handedOut = new Set<number>();
  private readonly injections = new Map<KernelOp, Injection[]>();
  /** Time the last queued request is processed (FIFO like one netlink socket). */
  private queueAt = Number.NEGATIVE_INFINITY;
  private queued = 0;

  constructor(options: RecordingKernelOptions) {
    this.random = options.random;
    this.clock = options.clock;
    this.name = options.name ?? 'kernel';
    const l = options.latencyMs ?? 0;
    this.latency = typeof l === 'function' ? l : () => l;
    this.missingSaErrno = options.missingSaErrno ?? 'ENOENT';
    this.strictLarval = options.strictLarval ?? false;
    this.validateAlgorithms = options.validateAlgorithms ?? true;
    this.enforceLifetimes = options.enforceLifetimes ?? true;
    this.onExpire = options.onExpire;
    if (typeof l === 'number' && l > 0 && !this.clock) throw new Error('RecordingKernel: latency needs a clock');
  }

  // --- the KernelIpsec port ---

  allocSpi(args: { source: string; destination: string; protocol: 'esp' | 'ah'; reqid: number }): Promise<number> {
    const call = this.record(
      'allocSpi',
      `allocSpi ${args.protocol} ${args.source}->${args.destination} reqid=${args.reqid}`,
      { ...args },
    );
    return this.process(call, () => {
      let spi: number;
      do spi = 256 + this.random.int(0x1_0000_0000 - 256);
      while (this.handedOut.has(spi) || this.saMap.has(saKey({ ...args, spi })));
      this.handedOut.add(spi);
      this.reservations.set(saKey({ ...args, spi }), { ...args, spi });
      call.spi = spi;
      call.summary += ` -> ${hexSpi(spi)}`;
      return spi;
    });
  }

  addSa(sa: KernelSa): Promise<void> {
    const call = this.record('addSa', saSummary('addSa', sa), redactSa(sa));
    const copy = structuredClone(sa);
    return this.process(call, () => {
      this.checkSa('addSa', copy);
      const key = saKey(copy);
      if (this.saMap.has(key)) throw new KernelError('addSa', 'EEXIST', `SA ${this.describeKey(copy)} exists`);
      if (this.reservations.has(key)) {
        if (this.strictLarval) {
          throw new KernelError('addSa', 'EEXIST', `SPI ${hexSpi(copy.spi)} is reserved (use updateSa)`);
        }
        this.reservations.delete(key);
      }
      this.install(key, copy, { bytes: 0n, packets: 0n });
    });
  }

  updateSa(sa: KernelSa): Promise<void> {
    const call = this.record('updateSa', saSummary('updateSa', sa), redactSa(sa));
    const copy = structuredClone(sa);
    return this.process(call, () => {
      this.checkSa('updateSa', copy);
      const key = saKey(copy);
      const existing = this.saMap.get(key);
      if (existing) {
        this.install(key, copy, existing.counters, existing.installedAt);
      } else if (this.reservations.delete(key)) {
        this.install(key, copy, { bytes: 0n, packets: 0n });
      } else {
        throw new KernelError('updateSa', this.missingSaErrno, `no SA ${this.describeKey(copy)}`);
      }
    });
  }

  deleteSa(args: SaId): Promise<void> {
    const call = this.record('deleteSa', `deleteSa ${args.protocol} spi=${hexSpi(args.spi)} dst=${args.destination}`, {
      ...args,
    });
    return this.process(call, () => {
      const key = saKey(args);
      this.saMap.get(key)?.cancelExpiry?.();
      if (!this.saMap.delete(key) && !this.reservations.delete(key)) {
        throw new KernelError('deleteSa', this.missingSaErrno, `no SA ${this.describeKey(args)}`);
      }
    });
  }

  addPolicy(policy: KernelPolicy): Promise<void> {
    const call = this.record('addPolicy', policySummary('addPolicy', policy), structuredClone({ ...policy }));
    const copy = structuredClone(policy);
    return this.process(call, () => {
      const key = policyKey(copy);
      if (this.policyMap.has(key)) {
        throw new KernelError('addPolicy', 'EEXIST', `policy ${policySummary('addPolicy', copy)} exists`);
      }
      this.policyMap.set(key, copy);
    });
  }

  deletePolicy(policy: Pick<KernelPolicy, 'direction' | 'local' | 'remote' | 'mark' | 'ifId'>): Promise<void> {
    const sel = { direction: policy.direction, local: policy.local, remote: policy.remote } as Pick<
      KernelPolicy,
      'direction' | 'local' | 'remote' | 'mark' | 'ifId'
    >;
    if (policy.mark) sel.mark = policy.mark;
    if (policy.ifId !== undefined) sel.ifId = policy.ifId;
    const call = this.record('deletePolicy', policySummary('deletePolicy', sel), structuredClone(sel));
    const key = policyKey(sel);
    return this.process(call, () => {
      if (!this.policyMap.delete(key)) {
        throw new KernelError('deletePolicy', 'ENOENT', `no policy ${policySummary('deletePolicy', sel)}`);
      }
    });
  }

  querySa(args: SaId): Promise<SaCounters | undefined> {
    const call = this.record('querySa', `querySa ${args.protocol} spi=${hexSpi(args.spi)} dst=${args.destination}`, {
      ...args,
    });
    return this.process(call, () => {
      const key = saKey(args);
      const stored = this.saMap.get(key);
      if (stored) return { ...stored.counters };
      if (this.reservations.has(key)) return { bytes: 0n, packets: 0n };
      return undefined;
    });
  }

  // --- test controls ---

  /**
   * Make the next `count` (default 1) calls of `op` (those matching `when`, if given) fail with `code`, without
   * effect. Injections queue up in the order given.
   */
  failNext(op: KernelOp, code: ErrnoCode, options: { count?: number; when?: (call: KernelCall) => boolean } = {}) {
    const list = this.injections.get(op) ?? [];
    list.push({ code, remaining: options.count ?? 1, when: options.when });
    this.injections.set(op, list);
  }

  /** Count traffic on an installed SA, as the data plane would. `destination`/`protocol` disambiguate. */
  addTraffic(
    spi: number,
    bytes: number | bigint,
    packets: number | bigint,
    where: { destination?: string; protocol?: 'esp' | 'ah' } = {},
  ): TrafficResult {
    const matches = [...this.saMap.values()].filter(
      (s) =>
        s.sa.spi >>> 0 === spi >>> 0 &&
        (where.destination === undefined ||
          canonicalAddress(where.destination) === canonicalAddress(s.sa.destination)) &&
        (where.protocol === undefined || where.protocol === s.sa.protocol),
    );
    if (matches.length !== 1) {
      throw new Error(
        `${this.name}.addTraffic: ${matches.length === 0 ? 'no' : 'more than one'} SA with SPI ${hexSpi(spi)}`,
      );
    }
    const s = matches[0]!;
    s.counters.bytes += BigInt(bytes);
    s.counters.packets += BigInt(packets);
    if (this.clock) s.counters.lastUsed = this.clock.now();
    const lt = s.sa.lifetime;
    const over = (limit: bigint | undefined, value: bigint) => limit !== undefined && limit > 0n && value >= limit;
    const hardBytes = over(lt.hardBytes, s.counters.bytes);
    const hardPackets = over(lt.hardPackets, s.counters.packets);
    const result = {
      ...s.counters,
      softExceeded: over(lt.softBytes, s.counters.bytes) || over(lt.softPackets, s.counters.packets),
      hardExceeded: hardBytes || hardPackets,
    };
    if (result.hardExceeded && this.enforceLifetimes) this.expire(s, hardBytes ? 'hard-bytes' : 'hard-packets');
    return result;
  }

  /** Installed SAs (deep copies, in installation order). */
  sas(): KernelSa[] {
    return [...this.saMap.values()].map((s) => structuredClone(s.sa));
  }

  /** The installed SA with this SPI (and destination, when SPIs repeat across destinations). */
  sa(spi: number, destination?: string): KernelSa | undefined {
    for (const s of this.saMap.values()) {
      if (s.sa.spi >>> 0 !== spi >>> 0) continue;
      if (destination !== undefined && canonicalAddress(destination) !== canonicalAddress(s.sa.destination)) continue;
      return structuredClone(s.sa);
    }
    return undefined;
  }

  /** Installed policies (deep copies). */
  policies(): KernelPolicy[] {
    return [...this.policyMap.values()].map((p) => structuredClone(p));
  }

  /** SPIs reserved by allocSpi and not yet installed or deleted (leaks show up here). */
  reservedSpis(): { spi: number; protocol: 'esp' | 'ah'; source: string; destination: string; reqid: number }[] {
    return [...this.reservations.values()].map((r) => ({ ...r }));
  }

  /** Summaries of the recorded calls, optionally only some operations. */
  log(ops?: readonly KernelOp[]): string[] {
    return this.calls.filter((c) => !ops || ops.includes(c.op)).map((c) => c.summary);
  }

  /** Requests accepted but not yet processed (latency). */
  get pendingRequests(): number {
    return this.queued;
  }

  /** Current state, one line per SA/policy, without keys. */
  describe(): string {
    const lines = [`# ${this.name}`];
    for (const s of this.saMap.values()) {
      lines.push(`${saSummary('sa', s.sa)} bytes=${s.counters.bytes} packets=${s.counters.packets}`);
    }
    for (const p of this.policyMap.values()) lines.push(policySummary('policy', p));
    for (const r of this.reservations.values()) lines.push(`reserved ${r.protocol} spi=${hexSpi(r.spi)}`);
    return lines.join('\n');
  }

  // --- internals ---

  private now(): number {
    return this.clock?.now() ?? 0;
  }

  private record(op: KernelOp, summary: string, detail: Record<string, unknown>): KernelCall {
    const call: KernelCall = { seq: this.calls.length, op, at: this.now(), summary, detail, result: 'pending' };
    this.calls.push(call);
    return call;
  }

  private takeInjection(call: KernelCall): ErrnoCode | undefined {
    const list = this.injections.get(call.op);
    if (!list) return undefined;
    const i = list.findIndex((inj) => inj.when === undefined || inj.when(call));
    if (i < 0) return undefined;
    const inj = list[i]!;
    if (--inj.remaining <= 0) list.splice(i, 1);
    return inj.code;
  }

  /** Run `effect` now or after the latency (FIFO), settle the call record and the promise. */
  private process<T>(call: KernelCall, effect: () => T): Promise<T> {
    const injected = this.takeInjection(call);
    const run = (): T => {
      try {
        if (injected) throw new KernelError(call.op, injected, 'injected failure');
        const value = effect();
        call.result = 'ok';
        return value;
      } catch (err) {
        call.result = err instanceof KernelError ? err.code : 'EINVAL';
        throw err;
      } finally {
        call.settledAt = this.now();
      }
    };
    const latency = this.latency(call.op);
    if (!(latency >= 0)) throw new RangeError(`${this.name}: bad latency ${latency} for ${call.op}`);
    const now = this.now();
    if (!this.clock || (latency === 0 && this.queued === 0)) {
      try {
        return Promise.resolve(run());
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const at = Math.max(now + latency, this.queueAt);
    this.queueAt = at;
    this.queued++;
    return new Promise<T>((resolve, reject) => {
      this.clock!.setTimerAt(
        at,
        () => {
          this.queued--;
          try {
            resolve(run());
          } catch (err) {
            reject(err);
          }
        },
        `${this.name} ${call.op} #${call.seq}`,
      );
    });
  }

  private checkSa(op: KernelOp, sa: KernelSa): void {
    if (!Number.isInteger(sa.spi) || sa.spi <= 0 || sa.spi > 0xffffffff) {
      throw new KernelError(op, 'EINVAL', `bad SPI ${sa.spi}`);
    }
    if (this.validateAlgorithms) {
      const problem = algorithmProblem(sa);
      if (problem) throw new KernelError(op, problem.code, problem.why);
    }
  }

  private install(key: string, sa: KernelSa, counters: SaCounters, installedAt = this.now()): void {
    this.saMap.get(key)?.cancelExpiry?.();
    const stored: StoredSa = { sa, counters, installedAt, cancelExpiry: undefined };
    this.saMap.set(key, stored);
    // Read through a structural type: older versions of the port have no hardSeconds.
    const hardSeconds = (sa.lifetime as { hardSeconds?: number }).hardSeconds;
    if (this.enforceLifetimes && this.clock && hardSeconds !== undefined && hardSeconds > 0) {
      stored.cancelExpiry = this.clock.setTimerAt(
        installedAt + hardSeconds * 1000,
        () => {
          if (this.saMap.get(key) === stored) this.expire(stored, 'hard-seconds');
        },
        `${this.name} expire ${sa.direction} ${hexSpi(sa.spi)}`,
      );
    }
  }

  private expire(stored: StoredSa, reason: Expiration['reason']): void {
    stored.cancelExpiry?.();
    this.saMap.delete(saKey(stored.sa));
    const { spi, protocol, destination, direction, reqid } = stored.sa;
    const e: Expiration = { at: this.now(), spi, protocol, destination, direction, reqid, reason };
    this.expirations.push(e);
    this.onExpire?.(e);
  }

  private describeKey(id: SaId): string {
    return `${id.protocol} spi=${hexSpi(id.spi)} dst=${id.destination} in ${this.name}`;
  }
}

/**
 * Compare kernel A's outbound SA with SPI `spi` against kernel B's inbound SA with the same SPI: same protocol,
 * addresses, algorithms, key bytes, ICV/truncation lengths and ESN. Returns undefined when they match, else why
 * not (never printing key bytes).
 */
export function keyMismatch(a: RecordingKernel, b: RecordingKernel, spi: number): string | undefined {
  const outs = a.sas().filter((s) => s.direction === 'out' && s.spi >>> 0 === spi >>> 0);
  const ins = b.sas().filter((s) => s.direction === 'in' && s.spi >>> 0 === spi >>> 0);
  if (outs.length !== 1) return `${a.name} has ${outs.length} outbound SAs with SPI ${hexSpi(spi)}`;
  if (ins.length !== 1) return `${b.name} has ${ins.length} inbound SAs with SPI ${hexSpi(spi)}`;
  const o = outs[0]!;
  const i = ins[0]!;
  const eq = (x: Uint8Array | undefined, y: Uint8Array | undefined) =>
    x === undefined || y === undefined ? x === y : x.length === y.length && x.every((v, k) => v === y[k]);
  const where = `SPI ${hexSpi(spi)} (${a.name} out, ${b.name} in)`;
  if (o.protocol !== i.protocol) return `${where}: protocol ${o.protocol} vs ${i.protocol}`;
  if (o.mode !== i.mode) return `${where}: mode ${o.mode} vs ${i.mode}`;
  if (canonicalAddress(o.source) !== canonicalAddress(i.source)) return `${where}: source ${o.source} vs ${i.source}`;
  if (canonicalAddress(o.destination) !== canonicalAddress(i.destination)) {
    return `${where}: destination ${o.destination} vs ${i.destination}`;
  }
  if (o.encryption.name !== i.encryption.name) {
    return `${where}: encryption ${o.encryption.name} vs ${i.encryption.name}`;
  }
  if (o.encryption.icvBits !== i.encryption.icvBits) return `${where}: ICV bits differ`;
  if (!eq(o.encryption.key, i.encryption.key)) {
    return `${where}: encryption keys differ (${o.encryption.key.length} and ${i.encryption.key.length} bytes)`;
  }
  if ((o.integrity === undefined) !== (i.integrity === undefined)) return `${where}: only one side has integrity`;
  if (o.integrity && i.integrity) {
    if (o.integrity.name !== i.integrity.name) {
      return `${where}: integrity ${o.integrity.name} vs ${i.integrity.name}`;
    }
    if (o.integrity.truncationBits !== i.integrity.truncationBits) return `${where}: truncation differs`;
    if (!eq(o.integrity.key, i.integrity.key)) return `${where}: integrity keys differ`;
  }
  if (o.esn !== i.esn) return `${where}: ESN ${o.esn} vs ${i.esn}`;
  if ((o.encap === undefined) !== (i.encap === undefined)) return `${where}: only one side has UDP encapsulation`;
  return undefined;
}

/** True when kernel A's outbound SA `spi` and kernel B's inbound SA `spi` carry the same algorithms and keys. */
export function equalKeys(a: RecordingKernel, b: RecordingKernel, spi: number): boolean {
  return keyMismatch(a, b, spi) === undefined;
}

/**
 * Check every outbound SA of each kernel against the other's inbound SA with that SPI, and that neither side has
 * an inbound SA the other does not send on. Returns the problems (empty when the pair is consistent).
 */
export function verifyPairing(a: RecordingKernel, b: RecordingKernel): string[] {
  const problems: string[] = [];
  for (const [x, y] of [
    [a, b],
    [b, a],
  ] as const) {
    const outSpis = new Set<number>();
    for (const sa of x.sas()) {
      if (sa.direction !== 'out') continue;
      outSpis.add(sa.spi >>> 0);
      const m = keyMismatch(x, y, sa.spi);
      if (m) problems.push(m);
    }
    for (const sa of y.sas()) {
      if (sa.direction === 'in' && !outSpis.has(sa.spi >>> 0)) {
        problems.push(`${y.name} has inbound SPI ${hexSpi(sa.spi)} that ${x.name} does not send on`);
      }
    }
  }
  return problems;
}
