/**
 * Proof of encryption: a periodic check on the gateway that every installed CHILD SA's subnet pairs are held in the
 * kernel by our policies (out, in and fwd, action allow, an ESP template with the CHILD SA's reqid and the tunnel's
 * outer addresses, and no other policy in front of them), and that its outbound SA exists, with the outbound
 * counters recorded per interval. Anything else means traffic between those subnets may leave in plaintext (no out
 * policy) or be dropped: the tunnel's `Encrypted` state turns False with the reason, and the missing policies are
 * put back (`ip xfrm policy delete ...` by hand is undone within one interval). The next check that finds everything
 * in place turns it True again.
 */
import type { Logger } from 'pino';
import type { KernelPolicy } from '../ike/ports.js';
import type { IkeSa } from '../ike/sa/ike-sa.js';
import { kernelSelectorOf } from '../ike/sa/ike-sa.js';
import { XFRM_POLICY_ALLOW, XFRM_POLICY_FWD, XFRM_POLICY_IN, XFRM_POLICY_OUT } from '../xfrm/constants.js';
import type { XfrmPolicy } from '../xfrm/messages.js';
import type { XfrmSelector } from '../xfrm/structs.js';
import { kernelSelector } from './xfrm-kernel.js';

export interface EncryptionView {
  status: 'True' | 'False' | 'Unknown';
  /** PoliciesInPlace, PolicyMissing, PolicyMismatch, PolicyShadowed, OutboundSaMissing, NoChildSa, CheckFailed. */
  reason: string;
  message: string;
  lastTransitionTime: string;
  checkedAt: string;
  /** Policies this check put back since the agent started. */
  restored: number;
  /** Outbound ESP packets in the last interval (all CHILD SAs of the tunnel). */
  packetsOutDelta?: number;
}

export interface ExpectedChild {
  tunnel: string;
  reqid: number;
  spiOut: number;
  remoteAddress: string;
  policies: KernelPolicy[];
  /** Still installed (checked again right before a restore: never re-add a policy the engine just removed). */
  alive?: () => boolean;
}

const DIRS = { out: XFRM_POLICY_OUT, in: XFRM_POLICY_IN, fwd: XFRM_POLICY_FWD } as const;

/** The policies the engine installs for a CHILD SA (mirrors IkeSa's own list; see src/ike/sa/ike-sa.ts). */
export function expectedChildren(sas: readonly IkeSa[]): ExpectedChild[] {
  const out: ExpectedChild[] = [];
  for (const sa of sas) {
    if (sa.state === 'destroyed' || sa.state === 'connecting') continue;
    for (const c of sa.children) {
      if (c.state !== 'installed' || !c.policiesInstalled || !c.outboundInstalled) continue;
      const policies: KernelPolicy[] = [];
      for (const l of c.localTs) {
        for (const r of c.remoteTs) {
          const base = { reqid: c.reqid, mode: c.mode, local: kernelSelectorOf(l), remote: kernelSelectorOf(r) };
          policies.push({ ...base, direction: 'out', source: sa.local.address, destination: sa.remote.address });
          policies.push({ ...base, direction: 'in', source: sa.remote.address, destination: sa.local.address });
          if (c.mode === 'tunnel') {
            policies.push({ ...base, direction: 'fwd', source: sa.remote.address, destination: sa.local.address });
          }
        }
      }
      out.push({
        tunnel: sa.config.name,
        reqid: c.reqid,
        spiOut: c.spiOut,
        remoteAddress: sa.remote.address,
        policies,
        alive: () => c.state === 'installed' && sa.state !== 'destroyed',
      });
    }
  }
  return out;
}

function sameSelector(a: XfrmSelector, b: XfrmSelector): boolean {
  return (
    a.family === b.family &&
    a.saddr === b.saddr &&
    a.daddr === b.daddr &&
    a.prefixlenS === b.prefixlenS &&
    a.prefixlenD === b.prefixlenD &&
    a.proto === b.proto &&
    a.sport === b.sport &&
    a.dport === b.dport
  );
}

