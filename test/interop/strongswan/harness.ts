/**
 * Interop harness: strongSwan's charon and our agent, each in its own network namespace, joined by a veth pair.
 *
 *   netns <prefix>-s (charon)  veth "sw0"  192.0.2.1/24  2001:db8:5::1/64
 *   netns <prefix>-o (ours)    veth "om0"  192.0.2.2/24  2001:db8:5::2/64
 *
 * charon runs with its own STRONGSWAN_CONF, vici socket and a private /run (`unshare -m` + tmpfs, for its pid
 * file), with the kernel-libipsec plugin: this host kernel has no ESP, so charon keeps its CHILD SAs in userspace.
 * kernel-libipsec only does UDP-encapsulated ESP, so charon always fakes a NAT (random NATD_S_IP) and both sides
 * float to port 4500: every interop case exercises NAT-T.
 *
 * Our agent runs `ipsec-mesh agent --dataplane none` in the other namespace from a config directory of
 * Kubernetes-style YAML. Everything a harness creates carries the prefix `ipsmsw-<pid>-`; namespaces of dead
 * test processes are removed at start, and every namespace and process of this one in `destroy()`.
 *
 * Needs root (CI runs as root) and installs the Debian strongSwan packages when they are missing.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const PREFIX = 'ipsmsw';
const CHARON = '/usr/lib/ipsec/charon';
const SWANCTL = '/usr/sbin/swanctl';
const PLUGIN_DIR = '/usr/lib/ipsec/plugins';

/** Debian packages the harness needs (also in scripts/install-deps.sh). */
export const STRONGSWAN_PACKAGES = [
  'strongswan-charon',
  'strongswan-swanctl',
  'strongswan-libcharon',
  'libcharon-extra-plugins', // kernel-libipsec
  'libstrongswan-standard-plugins', // openssl: ECP groups, GCM, ChaCha20-Poly1305
  'libstrongswan-extra-plugins', // curve25519, chapoly
];

/** charon plugins, in load order (kernel-libipsec before kernel-netlink so that it provides the IPsec backend). */
export const CHARON_PLUGINS = [
  'random',
  'nonce',
  'openssl',
  'aes',
  'sha1',
  'sha2',
  'hmac',
  'gcm',
  'chapoly',
  'curve25519',
  'gmp',
  'kdf',
  'pem',
  'pkcs1',
  'pkcs8', // PKCS#8 private keys (openssl genpkey, cert-manager)
  'pubkey',
  'x509',
  'constraints', // X.509 path length / name constraints on certificate chains
  'kernel-libipsec',
  'kernel-netlink',
  'socket-default',
  'vici',
];

