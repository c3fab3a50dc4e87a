/**
 * Kernel ESP data plane, proven in User-Mode Linux: ONE boot runs the whole algorithm x family x encapsulation
 * matrix (scenarios/esp-matrix.ts) and this file asserts its findings. Needs Debian user-mode-linux + kmod + tcpdump
 * (scripts/install-deps.sh); fails, never skips, when they are missing.
 */
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInUml, type UmlRunResult } from './harness.js';
import type { ComboResult } from './scenarios/esp-matrix.js';
import { fromWire } from './support/wire.js';

interface MatrixOutput {
  results: ComboResult[];
  hard: {
    ok: boolean;
    error?: string;
    hardExpire?: boolean;
    saGone?: boolean;
    tcpAfter?: string;
    acquireAfter?: boolean;
  };
  acquire: {
    ok: boolean;
    error?: string;
    event?: {
      kind: string;
      acquire: { id: { daddr: string; proto: number }; sel: { daddr: string } };
      tmpls: { reqid: number }[];
    };
    larvalCollected?: number;
  };
  workersMs: number;
  totalMs: number;
}

let run: UmlRunResult;
let out: MatrixOutput;

beforeAll(async () => {
  run = await runInUml({
    script: fileURLToPath(new URL('./scenarios/esp-matrix.ts', import.meta.url)),
    timeoutMs: 110_000,
  });
  const line = run.output.split('\n').find((l) => l.startsWith('RESULT '));
  if (run.exitCode !== 0 || !line) {
    throw new Error(
      `UML matrix failed (exit ${run.exitCode}, timedOut ${run.timedOut}):\n${run.output.slice(-4000)}\n--- console ---\n${run.console.slice(-2000)}`,
    );
  }
  out = fromWire<MatrixOutput>(line.slice('RESULT '.length));
  console.log(
    `UML: boot ${Math.round(run.bootMs ?? -1)} ms, total ${Math.round(run.durationMs)} ms, matrix ${Math.round(out.totalMs)} ms`,
  );
}, 120_000);

const algs = ['aes128gcm16', 'aes256gcm16', 'aes256-sha256', 'chacha20poly1305'] as const;
const cases = [
  ...(['ipv4', 'ipv6'] as const).flatMap((family) =>
    algs.flatMap((alg) => [false, true].map((encap) => ({ family, alg, encap, esn: false }))),
  ),
  { family: 'ipv4', alg: 'aes256gcm16', encap: false, esn: true },
  { family: 'ipv6', alg: 'aes256-sha256', encap: true, esn: true },
] as const;

describe('ESP through kernel SAs installed by src/xfrm (UML)', () => {
  it('ran all 18 combinations', () => {
    expect(out.results).toHaveLength(18);
  });

  it.each(cases)('$alg $family encap=$encap esn=$esn', ({ family, alg, encap, esn }) => {
    const r = out.results.find((x) => x.family === family && x.alg === alg && x.encap === encap && x.esn === esn);
    expect(r, 'combination result').toBeDefined();
    if (!r) return;
    expect(r.error).toBeUndefined();
    expect(r.applyErrors).toEqual([]);
    expect(r.secondPlanActions).toBe(0);
    // GETSA, decoded by our codecs, returns exactly the algorithms, keys, encapsulation and limits we installed.
    expect(r.kernelView).toEqual(['', '']);
    expect(r.countersBefore).toBe(0n);
    // A TCP echo through the tunnel came back intact.
    expect(r.tcp).toEqual({ bytes: expect.any(Number), equal: true });
    expect(r.tcp!.bytes).toBeGreaterThanOrEqual(6000);
    // Counters read through our socket rose on all four SAs (both directions, both ends).
    for (const c of Object.values(r.counters!)) {
      expect(c.bytes).toBeGreaterThan(6000n);
      expect(c.packets).toBeGreaterThan(3n);
    }
    // The 4096-byte soft limit on A's outbound SA produced a soft EXPIRE event.
    expect(r.softExpire).toBe(true);
    // The underlay carried ESP (or ESP-in-UDP) with these SPIs, and never the plaintext...
    expect(r.espPackets).toBeGreaterThan(10);
    expect(r.plaintextOnUnderlay).toBe(false);
    // ...which the same search does find in the decrypted packets a tap sees after decapsulation (positive control).
    expect(r.plaintextInControl).toBe(true);
    // Garbage collection removed every owned SA and policy.
    expect(r.ownedLeftAfterGc).toBe(0);
  });

  it('a hard packet limit produces a hard EXPIRE, the kernel drops the SA, and traffic stops (no plaintext fallback)', () => {
    expect(out.hard.error).toBeUndefined();
    expect(out.hard.hardExpire).toBe(true);
    expect(out.hard.saGone).toBe(true);
    expect(out.hard.tcpAfter).not.toBe('echoed');
    expect(out.hard.acquireAfter).toBe(true);
  });

  it('a trap policy without SA produces an ACQUIRE event', () => {
    expect(out.acquire.error).toBeUndefined();
    expect(out.acquire.ok).toBe(true);
    const ev = out.acquire.event!;
    expect(ev.kind).toBe('acquire');
    expect(ev.acquire.id.daddr).toBe('192.0.2.2');
    expect(ev.acquire.id.proto).toBe(50);
    expect(ev.acquire.sel.daddr).toBe('198.18.3.1');
    expect(ev.tmpls[0]?.reqid).toBe(0x4d49ffff);
  });

  it('UML boot and matrix stay within budget', () => {
    expect(run.durationMs).toBeLessThan(110_000);
  });
});