export interface PolicyProblem {
  policy: KernelPolicy;
  reason: 'PolicyMissing' | 'PolicyMismatch' | 'PolicyShadowed';
  detail: string;
}

function describe(p: KernelPolicy): string {
  const [s, d] = p.direction === 'out' ? [p.local, p.remote] : [p.remote, p.local];
  return `${p.direction} ${s.startAddress}-${s.endAddress} -> ${d.startAddress}-${d.endAddress}`;
}

/** Compare what the engine installed with the kernel's policies (pure). */
export function checkPolicies(expected: KernelPolicy[], kernel: XfrmPolicy[]): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  for (const p of expected) {
    const [src, dst] = p.direction === 'out' ? [p.local, p.remote] : [p.remote, p.local];
    const sel = kernelSelector(src, dst);
    const dir = DIRS[p.direction];
    const same = kernel.filter((k) => k.info.dir === dir && sameSelector(k.info.sel, sel));
    const ours = same.find(
      (k) =>
        k.info.action === XFRM_POLICY_ALLOW &&
        k.tmpls.some(
          (t) => t.reqid === p.reqid && t.id.daddr === p.destination && (t.saddr === p.source || t.saddr === ''),
        ),
    );
    if (!ours) {
      problems.push(
        same.length === 0
          ? { policy: p, reason: 'PolicyMissing', detail: `no ${describe(p)} policy` }
          : {
              policy: p,
              reason: 'PolicyMismatch',
              detail: `the ${describe(p)} policy does not use reqid ${p.reqid} towards ${p.destination}`,
            },
      );
      continue;
    }
    // Anything of the same direction that covers the pair and comes first (lower priority value) would win.
    const ahead = kernel.find(
      (k) =>
        k !== ours &&
        k.info.dir === dir &&
        k.info.priority < ours.info.priority &&
        covers(k.info.sel, sel) &&
        !(k.info.action === XFRM_POLICY_ALLOW && k.tmpls.some((t) => t.reqid === p.reqid)),
    );
    // Our IKE bypass policies (UDP 500/4500, no template) are meant to come first.
    if (
      ahead &&
      !(ahead.tmpls.length === 0 && ahead.info.sel.proto === 17 && ahead.info.action === XFRM_POLICY_ALLOW)
    ) {
      problems.push({
        policy: p,
        reason: 'PolicyShadowed',
        detail: `a policy with priority ${ahead.info.priority} comes before ${describe(p)}`,
      });
    }
  }
  return problems;
}

function prefixCovers(addr: string, len: number, inner: string, innerLen: number): boolean {
  if (len > innerLen) return false;
  if (len === 0) return true;
  const toBits = (a: string): string =>
    a.includes(':')
      ? expand6(a)
          .map((h) => Number.parseInt(h, 16).toString(2).padStart(16, '0'))
          .join('')
      : a
          .split('.')
          .map((o) => Number(o).toString(2).padStart(8, '0'))
          .join('');
  return toBits(addr).slice(0, len) === toBits(inner).slice(0, len);
}

