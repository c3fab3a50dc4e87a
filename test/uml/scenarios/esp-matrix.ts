/**
 * Runs INSIDE User-Mode Linux (see ../xfrm.test.ts): two namespaces joined by a veth, SAs and policies installed only
 * by our code (applyXfrm through a worker in each namespace), for every algorithm x family x encapsulation:
 * a TCP echo exchange through the tunnel, counters read through our code, an EXPIRE on a soft byte limit, ESP and no
 * plaintext on the underlay (tcpdump capture), then garbage collection. Finally a trap policy and its ACQUIRE.
 * Prints one line `RESULT <json>` with everything the test asserts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { buildSa, type SaSpec } from '../../../src/xfrm/builders.js';
import { AF_INET, AF_INET6, IPPROTO_ESP, XFRM_MODE_TUNNEL } from '../../../src/xfrm/constants.js';
import type { XfrmSa } from '../../../src/xfrm/messages.js';
import { DEFAULT_OWNERSHIP } from '../../../src/xfrm/ownership.js';
import { ikeBypassPolicies, tunnelPolicies } from '../../../src/xfrm/policies.js';
import { NsWorker, sh } from '../support/ns.js';
import { toWire } from '../support/wire.js';

const own = DEFAULT_OWNERSHIP;

export const ALGORITHMS = {
  aes128gcm16: (k: () => Buffer) => ({ aead: { name: 'rfc4106(gcm(aes))', key: k().subarray(0, 20), icvLen: 128 } }),
  aes256gcm16: (k: () => Buffer) => ({ aead: { name: 'rfc4106(gcm(aes))', key: k().subarray(0, 36), icvLen: 128 } }),
  'aes256-sha256': (k: () => Buffer) => ({
    crypt: { name: 'cbc(aes)', key: k().subarray(0, 32) },
    auth: { name: 'hmac(sha256)', key: k().subarray(0, 32), truncLen: 128 },
  }),
  chacha20poly1305: (k: () => Buffer) => ({
    aead: { name: 'rfc7539esp(chacha20,poly1305)', key: k().subarray(0, 36), icvLen: 128 },
  }),
} as const;
type Alg = keyof typeof ALGORITHMS;

const FAMILIES = {
  ipv4: {
    family: AF_INET,
    a: '192.0.2.1',
    b: '192.0.2.2',
    netA: '198.18.1.0/24',
    netB: '198.18.2.0/24',
    hostA: '198.18.1.1',
    hostB: '198.18.2.1',
  },
  ipv6: {
    family: AF_INET6,
    a: '2001:db8:ff::1',
    b: '2001:db8:ff::2',
    netA: '2001:db8:1::/48',
    netB: '2001:db8:2::/48',
    hostA: '2001:db8:1::1',
    hostB: '2001:db8:2::1',
  },
} as const;
type Fam = keyof typeof FAMILIES;

export interface ComboResult {
  alg: Alg;
  family: Fam;
  encap: boolean;
  esn: boolean;
  spiAB: number;
  spiBA: number;
  ok: boolean;
  error?: string;
  applyErrors: string[];
  /** Per SA (a->b in A, b->a in B): attributes where the kernel's GETSA answer differs from what we installed. */
  kernelView?: string[];
  secondPlanActions?: number;
  countersBefore?: bigint;
  tcp?: { bytes: number; equal: boolean };
  counters?: {
    aOut: { bytes: bigint; packets: bigint };
    bIn: { bytes: bigint; packets: bigint };
    bOut: { bytes: bigint; packets: bigint };
    aIn: { bytes: bigint; packets: bigint };
  };
  softExpire?: boolean;
  ownedLeftAfterGc?: number;
  espPackets?: number;
  plaintextOnUnderlay?: boolean;
  /** Positive control: the decrypted inner packets as seen by a tap on the receiving veth. */
  plaintextInControl?: boolean;
  marker: string;
  ms: number;
}

