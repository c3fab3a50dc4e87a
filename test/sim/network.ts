/**
 * An in-memory UDP network for simulations. Endpoints `listen` at address:port; anything sent through `sender()`
 * is copied (so a sender may reuse its buffer), run through filters and link conditions, and delivered later by a
 * FakeClock timer: never synchronously inside the sender's call, even with zero delay.
 *
 * Conditions (global defaults, overridden per directed address pair with `setLink`): loss and duplication
 * probabilities, a base delay plus uniform jitter, a reordering probability with its own extra delay, and an MTU.
 * Non-reordered packets on one address pair stay in order (jitter delays, it does not reorder); a reordered packet
 * skips that FIFO constraint. Every send draws the same number of random values whatever the conditions, so
 * changing e.g. the loss rate changes which packets are lost but not the delays of the others.
 *
 * When a seed fails, `keepTrace` (the last N events) and `dumpTrace()` show what happened; `onTrace` streams events.
 */
import type { Endpoint, Sender } from '../../src/ike/ports.js';
import type { FakeClock } from './clock.js';
import type { SeededRandom } from './random.js';

export type PacketHandler = (packet: Uint8Array, from: Endpoint, to: Endpoint) => void;

export interface LinkConditions {
  /** Probability that a packet is lost. */
  loss: number;
  /** Probability that a packet is delivered twice (each copy gets its own delay and may be lost separately). */
  duplicate: number;
  /** One-way base delay, ms. */
  delayMs: number;
  /** Extra uniform [0, jitterMs) delay. Does not reorder packets on the same address pair. */
  jitterMs: number;
  /** Probability that a packet is reordered: it gets an extra uniform [0, reorderDelayMs) and skips the FIFO. */
  reorder: number;
  reorderDelayMs: number;
  /**
   * Largest IP datagram, bytes, counting the IP (20 or 40) and UDP (8) headers and the 4-byte non-ESP marker on
   * port 4500. Larger packets are dropped (reason 'mtu'), as a path with a smaller MTU and DF set would.
   */
  mtu: number;
}

export type DropReason = 'loss' | 'mtu' | 'partition' | 'down' | 'unreachable' | 'filter';

export interface TraceEvent {
  /** Monotonic time of the event, ms. */
  time: number;
  /** Packet id (increments per `send`); both copies of a duplicated packet share it. */
  id: number;
  /** 0 for the original, 1 for a duplicate. */
  copy: 0 | 1;
  event: 'send' | 'duplicate' | 'deliver' | 'drop';
  reason?: DropReason;
  from: Endpoint;
  to: Endpoint;
  length: number;
  /** Hex of the first `headBytes` bytes (for IKE: the SPIs, next payload, version, exchange, flags, message ID). */
  head: string;
}

export interface CapturedPacket {
  id: number;
  sentAt: number;
  from: Endpoint;
  to: Endpoint;
  /** The bytes as sent (after any filter replaced them). */
  bytes: Uint8Array;
  /** 1, or 2 when duplicated. */
  copies: number;
  /** Delivery times of the copies that arrived. */
  deliveredAt: number[];
  /** Why copies were dropped, one entry per dropped copy. */
  dropped: DropReason[];
}

export interface NetworkStats {
  /** `send` calls. */
  sent: number;
  /** Copies handed to a receive handler. */
  delivered: number;
  /** Copies dropped, for any reason. */
  dropped: number;
  /** Extra copies created by duplication. */
  duplicated: number;
  dropsByReason: Record<DropReason, number>;
  /** Copies scheduled but not yet delivered or dropped. */
  inFlight: number;
}

/** What a filter sees; return 'drop' to drop the packet, a Uint8Array to replace its bytes, nothing to pass. */
export interface FilterPacket {
  id: number;
  time: number;
  from: Endpoint;
  to: Endpoint;
  bytes: Uint8Array;
}
export type PacketFilter = (packet: FilterPacket) => 'drop' | Uint8Array | undefined;

export interface SimNetworkOptions {
  clock: FakeClock;
  /** The network's own stream (fork one off the simulation's root). */
  random: SeededRandom;
  /** Global conditions; unspecified fields are perfect (no loss, zero delay, no MTU limit). */
  conditions?: Partial<LinkConditions>;
  /** Record every packet for `captured()` (default true). */
  capture?: boolean;
  /** Keep at most this many captured packets, the newest (default 100,000). */
  captureLimit?: number;
  /** Keep the last N trace events for `trace()`/`dumpTrace()` (default 0: none). */
  keepTrace?: number;
  /** Bytes of each packet shown in trace events (default 28: the IKE header). */
  headBytes?: number;
}

const PERFECT: LinkConditions = {
  loss: 0,
  duplicate: 0,
  delayMs: 0,
  jitterMs: 0,
  reorder: 0,
  reorderDelayMs: 0,
  mtu: Number.POSITIVE_INFINITY,
};