// ---- small process helpers -----------------------------------------------------------------------------------

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      input: opts.input ?? '',
    });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; status?: number };
    throw new Error(`${cmd} ${args.join(' ')} failed (${err.status}): ${err.stderr ?? ''}${err.stdout ?? ''}`);
  }
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run a command asynchronously (the event loop keeps reading the agent's output meanwhile); never throws. */
export function exec(cmd: string, args: string[], env?: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<ExecResult> {
  const start = performance.now();
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { encoding: 'utf8', env: env ?? process.env, timeout: timeoutMs, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr, ms: performance.now() - start });
      },
    );
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a value other than undefined/false, or throw `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string | (() => string),
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > end)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(everyMs);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitExit(p: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (p.exitCode !== null || p.signalCode !== null) return true;
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    p.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

// ---- prerequisites -------------------------------------------------------------------------------------------

/** Fails loudly unless root; installs strongSwan when a binary or plugin is missing. */
export function ensurePrerequisites(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('the strongSwan interop tests need root (network namespaces, charon); CI runs them as root');
  }
  const needed = [CHARON, SWANCTL, ...CHARON_PLUGINS.map((p) => join(PLUGIN_DIR, `libstrongswan-${p}.so`))];
  if (needed.every((f) => existsSync(f))) return;
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...STRONGSWAN_PACKAGES], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  const still = needed.filter((f) => !existsSync(f));
  if (still.length) throw new Error(`strongSwan installed but still missing: ${still.join(', ')}`);
}

/** Remove namespaces (and the processes in them) left behind by harness instances whose test process died. */
export function cleanupStale(): void {
  let list = '';
  try {
    list = run('ip', ['netns', 'list']);
  } catch {
    return;
  }
  for (const line of list.split('\n')) {
    const name = line.split(/\s+/)[0] ?? '';
    const m = new RegExp(`^${PREFIX}-(\\d+)-`).exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    killNamespace(name);
  }
}

/** Kill every process inside a namespace we created, then delete it. */
function killNamespace(ns: string): void {
  for (let round = 0; round < 20; round++) {
    let pids: number[] = [];
    try {
      pids = run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean).map(Number);
    } catch {
      break;
    }
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, round < 5 ? 'SIGTERM' : 'SIGKILL');
      } catch {
        // gone
      }
    }
    execFileSync('sleep', ['0.1']);
  }
  try {
    run('ip', ['netns', 'del', ns]);
  } catch {
    // already gone
  }
}

// ---- topology ------------------------------------------------------------------------------------------------

export interface Side {
  ns: string;
  dev: string;
  v4: string;
  v6: string;
}

let seq = 0;

/** Two namespaces joined by a veth pair: `s` for strongSwan, `o` for ours. */
export class Topology {
  readonly s: Side;
  readonly o: Side;
  readonly dir: string;
  private destroyed = false;

  constructor(tag: string) {
    const id = `${PREFIX}-${process.pid}-${tag}${++seq}`;
    this.s = { ns: `${id}-s`, dev: 'sw0', v4: '192.0.2.1', v6: '2001:db8:5::1' };
    this.o = { ns: `${id}-o`, dev: 'om0', v4: '192.0.2.2', v6: '2001:db8:5::2' };
    this.dir = mkdtempSync(join(tmpdir(), `${id}-`));
    try {
      for (const side of [this.s, this.o]) {
        run('ip', ['netns', 'add', side.ns]);
        run('ip', ['-n', side.ns, 'link', 'set', 'lo', 'up']);
      }
      run('ip', [
        'link',
        'add',
        'name',
        this.s.dev,
        'netns',
        this.s.ns,
        'type',
        'veth',
        'peer',
        'name',
        this.o.dev,
        'netns',
        this.o.ns,
      ]);
      for (const side of [this.s, this.o]) {
        run('ip', ['-n', side.ns, 'addr', 'add', `${side.v4}/24`, 'dev', side.dev]);
        run('ip', ['-n', side.ns, 'addr', 'add', `${side.v6}/64`, 'dev', side.dev, 'nodad']);
        run('ip', ['-n', side.ns, 'link', 'set', side.dev, 'up']);
      }
      // kernel-libipsec routes each outbound policy through its TUN device with a source address from the local
      // traffic selector, and refuses the CHILD SA (TS_UNACCEPTABLE) without one: give each side addresses in its
      // site subnets (charon: 198.18.1.0/24, 198.18.3.0/24, 2001:db8:1::/48; the other: .2 and .4).
      for (const [side, nets] of [
        [this.s, [1, 3]],
        [this.o, [2, 4]],
      ] as const) {
        for (const n of nets) {
          run('ip', ['-n', side.ns, 'addr', 'add', `198.18.${n}.1/32`, 'dev', 'lo']);
          run('ip', ['-n', side.ns, 'addr', 'add', `2001:db8:${n}::1/128`, 'dev', 'lo', 'nodad']);
        }
      }
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  /** Add an address to one side (e.g. a second IKE endpoint). */
  addAddress(side: Side, cidr: string): void {
    run('ip', ['-n', side.ns, 'addr', 'add', cidr, 'dev', side.dev, ...(cidr.includes(':') ? ['nodad'] : [])]);
  }

  /**
   * Drop (on) or stop dropping (off) every IKE datagram arriving at one side, counting them: a peer that never
   * answers.
   */
  blackhole(side: Side, on: boolean): void {
    const table = `${PREFIX}_bh`;
    if (on) {
      const rules = `table inet ${table} {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    udp dport { 500, 4500 } counter drop\n  }\n}\n`;
      run('ip', ['netns', 'exec', side.ns, 'nft', '-f', '-'], { input: rules });
    } else {
      run('ip', ['netns', 'exec', side.ns, 'nft', 'delete', 'table', 'inet', table]);
    }
  }

  /** Datagrams the blackhole of one side has dropped. */
  dropped(side: Side): number {
    const out = run('ip', ['netns', 'exec', side.ns, 'nft', 'list', 'table', 'inet', `${PREFIX}_bh`]);
    const m = /counter packets (\d+)/.exec(out);
    return m ? Number(m[1]) : 0;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    killNamespace(this.s.ns);
    killNamespace(this.o.ns);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---- swanctl.conf --------------------------------------------------------------------------------------------

export interface SwChild {
  name: string;
  localTs: string[];
  remoteTs: string[];
  espProposals: string[];
  /** swanctl durations, e.g. '1h', '10s'. */
  rekeyTime?: string;
  lifeTime?: string;
  startAction?: 'none' | 'trap' | 'start';
  dpdAction?: 'clear' | 'trap' | 'restart';
  closeAction?: 'none' | 'trap' | 'start';
  mode?: 'tunnel' | 'transport';
}

export interface SwConnection {
  name: string;
  localAddrs: string[];
  remoteAddrs: string[];
  localId: string;
  remoteId: string;
  /** PSK bytes (written as hex); ignored when `cert` is set. */
  psk: string;
  /**
   * Certificate authentication (auth = pubkey): absolute PEM paths of our certificate, its key (copied into
   * private/ by Charon.load) and the CAs.
   */
  cert?: {
    certFile: string;
    keyFile: string;
    caFiles: string[];
    sendCert?: 'always' | 'ifasked';
    /** No `id`: charon identifies by its certificate's subject DN, encoded as in the certificate. */
    idFromCert?: boolean;
  };
  /** IKE fragmentation (swanctl `fragmentation`, default yes). */
  fragmentation?: 'yes' | 'accept' | 'force' | 'no';
  proposals: string[];
  rekeyTime?: string;
  overTime?: string;
  reauthTime?: string;
  dpdDelay?: string;
  dpdTimeout?: string;
  keyingtries?: number;
  /** RFC 6023: 'force' initiates without a CHILD SA in IKE_AUTH (charon 5.9.6+). */
  childless?: 'allow' | 'force' | 'never';
  children: SwChild[];
}

const hex = (s: string) => `0x${Buffer.from(s, 'utf8').toString('hex')}`;
const quote = (s: string) => `"${s.replace(/["\\]/g, '')}"`;

