/**
 * ESP blocked: some networks pass UDP (so IKE works) but drop IP protocol 50. The tunnel then looks up, the kernel
 * sends ESP, and nothing comes back. This detector watches each plain-ESP CHILD SA's kernel counters: when the
 * outbound packets rise by at least `minPackets` over `windowMs` while not one inbound packet arrives, it asks the
 * peer, over IKE (UDP), how many packets its side of that CHILD SA received (src/ike/tasks/esp-check.ts). The answer
 * also proves the peer alive.
 *
 *   - The peer received none (or none since its last answer, while we sent at least `minPackets`): ESP is blocked
 *     on the path. The agent renegotiates the tunnel with forced UDP encapsulation (`natt: force`: fake NAT-D,
 *     RFC 7296 §2.23, so both peers put ESP in UDP 4500 as behind a NAT) and says so in status.
 *   - The peer received them: ESP passes and the traffic only flows one way (a UDP stream into a sink). Nothing
 *     changes; the next check comes after a longer window (doubling, up to 8 windows).
 *   - The peer answers without a count (not an ipsec-mesh peer: it ignores our private notify): mode `auto` logs a
 *     warning and changes nothing, since one-way traffic and blocked ESP look the same from here.
 * Mode `heuristic` switches as soon as the peer answers, whatever it reports (for foreign peers whose traffic is
 * known to flow both ways; a one-way flow is then moved to UDP needlessly).
 */
import type { Logger } from 'pino';
import type { ChildSa } from '../ike/sa/child-sa.js';
import type { IkeSa } from '../ike/sa/ike-sa.js';

export type EspBlockMode = 'auto' | 'heuristic';

export interface EspSample {
  /** When sampled (monotonic ms). */
  at: number;
  packetsIn: bigint;
  packetsOut: bigint;
  /** Monotonic ms of the last IKE message from the peer. */
  lastIkeInbound: number;
  /** The peer's last answer about its inbound count for this CHILD SA (ChildSa.peerReceived). */
  peer?: { at: number; packets?: bigint } | undefined;
}

export interface Suspicion {
  since: number;
  in0: bigint;
  out0: bigint;
  /** When we asked the peer. */
  probeAt?: number;
  /** The peer's count at its last answer (a baseline once it has received something). */
  peer0?: bigint;
  /** The window is `windowMs * hold` (doubles after each one-way or unconfirmed verdict, up to 8). */
  hold: number;
}

export interface EspBlockParams {
  windowMs: number;
  minPackets: number;
  mode: EspBlockMode;
}

export type Verdict =
  | { action: 'none'; suspicion?: Suspicion }
  | { action: 'probe'; suspicion: Suspicion }
  | { action: 'blocked'; suspicion: Suspicion; message: string }
  | { action: 'one-way' | 'unconfirmed'; suspicion: Suspicion; message: string };

const MAX_HOLD = 8;

/** One step of the decision (pure): previous suspicion and the new sample in, verdict out. */
export function judge(prev: Suspicion | undefined, s: EspSample, p: EspBlockParams): Verdict {
  if (prev && s.packetsIn !== prev.in0) return { action: 'none' };
  if (!prev) {
    // ESP has come in at some point: that path carries ESP. Nothing to suspect while inbound moves.
    return { action: 'none', suspicion: { since: s.at, in0: s.packetsIn, out0: s.packetsOut, hold: 1 } };
  }
  const sent = s.packetsOut - prev.out0;
  const secs = Math.round((s.at - prev.since) / 1000);
  if (s.at - prev.since < p.windowMs * prev.hold || sent < BigInt(p.minPackets)) {
    return { action: 'none', suspicion: prev };
  }
  if (prev.probeAt === undefined) return { action: 'probe', suspicion: { ...prev, probeAt: s.at } };
  // No answer yet: wait (if the peer is dead, liveness checks and DPD take the tunnel down).
  if (s.lastIkeInbound <= prev.probeAt) return { action: 'none', suspicion: prev };
  const answer = s.peer && s.peer.at > prev.probeAt ? s.peer : undefined;
  const next = (peer0: bigint | undefined): Suspicion => {
    const n: Suspicion = {
      since: s.at,
      in0: prev.in0,
      out0: s.packetsOut,
      hold: Math.min(prev.hold * 2, MAX_HOLD),
    };
    if (peer0 !== undefined) n.peer0 = peer0;
    return n;
  };
  const got = answer?.packets;
  if (got !== undefined && p.mode === 'auto') {
    if (got === 0n || got === prev.peer0) {
      return {
        action: 'blocked',
        suspicion: prev,
        message:
          `${sent} ESP packets sent in ${secs} s and none received, and the peer confirms over IKE that none ` +
          `reached it${got === 0n ? '' : ' since its last answer'}: ESP (IP protocol 50) is blocked on the path; ` +
          'moving to UDP encapsulation (port 4500)',
      };
    }
    return {
      action: 'one-way',
      suspicion: next(got),
      message:
        `${sent} ESP packets sent in ${secs} s and none received, but the peer reports ${got} received: ESP passes, ` +
        'the traffic flows one way; staying on plain ESP',
    };
  }
  if (p.mode === 'heuristic') {
    return {
      action: 'blocked',
      suspicion: prev,
      message:
        `${sent} ESP packets sent in ${secs} s and none received, while the peer answers IKE: ESP (IP protocol 50) ` +
        'is probably blocked on the path (mode heuristic: what the peer received is not consulted); moving to UDP ' +
        'encapsulation (port 4500)',
    };
  }
  return {
    action: 'unconfirmed',
    suspicion: next(prev.peer0),
    message:
      `${sent} ESP packets sent in ${secs} s and none received, while the peer answers IKE. The peer does not report ` +
      'what it received (not an ipsec-mesh agent), so one-way traffic cannot be told from blocked ESP: staying on ' +
      'plain ESP. If ESP is blocked, set natt: force on the tunnel, or espBlockedFallback.mode: heuristic',
  };
}