/** Canonical text of an address: IPv6 lower-case and compressed, IPv4 as given. */
export function canonicalAddress(address: string): string {
  if (!address.includes(':')) return address;
  try {
    const host = new URL(`http://[${address}]`).hostname;
    return host.slice(1, -1);
  } catch {
    return address.toLowerCase();
  }
}

function endpointKey(e: Endpoint): string {
  return `${canonicalAddress(e.address)}|${e.port}`;
}

function pairKey(from: string, to: string): string {
  return `${canonicalAddress(from)}>${canonicalAddress(to)}`;
}

function unorderedKey(a: string, b: string): string {
  const x = canonicalAddress(a);
  const y = canonicalAddress(b);
  return x < y ? `${x}<>${y}` : `${y}<>${x}`;
}

function hex(bytes: Uint8Array, n: number): string {
  let s = '';
  const end = Math.min(n, bytes.length);
  for (let i = 0; i < end; i++) s += bytes[i]!.toString(16).padStart(2, '0');
  return s;
}

function ipOverhead(from: Endpoint, to: Endpoint): number {
  const ip = from.address.includes(':') ? 40 : 20;
  const marker = from.port === 4500 || to.port === 4500 ? 4 : 0;
  return ip + 8 + marker;
}

function validate(c: Partial<LinkConditions>): void {
  for (const k of ['loss', 'duplicate', 'reorder'] as const) {
    const v = c[k];
    if (v !== undefined && !(v >= 0 && v <= 1)) throw new RangeError(`SimNetwork: ${k} must be in [0, 1], got ${v}`);
  }
  for (const k of ['delayMs', 'jitterMs', 'reorderDelayMs'] as const) {
    const v = c[k];
    if (v !== undefined && !(v >= 0 && Number.isFinite(v))) throw new RangeError(`SimNetwork: ${k} must be >= 0`);
  }
  if (c.mtu !== undefined && !(c.mtu > 0)) throw new RangeError('SimNetwork: mtu must be > 0');
}

/** One line per event, for printing the trace of a failing seed. */
export function formatTraceEvent(e: TraceEvent): string {
  const copy = e.copy ? "'" : '';
  const reason = e.reason ? `(${e.reason})` : '';
  return (
    `t=${e.time} #${e.id}${copy} ${e.event}${reason} ${e.from.address}:${e.from.port} -> ` +
    `${e.to.address}:${e.to.port} len=${e.length} ${e.head}`
  );
}