function expand6(a: string): string[] {
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  return [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
}

function covers(outer: XfrmSelector, inner: XfrmSelector): boolean {
  return (
    outer.family === inner.family &&
    prefixCovers(outer.saddr, outer.prefixlenS, inner.saddr, inner.prefixlenS) &&
    prefixCovers(outer.daddr, outer.prefixlenD, inner.daddr, inner.prefixlenD) &&
    (outer.proto === 0 || outer.proto === inner.proto)
  );
}

export interface EncryptionCheckOptions {
  intervalMs: number;
  restore: boolean;
  children: () => ExpectedChild[];
  dumpPolicies: () => Promise<XfrmPolicy[]>;
  addPolicy: (p: KernelPolicy) => Promise<void>;
  outPackets: (spi: number, destination: string) => Promise<bigint | undefined>;
  /** All configured tunnels (those without a CHILD SA are Unknown). */
  tunnels: () => string[];
  logger: Logger;
  wallNow: () => number;
  onResult?: (tunnel: string, v: EncryptionView, restored: number) => void;
}

export class EncryptionCheck {
  private readonly views = new Map<string, EncryptionView>();
  private readonly lastOut = new Map<string, bigint>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;

  constructor(private readonly o: EncryptionCheckOptions) {}

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      void this.check().finally(() => {
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

  view(tunnel: string): EncryptionView | undefined {
    return this.views.get(tunnel);
  }

  private set(tunnel: string, status: EncryptionView['status'], reason: string, message: string, extra = {}) {
    const now = new Date(this.o.wallNow()).toISOString();
    const prev = this.views.get(tunnel);
    const v: EncryptionView = {
      status,
      reason,
      message,
      lastTransitionTime: prev && prev.status === status ? prev.lastTransitionTime : now,
      checkedAt: now,
      restored: prev?.restored ?? 0,
      ...extra,
    };
    if (prev?.status !== status || prev.reason !== reason) {
      const log = status === 'False' ? this.o.logger.error.bind(this.o.logger) : this.o.logger.info.bind(this.o.logger);
      log({ event: 'encryption-check', tunnel, status, reason }, message);
    }
    this.views.set(tunnel, v);
    return v;
  }

  async check(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const children = this.o.children();
      let kernel: XfrmPolicy[];
      try {
        kernel = await this.o.dumpPolicies();
      } catch (e) {
        for (const t of this.o.tunnels()) this.set(t, 'Unknown', 'CheckFailed', (e as Error).message);
        return;
      }
      const byTunnel = new Map<string, ExpectedChild[]>();
      for (const c of children) byTunnel.set(c.tunnel, [...(byTunnel.get(c.tunnel) ?? []), c]);
      for (const t of this.o.tunnels()) {
        const cs = byTunnel.get(t);
        if (!cs) {
          this.set(t, 'Unknown', 'NoChildSa', 'no CHILD SA is installed; its subnets are not carried');
          this.o.onResult?.(t, this.views.get(t)!, 0);
          continue;
        }
        const problems = cs.flatMap((c) => checkPolicies(c.policies, kernel).map((p) => ({ ...p, child: c })));
        let outPackets = 0n;
        let saMissing = false;
        for (const c of cs) {
          const n = await this.o.outPackets(c.spiOut, c.remoteAddress).catch(() => undefined);
          if (n === undefined) saMissing = true;
          else outPackets += n;
        }
        const prevOut = this.lastOut.get(t);
        this.lastOut.set(t, outPackets);
        const delta = prevOut !== undefined && outPackets >= prevOut ? Number(outPackets - prevOut) : undefined;
        const extra = delta !== undefined ? { packetsOutDelta: delta } : {};
        let restored = 0;
        if (problems.length > 0) {
          if (this.o.restore) {
            for (const p of problems) {
              if (p.child.alive && !p.child.alive()) continue;
              try {
                await this.o.addPolicy(p.policy);
                restored++;
              } catch (e) {
                this.o.logger.error({ event: 'policy-restore-failed', tunnel: t }, (e as Error).message);
              }
            }
          }
          const v = this.set(
            t,
            'False',
            problems[0]!.reason,
            `${problems.map((p) => p.detail).join('; ')}${this.o.restore ? `; restored ${restored} of ${problems.length}` : ''}`,
            extra,
          );
          v.restored += restored;
        } else if (saMissing) {
          this.set(
            t,
            'False',
            'OutboundSaMissing',
            'an outbound ESP SA of an installed CHILD SA is not in the kernel',
            extra,
          );
        } else {
          this.set(
            t,
            'True',
            'PoliciesInPlace',
            `${cs.reduce((n, c) => n + c.policies.length, 0)} policies with reqid ${[...new Set(cs.map((c) => c.reqid))].join(',')} hold the subnet pairs`,
            extra,
          );
        }
        this.o.onResult?.(t, this.views.get(t)!, restored);
      }
      for (const t of [...this.views.keys()]) if (!this.o.tunnels().includes(t)) this.views.delete(t);
    } finally {
      this.running = false;
    }
  }
}
