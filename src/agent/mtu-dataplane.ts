/**
 * Applies the MTU of each tunnel on the gateway so that no PMTU black hole appears:
 *
 * - Route MTU: the route to each remote subnet gets `mtu lock <inner MTU>` (`ip route replace <subnet> via .. dev ..
 *   proto 157 mtu lock N`). Traffic the gateway forwards into the tunnel then gets ICMP "fragmentation needed" /
 *   "packet too big" from the gateway itself (which the hosts behind it can always reach), and the gateway's own
 *   traffic uses the right size. A route that was there before is remembered (in memory and in
 *   `<stateDir>/mtu-routes.json`, so a restarted agent can still put it back) and restored when the tunnel goes.
 * - TCP MSS clamping: forwarded SYNs to and from each remote subnet get their MSS lowered to fit (many hosts and
 *   middleboxes drop ICMP, so PMTU discovery alone is not enough). nftables first: one table `inet ipsec_mesh_mss`
 *   replaced atomically with `nft -f`. When nftables cannot do it (no `nft` binary, or a kernel without the
 *   nf_tables inet family or the exthdr expression; the User-Mode Linux kernel the tests use has nf_tables but not
 *   CONFIG_NF_TABLES_INET/IPV4, while it does have xt_TCPMSS and iptable_mangle), iptables-legacy with a chain
 *   `IPSEC-MESH-MSS` in the mangle table jumped to from FORWARD. We never use iptables-nft: on a host where nft
 *   failed it would fail the same way.
 *
 * Everything here runs external commands through a `Runner` (tests pass a fake) and reports failures as typed
 * errors; nothing throws out of `apply`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Routing protocol number on our routes (ownership tag; unassigned in /etc/iproute2/rt_protos). */
export const ROUTE_PROTO = 157;
export const NFT_TABLE = 'ipsec_mesh_mss';
export const IPT_CHAIN = 'IPSEC-MESH-MSS';

export type ClampBackend = 'nftables' | 'iptables-legacy';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}
/** Runs a command; a missing binary is code 127 (never a throw). */
export type Runner = (cmd: string, args: string[], input?: string) => Promise<RunResult>;

export class MssClampUnavailableError extends Error {
  readonly code = 'ERR_MSS_CLAMP_UNAVAILABLE';
}
export class RouteMtuError extends Error {
  readonly code = 'ERR_ROUTE_MTU';
}

export interface MtuEntry {
  /** namespace/name of the tunnel. */
  tunnel: string;
  /** Remote subnet as CIDR. */
  subnet: string;
  family: 4 | 6;
  innerMtu: number;
  mss: number;
}

export interface MtuApplyResult {
  backend?: ClampBackend;
  /** Why nftables was not used, when iptables-legacy was. */
  fallbackReason?: string;
  clampError?: MssClampUnavailableError;
  routeErrors: RouteMtuError[];
}

export const spawnRunner: Runner = (cmd, args, input) =>
  new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let done = false;
    const finish = (r: RunResult) => {
      if (!done) {
        done = true;
        resolve(r);
      }
    };
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', (e: NodeJS.ErrnoException) =>
      finish({ code: e.code === 'ENOENT' ? 127 : 126, stdout, stderr: `${cmd}: ${e.message}` }),
    );
    child.on('close', (code) => finish({ code: code ?? 1, stdout, stderr }));
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });

/** Deterministic order: by family, subnet, direction. */
function sorted(entries: MtuEntry[]): MtuEntry[] {
  return [...entries].sort((a, b) => a.family - b.family || (a.subnet < b.subnet ? -1 : a.subnet > b.subnet ? 1 : 0));
}