export function swanctlConf(conns: SwConnection[]): string {
  const out: string[] = ['connections {'];
  for (const c of conns) {
    out.push(`  ${c.name} {`, '    version = 2', '    mobike = no');
    out.push(`    local_addrs = ${c.localAddrs.join(',')}`, `    remote_addrs = ${c.remoteAddrs.join(',')}`);
    out.push(`    proposals = ${c.proposals.join(',')}`);
    out.push(`    rekey_time = ${c.rekeyTime ?? '4h'}`);
    if (c.overTime) out.push(`    over_time = ${c.overTime}`);
    out.push(`    reauth_time = ${c.reauthTime ?? '0'}`);
    if (c.dpdDelay) out.push(`    dpd_delay = ${c.dpdDelay}`);
    if (c.dpdTimeout) out.push(`    dpd_timeout = ${c.dpdTimeout}`);
    out.push(`    keyingtries = ${c.keyingtries ?? 1}`);
    if (c.childless) out.push(`    childless = ${c.childless}`);
    if (c.fragmentation) out.push(`    fragmentation = ${c.fragmentation}`);
    if (c.cert) {
      out.push('    send_certreq = yes', `    send_cert = ${c.cert.sendCert ?? 'always'}`);
      const id = c.cert.idFromCert ? '' : `\n      id = ${quote(c.localId)}`;
      out.push(`    local { auth = pubkey\n      certs = ${c.cert.certFile}${id} }`);
      out.push(
        `    remote { auth = pubkey\n      id = ${quote(c.remoteId)}\n      cacerts = ${c.cert.caFiles.join(',')} }`,
      );
    } else {
      out.push(`    local { auth = psk\n      id = ${quote(c.localId)} }`);
      out.push(`    remote { auth = psk\n      id = ${quote(c.remoteId)} }`);
    }
    out.push('    children {');
    for (const ch of c.children) {
      out.push(`      ${ch.name} {`);
      out.push(`        local_ts = ${ch.localTs.join(',')}`, `        remote_ts = ${ch.remoteTs.join(',')}`);
      out.push(`        esp_proposals = ${ch.espProposals.join(',')}`);
      out.push(`        rekey_time = ${ch.rekeyTime ?? '1h'}`);
      if (ch.lifeTime) out.push(`        life_time = ${ch.lifeTime}`);
      out.push(`        start_action = ${ch.startAction ?? 'none'}`);
      out.push(`        dpd_action = ${ch.dpdAction ?? 'clear'}`);
      out.push(`        close_action = ${ch.closeAction ?? 'none'}`);
      out.push(`        mode = ${ch.mode ?? 'tunnel'}`);
      out.push('      }');
    }
    out.push('    }', '  }');
  }
  out.push('}', 'secrets {');
  for (const c of conns) {
    if (c.cert) continue; // its private key is a file in the private/ directory (Charon.load)
    out.push(`  ike-${c.name} {`, `    id-l = ${quote(c.localId)}`, `    id-r = ${quote(c.remoteId)}`);
    out.push(`    secret = ${hex(c.psk)}`, '  }');
  }
  out.push('}');
  return `${out.join('\n')}\n`;
}

// ---- `swanctl --raw` output ----------------------------------------------------------------------------------

/** A vici message: sections (objects), lists (string arrays) and key/values (strings). */
export interface ViciSection {
  [key: string]: string | string[] | ViciSection;
}

/**
 * Parse swanctl's `--raw` dump: `name {k=v k=[a b] sub {...}}` per message, messages one after the other
 * (e.g. `list-sa event {...}` repeated, then `list-sas reply {}`). Returns the messages in order.
 */
export function parseViciRaw(text: string): { name: string; body: ViciSection }[] {
  const out: { name: string; body: ViciSection }[] = [];
  let i = 0;
  const n = text.length;
  const ws = () => {
    while (i < n && /\s/.test(text[i]!)) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && !/[\s{}=[\]]/.test(text[i]!)) i++;
    return text.slice(start, i);
  };
  const fail = (what: string): never => {
    throw new Error(
      `swanctl --raw: ${what} at offset ${i}: ${JSON.stringify(text.slice(Math.max(0, i - 40), i + 40))}`,
    );
  };
  const section = (): ViciSection => {
    const body: ViciSection = {};
    for (;;) {
      ws();
      if (i >= n) fail('unterminated section');
      if (text[i] === '}') {
        i++;
        return body;
      }
      const key = token();
      if (!key) fail('expected a key');
      ws();
      if (text[i] === '{') {
        i++;
        body[key] = section();
      } else if (text[i] === '=') {
        i++;
        if (text[i] === '[') {
          i++;
          const items: string[] = [];
          for (;;) {
            ws();
            if (text[i] === ']') {
              i++;
              break;
            }
            if (i >= n) fail('unterminated list');
            const item = token();
            if (!item) fail('bad list item');
            items.push(item);
          }
          body[key] = items;
        } else {
          // Values run to the next whitespace or closing brace (swanctl prints binary values as hex).
          const start = i;
          while (i < n && !/[\s}]/.test(text[i]!)) i++;
          body[key] = text.slice(start, i);
        }
      } else {
        fail(`unexpected ${JSON.stringify(text[i])}`);
      }
    }
  };
  for (;;) {
    ws();
    if (i >= n) break;
    // Message names have spaces ("list-sa event"): read up to the opening brace.
    const brace = text.indexOf('{', i);
    if (brace < 0) fail('expected a message');
    const name = text.slice(i, brace).trim();
    i = brace + 1;
    out.push({ name, body: section() });
  }
  return out;
}

export interface SwChildSa {
  name: string;
  uniqueid: string;
  reqid: string;
  state: string;
  mode: string;
  protocol: string;
  encap: boolean;
  spiIn: string;
  spiOut: string;
  encrAlg?: string;
  encrKeysize?: string;
  integAlg?: string;
  dhGroup?: string;
  localTs: string[];
  remoteTs: string[];
  rekeyTime?: number;
  installTime?: number;
}

export interface SwIkeSa {
  conn: string;
  uniqueid: string;
  state: string;
  initiator: boolean;
  localHost: string;
  localPort: number;
  remoteHost: string;
  remotePort: number;
  localId: string;
  remoteId: string;
  spiI: string;
  spiR: string;
  natAny: boolean;
  encrAlg?: string;
  encrKeysize?: string;
  integAlg?: string;
  prfAlg?: string;
  dhGroup?: string;
  rekeyTime?: number;
  children: SwChildSa[];
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);
const num = (v: unknown): number | undefined => (typeof v === 'string' ? Number(v) : undefined);

