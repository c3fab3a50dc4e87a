/**
 * `ipsec-mesh diagnose`: gathers the facts for one tunnel (the agent's status socket, the config directory, UDP
 * probes, /proc/crypto, the route to the peer) and prints the report of src/cli/diagnose-report.ts.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { loadConfigDir } from '../agent/config-dir.js';
import { readStatus } from '../agent/status.js';
import type { NodeTunnel } from '../api/nodeconfig.js';
import { encodeMessage } from '../ike/codec/message.js';
import { ExchangeType, HeaderFlag, KeId, PayloadType, TransformType } from '../ike/constants.js';
import { parseProposals } from '../ike/crypto/proposals.js';
import {
  buildReport,
  type DiagnoseInputs,
  formatReport,
  type ProbeResult,
  type SideConfig,
} from './diagnose-report.js';

const USAGE = `usage: ipsec-mesh diagnose [--tunnel NS/NAME] [--state-dir DIR] [--config-dir DIR]
                          [--peer-config-dir DIR] [--no-probe] [--probe-timeout MS] [--json]      (on the gateway)
       ipsec-mesh diagnose --kubeconfig FILE [--context NAME] --tunnel NS/NAME [--namespace NS]
                          [--peer-kubeconfig FILE] [--peer-context NAME] [--peer-tunnel NS/NAME]
                          [--probe] [--probe-timeout MS] [--json]                               (Kubernetes)

On the gateway it checks one tunnel of the agent: live SA state (status socket), UDP 500/4500 reachability (an
IKE_SA_INIT-shaped probe from an ephemeral port; any answer counts), whether ESP passes (CHILD SA counters, the
agent's espBlocked flag), the path MTU towards the peer, kernel support for the configured ESP algorithms
(/proc/crypto, esp4/esp6), certificate validity against the local clock, and, with --peer-config-dir, whether both
sides' configurations agree (proposals intersect, subnets mirror, identities and addresses match, PSK digests equal;
the key is never printed). Run it on the gateway (in its network namespace).

In Kubernetes mode (--kubeconfig) it reads the IPsecTunnel, the gateway's IPsecNodeConfig (rendered entry and the
agent's SA state), the PSK or certificate Secret (a digest or the validity only), the agent's heartbeat Lease in the
operator namespace (--namespace, default ipsec-mesh-system) and the API server's clock, and adds the checks
"tunnel resource", "agent heartbeat", "agent applied", "proof of encryption", "live SAs of both sides" and, for
an IPsecMesh seen in two clusters, "same IPsecMesh in both clusters".
The peer side: with --peer-kubeconfig the peer's IPsecTunnel in that cluster (--peer-tunnel, else the tunnel of the
same IPsecMesh for our site, else the one whose addresses point back at us), its live SPIs, and for a mesh both
clusters' IPsecMesh specs; without it, for a mesh tunnel, the side the peer's operator renders from this cluster's
IPsecMesh, else a tunnel of this cluster pointing back at us. Kernel support is n/a (run diagnose on the gateway)
unless the agent reports a kernel rejection; UDP probes run only with --probe and go from this machine.
Exit status: 0 all ok, 1 a warning, 2 usage, 3 a failed check.
`;

class DiagnoseUsageError extends Error {
  readonly code = 'ERR_DIAGNOSE_USAGE';
}

interface Args {
  tunnel?: string;
  kubeconfig?: string;
  context?: string;
  peerKubeconfig?: string;
  peerContext?: string;
  peerTunnel?: string;
  namespace: string;
  /** Kubernetes mode probes only when asked (--probe). */
  probeAsked?: boolean;
  stateDir: string;
  configDir?: string;
  peerConfigDir?: string;
  probe: boolean;
  probeTimeoutMs: number;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    stateDir: '/run/ipsec-mesh',
    probe: true,
    probeTimeoutMs: 2000,
    json: false,
    namespace: 'ipsec-mesh-system',
  };
  let standalone = false;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new DiagnoseUsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === '--tunnel') a.tunnel = value();
    else if (flag === '--state-dir') [a.stateDir, standalone] = [value(), true];
    else if (flag === '--config-dir') [a.configDir, standalone] = [value(), true];
    else if (flag === '--peer-config-dir') [a.peerConfigDir, standalone] = [value(), true];
    else if (flag === '--kubeconfig') a.kubeconfig = value();
    else if (flag === '--context') a.context = value();
    else if (flag === '--peer-kubeconfig') a.peerKubeconfig = value();
    else if (flag === '--peer-context') a.peerContext = value();
    else if (flag === '--peer-tunnel') a.peerTunnel = value();
    else if (flag === '--namespace') a.namespace = value();
    else if (flag === '--probe-timeout') {
      a.probeTimeoutMs = Number(value());
      if (!Number.isInteger(a.probeTimeoutMs) || a.probeTimeoutMs < 1)
        throw new DiagnoseUsageError('--probe-timeout must be a positive number of milliseconds');
    } else if (flag === '--probe') a.probeAsked = true;
    else if (flag === '--no-probe') a.probe = false;
    else if (flag === '--json') a.json = true;
    else throw new DiagnoseUsageError(`unknown flag '${flag}'`);
  }
  const kubeOnly = [a.context, a.peerKubeconfig, a.peerContext, a.peerTunnel].some((v) => v !== undefined);
  if (a.kubeconfig === undefined && kubeOnly)
    throw new DiagnoseUsageError('--context/--peer-kubeconfig/--peer-context/--peer-tunnel need --kubeconfig');
  if (a.kubeconfig !== undefined && standalone)
    throw new DiagnoseUsageError(
      '--kubeconfig (Kubernetes mode) does not go with --state-dir/--config-dir/--peer-config-dir',
    );
  if (a.kubeconfig !== undefined && a.tunnel === undefined)
    throw new DiagnoseUsageError('Kubernetes mode needs --tunnel NAMESPACE/NAME');
  if ((a.peerContext !== undefined || a.peerTunnel !== undefined) && a.peerKubeconfig === undefined)
    throw new DiagnoseUsageError('--peer-context/--peer-tunnel need --peer-kubeconfig');
  return a;
}