/** The whole nftables table, replaced atomically (declare, delete, re-create in one transaction). */
export function nftRuleset(entries: MtuEntry[]): string {
  const lines = [`table inet ${NFT_TABLE}`, `delete table inet ${NFT_TABLE}`];
  if (entries.length === 0) return `${lines.join('\n')}\n`;
  lines.push(
    `table inet ${NFT_TABLE} {`,
    '  chain forward {',
    '    type filter hook forward priority mangle; policy accept;',
  );
  for (const e of sorted(entries)) {
    const ip = e.family === 4 ? 'ip' : 'ip6';
    for (const dir of ['daddr', 'saddr']) {
      lines.push(
        `    ${ip} ${dir} ${e.subnet} tcp flags & (syn|rst) == syn tcp option maxseg size > ${e.mss} ` +
          `tcp option maxseg size set ${e.mss} comment "${e.tunnel.replace(/[^A-Za-z0-9./_-]/g, '_')}"`,
      );
    }
  }
  lines.push('  }', '}');
  return `${lines.join('\n')}\n`;
}

/** iptables-legacy-restore --noflush input for one family: our chain, declared (created or flushed) and filled. */
export function iptablesRestore(entries: MtuEntry[]): string {
  const lines = ['*mangle', `:${IPT_CHAIN} - [0:0]`];
  for (const e of sorted(entries)) {
    for (const dir of ['-d', '-s']) {
      lines.push(
        `-A ${IPT_CHAIN} ${dir} ${e.subnet} -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss ${e.mss + 1}:65535 ` +
          `-j TCPMSS --set-mss ${e.mss}`,
      );
    }
  }
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

interface RouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  metric?: number;
  prefsrc?: string;
  scope?: string;
  metrics?: Record<string, number>[];
}

/** A route we replaced (to restore it) or added (to delete it). */
interface OwnedRoute {
  subnet: string;
  family: 4 | 6;
  mtu: number;
  original?: RouteJson;
  /** The route we installed (its nexthop). */
  via?: string;
  dev?: string;
  metric?: number;
}

function routeArgs(r: { subnet: string; via?: string; dev?: string; metric?: number; prefsrc?: string }): string[] {
  const a = [r.subnet];
  if (r.via) a.push('via', r.via);
  if (r.dev) a.push('dev', r.dev);
  if (r.metric !== undefined) a.push('metric', String(r.metric));
  if (r.prefsrc) a.push('src', r.prefsrc);
  return a;
}

function firstAddress(cidr: string): string {
  return cidr.split('/')[0]!;
}

export interface MtuDataplaneOptions {
  run?: Runner;
  backend?: 'auto' | ClampBackend;
  clampMss?: boolean;
  routeMtu?: boolean;
  /** Where to keep replaced routes across restarts (no file when undefined). */
  stateDir?: string;
}

export class MtuDataplane {
  private readonly run: Runner;
  private backend: ClampBackend | undefined;
  private fallbackReason: string | undefined;
  private lastClamp = '';
  private readonly routes = new Map<string, OwnedRoute>();
  private readonly stateFile: string | undefined;

  constructor(private readonly o: MtuDataplaneOptions = {}) {
    this.run = o.run ?? spawnRunner;
    if (o.backend && o.backend !== 'auto') this.backend = o.backend;
    this.stateFile = o.stateDir ? join(o.stateDir, 'mtu-routes.json') : undefined;
    if (this.stateFile) {
      try {
        for (const r of JSON.parse(readFileSync(this.stateFile, 'utf8')) as OwnedRoute[]) this.routes.set(r.subnet, r);
      } catch {
        // no file yet (or unreadable: start empty; our routes are still found by their protocol number)
      }
    }
  }

  get clampBackend(): ClampBackend | undefined {
    return this.backend;
  }