/** IKE SAs from `swanctl --list-sas --raw`. */
export function parseListSas(text: string): SwIkeSa[] {
  const out: SwIkeSa[] = [];
  for (const msg of parseViciRaw(text)) {
    if (msg.name !== 'list-sa event') continue;
    for (const [conn, v] of Object.entries(msg.body)) {
      if (typeof v !== 'object' || Array.isArray(v)) continue;
      const children: SwChildSa[] = [];
      const cs = v['child-sas'];
      if (cs && typeof cs === 'object' && !Array.isArray(cs)) {
        for (const c of Object.values(cs)) {
          if (typeof c !== 'object' || Array.isArray(c)) continue;
          children.push({
            name: str(c.name) ?? '',
            uniqueid: str(c.uniqueid) ?? '',
            reqid: str(c.reqid) ?? '',
            state: str(c.state) ?? '',
            mode: str(c.mode) ?? '',
            protocol: str(c.protocol) ?? '',
            encap: c.encap === 'yes',
            spiIn: str(c['spi-in']) ?? '',
            spiOut: str(c['spi-out']) ?? '',
            encrAlg: str(c['encr-alg']),
            encrKeysize: str(c['encr-keysize']),
            integAlg: str(c['integ-alg']),
            dhGroup: str(c['dh-group']),
            localTs: list(c['local-ts']),
            remoteTs: list(c['remote-ts']),
            rekeyTime: num(c['rekey-time']),
            installTime: num(c['install-time']),
          });
        }
      }
      out.push({
        conn,
        uniqueid: str(v.uniqueid) ?? '',
        state: str(v.state) ?? '',
        initiator: v.initiator === 'yes',
        localHost: str(v['local-host']) ?? '',
        localPort: Number(str(v['local-port']) ?? 0),
        remoteHost: str(v['remote-host']) ?? '',
        remotePort: Number(str(v['remote-port']) ?? 0),
        localId: str(v['local-id']) ?? '',
        remoteId: str(v['remote-id']) ?? '',
        spiI: str(v['initiator-spi']) ?? '',
        spiR: str(v['responder-spi']) ?? '',
        natAny: v['nat-any'] === 'yes',
        encrAlg: str(v['encr-alg']),
        encrKeysize: str(v['encr-keysize']),
        integAlg: str(v['integ-alg']),
        prfAlg: str(v['prf-alg']),
        dhGroup: str(v['dh-group']),
        rekeyTime: num(v['rekey-time']),
        children,
      });
    }
  }
  return out;
}

// strongSwan's algorithm names -> swanctl proposal tokens.
const ENCR: Record<string, (bits: string | undefined) => string> = {
  AES_GCM_16: (b) => `aes${b}gcm16`,
  AES_GCM_12: (b) => `aes${b}gcm12`,
  AES_GCM_8: (b) => `aes${b}gcm8`,
  AES_CBC: (b) => `aes${b}`,
  AES_CTR: (b) => `aes${b}ctr`,
  CHACHA20_POLY1305: () => 'chacha20poly1305',
};
const INTEG: Record<string, string> = {
  HMAC_SHA2_256_128: 'sha256',
  HMAC_SHA2_384_192: 'sha384',
  HMAC_SHA2_512_256: 'sha512',
  HMAC_SHA1_96: 'sha1',
  AES_XCBC_96: 'aesxcbc',
};
const PRF: Record<string, string> = {
  PRF_HMAC_SHA2_256: 'prfsha256',
  PRF_HMAC_SHA2_384: 'prfsha384',
  PRF_HMAC_SHA2_512: 'prfsha512',
  PRF_HMAC_SHA1: 'prfsha1',
};
const DH: Record<string, string> = {
  CURVE_25519: 'x25519',
  CURVE_448: 'x448',
  ECP_256: 'ecp256',
  ECP_384: 'ecp384',
  ECP_521: 'ecp521',
  MODP_2048: 'modp2048',
  MODP_3072: 'modp3072',
  MODP_4096: 'modp4096',
};

function token(map: Record<string, string>, name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const t = map[name];
  if (!t) throw new Error(`unknown strongSwan algorithm name ${name}`);
  return t;
}

/** charon's negotiated IKE algorithms as a set of swanctl tokens (e.g. aes128gcm16, prfsha256, x25519). */
export function ikeTokens(sa: SwIkeSa): string[] {
  const encr = sa.encrAlg ? ENCR[sa.encrAlg]?.(sa.encrKeysize) : undefined;
  if (sa.encrAlg && !encr) throw new Error(`unknown strongSwan cipher ${sa.encrAlg}`);
  return [encr, token(INTEG, sa.integAlg), token(PRF, sa.prfAlg), token(DH, sa.dhGroup)].filter(
    (t): t is string => t !== undefined,
  );
}

/** charon's negotiated ESP algorithms as swanctl tokens (the DH group only when the SA was created with PFS). */
export function espTokens(c: SwChildSa): string[] {
  const encr = c.encrAlg ? ENCR[c.encrAlg]?.(c.encrKeysize) : undefined;
  if (c.encrAlg && !encr) throw new Error(`unknown strongSwan cipher ${c.encrAlg}`);
  return [encr, token(INTEG, c.integAlg), token(DH, c.dhGroup)].filter((t): t is string => t !== undefined);
}

/**
 * Normalise a proposal string (ours or a configured one) to its token set: drops `esn`/`noesn`, and the PRF that
 * swanctl implies for non-AEAD IKE proposals (aes256-sha256 means prfsha256 too).
 */
