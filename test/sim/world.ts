/**
 * A simulated world: one FakeClock, one seeded root stream, one SimNetwork, and named hosts, each with its own
 * RecordingKernel and random stream, forked by name from the world's seed (so adding a host does not change what
 * the others draw). `host.ports(config)` gives the EnginePorts an engine instance needs. `report()` is what to
 * print when a seed fails: the seed, the time, network counters, the last packets and every kernel's state.
 */
import type { ConfigLookup, Endpoint, EnginePorts } from '../../src/ike/ports.js';
import { FakeClock } from './clock.js';
import { type KernelOp, RecordingKernel, type RecordingKernelOptions } from './kernel.js';
import { type LinkConditions, SimNetwork } from './network.js';
import { SeededRandom } from './random.js';

export interface SimWorldOptions {
  seed: number | bigint | string;
  /** Global network conditions. */
  conditions?: Partial<LinkConditions>;
  /** Latency of every host's kernel (needs no clock: the world's is used). */
  kernelLatencyMs?: number | ((op: KernelOp) => number);
  /** Further kernel options for every host. */
  kernel?: Omit<RecordingKernelOptions, 'random' | 'clock' | 'name' | 'latencyMs'>;
  /** Trace events kept for `report()` (default 200). */
  keepTrace?: number;
  /** Capture packets for `network.captured()` (default true). */
  capture?: boolean;
  /** Wall-clock ms at simulated time 0 (default the FakeClock's, 2026-01-01; certificate tests use "now"). */
  epochMs?: number;
}

export interface SimHost {
  readonly name: string;
  readonly address: string;
  readonly kernel: RecordingKernel;
  /** The host's own stream (its engine's Random port is `random.bytes`). */
  readonly random: SeededRandom;
  endpoint(port?: number): Endpoint;
  /** The ports of an engine running on this host. */
  ports<Peer>(config: ConfigLookup<Peer>): EnginePorts<Peer>;
}

export class SimWorld {
  readonly seed: string;
  readonly clock: FakeClock;
  readonly random: SeededRandom;
  readonly network: SimNetwork;
  private readonly hostMap = new Map<string, SimHost>();
  private readonly options: SimWorldOptions;

  constructor(options: SimWorldOptions) {
    this.options = options;
    this.clock = new FakeClock(options.epochMs !== undefined ? { epochMs: options.epochMs } : {});
    this.random = new SeededRandom(options.seed);
    this.seed = this.random.seed;
    this.network = new SimNetwork({
      clock: this.clock,
      random: this.random.fork('network'),
      conditions: options.conditions ?? {},
      keepTrace: options.keepTrace ?? 200,
      capture: options.capture ?? true,
    });
  }

  /** Create a host (names and addresses are unique). */
  host(name: string, address: string): SimHost {
    if (this.hostMap.has(name)) throw new Error(`SimWorld: host ${name} exists`);
    for (const h of this.hostMap.values()) {
      if (h.address === address) throw new Error(`SimWorld: address ${address} is taken by ${h.name}`);
    }
    const kernelOptions: RecordingKernelOptions = {
      ...this.options.kernel,
      random: this.random.fork(`kernel/${name}`),
      clock: this.clock,
      name,
    };
    if (this.options.kernelLatencyMs !== undefined) kernelOptions.latencyMs = this.options.kernelLatencyMs;
    const kernel = new RecordingKernel(kernelOptions);
    const random = this.random.fork(`host/${name}`);
    const sender = this.network.sender();
    const clock = this.clock;
    const host: SimHost = {
      name,
      address,
      kernel,
      random,
      endpoint: (port = 500) => ({ address, port }),
      ports: <Peer>(config: ConfigLookup<Peer>): EnginePorts<Peer> => ({
        sender,
        clock,
        random: random.bytes,
        kernel,
        config,
      }),
    };
    this.hostMap.set(name, host);
    return host;
  }

  get hosts(): SimHost[] {
    return [...this.hostMap.values()];
  }

  /** Everything needed to understand a failing seed, without key material. */
  report(): string {
    const s = this.network.stats;
    const lines = [
      `seed=${this.seed} t=${this.clock.now()}ms timers=${this.clock.pendingCount}`,
      `network: sent=${s.sent} delivered=${s.delivered} dropped=${s.dropped} duplicated=${s.duplicated} ` +
        `inFlight=${s.inFlight} ${JSON.stringify(s.dropsByReason)}`,
      this.network.dumpTrace(),
    ];
    for (const h of this.hostMap.values()) {
      lines.push(h.kernel.describe());
      if (h.kernel.expirations.length > 0) lines.push(`expired: ${JSON.stringify(h.kernel.expirations)}`);
    }
    return lines.join('\n');
  }
}
