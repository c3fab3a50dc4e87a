/** The Helm chart with the real helm: lint, template with default and non-default values, schema rejections. */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { generateCrds } from '../../src/api/crdgen.js';
import { helm } from './harness.js';

const chart = fileURLToPath(new URL('../../charts/ipsec-mesh', import.meta.url));
type K = { kind: string; metadata: { name: string; namespace?: string }; spec?: any; rules?: any[] };
const render = (...args: string[]): K[] =>
  parseAllDocuments(helm(['template', 'ipsec-mesh', chart, '--namespace', 'ipsec-mesh-system', ...args]))
    .map((d) => d.toJS() as K)
    .filter(Boolean);
const find = (objs: K[], kind: string, name?: string) =>
  objs.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));

describe('helm chart', () => {
  it('passes helm lint --strict with default and non-default values', () => {
    expect(helm(['lint', '--strict', chart])).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(
      helm(['lint', '--strict', chart, '--set', 'site=zurich,metrics.serviceMonitor.enabled=true,agent.enabled=false']),
    ).toContain('0 chart(s) failed');
  });

  it('renders the default release: 2 operator replicas, agent DaemonSet, RBAC, metrics Service, CRDs', () => {
    const objs = render('--include-crds');
    const kinds = objs.map((o) => o.kind).sort();
    expect(kinds).toEqual(
      [
        'ClusterRole',
        'ClusterRole',
        'ClusterRoleBinding',
        'ClusterRoleBinding',
        'CustomResourceDefinition',
        'CustomResourceDefinition',
        'CustomResourceDefinition',
        'DaemonSet',
        'Deployment',
        'Role',
        'Role',
        'Role',
        'RoleBinding',
        'RoleBinding',
        'RoleBinding',
        'Service',
        'ServiceAccount',
        'ServiceAccount',
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicyBinding',
      ].sort(),
    );
    const crds = objs.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata.name);
    expect(crds.sort()).toEqual(
      [...generateCrds().keys()].map((f) => f.replace(/^ipsecmesh.io_(.*)\.yaml$/, '$1.ipsecmesh.io')).sort(),
    );
    const dep = find(objs, 'Deployment')!;
    expect(dep.spec.replicas).toBe(2);
    const pod = dep.spec.template.spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.containers[0].args).toEqual(
      expect.arrayContaining([
        'operator',
        '--namespace=ipsec-mesh-system',
        '--gateway-selector=ipsecmesh.io/gateway=true',
        '--agent-secrets-role=ipsec-mesh-agent-secrets',
        '--lease-name=ipsec-mesh-operator',
      ]),
    );
    const ds = find(objs, 'DaemonSet')!.spec.template.spec;
    expect(ds.hostNetwork).toBe(true);
    expect(ds.containers[0].securityContext.capabilities).toEqual({
      drop: ['ALL'],
      add: ['NET_ADMIN', 'NET_BIND_SERVICE'],
    });
    expect(ds.nodeSelector).toEqual({ 'ipsecmesh.io/gateway': 'true' });
    expect(ds.tolerations).toEqual([{ operator: 'Exists' }]);
    // the agents' Secret Role starts with no rules: the operator fills in resourceNames
    expect(find(objs, 'Role', 'ipsec-mesh-agent-secrets')!.rules).toBeUndefined();
    expect(find(objs, 'ServiceMonitor')).toBeUndefined();
    // no wildcard anywhere in the RBAC
    for (const o of objs.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
      for (const r of o.rules ?? []) {
        expect([...r.verbs, ...r.resources, ...r.apiGroups]).not.toContain('*');
      }
    }
  });

  it('renders non-default values', () => {
    const objs = render(
      '--set',
      'site=zurich,operator.replicas=3,metrics.serviceMonitor.enabled=true,metrics.port=9100,image.tag=1.2.3',
      '--set',
      'gatewayNodeSelector.role=vpn,agent.extraArgs[0]=--foo',
      '--set-string',
      'operator.heartbeatTimeout=10s',
    );
    const dep = find(objs, 'Deployment')!;
    expect(dep.spec.replicas).toBe(3);
    const c = dep.spec.template.spec.containers[0];
    expect(c.image).toBe('ghcr.io/ipsec-mesh/ipsec-mesh:1.2.3');
    expect(c.args).toEqual(
      expect.arrayContaining(['--site=zurich', '--metrics-addr=0.0.0.0:9100', '--heartbeat-timeout=10s']),
    );
    expect(c.args.find((a: string) => a.startsWith('--gateway-selector='))).toBe(
      '--gateway-selector=ipsecmesh.io/gateway=true,role=vpn',
    );
    expect(find(objs, 'ServiceMonitor')!.spec.endpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' });
    expect(find(objs, 'DaemonSet')!.spec.template.spec.containers[0].args).toContain('--foo');
    const noAgent = render('--set', 'agent.enabled=false,metrics.service.enabled=false');
    expect(find(noAgent, 'DaemonSet')).toBeUndefined();
    expect(find(noAgent, 'Service')).toBeUndefined();
    expect(find(noAgent, 'Role', 'ipsec-mesh-agent-secrets')).toBeUndefined();
    expect(find(noAgent, 'ValidatingAdmissionPolicy')).toBeUndefined();
    expect(find(noAgent, 'Deployment')!.spec.template.spec.containers[0].args).toContain('--agent-secrets-role=');
  });

  it('rejects invalid values through values.schema.json', () => {
    const bad = (set: string) => () => helm(['template', 'x', chart, '--set', set]);
    expect(bad('operator.replicas=0')).toThrow(/minimum/);
    expect(bad('operator.heartbeatTimeout=soon')).toThrow(/heartbeatTimeout/);
    expect(bad('site=Not_A_Label')).toThrow(/site/);
    expect(bad('unknownKey=1')).toThrow(/additional properties/i);
  });
});
