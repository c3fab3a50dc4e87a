/**
 * The custom resources as whole objects, their CRD metadata (names, scope, printer columns) and parse functions
 * whose errors name the field path (`spec.remote.subnets[0]: must be a CIDR ...`). The standalone agent reads the
 * same objects from YAML files with parseManifests().
 */
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { API_VERSION, GROUP, VERSION } from './common.js';
import { IPsecMeshSpec, IPsecMeshStatus } from './mesh.js';
import { IPsecNodeConfigSpec, IPsecNodeConfigStatus } from './nodeconfig.js';
import { IPsecTunnelSpec, IPsecTunnelStatus } from './tunnel.js';

export const ObjectMeta = z.looseObject({
  name: z.string().min(1).max(253),
  namespace: z.string().max(63).optional(),
  uid: z.string().optional(),
  generation: z.int().optional(),
  resourceVersion: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  finalizers: z.array(z.string()).optional(),
  deletionTimestamp: z.string().optional(),
  creationTimestamp: z.string().optional(),
  ownerReferences: z.array(z.looseObject({})).optional(),
});

function resource<K extends string, S extends z.ZodType, T extends z.ZodType>(kind: K, spec: S, status: T) {
  return z.object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(kind),
    metadata: ObjectMeta,
    spec,
    status: status.optional(),
  });
}

export const IPsecTunnel = resource('IPsecTunnel', IPsecTunnelSpec, IPsecTunnelStatus);
export type IPsecTunnel = z.infer<typeof IPsecTunnel>;
export const IPsecMesh = resource('IPsecMesh', IPsecMeshSpec, IPsecMeshStatus);
export type IPsecMesh = z.infer<typeof IPsecMesh>;
export const IPsecNodeConfig = resource('IPsecNodeConfig', IPsecNodeConfigSpec, IPsecNodeConfigStatus);
export type IPsecNodeConfig = z.infer<typeof IPsecNodeConfig>;

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'date' | 'boolean';
  jsonPath: string;
  description: string;
  priority?: number;
}

export interface ResourceDef {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  scope: 'Namespaced' | 'Cluster';
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  columns: PrinterColumn[];
}

const ready = (n = 'Ready'): PrinterColumn => ({
  name: n,
  type: 'string',
  jsonPath: `.status.conditions[?(@.type=="${n}")].status`,
  description: `Status of the ${n} condition.`,
});
const age: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since creation.',
};

export const RESOURCES: ResourceDef[] = [
  {
    kind: 'IPsecTunnel',
    plural: 'ipsectunnels',
    singular: 'ipsectunnel',
    shortNames: ['ipt', 'tunnel'],
    scope: 'Namespaced',
    description:
      'An IPsec site-to-site tunnel from a gateway node of this cluster to a remote IKEv2 peer. The operator ' +
      'elects a live gateway among the nodes matching spec.local.nodeSelector and reports SA state in status.',
    spec: IPsecTunnelSpec,
    status: IPsecTunnelStatus,
    columns: [
      ready(),
      { name: 'Gateway', type: 'string', jsonPath: '.status.gateway', description: 'Active gateway node.' },
      { name: 'Remote', type: 'string', jsonPath: '.spec.remote.address', description: 'Remote IKE gateway.' },
      { name: 'IKE', type: 'string', jsonPath: '.status.ikeSA.state', description: 'IKE SA state.' },
      { name: 'Children', type: 'integer', jsonPath: '.status.childSACount', description: 'Installed CHILD SAs.' },
      age,
    ],
  },
  {
    kind: 'IPsecMesh',
    plural: 'ipsecmeshes',
    singular: 'ipsecmesh',
    shortNames: ['ipm', 'mesh'],
    scope: 'Namespaced',
    description:
      'A mesh of IPsec sites. Apply the same manifest in every cluster: the operator of each cluster creates an ' +
      'IPsecTunnel from its own site to every other site.',
    spec: IPsecMeshSpec,
    status: IPsecMeshStatus,
    columns: [
      ready(),
      { name: 'Site', type: 'string', jsonPath: '.status.localSite', description: 'Site of this cluster.' },
      { name: 'Tunnels', type: 'integer', jsonPath: '.status.tunnels', description: 'Owned tunnels.' },
      { name: 'ReadyTunnels', type: 'integer', jsonPath: '.status.readyTunnels', description: 'Ready tunnels.' },
      age,
    ],
  },
  {
    kind: 'IPsecNodeConfig',
    plural: 'ipsecnodeconfigs',
    singular: 'ipsecnodeconfig',
    shortNames: ['ipnc'],
    scope: 'Cluster',
    description:
      'Operator-owned configuration of one gateway node: the tunnels its agent must run. The agent reports its ' +
      'heartbeat and SA state in status. Do not edit.',
    spec: IPsecNodeConfigSpec,
    status: IPsecNodeConfigStatus,
    columns: [
      {
        name: 'Agent',
        type: 'string',
        jsonPath: '.status.agent.version',
        description: 'Version of the agent that reports this node.',
      },
      age,
    ],
  },
];

