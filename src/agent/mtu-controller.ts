/**
 * Keeps route MTUs and TCP MSS clamping (mtu-dataplane.ts) in line with the installed CHILD SAs: level-based, from
 * the engine's SAs on every CHILD SA change (debounced) and periodically. Each tunnel's figures (underlay MTU,
 * ESP overhead, inner MTU, MSS, clamping backend, error) are shown in status.
 */
import { isIPv4 } from 'node:net';
import type { Logger } from 'pino';
import type { IkeSa } from '../ike/sa/ike-sa.js';
import { kernelSelectorOf } from '../ike/sa/ike-sa.js';
import { type EspShape, MtuInputError, mssFor, tunnelMtu } from './mtu.js';
import { type MtuApplyResult, MtuDataplane, type MtuEntry, type Runner, spawnRunner } from './mtu-dataplane.js';
import type { AgentSettings } from './settings.js';
import { rangePrefix } from './xfrm-kernel.js';

export type MtuSettings = AgentSettings['mtu'];

/** What status shows per tunnel. */
export interface TunnelMtuView {
  underlayMtu: number;
  /** Where underlayMtu came from: the setting, or the interface/route towards the peer. */
  underlaySource: 'setting' | 'route';
  innerMtu: number;
  overhead: number;
  /** MSS clamped to for IPv4 inner traffic (IPv6: 20 less). */
  mss: number;
  clamp: 'nftables' | 'iptables-legacy' | 'off' | 'failed';
  routeMtu: boolean;
  remoteSubnets: string[];
  error?: { code: string; message: string };
}

export interface MtuInput {
  tunnel: string;
  peer: string;
  shape: EspShape;
  remoteSubnets: { cidr: string; family: 4 | 6 }[];
}

/** The installed CHILD SAs' shapes and remote subnets, from the engine. */
export function mtuInputs(sas: readonly IkeSa[]): MtuInput[] {
  const out: MtuInput[] = [];
  for (const sa of sas) {
    if (sa.state === 'destroyed' || sa.state === 'connecting') continue;
    for (const c of sa.children) {
      if ((c.state !== 'installed' && c.state !== 'rekeying') || !c.suite || !c.outboundInstalled) continue;
      const subnets: MtuInput['remoteSubnets'] = [];
      for (const ts of c.remoteTs) {
        const k = kernelSelectorOf(ts);
        const p = rangePrefix(k.startAddress, k.endAddress);
        if (p !== undefined) subnets.push({ cidr: `${k.startAddress}/${p}`, family: k.family });
      }
      const shape: EspShape = {
        encryption: c.suite.encrId,
        mode: c.mode,
        outerFamily: isIPv4(sa.remote.address) ? 4 : 6,
        udpEncapsulation: sa.natDetected,
      };
      if (c.suite.integId) shape.integrity = c.suite.integId;
      out.push({ tunnel: sa.config.name, peer: sa.remote.address, shape, remoteSubnets: subnets });
    }
  }
  return out;
}

export interface MtuControllerOptions {
  settings: MtuSettings;
  inputs: () => MtuInput[];
  logger: Logger;
  stateDir?: string;
  run?: Runner;
  /** Periodic re-check (ms). */
  periodMs?: number;
}

export class MtuController {
  private readonly run: Runner;
  private readonly dataplane: MtuDataplane;
  private views = new Map<string, TunnelMtuView>();
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  private lastErrors = '';
  private lastApplied = '[]';
  private readonly underlayCache = new Map<string, { mtu: number; at: number }>();

  constructor(private readonly o: MtuControllerOptions) {
    this.run = o.run ?? spawnRunner;
    this.dataplane = new MtuDataplane({
      run: this.run,
      backend: o.settings.backend,
      clampMss: o.settings.clampMss,
      routeMtu: o.settings.routeMtu,
      ...(o.stateDir ? { stateDir: o.stateDir } : {}),
    });
  }

  start(): void {
    const tick = () => {
      this.poke();
      this.timer = setTimeout(tick, this.o.periodMs ?? 15_000);
      this.timer.unref?.();
    };
    tick();
  }