/** The matrix's SAs, built by src/xfrm's own builder (so its ESN/replay rules are proven on the real kernel too). */
function sa(p: {
  src: string;
  dst: string;
  spi: number;
  family: number;
  reqid: number;
  algs: Pick<SaSpec, 'aead' | 'crypt' | 'auth'>;
  encap: boolean;
  softBytes?: bigint;
  esn?: boolean;
}): XfrmSa {
  return buildSa({
    src: p.src,
    dst: p.dst,
    spi: p.spi,
    reqid: p.reqid,
    ...p.algs,
    ...(p.encap ? { encap: { sport: 4500, dport: 4500 } } : {}),
    ...(p.esn ? { esn: true, replayWindow: 128 } : {}),
    ...(p.softBytes !== undefined ? { lifetime: { softByteLimit: p.softBytes } } : {}),
  });
}

/** JSON with sorted keys (field order differs between our encoder's input and the decoder's output). */
function stable(v: unknown): string {
  if (v === undefined) return 'undefined';
  return JSON.stringify(JSON.parse(toWire(v)), (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([p], [q]) => p.localeCompare(q)))
      : x,
  );
}

async function startCapture(ns: string, dev: string, dir: string, file: string): Promise<ChildProcess> {
  const p = spawn(
    'ip',
    ['netns', 'exec', ns, 'tcpdump', '-i', dev, '-Q', dir, '-B', '8192', '-U', '-s', '0', '-n', '-w', file],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const t = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 15_000);
    p.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  p.stderr?.on('data', (d: Buffer) => {
    captureLog.push(`${ns}/${dev}/${dir}: ${d.toString().trim()}`);
  });
  return p;
}

const captureLog: string[] = [];

