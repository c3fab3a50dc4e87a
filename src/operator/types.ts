/** Minimal shapes of the Kubernetes objects the operator reads (raw JSON as the API server sends it). */
import type { IPsecMeshStatus, IPsecNodeConfigStatus, IPsecTunnelStatus } from '../api/index.js';

export interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }>;
}

export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata: Meta;
}

export interface TunnelObject extends KObject {
  spec: unknown;
  status?: IPsecTunnelStatus;
}

export interface MeshObject extends KObject {
  spec: unknown;
  status?: IPsecMeshStatus;
}

export interface NodeConfigObject extends KObject {
  spec?: { nodeName?: string; tunnels?: Array<{ namespace: string; name: string; generation: number }> } & Record<
    string,
    unknown
  >;
  status?: IPsecNodeConfigStatus;
}

export interface NodeObject extends KObject {
  status?: { addresses?: Array<{ type: string; address: string }> };
}

export interface SecretObject extends KObject {
  type?: string;
  data?: Record<string, string>;
}

export const key = (o: KObject) =>
  o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;

export function splitKey(k: string): { namespace: string; name: string } {
  const i = k.indexOf('/');
  return { namespace: k.slice(0, i), name: k.slice(i + 1) };
}

export interface LeaseObject extends KObject {
  spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number };
}
