/**
 * `npm run bench -- handshake [--json] [--seconds S] [--sas N]`: IKEv2 handshakes per second and memory per IKE SA.
 *
 * A handshake is IKE_SA_INIT + IKE_AUTH with PSK, X25519, AES-GCM-128 and one CHILD SA, initiator and responder
 * engines in one process, packets handed over in memory, a kernel that only counts (the engine is measured, not
 * XFRM). Run per crypto provider. The same with ECDSA P-256 certificates (RFC 7427 signatures, CERT payloads,
 * chain validation on both sides; certificates made with the openssl CLI in a temporary directory). Then 10,000 (or --sas) tunnels are established and the heap growth per established
 * IKE SA with its CHILD SA is reported (both ends live in this process, so it is split per side).
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { systemRandom } from '../../src/agent/runtime.js';
import type { BenchContext } from '../../src/cli/bench-report.js';
import { selectorFromCidr } from '../../src/ike/codec/payloads/ts.js';
import { createNobleProvider, createNodeProvider } from '../../src/ike/crypto/index.js';
import { parseProposals } from '../../src/ike/crypto/proposals.js';
import type { CryptoProvider } from '../../src/ike/crypto/provider.js';
import { Engine } from '../../src/ike/engine.js';
import type { Cancel, Clock, ConfigLookup, Endpoint, KernelIpsec } from '../../src/ike/ports.js';
import { type AuthConfig, DEFAULT_RETRANSMIT, type PeerConfig } from '../../src/ike/sa/config.js';
import { TestPki } from '../support/certs.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A clock whose timers never fire within the benchmark (no loss: every retransmit timer is cancelled). */
class IdleClock implements Clock {
  private start = performance.now();
  now(): number {
    return performance.now() - this.start;
  }
  wallNow(): number {
    return Date.now();
  }
  setTimer(): Cancel {
    return () => {};
  }
}

class CountingKernel implements KernelIpsec {
  spi = 0x1000;
  sas = 0;
  async allocSpi() {
    return this.spi++;
  }
  async addSa() {
    this.sas++;
  }
  async updateSa() {
    this.sas++;
  }
  async deleteSa() {
    this.sas--;
  }
  async addPolicy() {}
  async deletePolicy() {}
  async querySa() {
    return undefined;
  }
}

// The agent's randomness (OpenSSL, drawn in blocks).
const random = systemRandom;

/** Certificate credentials of both ends (set for the certificate run): ids i.example and r.example. */
let certAuth: { initiator: AuthConfig; responder: AuthConfig } | undefined;

function config(i: number, initiator: boolean): PeerConfig {
  // Each tunnel gets its own pair of addresses so the responder finds its configuration by address.
  const a = { address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 500 };
  const b = { address: '192.0.2.2', port: 500 };
  const [local, remote] = initiator ? [a, b] : [b, a];
  const lifetime = { rekeyMs: 3_600_000, jitterMs: 0, overMs: 360_000 };
  return {
    name: `t${i}`,
    local,
    remote,
    localId: { type: 'fqdn', value: initiator ? (certAuth ? 'i.example' : `i${i}.example`) : 'r.example' },
    remoteId: { type: 'fqdn', value: initiator ? 'r.example' : certAuth ? 'i.example' : `i${i}.example` },
    auth: certAuth
      ? initiator
        ? certAuth.initiator
        : certAuth.responder
      : { method: 'psk', psk: new TextEncoder().encode('benchmark psk') },
    ikeProposals: IKE,
    ikeLifetime: lifetime,
    dpdIntervalMs: 0,
    dpdAction: 'clear',
    natt: 'auto',
    childless: 'never',
    fragmentation: false,
    fragmentSize: 1280,
    windowSize: 1,
    retransmit: DEFAULT_RETRANSMIT,
    halfOpenTimeoutMs: 30_000,
    children: [
      {
        name: 'net',
        proposals: ESP,
        localTs: [selectorFromCidr(initiator ? '198.18.1.0/24' : '198.18.2.0/24')],
        remoteTs: [selectorFromCidr(initiator ? '198.18.2.0/24' : '198.18.1.0/24')],
        mode: 'tunnel',
        lifetime,
        replayWindow: 32,
        startAction: 'start',
      },
    ],
  };
}

const IKE = parseProposals('aes128gcm16-prfsha256-x25519', 'ike').proposals;
const ESP = parseProposals('aes128gcm16', 'esp').proposals;

class Lookup implements ConfigLookup<PeerConfig> {
  readonly byRemote = new Map<string, PeerConfig>();
  byAddresses(_local: Endpoint, remote: Endpoint): PeerConfig[] {
    const c = this.byRemote.get(remote.address);
    return c ? [c] : [];
  }
  byIdentities(_r: unknown, _l: unknown, candidates: PeerConfig[]) {
    return candidates[0];
  }
}

interface Pair {
  initiator: Engine;
  responder: Engine;
  lookup: Lookup;
  established: number;
  inFlight: number;
}

