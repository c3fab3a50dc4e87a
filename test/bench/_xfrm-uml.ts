/**
 * Runs INSIDE User-Mode Linux for `bench xfrm` (see xfrm.ts): measures our XFRM layer against a kernel with ESP.
 * Prints one `BENCH {json}` line per result. Argument: number of tunnels (default 10000).
 * A tunnel = 2 SAs (in, out; AES-GCM-256) + 3 policies (out, in, fwd) between /32 site hosts, so the kernel holds
 * 5 objects per tunnel.
 */
import { randomBytes } from 'node:crypto';
import { applyXfrm, executeXfrm, planXfrm, type XfrmDesired } from '../../src/xfrm/apply.js';
import { AF_INET, IPPROTO_ESP, XFRM_MODE_TUNNEL } from '../../src/xfrm/constants.js';
import type { XfrmPolicy, XfrmSa } from '../../src/xfrm/messages.js';
import { DEFAULT_OWNERSHIP } from '../../src/xfrm/ownership.js';
import { tunnelPolicies } from '../../src/xfrm/policies.js';
import { XfrmSocket } from '../../src/xfrm/socket.js';
import { xfrmLifetimeCfg, xfrmLifetimeCur, xfrmSelector } from '../../src/xfrm/structs.js';

const own = DEFAULT_OWNERSHIP;
const n = Number(process.argv[2] ?? 10_000);
const key = randomBytes(36);

function report(name: string, value: number, unit: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(`BENCH ${JSON.stringify({ suite: 'xfrm', name, value, unit, ...extra })}\n`);
}

function sa(src: string, dst: string, spi: number, reqid: number, k = key): XfrmSa {
  return {
    info: {
      sel: xfrmSelector({ family: AF_INET }),
      id: { daddr: dst, spi, proto: IPPROTO_ESP },
      saddr: src,
      lft: xfrmLifetimeCfg(),
      curlft: xfrmLifetimeCur(),
      stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
      seq: 0,
      reqid,
      family: AF_INET,
      mode: XFRM_MODE_TUNNEL,
      replayWindow: 32,
      flags: 0,
    },
    aead: { name: 'rfc4106(gcm(aes))', key: k, icvLen: 128 },
  };
}

function tunnel(i: number): { sas: XfrmSa[]; policies: XfrmPolicy[] } {
  const local = '192.0.2.1';
  const remote = `203.0.113.${1 + (i % 254)}`;
  const lh = `198.18.${(i >> 8) & 0xff}.${i & 0xff}/32`;
  const rh = `198.19.${(i >> 8) & 0xff}.${i & 0xff}/32`;
  const reqid = own.reqidMin + (i % (own.reqidMax - own.reqidMin));
  return {
    sas: [sa(local, remote, 0x10000 + 2 * i, reqid), sa(remote, local, 0x10001 + 2 * i, reqid)],
    policies: tunnelPolicies({ localSubnet: lh, remoteSubnet: rh, localAddress: local, remoteAddress: remote, reqid }),
  };
}

function desiredFor(count: number, offset = 0): XfrmDesired {
  const d: XfrmDesired = { sas: [], policies: [] };
  for (let i = offset; i < offset + count; i++) {
    const t = tunnel(i);
    d.sas.push(...t.sas);
    d.policies.push(...t.policies);
  }
  return d;
}

function percentiles(xs: number[]): { p50: number; p99: number; mean: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { p50: q(0.5), p99: q(0.99), mean: xs.reduce((a, b) => a + b, 0) / xs.length };
}

