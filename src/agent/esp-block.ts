/**
 * ESP blocked: some networks pass UDP (so IKE works) but drop IP protocol 50. The tunnel then looks up, the kernel
 * sends ESP, and nothing comes back. This detector watches each plain-ESP CHILD SA's kernel counters: when the
 * outbound packets rise by at least `minPackets` over `windowMs` while not one inbound packet arrives, it asks the
 * peer for a liveness check (an IKE INFORMATIONAL, which travels over UDP); when the peer answers and still no
 * ESP came in, ESP is blocked on the path. The agent then renegotiates the tunnel with forced UDP encapsulation
 * (`natt: force`: fake NAT-D, RFC 7296 §2.23, so both peers put ESP in UDP 4500 as behind a NAT) and says so
 * in status.
 *
 * It can be fooled by traffic that only flows one way (a UDP stream into a sink on the other side): then the
 * tunnel is renegotiated onto UDP encapsulation needlessly (a short gap, then 8 bytes more per packet). That is why
 * AgentSettings.espBlockedFallback is off by default.
 */
import type { Logger } from 'pino';
import type { IkeSa } from '../ike/sa/ike-sa.js';

export interface EspSample {
  /** When sampled (monotonic ms). */
  at: number;
  packetsIn: bigint;
  packetsOut: bigint;
  /** Monotonic ms of the last IKE message from the peer. */
  lastIkeInbound: number;
}

export interface Suspicion {
  since: number;
  in0: bigint;
  out0: bigint;
  /** When we asked the peer for a liveness check. */
  probeAt?: number;
}

export interface EspBlockParams {
  windowMs: number;
  minPackets: number;
}

export type Verdict =
  | { action: 'none'; suspicion?: Suspicion }
  | { action: 'probe'; suspicion: Suspicion }
  | { action: 'blocked'; suspicion: Suspicion; message: string };

/** One step of the decision (pure): previous suspicion and the new sample in, verdict out. */
export function judge(prev: Suspicion | undefined, s: EspSample, p: EspBlockParams): Verdict {
  if (prev && s.packetsIn !== prev.in0) return { action: 'none' };
  if (!prev) {
    // ESP has come in at some point: that path carries ESP. Nothing to suspect while inbound moves.
    return { action: 'none', suspicion: { since: s.at, in0: s.packetsIn, out0: s.packetsOut } };
  }
  const sent = s.packetsOut - prev.out0;
  if (s.at - prev.since < p.windowMs || sent < BigInt(p.minPackets)) return { action: 'none', suspicion: prev };
  if (prev.probeAt === undefined) return { action: 'probe', suspicion: { ...prev, probeAt: s.at } };
  if (s.lastIkeInbound > prev.probeAt) {
    return {
      action: 'blocked',
      suspicion: prev,
      message:
        `${sent} ESP packets sent in ${Math.round((s.at - prev.since) / 1000)} s and none received, while the peer ` +
        'answers IKE: ESP (IP protocol 50) is blocked on the path; moving to UDP encapsulation (port 4500)',
    };
  }
  return { action: 'none', suspicion: prev };
}

export interface EspBlockOptions extends EspBlockParams {
  intervalMs: number;
  ikeSas: () => IkeSa[];
  checkLiveness: (sa: IkeSa) => void;
  counters: (spi: number, destination: string) => Promise<{ packets: bigint } | undefined>;
  now: () => number;
  onBlocked: (tunnel: string, message: string) => void;
  logger: Logger;
}

export class EspBlockDetector {
  /** By inbound SPI of the CHILD SA under watch. */
  private readonly suspects = new Map<number, Suspicion>();
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
          { at: this.o.now(), packetsIn: cin.packets, packetsOut: cout.packets, lastIkeInbound: sa.lastInbound },
          this.o,
        );
        if (v.suspicion) this.suspects.set(c.spiIn, v.suspicion);
        else this.suspects.delete(c.spiIn);
        if (v.action === 'probe') {
          this.o.logger.info(
            { event: 'esp-block-suspected', tunnel: sa.config.name },
            'outbound ESP without any inbound ESP; checking the peer is alive',
          );
          this.o.checkLiveness(sa);
        } else if (v.action === 'blocked' && !blocked.has(sa.config.name)) {
          blocked.add(sa.config.name);
          this.suspects.delete(c.spiIn);
          this.o.onBlocked(sa.config.name, v.message);
        }
      }
    }
    for (const spi of [...this.suspects.keys()]) if (!seen.has(spi)) this.suspects.delete(spi);
  }
}