export const digest = (psk: Uint8Array) =>
  createHash('sha256').update('ipsec-mesh diagnose psk\0').update(psk).digest('hex').slice(0, 32);

/** One side's configuration of a tunnel from a config directory (the tunnel by name, or the only one). */
export function sideConfig(dir: string, wanted: string | undefined, byAddress?: string): SideConfig | undefined {
  const state = loadConfigDir(dir);
  const key = (t: NodeTunnel) => `${t.namespace}/${t.name}`;
  const t =
    state.tunnels.find((x) => wanted !== undefined && (key(x) === wanted || x.name === wanted)) ??
    (byAddress ? state.tunnels.find((x) => x.remote.address === byAddress) : undefined) ??
    (state.tunnels.length === 1 ? state.tunnels[0] : undefined);
  if (!t) return undefined;
  const out: SideConfig = {
    key: key(t),
    localAddress: t.local.address,
    remoteAddress: t.remote.address,
    localSubnets: t.local.subnets,
    remoteSubnets: t.remote.subnets,
    ikeProposals: t.ike.proposals,
    espProposals: t.esp.proposals,
    auth: t.auth.certificate ? 'certificate' : 'psk',
  };
  out.localId = t.local.id ?? t.local.address;
  out.remoteId = t.remote.id ?? t.remote.address;
  const psk = t.auth.psk ? state.secrets.get(t.auth.psk.key) : undefined;
  if (psk) out.pskDigest = digest(psk);
  const cert = t.auth.certificate ? state.secrets.get(t.auth.certificate.certKey) : undefined;
  if (cert) {
    try {
      const x = new X509Certificate(Buffer.from(cert));
      out.certValidity = {
        notBefore: new Date(x.validFrom).toISOString(),
        notAfter: new Date(x.validTo).toISOString(),
        subject: x.subject.replace(/\n/g, ', '),
      };
    } catch {
      // an unreadable certificate is the agent's configError to report
    }
  }
  return out;
}