export function proposalTokens(p: string, kind: 'ike' | 'esp'): string[] {
  const parts = p.split(/[-/]/).filter((t) => t && t !== 'esn' && t !== 'noesn');
  if (kind === 'ike' && !parts.some((t) => t.startsWith('prf'))) {
    const integ = parts.find((t) => /^sha(1|256|384|512)$/.test(t));
    if (integ) parts.push(`prf${integ}`);
  }
  return parts.sort();
}

// ---- charon --------------------------------------------------------------------------------------------------

export interface CharonOptions {
  /** charon.cookie_threshold (half-open IKE SAs before cookies are required). */
  cookieThreshold?: number;
  /** charon.block_threshold (half-open IKE SAs per peer IP). */
  blockThreshold?: number;
  /** charon.retransmit_timeout/_tries/_base (defaults here 1 s, 3, 1.4: short, so failures show quickly). */
  retransmitTimeout?: number;
  retransmitTries?: number;
  retransmitBase?: number;
  /** filelog level for the ike/enc/net groups (1 logs every exchange; -1 for benchmarks). */
  logLevel?: number;
  /** Pin charon to these CPUs (taskset list, e.g. "1"). */
  cpus?: string;
  /** Extra lines inside `charon { ... }`. */
  extra?: string;
}

export interface LogLine {
  /** Milliseconds since midnight (charon's clock), from `HH:MM:SS.mmm`. */
  t: number;
  text: string;
}

export class Charon {
  readonly dir: string;
  readonly vici: string;
  readonly logFile: string;
  readonly conf: string;
  private proc: ChildProcess | undefined;
  private stderr = '';
  private confFile: string;

  constructor(
    readonly side: Side,
    baseDir: string,
    readonly options: CharonOptions = {},
  ) {
    this.dir = join(baseDir, `charon-${side.dev}`);
    mkdirSync(this.dir, { recursive: true });
    this.vici = join(this.dir, 'charon.vici');
    this.logFile = join(this.dir, 'charon.log');
    this.conf = join(this.dir, 'strongswan.conf');
    this.confFile = join(this.dir, 'swanctl.conf');
    this.writeStrongswanConf();
  }