function makePair(provider: CryptoProvider): Pair {
  const clock = new IdleClock();
  const lookup = new Lookup();
  const pair = { established: 0, inFlight: 0, lookup } as Pair;
  // Deliver asynchronously (as a socket would), batching packets per macrotask.
  const deliver = (to: Engine, packet: Uint8Array, from: Endpoint, dst: Endpoint) =>
    setImmediate(() => to.receive(packet, from, dst));
  pair.initiator = new Engine(
    {
      sender: { send: (p, f, t) => deliver(pair.responder, p, f, t) },
      clock,
      random,
      kernel: new CountingKernel(),
      config: lookup,
    },
    { provider },
  );
  pair.responder = new Engine(
    {
      sender: { send: (p, f, t) => deliver(pair.initiator, p, f, t) },
      clock,
      random,
      kernel: new CountingKernel(),
      config: lookup,
    },
    { provider, cookieThreshold: 1_000_000 },
  );
  pair.initiator.on((e) => {
    if (e.type === 'child-installed') {
      pair.established++;
      pair.inFlight--;
    }
  });
  return pair;
}

async function throughput(provider: CryptoProvider, seconds: number): Promise<{ rate: number; total: number }> {
  const pair = makePair(provider);
  let next = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  const window = 64;
  while (performance.now() < end) {
    while (pair.inFlight < window) {
      const i = next++;
      pair.lookup.byRemote.set(config(i, true).local.address, config(i, false));
      pair.initiator.initiate(config(i, true));
      pair.inFlight++;
    }
    await new Promise((r) => setImmediate(r));
  }
  const elapsed = (performance.now() - start) / 1000;
  const rate = pair.established / elapsed;
  pair.initiator.shutdown();
  pair.responder.shutdown();
  return { rate, total: pair.established };
}

async function memory(provider: CryptoProvider, count: number): Promise<number> {
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  const before = process.memoryUsage().heapUsed;
  const pair = makePair(provider);
  let next = 0;
  while (pair.established < count) {
    while (pair.inFlight < 64 && next < count) {
      const i = next++;
      pair.lookup.byRemote.set(config(i, true).local.address, config(i, false));
      pair.initiator.initiate(config(i, true));
      pair.inFlight++;
    }
    await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 50));
  gc();
  gc();
  const after = process.memoryUsage().heapUsed;
  const sas = pair.initiator.ikeSas().length + pair.responder.ikeSas().length;
  if (sas !== 2 * count) throw new Error(`expected ${2 * count} IKE SAs, found ${sas}`);
  // The configurations are counted too (they are what a real agent holds as well).
  const perSide = (after - before) / (2 * count);
  pair.initiator.shutdown();
  pair.responder.shutdown();
  return perSide;
}

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

export async function run(ctx: BenchContext): Promise<void> {
  const seconds = flag(ctx.args, 'seconds', 5);
  const sas = flag(ctx.args, 'sas', 10_000);
  const only = ctx.args.includes('--node-only');
  for (const [name, provider] of [
    ['node', createNodeProvider()],
    ['noble', createNobleProvider()],
  ] as const) {
    if (only && name !== 'node') continue;
    const t = await throughput(provider, seconds);
    ctx.report({
      suite: 'handshake',
      name: 'psk-x25519-aes128gcm16 handshakes (initiator+responder in one process)',
      value: Math.round(t.rate),
      unit: 'handshakes/s',
      provider: name,
      completed: t.total,
      seconds,
      reference: 'strongSwan 6.0.6: about 2,000-2,650 pairs/s on 2 vCPUs',
    });
  }
  {
    const pki = new TestPki();
    try {
      const ca = pki.root('bench-ca', { keyType: 'p256' });
      const auth = (name: string): AuthConfig => {
        const c = pki.issue(ca, name, { keyType: 'p256', san: `DNS:${name}` });
        return { method: 'certificate', certChain: [c.der], privateKey: c.keyPem, trustAnchors: [ca.der] };
      };
      certAuth = { initiator: auth('i.example'), responder: auth('r.example') };
      const t = await throughput(createNodeProvider(), seconds);
      ctx.report({
        suite: 'handshake',
        name: 'cert-ecdsa-p256-x25519-aes128gcm16 handshakes (initiator+responder in one process)',
        value: Math.round(t.rate),
        unit: 'handshakes/s',
        provider: 'node',
        completed: t.total,
        seconds,
        note: 'each handshake: 2 ECDSA P-256 signatures, 2 AUTH and 2 certificate signature verifications',
      });
    } finally {
      certAuth = undefined;
      pki.cleanup();
    }
  }
  const perSide = await memory(createNodeProvider(), sas);
  ctx.report({
    suite: 'handshake',
    name: `heap per established IKE SA with one CHILD SA (${sas} tunnels, per side)`,
    value: Math.round(perSide),
    unit: 'bytes',
    provider: 'node',
    reference: 'strongSwan 6.0.6: about 14 KB per IKE SA',
  });
}