async function main(): Promise<void> {
  const sock = XfrmSocket.open({ timeoutMs: 60_000 });
  const desired = desiredFor(n);
  const objects = desired.sas.length + desired.policies.length;

  // Warm-up (JIT, kernel caches): install and remove 500 other tunnels.
  const warm = desiredFor(500, n + 20_000);
  await applyXfrm(sock, warm, own);
  await applyXfrm(sock, { sas: [], policies: [] }, own);

  // 1. Install n tunnels from scratch, batched.
  let t = performance.now();
  const actions = planXfrm(desired, { sas: await sock.dumpSas(), policies: await sock.dumpPolicies() }, own);
  const planMs = performance.now() - t;
  const r1 = await executeXfrm(sock, actions);
  let ms = performance.now() - t;
  if (r1.errors.length) throw new Error(`install: ${r1.errors.length} errors, first: ${r1.errors[0]!.error.message}`);
  report('install tunnels (2 SA + 3 policies each), batched', (n * 1000) / ms, 'tunnels/s', {
    tunnels: n,
    ms: Math.round(ms),
    planMs: Math.round(planMs),
  });
  report('install SA+policy pairs, batched', ((desired.sas.length / 2) * 1000) / ms, 'pairs/s', {
    note: 'pair = in+out SA with their policies',
  });
  report('install kernel objects, batched', (objects * 1000) / ms, 'objects/s', { objects });

  // 2. Dump everything.
  t = performance.now();
  const sas = await sock.dumpSas();
  const policies = await sock.dumpPolicies();
  ms = performance.now() - t;
  if (sas.length !== desired.sas.length || policies.length !== desired.policies.length) {
    throw new Error(`dump returned ${sas.length} SAs / ${policies.length} policies`);
  }
  report('dump owned objects', ms, 'ms', { objects: sas.length + policies.length });

  // 3. Plan only (pure diff of 50k objects).
  t = performance.now();
  const plan = planXfrm(desired, { sas, policies }, own);
  ms = performance.now() - t;
  if (plan.length !== 0) throw new Error(`no-op plan has ${plan.length} actions`);
  report('plan (pure diff), no changes', ms, 'ms', { objects });

  // 4. Reconcile (dump + plan + execute) with nothing to do, then with 1 % of tunnels rekeyed.
  t = performance.now();
  const r4 = await applyXfrm(sock, desired, own);
  ms = performance.now() - t;
  report('reconcile, no changes (dump + diff)', ms, 'ms', { objects, actions: r4.actions.length });
  const churn = Math.max(1, Math.floor(n / 100));
  const rekeyed: XfrmDesired = { sas: [...desired.sas], policies: desired.policies };
  for (let i = 0; i < churn; i++) {
    const j = i * 100 * 2;
    rekeyed.sas[j] = { ...rekeyed.sas[j]!, aead: { name: 'rfc4106(gcm(aes))', key: randomBytes(36), icvLen: 128 } };
  }
  t = performance.now();
  const r5 = await applyXfrm(sock, rekeyed, own);
  ms = performance.now() - t;
  if (r5.errors.length || r5.counts.replaceSa !== churn)
    throw new Error(`churn reconcile: ${JSON.stringify(r5.counts)}`);
  report('reconcile, 1% of SAs rekeyed (dump + diff + replace)', ms, 'ms', { objects, replaced: churn });

  // 5. Per-operation latency, one request at a time, on top of the full table.
  const lat: Record<string, number[]> = {
    addSa: [],
    getSa: [],
    deleteSa: [],
    addPolicy: [],
    updatePolicy: [],
    deletePolicy: [],
    allocSpi: [],
  };
  const extra = desiredFor(500, n + 1000);
  for (let i = 0; i < 500; i++) {
    const s = extra.sas[2 * i]!;
    const p = extra.policies[3 * i]!;
    let a = performance.now();
    await sock.addSa(s);
    lat.addSa!.push(performance.now() - a);
    a = performance.now();
    await sock.getSa({ daddr: s.info.id.daddr, spi: s.info.id.spi, proto: IPPROTO_ESP, family: AF_INET });
    lat.getSa!.push(performance.now() - a);
    a = performance.now();
    await sock.addPolicy(p);
    lat.addPolicy!.push(performance.now() - a);
    a = performance.now();
    await sock.updatePolicy({ ...p, info: { ...p.info, priority: p.info.priority + 1 } });
    lat.updatePolicy!.push(performance.now() - a);
    a = performance.now();
    await sock.deletePolicy({ sel: p.info.sel, dir: p.info.dir });
    lat.deletePolicy!.push(performance.now() - a);
    a = performance.now();
    await sock.deleteSa({ daddr: s.info.id.daddr, spi: s.info.id.spi, proto: IPPROTO_ESP, family: AF_INET });
    lat.deleteSa!.push(performance.now() - a);
    a = performance.now();
    await sock.allocSpi({
      saddr: '203.0.113.250',
      daddr: '192.0.2.1',
      family: AF_INET,
      proto: IPPROTO_ESP,
      mode: XFRM_MODE_TUNNEL,
      reqid: own.reqidMin,
    });
    lat.allocSpi!.push(performance.now() - a);
  }
  for (const [op, xs] of Object.entries(lat)) {
    const p = percentiles(xs);
    report(`latency ${op} (single request, ${objects} objects in table)`, p.p50 * 1000, 'µs p50', {
      p99_us: Math.round(p.p99 * 1000),
      mean_us: Math.round(p.mean * 1000),
      samples: xs.length,
    });
  }

  // 6. Unbatched install for comparison (1,000 tunnels one request at a time), then GC of everything.
  const small = desiredFor(1000, n + 5000);
  t = performance.now();
  for (const s of small.sas) await sock.addSa(s);
  for (const p of small.policies) await sock.addPolicy(p);
  ms = performance.now() - t;
  report('install tunnels, one request at a time', (1000 * 1000) / ms, 'tunnels/s', {
    tunnels: 1000,
    ms: Math.round(ms),
  });
  t = performance.now();
  const gc = await applyXfrm(sock, { sas: [], policies: [] }, own, { keepLarval: false });
  ms = performance.now() - t;
  if (gc.errors.length) throw new Error(`gc: ${gc.errors.length} errors`);
  report('garbage-collect all owned objects (dump + diff + delete)', ms, 'ms', { deleted: gc.actions.length });
  sock.close();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});