const KE_LENGTH: Partial<Record<number, number>> = {
  [KeId.MODP_2048]: 256,
  [KeId.MODP_3072]: 384,
  [KeId.MODP_4096]: 512,
  [KeId.ECP_256]: 64,
  [KeId.ECP_384]: 96,
  [KeId.ECP_521]: 132,
  [KeId.CURVE25519]: 32,
  [KeId.CURVE448]: 56,
};

/** An IKE_SA_INIT request with our first IKE proposal and a throw-away KE value (no state is kept for it). */
export function probeMessage(ikeProposals: string[]): Uint8Array {
  const proposals = parseProposals(ikeProposals.length ? ikeProposals : ['default'], 'ike').proposals;
  const group = proposals[0]?.transforms.find((t) => t.type === TransformType.KE)?.id ?? KeId.CURVE25519;
  return encodeMessage({
    initiatorSpi: randomBytes(8),
    responderSpi: new Uint8Array(8),
    exchangeType: ExchangeType.IKE_SA_INIT,
    flags: HeaderFlag.INITIATOR,
    messageId: 0,
    payloads: [
      { type: PayloadType.SA, proposals: proposals.map((p, i) => ({ ...p, num: i + 1, spi: new Uint8Array(0) })) },
      { type: PayloadType.KE, group, data: randomBytes(KE_LENGTH[group] ?? 32) },
      { type: PayloadType.NONCE, data: randomBytes(32) },
    ],
  });
}

export function probe(address: string, port: number, message: Uint8Array, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const sock = createSocket(isIPv6(address) ? 'udp6' : 'udp4');
    const done = (r: ProbeResult) => {
      clearTimeout(timer);
      sock.close();
      resolve(r);
    };
    const timer = setTimeout(() => done({ answered: false, why: `nothing within ${timeoutMs} ms` }), timeoutMs);
    sock.on('message', (m) => done({ answered: true, what: `${m.length} bytes` }));
    sock.on('error', (e) => done({ answered: false, why: e.message }));
    // On 4500 IKE travels behind the 4-byte non-ESP marker (RFC 3948).
    const bytes = port === 4500 ? Buffer.concat([Buffer.alloc(4), message]) : Buffer.from(message);
    sock.send(bytes, port, address, (e) => {
      if (e) done({ answered: false, why: e.message });
    });
  });
}

function kernelFacts(): DiagnoseInputs['kernel'] {
  const crypto = new Set<string>();
  try {
    for (const m of readFileSync('/proc/crypto', 'utf8').matchAll(/^name\s*:\s*(.+)$/gm)) crypto.add(m[1]!.trim());
  } catch {
    return undefined;
  }
  let esp: 'loaded' | 'loadable' | 'missing' = 'missing';
  if (existsSync('/sys/module/esp4') || existsSync('/sys/module/esp6')) esp = 'loaded';
  else {
    try {
      const rel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
      const list = ['modules.builtin', 'modules.dep']
        .map((f) => `/lib/modules/${rel}/${f}`)
        .filter(existsSync)
        .map((f) => readFileSync(f, 'utf8'))
        .join('\n');
      if (/\/esp4\.ko/.test(list)) esp = 'loadable';
    } catch {
      // no module tree: leave 'missing'
    }
  }
  return { crypto, esp };
}

function routeFacts(address: string): DiagnoseInputs['route'] {
  try {
    const out = execFileSync('ip', ['-j', '-d', 'route', 'get', address], { encoding: 'utf8', timeout: 5000 });
    const r = (JSON.parse(out) as { dev?: string; metrics?: { mtu?: number }[] }[])[0];
    if (!r?.dev) return { error: 'no device in `ip route get`' };
    const mtu = Number(readFileSync(`/sys/class/net/${r.dev}/mtu`, 'utf8').trim());
    const routeMtu = r.metrics?.find((m) => m.mtu !== undefined)?.mtu;
    return routeMtu !== undefined ? { dev: r.dev, mtu, routeMtu } : { dev: r.dev, mtu };
  } catch (e) {
    return { error: e instanceof Error ? e.message.split('\n')[0]! : String(e) };
  }
}

