/**
 * IKEv2 load generator built on our engine, over real UDP: run inside a network namespace as its own process
 * (`node --import tsx test/bench/_ike-load.ts '<json options>'`). It binds UDP 500/4500 on one local address with the
 * agent's transport and opens IKE SAs (PSK, X25519, AES-GCM-128, one CHILD SA or childless) to one responder as fast
 * as it answers, keeping `window` handshakes in flight, for `seconds`. The SAs stay up (nothing is deleted), so the
 * responder's memory can be measured afterwards. It prints JSON lines: `{"type":"ready"}`, then
 * `{"type":"result",...}` with completed/failed handshakes, elapsed time and its own CPU time.
 *
 * `mode: "half-open"` only sends `count` IKE_SA_INIT requests and ignores the answers: half-open SAs on the
 * responder (used to push charon over its cookie threshold).
 *
 * All IKE SAs share one configuration name: only the first window carries INITIAL_CONTACT, so the responder does
 * not tear down the earlier SAs.
 */
import { MemoryKernel } from '../../src/agent/memory-kernel.js';
import { SystemClock, systemRandom } from '../../src/agent/runtime.js';
import { UdpTransport } from '../../src/agent/transport.js';
import { selectorFromCidr } from '../../src/ike/codec/payloads/ts.js';
import { createNodeProvider } from '../../src/ike/crypto/index.js';
import { parseProposals } from '../../src/ike/crypto/proposals.js';
import { Engine } from '../../src/ike/engine.js';
import type { PeerConfig } from '../../src/ike/sa/config.js';

export interface LoadOptions {
  mode: 'handshake' | 'half-open';
  local: string;
  target: string;
  localId: string;
  remoteId: string;
  psk: string;
  localNet: string;
  remoteNet: string;
  childless?: boolean;
  seconds?: number;
  window?: number;
  count?: number;
  ike?: string;
  esp?: string;
}

export interface LoadResult {
  type: 'result';
  completed: number;
  failed: number;
  elapsedMs: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  /** Mean IKE_SA_INIT-to-established latency of completed handshakes. */
  meanLatencyMs: number;
  failures: Record<string, number>;
  sent: number;
  received: number;
}

async function main(o: LoadOptions): Promise<void> {
  const transport = new UdpTransport({
    addresses: [o.local],
    ikePort: 500,
    nattPort: 4500,
    initRate: 1e9,
    onError: (m) => process.stderr.write(`${m}\n`),
  });
  await transport.start();
  const engine = new Engine(
    {
      sender: transport,
      clock: new SystemClock(),
      random: systemRandom,
      kernel: new MemoryKernel(systemRandom),
      config: { byAddresses: () => [], byIdentities: () => undefined },
    },
    // Never re-initiate failed attempts by itself: the generator counts them and opens new ones.
    { provider: createNodeProvider(), restartDelayMs: 3_600_000, maxRestartDelayMs: 3_600_000 },
  );
  const life = { rekeyMs: 3_600_000, jitterMs: 0, overMs: 360_000 };
  const config: PeerConfig = {
    name: 'load',
    local: { address: o.local, port: 500 },
    remote: { address: o.target, port: 500 },
    localId: { type: 'fqdn', value: o.localId },
    remoteId: { type: 'fqdn', value: o.remoteId },
    auth: { method: 'psk', psk: new TextEncoder().encode(o.psk) },
    ikeProposals: parseProposals(o.ike ?? 'aes128gcm16-prfsha256-x25519', 'ike').proposals,
    ikeLifetime: life,
    dpdIntervalMs: 0,
    dpdAction: 'clear',
    natt: 'auto',
    childless: o.childless ? 'force' : 'never',
    fragmentation: false,
    fragmentSize: 1280,
    windowSize: 1,
    retransmit: { timeoutMs: 2000, base: 1.5, tries: 2 },
    halfOpenTimeoutMs: 30_000,
    children: [
      {
        name: 'load',
        proposals: parseProposals(o.esp ?? 'aes128gcm16', 'esp').proposals,
        localTs: [selectorFromCidr(o.localNet)],
        remoteTs: [selectorFromCidr(o.remoteNet)],
        mode: 'tunnel',
        lifetime: life,
        replayWindow: 32,
        startAction: 'start',
      },
    ],
  };

  if (o.mode === 'half-open') {
    // Send the IKE_SA_INITs, never process an answer.
    transport.onReceive(() => {});
    for (let i = 0; i < (o.count ?? 1); i++) engine.initiate(config);
    await new Promise((r) => setTimeout(r, 200));
    process.stdout.write(`${JSON.stringify({ type: 'sent', count: o.count ?? 1 })}\n`);
    engine.shutdown();
    await transport.stop();
    return;
  }

  transport.onReceive((p, from, to) => engine.receive(p, from, to));
  const started = new Map<number, number>();
  const failures: Record<string, number> = {};
  let completed = 0;
  let failed = 0;
  let latencySum = 0;
  let running = false;
  let end = 0;
  const window = o.window ?? 64;
  const finish = (uid: number, ok: boolean) => {
    const t0 = started.get(uid);
    if (t0 === undefined) return;
    started.delete(uid);
    if (ok) {
      completed++;
      latencySum += performance.now() - t0;
    } else failed++;
    refill();
  };
  const refill = () => {
    if (!running) return;
    if (performance.now() >= end) {
      running = false;
      return;
    }
    while (started.size < window) {
      const sa = engine.initiate(config);
      started.set(sa.uid, performance.now());
    }
  };
  engine.on((e) => {
    if (!running) return;
    if (e.type === 'child-installed' && !o.childless) finish(e.sa.uid, true);
    else if (e.type === 'ike-established' && o.childless) finish(e.sa.uid, true);
    else if (e.type === 'ike-failed' || e.type === 'child-failed') {
      failures[e.failure.code] = (failures[e.failure.code] ?? 0) + 1;
      finish(e.sa.uid, false);
    }
  });

  process.stdout.write(`${JSON.stringify({ type: 'ready' })}\n`);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  end = t0 + (o.seconds ?? 5) * 1000;
  running = true;
  refill();
  while (running) await new Promise((r) => setTimeout(r, 20));
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const result: LoadResult = {
    type: 'result',
    completed,
    failed,
    elapsedMs,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    meanLatencyMs: completed ? latencySum / completed : 0,
    failures,
    sent: transport.stats.sent,
    received: transport.stats.received,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  // Keep the SAs up until told to stop (the caller measures the responder's memory meanwhile).
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.stdin.once('close', () => resolve());
    process.stdin.resume();
  });
  engine.shutdown();
  await transport.stop();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(JSON.parse(process.argv[2] ?? '{}') as LoadOptions).then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