  /** Converge routes and MSS clamping on `entries` (empty: remove everything of ours). */
  async apply(entries: MtuEntry[]): Promise<MtuApplyResult> {
    const result: MtuApplyResult = { routeErrors: [] };
    // One entry per subnet: the smallest MTU wins if two tunnels claim it.
    const bySubnet = new Map<string, MtuEntry>();
    for (const e of entries) {
      const have = bySubnet.get(e.subnet);
      if (!have || e.innerMtu < have.innerMtu) bySubnet.set(e.subnet, e);
    }
    const list = [...bySubnet.values()];
    if (this.o.clampMss !== false) {
      try {
        await this.applyClamp(list);
        if (this.backend) result.backend = this.backend;
        if (this.fallbackReason) result.fallbackReason = this.fallbackReason;
      } catch (e) {
        if (!(e instanceof MssClampUnavailableError)) throw e;
        result.clampError = e;
      }
    }
    if (this.o.routeMtu !== false) await this.applyRoutes(list, result.routeErrors);
    return result;
  }

  private async applyClamp(list: MtuEntry[]): Promise<void> {
    const key = JSON.stringify(sorted(list));
    if (key === this.lastClamp) return;
    if (this.backend === undefined || this.backend === 'nftables') {
      const r = await this.run('nft', ['-f', '-'], nftRuleset(list));
      if (r.code === 0) {
        this.backend = 'nftables';
        this.lastClamp = key;
        return;
      }
      const why = r.code === 127 ? 'nft is not installed' : `nft -f failed: ${r.stderr.trim().split('\n')[0]}`;
      // Chosen (by setting, or because it worked before): no silent switch of tools.
      if (this.backend === 'nftables') throw new MssClampUnavailableError(`cannot clamp TCP MSS with nftables: ${why}`);
      if (list.length === 0 && this.backend === undefined) {
        this.lastClamp = key;
        return;
      }
      this.fallbackReason = why;
    }
    await this.applyIptables(list);
    this.backend = 'iptables-legacy';
    this.lastClamp = key;
  }

  private async applyIptables(list: MtuEntry[]): Promise<void> {
    for (const family of [4, 6] as const) {
      const ipt = family === 4 ? 'iptables-legacy' : 'ip6tables-legacy';
      const mine = list.filter((e) => e.family === family);
      if (mine.length === 0) {
        // Remove our chain if it is there; nothing to report when it is not.
        await this.run(ipt, ['-w', '-t', 'mangle', '-D', 'FORWARD', '-j', IPT_CHAIN]);
        await this.run(ipt, ['-w', '-t', 'mangle', '-F', IPT_CHAIN]);
        await this.run(ipt, ['-w', '-t', 'mangle', '-X', IPT_CHAIN]);
        continue;
      }
      const r = await this.run(`${ipt}-restore`, ['-w', '--noflush'], iptablesRestore(mine));
      if (r.code !== 0) {
        const why = r.code === 127 ? `${ipt}-restore is not installed` : r.stderr.trim().split('\n')[0];
        throw new MssClampUnavailableError(
          `cannot clamp TCP MSS: ${this.fallbackReason ? `${this.fallbackReason}; ` : ''}${ipt}: ${why}`,
        );
      }
      const check = await this.run(ipt, ['-w', '-t', 'mangle', '-C', 'FORWARD', '-j', IPT_CHAIN]);
      if (check.code !== 0) {
        const ins = await this.run(ipt, ['-w', '-t', 'mangle', '-I', 'FORWARD', '1', '-j', IPT_CHAIN]);
        if (ins.code !== 0) {
          throw new MssClampUnavailableError(`cannot clamp TCP MSS: ${ipt} -I FORWARD: ${ins.stderr.trim()}`);
        }
      }
    }
  }

  private async ip(family: 4 | 6, args: string[]): Promise<RunResult> {
    return this.run('ip', [`-${family}`, ...args]);
  }