export async function gather(a: Args, now = new Date()): Promise<DiagnoseInputs> {
  const inputs: DiagnoseInputs = { tunnel: a.tunnel ?? '', now };
  if (a.configDir) {
    const c = sideConfig(a.configDir, a.tunnel);
    if (c) inputs.config = c;
  }
  try {
    const s = await readStatus(a.stateDir);
    inputs.dataplane = s.dataplane;
    const want = a.tunnel ?? inputs.config?.key;
    const t = want
      ? s.tunnels.find((x) => `${x.namespace}/${x.name}` === want || x.name === want)
      : s.tunnels.length === 1
        ? s.tunnels[0]
        : undefined;
    if (t) inputs.live = t;
    else inputs.liveError = `the agent reports no tunnel ${want ?? '(give --tunnel NS/NAME)'}`;
  } catch (e) {
    inputs.liveError = e instanceof Error ? e.message : String(e);
  }
  inputs.tunnel =
    a.tunnel ?? inputs.config?.key ?? (inputs.live ? `${inputs.live.namespace}/${inputs.live.name}` : '?');
  if (a.peerConfigDir) {
    const p = sideConfig(a.peerConfigDir, undefined, inputs.config?.localAddress);
    if (p) inputs.peer = p;
  }
  const remote = inputs.config?.remoteAddress ?? inputs.live?.remote.replace(/\[|\]|:\d+$/g, '');
  if (remote) {
    inputs.route = routeFacts(remote);
    if (a.probe) {
      const msg = probeMessage(inputs.config?.ikeProposals ?? []);
      const [p500, p4500] = await Promise.all([
        probe(remote, 500, msg, a.probeTimeoutMs),
        probe(remote, 4500, msg, a.probeTimeoutMs),
      ]);
      inputs.probes = { port500: p500, port4500: p4500 };
    }
  }
  const k = kernelFacts();
  if (k) inputs.kernel = k;
  return inputs;
}

async function gatherKubeMode(a: Args): Promise<DiagnoseInputs> {
  const { gatherKube } = await import('./diagnose-kube.js');
  return gatherKube(
    {
      kubeconfig: a.kubeconfig!,
      ...(a.context !== undefined ? { context: a.context } : {}),
      ...(a.tunnel !== undefined ? { tunnel: a.tunnel } : {}),
      ...(a.peerKubeconfig !== undefined ? { peerKubeconfig: a.peerKubeconfig } : {}),
      ...(a.peerContext !== undefined ? { peerContext: a.peerContext } : {}),
      ...(a.peerTunnel !== undefined ? { peerTunnel: a.peerTunnel } : {}),
      namespace: a.namespace,
      probe: a.probeAsked === true && a.probe,
      probeTimeoutMs: a.probeTimeoutMs,
    },
    new Date(),
    {
      digest,
      probe: async (address, port, proposals) => {
        const msg = probeMessage(proposals);
        if (port !== 500) return { port500: await probe(address, port, msg, a.probeTimeoutMs) };
        const [p500, p4500] = await Promise.all([
          probe(address, 500, msg, a.probeTimeoutMs),
          probe(address, 4500, msg, a.probeTimeoutMs),
        ]);
        return { port500: p500, port4500: p4500 };
      },
    },
  );
}

export async function runDiagnose(argv: string[]): Promise<number> {
  let a: Args;
  try {
    a = parseArgs(argv);
  } catch (e) {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(USAGE);
      return 0;
    }
    process.stderr.write(`ipsec-mesh diagnose: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const inputs = a.kubeconfig !== undefined ? await gatherKubeMode(a) : await gather(a);
  const report = buildReport(inputs);
  process.stdout.write(a.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
  return report.overall === 'fail' ? 3 : report.overall === 'warn' ? 1 : 0;
}
