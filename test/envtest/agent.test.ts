/**
 * The real agent in Kubernetes mode against a real kube-apiserver, with the operator: an IPsecTunnel goes in, the
 * operator elects the gateway node and writes its IPsecNodeConfig and node Secret, the agent (with the chart's
 * agent ServiceAccount, a pod-bound token) takes its desired state from there, negotiates with a peer over real UDP,
 * renews its heartbeat Lease and reports SA state, and the operator turns that into the tunnel's status.
 *
 * The API server listens on loopback in the root namespace, so both agents run there too (`--dataplane none`), on
 * 127.0.0.1 with distinct ports: the IKE traffic stays on loopback.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentDir, pskSecret, tunnel } from '../agent/helpers.js';
import { Cluster, eventually, GROUP_PATH, NS, type OperatorProcess } from './cluster.js';

const REPO = resolve(import.meta.dirname, '../..');
const PSK = 'a key for the kubernetes-mode agent test';
const USER_NS = 'site-a';

type Obj = { metadata: { name: string }; spec?: Record<string, unknown>; status?: Record<string, any> };

let cluster: Cluster;
let operator: OperatorProcess;
const children: ChildProcess[] = [];
const logs: Record<string, string[]> = { agent: [], peer: [] };

function run(name: 'agent' | 'peer', args: string[]): ChildProcess {
  const c = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'agent', ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  c.stdout?.setEncoding('utf8').on('data', (d: string) => logs[name]!.push(d));
  c.stderr?.setEncoding('utf8').on('data', (d: string) => logs[name]!.push(d));
  children.push(c);
  return c;
}

const get = async (path: string): Promise<Obj | undefined> => {
  const r = await cluster.cp.request('GET', path);
  return r.status === 200 ? r.json<Obj>() : undefined;
};

beforeAll(async () => {
  cluster = await Cluster.start();
  await cluster.addNode('gw-1', { 'ipsecmesh.io/gateway': 'true' }, '127.0.0.1');
  const post = async (path: string, body: unknown) => {
    const r = await cluster.cp.request('POST', path, body);
    if (r.status !== 201) throw new Error(`POST ${path}: ${r.status} ${r.body}`);
  };
  await post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: USER_NS } });
  await post(`/api/v1/namespaces/${USER_NS}/secrets`, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'psk-a-b' },
    stringData: { psk: PSK },
  });
  operator = await cluster.startOperator(['--heartbeat-timeout', '5s', '--resync', '1m']);
  // The agent of gw-1, with a token bound to a pod on gw-1 (as the kubelet issues it).
  const token = (await cluster.agent('gw-1')).token;
  const kubeconfig = cluster.cp.writeKubeconfig('agent-gw-1', token);
  const stateDir = mkdtempSync(join(tmpdir(), 'ipsec-mesh-kagent-'));
  run('agent', [
    '--kubernetes',
    '--node-name',
    'gw-1',
    '--address',
    '127.0.0.1',
    '--secret-namespace',
    NS,
    '--kubeconfig',
    kubeconfig,
    '--dataplane',
    'none',
    '--heartbeat',
    '1s',
    '--state-dir',
    stateDir,
  ]);
  // The remote site: a standalone agent on 127.0.0.1:2500 that waits for us.
  const peer = agentDir('site-b', { addresses: ['127.0.0.1'], ikePort: 2500, nattPort: 4501 });
  const t = tunnel('to-a', {
    localAddress: '127.0.0.1',
    remoteAddress: '127.0.0.1',
    localSubnets: ['198.18.2.0/24'],
    remoteSubnets: ['198.18.1.0/24'],
    localId: 'site-b.example',
    remoteId: 'site-a.example',
    startAction: 'none',
  }) as { spec: { remote: Record<string, unknown> } };
  t.spec.remote.port = 500;
  peer.write('t.yaml', [t, pskSecret('to-a-psk', PSK)]);
  run('peer', ['--config-dir', peer.dir, '--dataplane', 'none']);
}, 300_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await cluster?.stop();
});

describe('agent in Kubernetes mode with the operator on a real kube-apiserver', () => {
  it('an applied IPsecTunnel becomes Ready with the SPIs the agent negotiated', async () => {
    const r = await cluster.cp.request('POST', `${GROUP_PATH}/namespaces/${USER_NS}/ipsectunnels`, {
      apiVersion: 'ipsecmesh.io/v1alpha1',
      kind: 'IPsecTunnel',
      metadata: { name: 'to-b' },
      spec: {
        local: { subnets: ['198.18.1.0/24'], id: 'site-a.example' },
        remote: { address: '127.0.0.1', port: 2500, subnets: ['198.18.2.0/24'], id: 'site-b.example' },
        auth: { psk: { secretRef: { name: 'psk-a-b' } } },
        ike: { proposals: ['aes128gcm16-prfsha256-x25519'] },
        esp: { proposals: ['aes128gcm16'] },
      },
    });
    expect(r.status).toBe(201);
    const path = `${GROUP_PATH}/namespaces/${USER_NS}/ipsectunnels/to-b`;
    let last: Obj | undefined;
    const ready = await eventually(
      async () => {
        const t = await get(path);
        last = t;
        const c = (t?.status?.conditions as { type: string; status: string }[] | undefined)?.find(
          (x) => x.type === 'Ready',
        );
        return c?.status === 'True' ? t : undefined;
      },
      'tunnel Ready',
      60_000,
    ).catch((e: Error) => {
      throw new Error(
        `${e.message}\ntunnel: ${JSON.stringify(last?.status)}\nagent: ${logs.agent!.join('').slice(-4000)}\noperator: ${operator.log.join('').slice(-3000)}\npeer: ${logs.peer!.join('').slice(-2000)}`,
      );
    });
    expect(ready.status?.gateway).toBe('gw-1');
    expect(ready.status?.ikeSA?.state).toBe('Established');
    expect(ready.status?.ikeSA?.spis?.initiator).toMatch(/^[0-9a-f]{16}$/);
    const child = ready.status?.childSAs?.[0];
    expect(child?.spis?.in).toMatch(/^[0-9a-f]{8}$/);
    // The key never reaches a status.
    expect(JSON.stringify(ready)).not.toContain(PSK);
    // The heartbeat Lease is the agent's own.
    const lease = await get(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/ipsec-mesh-agent-gw-1`);
    expect((lease?.spec as { holderIdentity?: string } | undefined)?.holderIdentity).toBe('gw-1');
    // kubectl shows it.
    const table = cluster.cp.kubectl(['get', 'ipsectunnels', '-n', USER_NS]);
    expect(table).toMatch(/to-b\s+True\s+gw-1/);
    expect(logs.agent!.join('')).not.toContain(PSK);
  }, 90_000);

  it('deleting the tunnel removes it from the agent and the peer sees the IKE SA go', async () => {
    const r = await cluster.cp.request('DELETE', `${GROUP_PATH}/namespaces/${USER_NS}/ipsectunnels/to-b`);
    expect([200, 202]).toContain(r.status);
    await eventually(
      async () => !(await get(`${GROUP_PATH}/namespaces/${USER_NS}/ipsectunnels/to-b`)),
      'tunnel deleted',
      60_000,
    );
    await eventually(
      () => logs.peer!.join('').includes('"event":"ike-deleted"') || undefined,
      'peer saw the delete',
      30_000,
    );
  }, 90_000);
});