export class SimNetwork {
  private readonly clock: FakeClock;
  private readonly random: SeededRandom;
  private global: LinkConditions;
  private readonly links = new Map<string, Partial<LinkConditions>>();
  private readonly handlers = new Map<string, PacketHandler>();
  private readonly partitions = new Set<string>();
  private readonly downed = new Set<string>();
  private readonly filters: PacketFilter[] = [];
  private readonly tracers: ((e: TraceEvent) => void)[] = [];
  /** Latest delivery time of a non-reordered packet per directed address pair (FIFO). */
  private readonly fifo = new Map<string, number>();
  private readonly capture: boolean;
  private readonly captureLimit: number;
  private capturedPackets: CapturedPacket[] = [];
  private readonly keepTrace: number;
  private traceRing: TraceEvent[] = [];
  private readonly headBytes: number;
  private nextId = 0;
  private readonly counters: NetworkStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    dropsByReason: { loss: 0, mtu: 0, partition: 0, down: 0, unreachable: 0, filter: 0 },
    inFlight: 0,
  };

  constructor(options: SimNetworkOptions) {
    this.clock = options.clock;
    this.random = options.random;
    validate(options.conditions ?? {});
    this.global = { ...PERFECT, ...options.conditions };
    this.capture = options.capture ?? true;
    this.captureLimit = options.captureLimit ?? 100_000;
    this.keepTrace = options.keepTrace ?? 0;
    this.headBytes = options.headBytes ?? 28;
  }

  /** Bind `handler` at `endpoint`; throws if something is bound there already. Returns an unbind function. */
  listen(endpoint: Endpoint, handler: PacketHandler): () => void {
    const key = endpointKey(endpoint);
    if (this.handlers.has(key)) {
      throw Object.assign(new Error(`SimNetwork: ${endpoint.address}:${endpoint.port} already bound`), {
        code: 'EADDRINUSE',
      });
    }
    this.handlers.set(key, handler);
    return () => {
      if (this.handlers.get(key) === handler) this.handlers.delete(key);
    };
  }

  /** The engine's `Sender` port, delivering through this network. */
  sender(): Sender {
    return { send: (packet, from, to) => this.send(packet, from, to) };
  }

  send(packet: Uint8Array, from: Endpoint, to: Endpoint): void {
    const id = this.nextId++;
    const now = this.clock.now();
    from = { address: from.address, port: from.port };
    to = { address: to.address, port: to.port };
    let bytes = packet.slice();
    this.counters.sent++;

    // Fixed number of draws per packet, whatever happens to it (see the file comment). Per copy: loss, jitter,
    // reorder, reorder delay. A duplicate is made inside the network, so its fate is drawn independently.
    const uDup = this.random.float();
    const draws: [number, number, number, number][] = [];
    for (let k = 0; k < 2; k++) {
      draws.push([this.random.float(), this.random.float(), this.random.float(), this.random.float()]);
    }

    for (const filter of this.filters) {
      const verdict = filter({ id, time: now, from, to, bytes });
      if (verdict === 'drop') {
        const rec = this.record(id, now, from, to, bytes, 1);
        this.emit({ id, copy: 0, event: 'send', from, to, bytes });
        this.drop(id, 0, 'filter', from, to, bytes, rec);
        return;
      }
      if (verdict instanceof Uint8Array) bytes = verdict.slice();
    }

    const c = this.conditionsFor(from.address, to.address);
    const copies = uDup < c.duplicate ? 2 : 1;
    const rec = this.record(id, now, from, to, bytes, copies);
    this.emit({ id, copy: 0, event: 'send', from, to, bytes });
    if (copies === 2) {
      this.counters.duplicated++;
      this.emit({ id, copy: 1, event: 'duplicate', from, to, bytes });
    }

    const fifoKey = pairKey(from.address, to.address);
    for (let k = 0; k < copies; k++) {
      const copy: 0 | 1 = k === 0 ? 0 : 1;
      const [uLoss, uJitter, uReorder, uReorderDelay] = draws[k]!;
      const reason = this.sendTimeDrop(from, to, bytes, c, uLoss);
      if (reason) {
        this.drop(id, copy, reason, from, to, bytes, rec);
        continue;
      }
      let at = now + c.delayMs + uJitter * c.jitterMs;
      if (uReorder < c.reorder) {
        at += uReorderDelay * c.reorderDelayMs;
      } else {
        at = Math.max(at, this.fifo.get(fifoKey) ?? at);
        this.fifo.set(fifoKey, at);
      }
      this.counters.inFlight++;
      this.clock.setTimerAt(at, () => this.deliver(id, copy, from, to, bytes, rec), `net #${id}${copy ? "'" : ''}`);
    }
  }

  /** Change global conditions (merged into the current ones). */
  setConditions(conditions: Partial<LinkConditions>): void {
    validate(conditions);
    this.global = { ...this.global, ...conditions };
  }

  /** Override conditions from address `from` to address `to` (and back, unless `oneWay`). Merged with earlier. */
  setLink(from: string, to: string, conditions: Partial<LinkConditions>, options: { oneWay?: boolean } = {}): void {
    validate(conditions);
    const keys = options.oneWay ? [pairKey(from, to)] : [pairKey(from, to), pairKey(to, from)];
    for (const k of keys) this.links.set(k, { ...this.links.get(k), ...conditions });
  }

  /** Remove per-link overrides between two addresses (both directions unless `oneWay`). */
  clearLink(from: string, to: string, options: { oneWay?: boolean } = {}): void {
    this.links.delete(pairKey(from, to));
    if (!options.oneWay) this.links.delete(pairKey(to, from));
  }

  /** Effective conditions from one address to another. */
  conditionsFor(from: string, to: string): LinkConditions {
    const link = this.links.get(pairKey(from, to));
    return link ? { ...this.global, ...link } : this.global;
  }

  /** Cut both directions between two addresses: packets sent while partitioned are dropped (in flight ones land). */
  partition(a: string, b: string): void {
    this.partitions.add(unorderedKey(a, b));
  }

  /** Heal the partition between a and b, or every partition when called without arguments. */
  heal(a?: string, b?: string): void {
    if (a === undefined || b === undefined) this.partitions.clear();
    else this.partitions.delete(unorderedKey(a, b));
  }

  isPartitioned(a: string, b: string): boolean {
    return this.partitions.has(unorderedKey(a, b));
  }

  /** Take a host off the network: it neither sends nor receives (packets in flight to it are dropped on arrival). */
  down(address: string): void {
    this.downed.add(canonicalAddress(address));
  }

  up(address: string): void {
    this.downed.delete(canonicalAddress(address));
  }

  isDown(address: string): boolean {
    return this.downed.has(canonicalAddress(address));
  }

  /** Add a filter run on every sent packet (before the link conditions). Returns a remover. */
  addFilter(filter: PacketFilter): () => void {
    this.filters.push(filter);
    return () => {
      const i = this.filters.indexOf(filter);
      if (i >= 0) this.filters.splice(i, 1);
    };
  }

  /** Call `fn` for every trace event. Returns a remover. */
  onTrace(fn: (e: TraceEvent) => void): () => void {
    this.tracers.push(fn);
    return () => {
      const i = this.tracers.indexOf(fn);
      if (i >= 0) this.tracers.splice(i, 1);
    };
  }

  /** The last `keepTrace` events. */
  trace(): TraceEvent[] {
    return this.traceRing.slice(-this.keepTrace);
  }

  /** The kept trace as text, one event per line, with the seed of the network's random stream on top. */
  dumpTrace(): string {
    return [`# seed ${this.random.seed}`, ...this.trace().map(formatTraceEvent)].join('\n');
  }

  /** Captured packets (oldest first), optionally only those between given addresses/endpoints. */
  captured(filter: { from?: string | Endpoint; to?: string | Endpoint } = {}): CapturedPacket[] {
    const match = (want: string | Endpoint | undefined, got: Endpoint): boolean =>
      want === undefined ||
      (typeof want === 'string'
        ? canonicalAddress(want) === canonicalAddress(got.address)
        : endpointKey(want) === endpointKey(got));
    return this.capturedPackets
      .slice(-this.captureLimit)
      .filter((p) => match(filter.from, p.from) && match(filter.to, p.to));
  }

  clearCaptured(): void {
    this.capturedPackets = [];
  }

  /** A snapshot of the counters. */
  get stats(): NetworkStats {
    return { ...this.counters, dropsByReason: { ...this.counters.dropsByReason } };
  }

  // --- internals ---

  private sendTimeDrop(
    from: Endpoint,
    to: Endpoint,
    bytes: Uint8Array,
    c: LinkConditions,
    uLoss: number,
  ): DropReason | undefined {
    if (this.isDown(from.address) || this.isDown(to.address)) return 'down';
    if (this.isPartitioned(from.address, to.address)) return 'partition';
    if (bytes.length + ipOverhead(from, to) > c.mtu) return 'mtu';
    if (uLoss < c.loss) return 'loss';
    return undefined;
  }

  private deliver(
    id: number,
    copy: 0 | 1,
    from: Endpoint,
    to: Endpoint,
    bytes: Uint8Array,
    rec: CapturedPacket | undefined,
  ): void {
    this.counters.inFlight--;
    if (this.isDown(to.address)) {
      this.drop(id, copy, 'down', from, to, bytes, rec);
      return;
    }
    const handler = this.handlers.get(endpointKey(to));
    if (!handler) {
      this.drop(id, copy, 'unreachable', from, to, bytes, rec);
      return;
    }
    this.counters.delivered++;
    rec?.deliveredAt.push(this.clock.now());
    this.emit({ id, copy, event: 'deliver', from, to, bytes });
    handler(bytes.slice(), { ...from }, { ...to });
  }

  private drop(
    id: number,
    copy: 0 | 1,
    reason: DropReason,
    from: Endpoint,
    to: Endpoint,
    bytes: Uint8Array,
    rec: CapturedPacket | undefined,
  ): void {
    this.counters.dropped++;
    this.counters.dropsByReason[reason]++;
    rec?.dropped.push(reason);
    this.emit({ id, copy, event: 'drop', reason, from, to, bytes });
  }

  private record(
    id: number,
    sentAt: number,
    from: Endpoint,
    to: Endpoint,
    bytes: Uint8Array,
    copies: number,
  ): CapturedPacket | undefined {
    if (!this.capture) return undefined;
    const rec: CapturedPacket = { id, sentAt, from, to, bytes, copies, deliveredAt: [], dropped: [] };
    this.capturedPackets.push(rec);
    // Trim in chunks so that a long soak does not shift the array on every packet.
    if (this.capturedPackets.length > this.captureLimit * 1.25 + 16) {
      this.capturedPackets = this.capturedPackets.slice(-this.captureLimit);
    }
    return rec;
  }

  private emit(e: {
    id: number;
    copy: 0 | 1;
    event: TraceEvent['event'];
    reason?: DropReason;
    from: Endpoint;
    to: Endpoint;
    bytes: Uint8Array;
  }): void {
    if (this.tracers.length === 0 && this.keepTrace === 0) return;
    const ev: TraceEvent = {
      time: this.clock.now(),
      id: e.id,
      copy: e.copy,
      event: e.event,
      from: e.from,
      to: e.to,
      length: e.bytes.length,
      head: hex(e.bytes, this.headBytes),
    };
    if (e.reason) ev.reason = e.reason;
    if (this.keepTrace > 0) {
      this.traceRing.push(ev);
      if (this.traceRing.length > this.keepTrace * 2) this.traceRing = this.traceRing.slice(-this.keepTrace);
    }
    for (const t of this.tracers) t(ev);
  }
}