export { GROUP, VERSION };

// ---- parsing -------------------------------------------------------------------------------------------------

export interface FieldError {
  path: string;
  message: string;
}

/** A validation failure; `message` lists every problem as `path: message`. Contains no field values. */
export class ApiValidationError extends Error {
  readonly code = 'ERR_IPSEC_MESH_INVALID_RESOURCE';
  constructor(
    readonly what: string,
    readonly errors: FieldError[],
  ) {
    super(`invalid ${what}: ${errors.map((e) => `${e.path || '(root)'}: ${e.message}`).join('; ')}`);
    this.name = 'ApiValidationError';
  }
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: ApiValidationError };

export function safeParseWith<T>(schema: z.ZodType<T>, input: unknown, what: string, prefix: string[] = []) {
  const r = schema.safeParse(input);
  if (r.success) return { ok: true, value: r.data } as ParseResult<T>;
  const errors = r.error.issues.map((i) => ({ path: formatPath([...prefix, ...i.path]), message: i.message }));
  return { ok: false, error: new ApiValidationError(what, errors) } as ParseResult<T>;
}

function parser<T>(schema: z.ZodType<T>, what: string) {
  return (input: unknown): T => {
    const r = safeParseWith(schema, input, what);
    if (!r.ok) throw r.error;
    return r.value;
  };
}

export const parseIPsecTunnel = parser(IPsecTunnel, 'IPsecTunnel');
export const parseIPsecMesh = parser(IPsecMesh, 'IPsecMesh');
export const parseIPsecNodeConfig = parser(IPsecNodeConfig, 'IPsecNodeConfig');
export const parseTunnelSpec = (spec: unknown) => safeParseWith(IPsecTunnelSpec, spec, 'IPsecTunnel', ['spec']);
export const parseMeshSpec = (spec: unknown) => safeParseWith(IPsecMeshSpec, spec, 'IPsecMesh', ['spec']);
export const parseNodeConfigSpec = (spec: unknown) =>
  safeParseWith(IPsecNodeConfigSpec, spec, 'IPsecNodeConfig', ['spec']);

export type AnyResource = IPsecTunnel | IPsecMesh | IPsecNodeConfig;

/** Parse a multi-document YAML file of our resources; errors name the document index and field path. */
export function parseManifests(text: string, source = 'manifest'): AnyResource[] {
  const out: AnyResource[] = [];
  const docs = parseAllDocuments(text);
  docs.forEach((d, i) => {
    const where = `${source} document ${i + 1}`;
    if (d.errors.length) throw new ApiValidationError(where, [{ path: '', message: d.errors[0]!.message }]);
    const obj = d.toJS() as unknown;
    if (obj === null || obj === undefined) return;
    const kind = (obj as { kind?: unknown }).kind;
    const schema = kind === 'IPsecTunnel' ? IPsecTunnel : kind === 'IPsecMesh' ? IPsecMesh : IPsecNodeConfig;
    if (kind !== 'IPsecTunnel' && kind !== 'IPsecMesh' && kind !== 'IPsecNodeConfig') {
      throw new ApiValidationError(where, [
        { path: 'kind', message: 'must be IPsecTunnel, IPsecMesh or IPsecNodeConfig' },
      ]);
    }
    const r = safeParseWith(schema as z.ZodType<AnyResource>, obj, `${kind} (${where})`);
    if (!r.ok) throw r.error;
    out.push(r.value);
  });
  return out;
}