  /** Something changed (a CHILD SA came or went): reconcile soon. */
  poke(): void {
    if (this.stopped || this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.running = this.running.then(() => this.reconcile()).catch(() => {});
    }, 50);
    this.debounce.unref?.();
  }

  /** Remove everything (agent stopping). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
    await this.running;
    await this.dataplane.apply([]).catch(() => {});
  }

  view(tunnel: string): TunnelMtuView | undefined {
    return this.views.get(tunnel);
  }

  /** Underlay MTU towards a peer: the setting, else the route's MTU or its interface's (cached for a minute). */
  private async underlay(peer: string): Promise<{ mtu: number; source: 'setting' | 'route' }> {
    if (this.o.settings.underlayMtu !== undefined) return { mtu: this.o.settings.underlayMtu, source: 'setting' };
    const c = this.underlayCache.get(peer);
    if (c && performance.now() - c.at < 60_000) return { mtu: c.mtu, source: 'route' };
    const fam = isIPv4(peer) ? '-4' : '-6';
    const get = await this.run('ip', [fam, '-j', 'route', 'get', peer]);
    if (get.code !== 0) throw new MtuInputError(`no route to the peer ${peer}: ${get.stderr.trim()}`);
    const r = (JSON.parse(get.stdout || '[]') as { dev?: string; metrics?: Record<string, number>[] }[])[0];
    let mtu = r?.metrics?.find((m) => m.mtu !== undefined)?.mtu;
    if (mtu === undefined && r?.dev) {
      const link = await this.run('ip', ['-j', 'link', 'show', 'dev', r.dev]);
      mtu = (JSON.parse(link.stdout || '[]') as { mtu?: number }[])[0]?.mtu;
    }
    if (mtu === undefined) throw new MtuInputError(`cannot find the MTU towards ${peer}`);
    this.underlayCache.set(peer, { mtu, at: performance.now() });
    return { mtu, source: 'route' };
  }

  async reconcile(): Promise<void> {
    if (this.stopped) return;
    const entries: MtuEntry[] = [];
    const views = new Map<string, TunnelMtuView>();
    for (const inp of this.o.inputs()) {
      if (views.has(inp.tunnel)) continue;
      try {
        const u = await this.underlay(inp.peer);
        const t = tunnelMtu(u.mtu, inp.shape);
        views.set(inp.tunnel, {
          underlayMtu: u.mtu,
          underlaySource: u.source,
          innerMtu: t.innerMtu,
          overhead: t.overhead,
          mss: t.mssV4,
          clamp: this.o.settings.clampMss ? 'failed' : 'off',
          routeMtu: false,
          remoteSubnets: inp.remoteSubnets.map((s) => s.cidr),
        });
        for (const s of inp.remoteSubnets) {
          entries.push({
            tunnel: inp.tunnel,
            subnet: s.cidr,
            family: s.family,
            innerMtu: t.innerMtu,
            mss: mssFor(t.innerMtu, s.family),
          });
        }
      } catch (e) {
        if (!(e instanceof MtuInputError)) throw e;
        views.set(inp.tunnel, {
          underlayMtu: 0,
          underlaySource: this.o.settings.underlayMtu !== undefined ? 'setting' : 'route',
          innerMtu: 0,
          overhead: 0,
          mss: 0,
          clamp: 'off',
          routeMtu: false,
          remoteSubnets: inp.remoteSubnets.map((s) => s.cidr),
          error: { code: e.code, message: e.message },
        });
      }
    }
    let res: MtuApplyResult;
    try {
      res = await this.dataplane.apply(entries);
    } catch (e) {
      this.o.logger.error({ event: 'mtu-error' }, (e as Error).message);
      return;
    }
    for (const v of views.values()) {
      if (v.error) continue;
      if (this.o.settings.clampMss) {
        if (res.backend && !res.clampError) v.clamp = res.backend;
        else if (res.clampError) v.error = { code: res.clampError.code, message: res.clampError.message };
      }
      const routeErr = res.routeErrors.find((r) => v.remoteSubnets.some((s) => r.message.includes(s)));
      v.routeMtu = this.o.settings.routeMtu && !routeErr;
      if (routeErr && !v.error) v.error = { code: routeErr.code, message: routeErr.message };
    }
    this.views = views;
    const errors = [res.clampError?.message, ...res.routeErrors.map((r) => r.message)].filter(Boolean).join('; ');
    if (errors && errors !== this.lastErrors) this.o.logger.error({ event: 'mtu-error' }, errors);
    this.lastErrors = errors;
    const applied = JSON.stringify(entries);
    if (applied !== this.lastApplied) {
      this.lastApplied = applied;
      this.o.logger.info(
        {
          event: 'mtu-applied',
          backend: res.backend,
          fallback: res.fallbackReason,
          tunnels: [...views].map(([t, v]) => ({ tunnel: t, underlay: v.underlayMtu, inner: v.innerMtu, mss: v.mss })),
        },
        entries.length > 0 ? 'route MTU and MSS clamping applied' : 'route MTU and MSS clamping removed',
      );
    }
  }
}