  private writeStrongswanConf(): void {
    const o = this.options;
    const level = o.logLevel ?? 1;
    const lines = [
      'charon {',
      '  load_modular = no',
      `  load = ${CHARON_PLUGINS.join(' ')}`,
      '  install_routes = no',
      '  install_virtual_ip = no',
      '  port = 500',
      '  port_nat_t = 4500',
      `  cookie_threshold = ${o.cookieThreshold ?? 30}`,
      `  block_threshold = ${o.blockThreshold ?? 5}`,
      `  retransmit_timeout = ${o.retransmitTimeout ?? 1}`,
      `  retransmit_tries = ${o.retransmitTries ?? 3}`,
      `  retransmit_base = ${o.retransmitBase ?? 1.4}`,
      '  retransmit_jitter = 0',
      `  interfaces_use = ${this.side.dev}`,
      o.extra ?? '',
      '  plugins {',
      `    vici { socket = unix://${this.vici} }`,
      '    kernel-libipsec { allow_peer_ts = no }',
      '  }',
      '  filelog {',
      '    log {',
      `      path = ${this.logFile}`,
      '      append = yes',
      '      flush_line = yes',
      '      time_format = %H:%M:%S',
      '      time_add_ms = yes',
      `      default = ${level < 0 ? -1 : 0}`,
      `      ike = ${level}`,
      `      enc = ${level}`,
      `      net = ${level}`,
      `      cfg = ${level}`,
      `      chd = ${level}`,
      `      knl = ${level}`,
      `      dmn = ${Math.max(level, 0)}`,
      `      lib = ${Math.max(level, 0)}`,
      '    }',
      '  }',
      '}',
      'swanctl {',
      `  socket = unix://${this.vici}`,
      '}',
      '',
    ];
    writeFileSync(this.conf, lines.join('\n'));
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, STRONGSWAN_CONF: this.conf };
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Start charon and wait until vici answers. */
  async start(): Promise<void> {
    if (this.running) throw new Error('charon already running');
    rmSync(this.vici, { force: true });
    this.stderr = '';
    const script = `mount -t tmpfs tmpfs /run && exec ${this.options.cpus ? `taskset -c ${this.options.cpus} ` : ''}${CHARON}`;
    const p = spawn(
      'ip',
      ['netns', 'exec', this.side.ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script],
      {
        env: this.env,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    p.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8000);
    });
    this.proc = p;
    await waitFor(
      () => `charon to answer on ${this.vici} (stderr: ${this.stderr})`,
      async () => {
        if (!this.running) throw new Error(`charon exited (${p.exitCode ?? p.signalCode}): ${this.stderr}`);
        return existsSync(this.vici) && (await this.swanctl(['--stats'])).code === 0;
      },
      15_000,
      50,
    );
  }

  /** Graceful stop (charon deletes its SAs, sending DELETEs). */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    p.kill('SIGTERM');
    if (!(await waitExit(p, 5000))) {
      p.kill('SIGKILL');
      await waitExit(p, 5000);
    }
  }

  /** SIGKILL: charon vanishes without a word, like a crashed or rebooted peer. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    p.kill('SIGKILL');
    await waitExit(p, 5000);
  }

  async swanctl(args: string[], timeoutMs = 30_000): Promise<ExecResult> {
    return exec(SWANCTL, [...args, '--uri', `unix://${this.vici}`], this.env, timeoutMs);
  }

  private async must(args: string[], timeoutMs?: number): Promise<ExecResult> {
    const r = await this.swanctl(args, timeoutMs);
    if (r.code !== 0) throw new Error(`swanctl ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
    return r;
  }

  /** Write swanctl.conf and `swanctl --load-all` it (connections and secrets not in it are unloaded). */
  async load(conns: SwConnection[]): Promise<void> {
    // swanctl loads private keys from private/ next to the swanctl.conf it is given (secrets only hold passphrases)
    const keys = join(this.dir, 'private');
    rmSync(keys, { recursive: true, force: true });
    for (const c of conns) {
      if (!c.cert) continue;
      mkdirSync(keys, { recursive: true });
      writeFileSync(join(keys, `${c.name}.pem`), readFileSync(c.cert.keyFile));
    }
    writeFileSync(this.confFile, swanctlConf(conns));
    await this.must(['--load-all', '--noprompt', '--file', this.confFile]);
  }

  async listSas(): Promise<SwIkeSa[]> {
    const r = await this.must(['--list-sas', '--raw']);
    return parseListSas(r.stdout);
  }

  /** `swanctl --initiate`; resolves with the result (code 0 = established) and how long swanctl took. */
  async initiate(args: { child?: string; ike?: string; timeoutS?: number }): Promise<ExecResult> {
    const a = ['--initiate', '--timeout', String(args.timeoutS ?? 10)];
    if (args.child) a.push('--child', args.child);
    if (args.ike) a.push('--ike', args.ike);
    return this.swanctl(a, (args.timeoutS ?? 10) * 1000 + 5000);
  }

  async terminate(args: {
    ike?: string;
    child?: string;
    ikeId?: string;
    childId?: string;
    force?: boolean;
  }): Promise<ExecResult> {
    const a = ['--terminate', '--timeout', '5'];
    if (args.ike) a.push('--ike', args.ike);
    if (args.child) a.push('--child', args.child);
    if (args.ikeId) a.push('--ike-id', args.ikeId);
    if (args.childId) a.push('--child-id', args.childId);
    if (args.force) a.push('--force');
    return this.swanctl(a, 15_000);
  }

  /** `swanctl --rekey` of an IKE SA (`ike`) or CHILD SA (`child`), by name or unique id. */
  async rekey(args: {
    ike?: string;
    child?: string;
    ikeId?: string;
    childId?: string;
    reauth?: boolean;
  }): Promise<void> {
    const a = ['--rekey'];
    if (args.ike) a.push('--ike', args.ike);
    if (args.child) a.push('--child', args.child);
    if (args.ikeId) a.push('--ike-id', args.ikeId);
    if (args.childId) a.push('--child-id', args.childId);
    if (args.reauth) a.push('--reauth');
    await this.must(a);
  }

  /** Terminate every IKE SA without waiting for the peer (between cases). */
  async terminateAll(): Promise<void> {
    for (const sa of await this.listSas()) await this.terminate({ ikeId: sa.uniqueid, force: true });
    await waitFor('charon to drop every IKE SA', async () => (await this.listSas()).length === 0, 10_000);
  }

  async stats(): Promise<string> {
    return (await this.must(['--stats'])).stdout;
  }

  /** The whole log so far. */
  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** Current end of the log, for `since`. */
  mark(): number {
    return this.log().length;
  }

  /** Log lines after a mark, with their time. */
  lines(since = 0): LogLine[] {
    const out: LogLine[] = [];
    for (const text of this.log().slice(since).split('\n')) {
      const m = /^(\d\d):(\d\d):(\d\d)\.(\d\d\d) /.exec(text);
      if (!m) continue;
      out.push({ t: ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4]), text });
    }
    return out;
  }

  async waitLog(re: RegExp, since: number, timeoutMs = 10_000): Promise<LogLine> {
    return waitFor(
      () => `charon log ${re}`,
      () => this.lines(since).find((l) => re.test(l.text)),
      timeoutMs,
    );
  }

  /** VmRSS of the charon process in bytes. */
  rss(): number {
    const pid = this.charonPid();
    return rssOf(pid);
  }

  /** The pid of charon itself (the spawned `ip` execs `unshare`, which forks `sh`, which execs charon). */
  charonPid(): number {
    const pids = run('ip', ['netns', 'pids', this.side.ns]).split('\n').filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'charon') return pid;
      } catch {
        // raced with exit
      }
    }
    throw new Error(`no charon process in ${this.side.ns}`);
  }
}

export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/**
 * Handshake duration as charon saw it: from charon's first IKE_SA_INIT line (request sent or received) to its
 * `CHILD_SA ... established` line, for the first such pair after `since`.
 */
export function handshakeMs(lines: LogLine[]): number | undefined {
  const start = lines.find((l) => /(generating|parsed) IKE_SA_INIT request/.test(l.text));
  if (!start) return undefined;
  const end = lines.find((l) => l.t >= start.t && /CHILD_SA \S+ established with SPIs/.test(l.text));
  if (!end) return undefined;
  let d = end.t - start.t;
  if (d < 0) d += 86_400_000;
  return d;
}

// ---- our agent -----------------------------------------------------------------------------------------------

export interface AgentTunnel {
  name: string;
  namespace?: string;
  localAddress: string;
  localSubnets: string[];
  localId?: string;
  remoteAddress: string;
  remoteSubnets: string[];
  remoteId?: string;
  psk: string;
  /** Certificate authentication instead of the PSK: PEM of our certificate (chain), key and the CA(s). */
  certificate?: { certPem: string; keyPem: string; caPem: string };
  ikeProposals: string[];
  espProposals: string[];
  ikeLifetime?: string;
  espLifetime?: string;
  dpdInterval?: string;
  dpdAction?: 'clear' | 'restart' | 'hold';
  startAction?: 'start' | 'trap' | 'none';
  /** Raw spec overrides merged last. */
  extra?: Record<string, unknown>;
}

