/**
 * The agent's data-plane guards, built from AgentSettings in one place so the agent only wires them in:
 * route MTU / MSS clamping (mtu-controller.ts), proof of encryption (encryption-check.ts) and the ESP-blocked
 * fallback (esp-block.ts). All three need the XFRM data plane; with `--dataplane=none` none is created.
 */
import type { Logger } from 'pino';
import { parseDuration } from '../api/common.js';
import type { Clock, KernelIpsec } from '../ike/ports.js';
import type { ChildSa } from '../ike/sa/child-sa.js';
import type { IkeSa } from '../ike/sa/ike-sa.js';
import type { XfrmPolicy } from '../xfrm/messages.js';
import { EncryptionCheck, expectedChildren } from './encryption-check.js';
import { EspBlockDetector } from './esp-block.js';
import type { AgentMetrics } from './metrics.js';
import { MtuController, mtuInputs } from './mtu-controller.js';
import type { AgentSettings } from './settings.js';

export interface GuardContext {
  settings: AgentSettings;
  kernel: KernelIpsec & { dumpPolicies?(): Promise<XfrmPolicy[]> };
  logger: Logger;
  clock: Clock;
  metrics?: AgentMetrics | undefined;
  ikeSas: () => IkeSa[];
  checkEspReceived: (sa: IkeSa, child: ChildSa) => void;
  /** Keys of the configured tunnels. */
  tunnels: () => string[];
  onEspBlocked: (tunnel: string, message: string) => void;
}

export class DataplaneGuards {
  readonly mtu: MtuController | undefined;
  readonly encryption: EncryptionCheck | undefined;
  readonly espBlock: EspBlockDetector | undefined;

  constructor(x: GuardContext) {
    const s = x.settings;
    const k = x.kernel;
    const dump = k.dumpPolicies?.bind(k);
    this.mtu =
      s.mtu.enabled && dump
        ? new MtuController({
            settings: s.mtu,
            inputs: () => mtuInputs(x.ikeSas()),
            logger: x.logger,
            stateDir: s.stateDir,
          })
        : undefined;
    this.encryption =
      s.encryptionCheck.enabled && dump
        ? new EncryptionCheck({
            intervalMs: parseDuration(s.encryptionCheck.interval) ?? 5000,
            restore: s.encryptionCheck.restore,
            children: () => expectedChildren(x.ikeSas()),
            tunnels: x.tunnels,
            dumpPolicies: dump,
            addPolicy: (p) => k.addPolicy(p),
            outPackets: async (spi, destination) => (await k.querySa({ spi, protocol: 'esp', destination }))?.packets,
            logger: x.logger,
            wallNow: () => x.clock.wallNow(),
            onResult: (t, v, restored) => x.metrics?.encryptionChecked(t, v.status, restored),
          })
        : undefined;
    const eb = s.espBlockedFallback;
    const mode = eb.enabled === false ? 'off' : eb.mode;
    this.espBlock =
      mode !== 'off' && dump
        ? new EspBlockDetector({
            mode,
            intervalMs: parseDuration(eb.interval) ?? 2000,
            windowMs: parseDuration(eb.window) ?? 10_000,
            minPackets: eb.minPackets,
            ikeSas: x.ikeSas,
            checkEspReceived: x.checkEspReceived,
            counters: (spi, destination) => k.querySa({ spi, protocol: 'esp', destination }),
            now: () => x.clock.now(),
            onBlocked: x.onEspBlocked,
            logger: x.logger,
          })
        : undefined;
  }

  start(): void {
    this.mtu?.start();
    this.encryption?.start();
    this.espBlock?.start();
  }

  /** CHILD SAs came or went. */
  changed(): void {
    this.mtu?.poke();
  }

  /** Stop the checks (before the engine stops). */
  halt(): void {
    this.encryption?.stop();
    this.espBlock?.stop();
  }

  /** Remove what the MTU handling put in place (after the tunnels are gone). */
  async stop(): Promise<void> {
    this.halt();
    await this.mtu?.stop();
  }
}