  private async applyRoutes(list: MtuEntry[], errors: RouteMtuError[]): Promise<void> {
    const wanted = new Map(list.map((e) => [e.subnet, e]));
    let changed = false;
    for (const [subnet, owned] of [...this.routes]) {
      if (wanted.has(subnet)) continue;
      const err = await this.releaseRoute(owned);
      if (err) errors.push(err);
      this.routes.delete(subnet);
      changed = true;
    }
    for (const e of wanted.values()) {
      const have = this.routes.get(e.subnet);
      if (have && have.mtu === e.innerMtu) continue;
      try {
        this.routes.set(e.subnet, await this.setRoute(e, have));
        changed = true;
      } catch (x) {
        if (!(x instanceof RouteMtuError)) throw x;
        errors.push(x);
      }
    }
    if (changed) this.save();
  }

  private async setRoute(e: MtuEntry, have: OwnedRoute | undefined): Promise<OwnedRoute> {
    let original = have?.original;
    let via = have?.via;
    let dev = have?.dev;
    let metric = have?.metric;
    if (!have) {
      const show = await this.ip(e.family, ['-j', 'route', 'show', 'exact', e.subnet]);
      if (show.code !== 0) throw new RouteMtuError(`ip route show ${e.subnet}: ${show.stderr.trim()}`);
      const existing = (JSON.parse(show.stdout || '[]') as RouteJson[]).find((r) => r.protocol !== String(ROUTE_PROTO));
      if (existing) {
        original = existing;
        via = existing.gateway;
        dev = existing.dev;
        metric = existing.metric;
      } else {
        const get = await this.ip(e.family, ['-j', 'route', 'get', firstAddress(e.subnet)]);
        if (get.code !== 0) {
          throw new RouteMtuError(`no route towards ${e.subnet} to put its MTU on: ${get.stderr.trim()}`);
        }
        const r = (JSON.parse(get.stdout || '[]') as RouteJson[])[0];
        via = r?.gateway;
        dev = r?.dev;
      }
    }
    const args = [
      'route',
      'replace',
      ...routeArgs({ subnet: e.subnet, via, dev, metric }),
      'proto',
      String(ROUTE_PROTO),
    ];
    args.push('mtu', 'lock', String(e.innerMtu));
    const r = await this.ip(e.family, args);
    if (r.code !== 0) throw new RouteMtuError(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
    const owned: OwnedRoute = { subnet: e.subnet, family: e.family, mtu: e.innerMtu };
    if (original) owned.original = original;
    if (via) owned.via = via;
    if (dev) owned.dev = dev;
    if (metric !== undefined) owned.metric = metric;
    return owned;
  }

  private async releaseRoute(o: OwnedRoute): Promise<RouteMtuError | undefined> {
    let r: RunResult;
    if (o.original) {
      const orig = o.original;
      const args = [
        'route',
        'replace',
        ...routeArgs({
          subnet: o.subnet,
          via: orig.gateway,
          dev: orig.dev,
          metric: orig.metric,
          prefsrc: orig.prefsrc,
        }),
      ];
      if (orig.protocol) args.push('proto', orig.protocol);
      if (orig.scope && orig.scope !== 'global') args.push('scope', orig.scope);
      for (const m of orig.metrics ?? []) for (const [k, v] of Object.entries(m)) args.push(k, String(v));
      r = await this.ip(o.family, args);
    } else {
      r = await this.ip(o.family, ['route', 'del', o.subnet, 'proto', String(ROUTE_PROTO)]);
      if (r.code !== 0 && /No such process|not found/i.test(r.stderr)) return undefined;
    }
    return r.code === 0 ? undefined : new RouteMtuError(`cannot restore the route to ${o.subnet}: ${r.stderr.trim()}`);
  }

  private save(): void {
    if (!this.stateFile) return;
    try {
      mkdirSync(join(this.stateFile, '..'), { recursive: true, mode: 0o700 });
      writeFileSync(`${this.stateFile}.tmp`, JSON.stringify([...this.routes.values()]));
      renameSync(`${this.stateFile}.tmp`, this.stateFile);
    } catch {
      // best effort: without the file a restarted agent deletes (rather than restores) our routes
    }
  }
}