export interface AgentOptions {
  nodeName?: string;
  addresses: string[];
  retransmit?: { timeout: string; base: number; tries: number };
  cookieThreshold?: number;
  initRateLimit?: number;
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** Pin the agent to these CPUs (taskset list). */
  cpus?: string;
  /** AgentSettings.ikeFragmentSize. */
  ikeFragmentSize?: number;
}

export interface AgentStatusJson {
  tunnels: {
    name: string;
    namespace: string;
    ikeSA: {
      state: string;
      spiI: string;
      spiR: string;
      initiator?: boolean;
      algorithms: string;
      natDetected: boolean;
      establishedAt?: string;
      rekeyAt?: string;
      lastError?: { code: string; message: string };
    };
    childSAs: {
      name: string;
      state: string;
      spiIn: string;
      spiOut: string;
      algorithms: string;
      localTs: string[];
      remoteTs: string[];
      mode: string;
      installedAt?: string;
      rekeyAt?: string;
    }[];
    configError?: { reason: string; message: string };
  }[];
  configProblems?: unknown[];
}

const tsxLoader = (): string => {
  const req = createRequire(import.meta.url);
  return `file://${join(dirname(req.resolve('tsx/package.json')), 'dist/loader.mjs')}`;
};

export interface AgentLog {
  /** Wall-clock ms (pino's `time`). */
  time: number;
  level: number;
  event?: string;
  tunnel?: string;
  msg?: string;
  [k: string]: unknown;
}

/** Our agent (`ipsec-mesh agent --dataplane none`) in a namespace, configured from a directory of YAML files. */
export class Agent {
  readonly configDir: string;
  readonly stateDir: string;
  readonly logs: AgentLog[] = [];
  /** Non-JSON output (stderr, stack traces). */
  raw = '';
  private proc: ChildProcess | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly side: Side,
    baseDir: string,
    readonly options: AgentOptions,
  ) {
    this.configDir = join(baseDir, 'agent', 'config');
    this.stateDir = join(baseDir, 'agent', 'state');
    mkdirSync(this.configDir, { recursive: true });
    mkdirSync(this.stateDir, { recursive: true });
    this.writeSettings();
  }

  writeSettings(): void {
    const o = this.options;
    const settings: Record<string, unknown> = {
      apiVersion: 'ipsecmesh.io/v1alpha1',
      kind: 'AgentSettings',
      nodeName: o.nodeName ?? 'interop',
      addresses: o.addresses,
      ikePort: 500,
      nattPort: 4500,
      stateDir: this.stateDir,
      logLevel: o.logLevel ?? 'debug',
    };
    if (o.retransmit) settings.retransmit = o.retransmit;
    if (o.cookieThreshold !== undefined) settings.cookieThreshold = o.cookieThreshold;
    if (o.initRateLimit !== undefined) settings.initRateLimit = o.initRateLimit;
    if (o.ikeFragmentSize !== undefined) settings.ikeFragmentSize = o.ikeFragmentSize;
    writeFileSync(join(this.configDir, 'agent.yaml'), toYaml(settings));
  }

  /** Replace every tunnel (and its Secret) in the config directory. */
  setTunnels(tunnels: AgentTunnel[]): void {
    for (const f of readdirSync(this.configDir)) if (f !== 'agent.yaml') rmSync(join(this.configDir, f));
    for (const t of tunnels) writeFileSync(join(this.configDir, `${t.name}.yaml`), tunnelYaml(t));
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Start and wait until the status socket answers. */
  async start(): Promise<void> {
    if (this.running) throw new Error('agent already running');
    this.logs.length = 0;
    this.raw = '';
    const args = [
      process.execPath,
      '--import',
      tsxLoader(),
      join(REPO, 'src/cli/main.ts'),
      'agent',
      '--config-dir',
      this.configDir,
      '--dataplane',
      'none',
    ];
    const cmd = this.options.cpus ? ['taskset', '-c', this.options.cpus, ...args] : args;
    const p = spawn('ip', ['netns', 'exec', this.side.ns, ...cmd], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = p;
    let buf = '';
    p.stdout?.setEncoding('utf8');
    p.stdout?.on('data', (d: string) => {
      buf += d;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.logs.push(JSON.parse(line) as AgentLog);
        } catch {
          this.raw += `${line}\n`;
        }
        nl = buf.indexOf('\n');
      }
      for (const w of this.waiters) w();
    });
    p.stderr?.setEncoding('utf8');
    p.stderr?.on('data', (d: string) => {
      this.raw = (this.raw + d).slice(-20_000);
    });
    await waitFor(
      () => `the agent's status socket (output: ${this.raw.slice(-2000)})`,
      async () => {
        if (!this.running) throw new Error(`agent exited (${p.exitCode ?? p.signalCode}): ${this.raw.slice(-4000)}`);
        return existsSync(join(this.stateDir, 'agent.sock'));
      },
      30_000,
      50,
    );
  }

  /** SIGTERM and wait; SIGKILL after 5 s. Returns whether it stopped cleanly. */
  async stop(): Promise<boolean> {
    const p = this.proc;
    if (!p || !this.running) return true;
    p.kill('SIGTERM');
    if (await waitExit(p, 5000)) return true;
    p.kill('SIGKILL');
    await waitExit(p, 5000);
    return false;
  }

  exitCode(): number | null | undefined {
    return this.proc?.exitCode;
  }

  /** `ipsec-mesh status --state-dir DIR --json`. */
  async status(): Promise<AgentStatusJson> {
    const r = await exec(
      process.execPath,
      ['--import', tsxLoader(), join(REPO, 'src/cli/main.ts'), 'status', '--state-dir', this.stateDir, '--json'],
      process.env,
      20_000,
    );
    if (r.code !== 0) throw new Error(`ipsec-mesh status failed (${r.code}): ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout) as AgentStatusJson;
  }

  tunnel(s: AgentStatusJson, name: string): AgentStatusJson['tunnels'][number] | undefined {
    return s.tunnels.find((t) => t.name === name);
  }

  /** Wait for a log record matching `pred` (at index >= from). */
  async waitLog(
    pred: (l: AgentLog) => boolean,
    from = 0,
    timeoutMs = 10_000,
    what = 'agent log record',
  ): Promise<AgentLog> {
    const find = () => this.logs.slice(from).find(pred);
    const hit = find();
    if (hit) return hit;
    return new Promise((resolve, reject) => {
      const check = () => {
        const h = find();
        if (h) {
          done();
          resolve(h);
        } else if (!this.running) {
          done();
          reject(new Error(`agent exited while waiting for ${what}: ${this.raw.slice(-3000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last records:\n${this.tail()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      this.proc?.once('exit', check);
    });
  }

  /** The last log records, compact, for failure messages. */
  tail(n = 25): string {
    return this.logs
      .slice(-n)
      .map((l) => {
        const { time, level, pid, hostname, ...rest } = l;
        void pid;
        void hostname;
        return `${new Date(time).toISOString().slice(11, 23)} ${level} ${JSON.stringify(rest)}`;
      })
      .join('\n');
  }

  rss(): number {
    // `ip netns exec` execs the command: the spawned pid is node itself (or taskset, which execs node).
    return rssOf(this.proc?.pid ?? -1);
  }
}

/** The IPsecTunnel and its PSK (or kubernetes.io/tls) Secret, as a two-document YAML file. */
export function tunnelYaml(t: AgentTunnel): string {
  const namespace = t.namespace ?? 'default';
  const b64 = (v: string) => Buffer.from(v, 'utf8').toString('base64');
  const secret = t.certificate
    ? {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `${t.name}-tls`, namespace },
        type: 'kubernetes.io/tls',
        data: {
          'tls.crt': b64(t.certificate.certPem),
          'tls.key': b64(t.certificate.keyPem),
          'ca.crt': b64(t.certificate.caPem),
        },
      }
    : {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `${t.name}-psk`, namespace },
        type: 'Opaque',
        data: { psk: b64(t.psk) },
      };
  const spec: Record<string, unknown> = {
    local: { address: t.localAddress, subnets: t.localSubnets, ...(t.localId ? { id: t.localId } : {}) },
    remote: { address: t.remoteAddress, subnets: t.remoteSubnets, ...(t.remoteId ? { id: t.remoteId } : {}) },
    auth: t.certificate
      ? { certificate: { secretRef: { name: `${t.name}-tls` } } }
      : { psk: { secretRef: { name: `${t.name}-psk`, key: 'psk' } } },
    ike: {
      proposals: t.ikeProposals,
      lifetime: t.ikeLifetime ?? '4h',
      dpd: { interval: t.dpdInterval ?? '0s', action: t.dpdAction ?? 'restart' },
    },
    esp: { proposals: t.espProposals, lifetime: t.espLifetime ?? '1h' },
    startAction: t.startAction ?? 'start',
    ...(t.extra ?? {}),
  };
  const tunnel = {
    apiVersion: 'ipsecmesh.io/v1alpha1',
    kind: 'IPsecTunnel',
    metadata: { name: t.name, namespace },
    spec,
  };
  return `${toYaml(secret)}---\n${toYaml(tunnel)}`;
}

