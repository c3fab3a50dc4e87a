/**
 * Runs inside a fresh network namespace (host kernel: XFRM policies, no ESP): exercises the agent's XFRM port —
 * IKE bypass, resting block/trap policies, the atomic swap with tunnel policies, adoption and cleanup — and prints
 * the kernel's view (`ip -j xfrm policy`) after each step as one JSON object.
 */
import { execFileSync } from 'node:child_process';
import { XfrmKernel } from '../../src/agent/xfrm-kernel.js';
import type { KernelPolicy, KernelSelector } from '../../src/ike/ports.js';
import { parseIpXfrmPolicies } from './ip-xfrm.js';

const sel = (cidr: string): KernelSelector => {
  const [a, p] = cidr.split('/');
  const bits = Number(p);
  const n = a!.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  const size = 2 ** (32 - bits);
  const start = n - (n % size);
  const fmt = (v: number) => [24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).join('.');
  return {
    family: 4,
    startAddress: fmt(start),
    endAddress: fmt(start + size - 1),
    protocol: 0,
    startPort: 0,
    endPort: 0xffff,
  };
};
const policies = () =>
  parseIpXfrmPolicies(execFileSync('ip', ['-s', 'xfrm', 'policy'], { encoding: 'utf8' })).map((p) => ({
    dir: p.dir,
    src: p.src,
    dst: p.dst,
    action: p.action,
    tmpl: p.tmpls.length > 0,
    proto: p.proto,
  }));

const out: Record<string, unknown> = {};
const k = XfrmKernel.open();
await k.installBypass([500, 4500]);
out.bypass = policies();
const local = sel('198.18.1.0/24');
const remote = sel('198.18.2.0/24');
const reqid = 0x4d49_0101;
await k.setResting([{ kind: 'block', local, remote, reqid, localAddress: '192.0.2.1', remoteAddress: '192.0.2.2' }]);
out.block = policies();
const tunnel = (direction: KernelPolicy['direction']): KernelPolicy => ({
  direction,
  local,
  remote,
  reqid,
  mode: 'tunnel',
  source: direction === 'out' ? '192.0.2.1' : '192.0.2.2',
  destination: direction === 'out' ? '192.0.2.2' : '192.0.2.1',
});
for (const d of ['out', 'in', 'fwd'] as const) await k.addPolicy(tunnel(d));
out.tunnel = policies();
// A resting-policy update while the tunnel holds the pair must not touch it.
await k.setResting([{ kind: 'block', local, remote, reqid, localAddress: '192.0.2.1', remoteAddress: '192.0.2.2' }]);
out.tunnelKept = policies();
for (const d of ['out', 'in', 'fwd'] as const) await k.deletePolicy(tunnel(d));
out.backToBlock = policies();
const owned = await k.owned();
out.owned = { sas: owned.sas.length, policies: owned.policies.length };
await k.setResting([{ kind: 'trap', local, remote, reqid, localAddress: '192.0.2.1', remoteAddress: '192.0.2.2' }]);
out.trap = policies();
await k.setResting([]);
out.cleared = policies();
// A restart: the tunnel's policies stay in the kernel when the agent dies; the next agent adopts them and must not
// put its resting block policies over them (that would drop the traffic the adopted SAs still carry).
const blockRest = [
  { kind: 'block' as const, local, remote, reqid, localAddress: '192.0.2.1', remoteAddress: '192.0.2.2' },
];
await k.setResting(blockRest);
for (const d of ['out', 'in', 'fwd'] as const) await k.addPolicy(tunnel(d));
k.close();
const k2 = XfrmKernel.open();
k2.adoptPolicies((await k2.owned()).policies);
await k2.setResting(blockRest);
out.adoptedKept = policies();
out.released = await k2.releaseAdopted(reqid);
out.adoptedReleased = policies();
await k2.setResting([]);
k2.close();
console.log(JSON.stringify(out));