export interface EspBlockOptions extends EspBlockParams {
  intervalMs: number;
  ikeSas: () => IkeSa[];
  /** Ask the peer what it received on `child` (Engine.checkEspReceived). */
  checkEspReceived: (sa: IkeSa, child: ChildSa) => void;
  counters: (spi: number, destination: string) => Promise<{ packets: bigint } | undefined>;
  now: () => number;
  onBlocked: (tunnel: string, message: string) => void;
  logger: Logger;
}

export class EspBlockDetector {
  /** By inbound SPI of the CHILD SA under watch. */
  private readonly suspects = new Map<number, Suspicion>();
  /** Inbound SPIs already logged as one-way / unconfirmed (once per CHILD SA). */
  private readonly told = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: EspBlockOptions) {}

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      void this.check()
        .catch((e: unknown) => this.o.logger.error({ event: 'esp-block-check-error' }, (e as Error).message))
        .finally(() => {
          if (this.stopped) return;
          this.timer = setTimeout(tick, this.o.intervalMs);
          this.timer.unref?.();
        });
    };
    this.timer = setTimeout(tick, this.o.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  async check(): Promise<void> {
    const seen = new Set<number>();
    const blocked = new Set<string>();
    for (const sa of this.o.ikeSas()) {
      // Only plain ESP of tunnels that may move to UDP (natt auto), on live IKE SAs.
      if (sa.state !== 'established' || sa.natDetected || sa.config.natt !== 'auto') continue;
      for (const c of sa.children) {
        if (c.state !== 'installed' || !c.inboundInstalled || !c.outboundInstalled) continue;
        seen.add(c.spiIn);
        const cin = await this.o.counters(c.spiIn, sa.local.address);
        const cout = await this.o.counters(c.spiOut, sa.remote.address);
        if (!cin || !cout) continue;
        const v = judge(
          this.suspects.get(c.spiIn),
          {
            at: this.o.now(),
            packetsIn: cin.packets,
            packetsOut: cout.packets,
            lastIkeInbound: sa.lastInbound,
            peer: c.peerReceived,
          },
          this.o,
        );
        if (v.suspicion) this.suspects.set(c.spiIn, v.suspicion);
        else this.suspects.delete(c.spiIn);
        if (v.action === 'probe') {
          this.o.logger.info(
            { event: 'esp-block-suspected', tunnel: sa.config.name },
            'outbound ESP without any inbound ESP; asking the peer what it received',
          );
          this.o.checkEspReceived(sa, c);
        } else if (v.action === 'blocked' && !blocked.has(sa.config.name)) {
          blocked.add(sa.config.name);
          this.suspects.delete(c.spiIn);
          this.o.onBlocked(sa.config.name, v.message);
        } else if ((v.action === 'one-way' || v.action === 'unconfirmed') && !this.told.has(c.spiIn)) {
          this.told.add(c.spiIn);
          const event = v.action === 'one-way' ? 'esp-one-way' : 'esp-block-unconfirmed';
          const fields = { event, tunnel: sa.config.name, spi: c.spiIn.toString(16).padStart(8, '0') };
          if (v.action === 'one-way') this.o.logger.info(fields, v.message);
          else this.o.logger.warn(fields, v.message);
        }
      }
    }
    for (const spi of [...this.suspects.keys()]) if (!seen.has(spi)) this.suspects.delete(spi);
    for (const spi of [...this.told]) if (!seen.has(spi)) this.told.delete(spi);
  }
}