// ---- load generator (test/bench/_ike-load.ts) ----------------------------------------------------------------

export interface LoadHandle {
  /** Resolves with each JSON line's object of the given type. */
  next(type: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  pid: number | undefined;
  /** End the generator (its IKE SAs vanish without DELETE). */
  stop(): Promise<void>;
  output(): string;
}

/** Start our engine-based IKE load generator inside a namespace (options: see test/bench/_ike-load.ts). */
export function startLoad(side: Side, options: Record<string, unknown>, cpus?: string): LoadHandle {
  const args = [
    process.execPath,
    '--import',
    tsxLoader(),
    join(REPO, 'test/bench/_ike-load.ts'),
    JSON.stringify(options),
  ];
  const p = spawn('ip', ['netns', 'exec', side.ns, ...(cpus ? ['taskset', '-c', cpus] : []), ...args], {
    cwd: REPO,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const records: Record<string, unknown>[] = [];
  let out = '';
  let buf = '';
  const waiters = new Set<() => void>();
  p.stdout?.setEncoding('utf8');
  p.stdout?.on('data', (d: string) => {
    buf += d;
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        records.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        out += `${line}\n`;
      }
      nl = buf.indexOf('\n');
    }
    for (const w of waiters) w();
  });
  p.stderr?.setEncoding('utf8');
  p.stderr?.on('data', (d: string) => {
    out = (out + d).slice(-20_000);
  });
  p.on('exit', () => {
    for (const w of waiters) w();
  });
  return {
    pid: p.pid,
    output: () => out,
    next(type, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const r = records.find((x) => x.type === type);
          if (r) {
            cleanup();
            resolve(r);
          } else if (p.exitCode !== null || p.signalCode !== null) {
            cleanup();
            reject(
              new Error(`load generator exited (${p.exitCode ?? p.signalCode}) before '${type}': ${out.slice(-3000)}`),
            );
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`load generator: no '${type}' within ${timeoutMs} ms: ${out.slice(-3000)}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (p.exitCode !== null || p.signalCode !== null) return;
      p.stdin?.end();
      p.kill('SIGTERM');
      if (!(await waitExit(p, 5000))) {
        p.kill('SIGKILL');
        await waitExit(p, 5000);
      }
    },
  };
}