async function main(): Promise<void> {
  const t0 = performance.now();
  sh(`ip netns add a && ip netns add b
ip link add va netns a type veth peer name vb netns b
for n in a b; do ip -n $n link set lo up; done
ip -n a link set va up && ip -n b link set vb up
ip -n a addr add 192.0.2.1/24 dev va && ip -n b addr add 192.0.2.2/24 dev vb
ip -n a addr add 2001:db8:ff::1/64 dev va nodad && ip -n b addr add 2001:db8:ff::2/64 dev vb nodad
ip -n a addr add 198.18.1.1/32 dev lo && ip -n b addr add 198.18.2.1/32 dev lo
ip -n a addr add 2001:db8:1::1/128 dev lo nodad && ip -n b addr add 2001:db8:2::1/128 dev lo nodad
ip -n a route add 198.18.2.0/24 via 192.0.2.2 src 198.18.1.1 && ip -n b route add 198.18.1.0/24 via 192.0.2.1 src 198.18.2.1
ip -n a route add 198.18.3.0/24 via 192.0.2.2 src 198.18.1.1
ip -n a -6 route add 2001:db8:2::/48 via 2001:db8:ff::2 src 2001:db8:1::1 && ip -n b -6 route add 2001:db8:1::/48 via 2001:db8:ff::1 src 2001:db8:2::1`);
  const A = new NsWorker('a');
  const B = new NsWorker('b');
  await Promise.all([A.ready, B.ready]);
  const workersMs = performance.now() - t0;
  // Capture the underlay for the whole matrix. Every packet on the veth wire leaves one end: egress captures on
  // both ends (-Q out) see exactly the wire. An ingress+egress capture on A is the positive control: after tunnel-mode
  // decapsulation the kernel re-injects the inner packet on the same device, so packet taps there DO see plaintext,
  // proving the marker search would catch it.
  const captures = {
    wireAB: { ns: 'a', dev: 'va', dir: 'out', file: '/tmp/wire-ab.pcap' },
    wireBA: { ns: 'b', dev: 'vb', dir: 'out', file: '/tmp/wire-ba.pcap' },
    controlA: { ns: 'a', dev: 'va', dir: 'inout', file: '/tmp/control-a.pcap' },
  };
  const dumps = await Promise.all(Object.values(captures).map((c) => startCapture(c.ns, c.dev, c.dir, c.file)));
  // Endpoints: echo servers behind B, ESP-in-UDP sockets on 4500 in both.
  for (const f of Object.values(FAMILIES)) {
    await B.call('tcpEchoServer', { host: f.hostB, port: 5000 });
    await A.call('encapSocket', { family: f.family === AF_INET ? 4 : 6, address: f.a, port: 4500 });
    await B.call('encapSocket', { family: f.family === AF_INET ? 4 : 6, address: f.b, port: 4500 });
  }
  const results: ComboResult[] = [];
  let i = 0;
  const combos: { fam: Fam; alg: Alg; encap: boolean; esn: boolean }[] = [];
  for (const fam of Object.keys(FAMILIES) as Fam[]) {
    for (const alg of Object.keys(ALGORITHMS) as Alg[]) {
      for (const encap of [false, true]) combos.push({ fam, alg, encap, esn: false });
    }
  }
  // 64-bit extended sequence numbers with a 128-packet replay window (XFRMA_REPLAY_ESN_VAL): AEAD and authencesn.
  combos.push({ fam: 'ipv4', alg: 'aes256gcm16', encap: false, esn: true });
  combos.push({ fam: 'ipv6', alg: 'aes256-sha256', encap: true, esn: true });
  for (const { fam, alg, encap, esn } of combos) {
    {
      i++;
      const f = FAMILIES[fam];
      const start = performance.now();
      const reqid = own.reqidMin + i;
      const marker = `PLAINTEXT-MARKER-${fam}-${alg}-${encap ? 'udp' : 'esp'}${esn ? '-esn' : ''}-${randomBytes(8).toString('hex')}`;
      const r: ComboResult = {
        alg,
        family: fam,
        encap,
        esn,
        spiAB: 0,
        spiBA: 0,
        ok: false,
        applyErrors: [],
        marker,
        ms: 0,
      };
      results.push(r);
      try {
        // Inbound SPI of a->b allocated by B's kernel (larval SA completed by apply's update), b->a chosen by us.
        r.spiAB = await B.xfrm<number>('allocSpi', {
          saddr: f.a,
          daddr: f.b,
          family: f.family,
          proto: IPPROTO_ESP,
          mode: XFRM_MODE_TUNNEL,
          reqid,
        });
        r.spiBA = 0xc0000000 + i;
        const keyAB = randomBytes(64);
        const keyBA = randomBytes(64);
        const algAB = ALGORITHMS[alg](() => keyAB);
        const algBA = ALGORITHMS[alg](() => keyBA);
        const ab = (softBytes?: bigint) =>
          sa({
            src: f.a,
            dst: f.b,
            spi: r.spiAB,
            family: f.family,
            reqid,
            algs: algAB,
            encap,
            esn,
            ...(softBytes ? { softBytes } : {}),
          });
        const ba = sa({ src: f.b, dst: f.a, spi: r.spiBA, family: f.family, reqid, algs: algBA, encap, esn });
        const polA = tunnelPolicies({
          localSubnet: f.netA,
          remoteSubnet: f.netB,
          localAddress: f.a,
          remoteAddress: f.b,
          reqid,
        });
        const polB = tunnelPolicies({
          localSubnet: f.netB,
          remoteSubnet: f.netA,
          localAddress: f.b,
          remoteAddress: f.a,
          reqid,
        });
        const bypass = ikeBypassPolicies(own);
        type Res = { errors: { error: { message: string } }[] };
        const [ra, rb] = await Promise.all([
          A.call<Res>('apply', { desired: { sas: [ab(4096n), ba], policies: [...polA, ...bypass] }, own }),
          B.call<Res>('apply', { desired: { sas: [ab(), ba], policies: [...polB, ...bypass] }, own }),
        ]);
        r.applyErrors = [...ra.errors, ...rb.errors].map((e) => e.error.message);
        // Idempotence against a real kernel holding SAs: the same desired state again plans nothing.
        const [pa, pb] = await Promise.all([
          A.call<unknown[]>('plan', { desired: { sas: [ab(4096n), ba], policies: [...polA, ...bypass] }, own }),
          B.call<unknown[]>('plan', { desired: { sas: [ab(), ba], policies: [...polB, ...bypass] }, own }),
        ]);
        r.secondPlanActions = pa.length + pb.length;
        const id = (dst: string, spi: number) => ({ daddr: dst, spi, proto: IPPROTO_ESP, family: f.family });
        // The kernel's view of what we installed, decoded by our codecs, matches what we sent.
        const kAB = await A.xfrm<XfrmSa>('getSa', id(f.b, r.spiAB));
        const kBA = await B.xfrm<XfrmSa>('getSa', id(f.a, r.spiBA));
        r.kernelView = [
          [kAB, ab(4096n)],
          [kBA, ba],
        ].map(([k, want]) => {
          const diffs: string[] = [];
          for (const f of ['aead', 'crypt', 'auth', 'encap'] as const) {
            if (stable(k![f]) !== stable(want![f])) diffs.push(f);
          }
          if (k!.info.reqid !== reqid) diffs.push('reqid');
          if (k!.info.lft.softByteLimit !== want!.info.lft.softByteLimit) diffs.push('lifetime');
          return diffs.join(',');
        });
        r.countersBefore = (await A.xfrm<{ bytes: bigint }>('saCounters', id(f.b, r.spiAB))).bytes;
        const payload = Buffer.from(marker.repeat(Math.ceil(6000 / marker.length)));
        r.tcp = await A.call('tcpExchange', {
          host: f.hostB,
          port: 5000,
          localAddress: f.hostA,
          payload,
          timeoutMs: 10_000,
        });
        r.counters = {
          aOut: await A.xfrm('saCounters', id(f.b, r.spiAB)),
          bIn: await B.xfrm('saCounters', id(f.b, r.spiAB)),
          bOut: await B.xfrm('saCounters', id(f.a, r.spiBA)),
          aIn: await A.xfrm('saCounters', id(f.a, r.spiBA)),
        };
        try {
          await A.waitEvent<{ kind: string; hard: boolean; sa: { info: { id: { spi: number } } } }>(
            (e) => e.kind === 'expire' && !e.hard && e.sa.info.id.spi === r.spiAB,
            5000,
          );
          r.softExpire = true;
        } catch {
          r.softExpire = false;
        }
        // Garbage collection: nothing desired -> every owned SA and policy goes, foreign state stays.
        await Promise.all([
          A.call('apply', { desired: { sas: [], policies: [] }, own }),
          B.call('apply', { desired: { sas: [], policies: [] }, own }),
        ]);
        const left = [
          ...(await A.xfrm<unknown[]>('dumpSas')),
          ...(await A.xfrm<unknown[]>('dumpPolicies')),
          ...(await B.xfrm<unknown[]>('dumpSas')),
          ...(await B.xfrm<unknown[]>('dumpPolicies')),
        ];
        r.ownedLeftAfterGc = left.length;
        r.ok = true;
      } catch (err) {
        r.error = (err as Error).message;
        await Promise.all([
          A.call('apply', { desired: { sas: [], policies: [] }, own }).catch(() => {}),
          B.call('apply', { desired: { sas: [], policies: [] }, own }).catch(() => {}),
        ]);
      }
      r.ms = performance.now() - start;
    }
  }
  // Hard limit: A's outbound SA may carry 4 packets; the kernel then sends a hard EXPIRE and removes the SA, and the
  // tunnel policy (no SA any more) keeps the traffic from leaving in plaintext.
  const hard: {
    ok: boolean;
    error?: string;
    hardExpire?: boolean;
    saGone?: boolean;
    tcpAfter?: string;
    acquireAfter?: boolean;
  } = {
    ok: false,
  };
  try {
    const f = FAMILIES.ipv4;
    const reqid = own.reqidMax - 1;
    const algs = ALGORITHMS.aes128gcm16(() => randomBytes(20));
    const out = sa({ src: f.a, dst: f.b, spi: 0xd0000001, family: f.family, reqid, algs, encap: false });
    out.info.lft.hardPacketLimit = 4n;
    const back = sa({ src: f.b, dst: f.a, spi: 0xd0000002, family: f.family, reqid, algs, encap: false });
    const inB = sa({ src: f.a, dst: f.b, spi: 0xd0000001, family: f.family, reqid, algs, encap: false });
    const pa = tunnelPolicies({
      localSubnet: f.netA,
      remoteSubnet: f.netB,
      localAddress: f.a,
      remoteAddress: f.b,
      reqid,
    });
    const pb = tunnelPolicies({
      localSubnet: f.netB,
      remoteSubnet: f.netA,
      localAddress: f.b,
      remoteAddress: f.a,
      reqid,
    });
    await A.call('apply', { desired: { sas: [out, back], policies: pa }, own });
    await B.call('apply', { desired: { sas: [inB, back], policies: pb }, own });
    const payload = Buffer.alloc(20_000, 0x41);
    await A.call('tcpExchange', { host: f.hostB, port: 5000, localAddress: f.hostA, payload, timeoutMs: 3000 }).catch(
      () => {},
    );
    await A.waitEvent<{ kind: string; hard: boolean; sa: { info: { id: { spi: number } } } }>(
      (e) => e.kind === 'expire' && e.hard && e.sa.info.id.spi === 0xd0000001,
      5000,
    );
    hard.hardExpire = true;
    hard.saGone = await A.xfrm('getSa', { daddr: f.b, spi: 0xd0000001, proto: IPPROTO_ESP, family: f.family }).then(
      () => false,
      (e: { code?: string }) => e.code === 'ESRCH' || e.code === 'ENOENT',
    );
    hard.tcpAfter = await A.call<{ equal: boolean }>('tcpExchange', {
      host: f.hostB,
      port: 5000,
      localAddress: f.hostA,
      payload: Buffer.from('after-hard-expire'),
      timeoutMs: 1500,
    }).then(
      (r) => (r.equal ? 'echoed' : 'partial'),
      (e: Error) => e.message,
    );
    // With its SA gone, the tunnel policy asks for a new one: ACQUIRE for the same flow.
    hard.acquireAfter = A.events.some(
      (e) => (e as { kind: string; acquire?: { sel: { daddr: string } } }).acquire?.sel.daddr === f.hostB,
    );
    hard.ok = true;
  } catch (err) {
    hard.error = (err as Error).message;
  }
  await Promise.all([
    A.call('apply', { desired: { sas: [], policies: [] }, own }).catch(() => {}),
    B.call('apply', { desired: { sas: [], policies: [] }, own }).catch(() => {}),
  ]);

  // ACQUIRE: a trap policy without SA; the first packet makes the kernel ask for one.
  const acquire: { ok: boolean; error?: string; event?: unknown; larvalCollected?: number } = { ok: false };
  try {
    const reqid = own.reqidMax;
    const pol = tunnelPolicies({
      localSubnet: '198.18.1.0/24',
      remoteSubnet: '198.18.3.0/24',
      localAddress: '192.0.2.1',
      remoteAddress: '192.0.2.2',
      reqid,
    });
    await A.call('apply', { desired: { sas: [], policies: pol }, own });
    await A.call('udpSend', { family: 4, host: '198.18.3.1', port: 9 }).catch(() => {});
    acquire.event = await A.waitEvent<{ kind: string; acquire: { sel: { daddr: string } } }>(
      (e) => e.kind === 'acquire' && e.acquire.sel.daddr === '198.18.3.1',
      5000,
    );
    acquire.ok = true;
    // The kernel's larval SA for the acquire is owned (template reqid) and is garbage-collected at start-up.
    const gc = await A.call<{ counts: { deleteSa: number } }>('apply', { desired: { sas: [], policies: [] }, own });
    acquire.larvalCollected = gc.counts.deleteSa;
  } catch (err) {
    acquire.error = (err as Error).message;
  }
  // Stop the captures and inspect them.
  // Let the capture drain (UML is slow) before stopping it.
  await new Promise((r) => setTimeout(r, 1500));
  for (const d of dumps) d.kill('SIGINT');
  await Promise.all(
    dumps.map((d) => new Promise<void>((r) => (d.exitCode !== null ? r() : d.once('exit', () => r())))),
  );
  const wire = Buffer.concat([readFileSync(captures.wireAB.file), readFileSync(captures.wireBA.file)]);
  const control = readFileSync(captures.controlA.file);
  const text = sh(
    `tcpdump -r ${captures.wireAB.file} -n -nn 2>/dev/null; tcpdump -r ${captures.wireBA.file} -n -nn 2>/dev/null; true`,
  );
  for (const r of results) {
    const needle = Buffer.from(r.marker.slice(0, 40));
    r.plaintextOnUnderlay = wire.includes(needle);
    r.plaintextInControl = control.includes(needle);
    const spis = [r.spiAB, r.spiBA].map((s) => `spi=0x${s.toString(16).padStart(8, '0')}`);
    r.espPackets = text.split('\n').filter((l) => spis.some((s) => l.includes(s))).length;
  }
  await A.stop();
  await B.stop();
  sh('ip netns del a; ip netns del b');
  process.stdout.write(
    `RESULT ${toWire({ captureLog, results, hard, acquire, workersMs, totalMs: performance.now() - t0, wireLines: text.split('\n').length })}\n`,
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});
