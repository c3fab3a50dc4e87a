/**
 * IPsecNodeConfig: cluster-scoped, one per gateway-candidate node, written only by the operator. It is everything
 * that node's agent needs (the agent watches nothing else); the agent writes its heartbeat and SA state into the
 * status. Key material is not in here: the spec names keys in the node's own Secret in the operator namespace.
 */
import { z } from 'zod';
import { Address, ChildSaStatus, Conditions, doc, Identity, IkeSaStatus, Subnets, Timestamp } from './common.js';
import { Esp, FailClosed, Ike, Natt, StartAction } from './tunnel.js';

const SecretKey = (what: string) =>
  doc(z.string().min(1).max(253), `Key in the node Secret (spec.secretName) holding the ${what}.`);

export const NodeTunnel = doc(
  z.object({
    namespace: doc(z.string().min(1).max(63), 'Namespace of the IPsecTunnel.'),
    name: doc(z.string().min(1).max(253), 'Name of the IPsecTunnel.'),
    uid: doc(z.string().max(64), 'UID of the IPsecTunnel.'),
    generation: doc(z.int().min(0), 'metadata.generation of the IPsecTunnel this entry was rendered from.'),
    local: doc(
      z.object({
        address: doc(Address, 'Local IKE address on this node.'),
        subnets: Subnets('Local subnets.'),
        id: Identity.optional(),
        floating: doc(
          z.boolean().optional(),
          'The agent adds address to its interface while it holds this tunnel, and removes it afterwards.',
        ),
      }),
      'Local side.',
    ),
    remote: doc(
      z.object({
        address: doc(Address, 'Remote IKE gateway.'),
        port: doc(z.int().min(1).max(65535), 'Remote IKE UDP port.'),
        subnets: Subnets('Remote subnets.'),
        id: Identity.optional(),
      }),
      'Remote side.',
    ),
    auth: doc(
      z.object({
        psk: doc(z.object({ key: SecretKey('pre-shared key') }).optional(), 'Pre-shared key authentication.'),
        certificate: doc(
          z
            .object({
              certKey: SecretKey('PEM certificate chain'),
              privateKeyKey: SecretKey('PEM private key'),
              caKey: SecretKey('PEM CA certificate for the peer').optional(),
            })
            .optional(),
          'Certificate authentication.',
        ),
      }),
      'Authentication; keys live in the node Secret.',
    ),
    ike: Ike,
    esp: Esp,
    natt: Natt,
    startAction: StartAction,
    failClosed: FailClosed,
    reqid: doc(z.int().min(1).max(0x7fffffff), 'Reqid used to tag this tunnel’s XFRM states and policies.'),
  }),
  'One tunnel this node is the active gateway for.',
);
export type NodeTunnel = z.infer<typeof NodeTunnel>;

export const IPsecNodeConfigSpec = doc(
  z.object({
    nodeName: doc(z.string().min(1).max(253), 'Name of the Node this configuration is for.'),
    secretName: doc(
      z.string().max(253).optional(),
      'Secret in the operator namespace with this node’s key material (only while it has tunnels).',
    ),
    secretNamespace: doc(z.string().max(63).optional(), 'Namespace of secretName (the operator namespace).'),
    tunnels: doc(z.array(NodeTunnel).max(2000).default([]), 'Tunnels this node is the active gateway for.', {
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['namespace', 'name'],
    }),
  }),
  'Desired configuration of one gateway node.',
);
export type IPsecNodeConfigSpec = z.infer<typeof IPsecNodeConfigSpec>;

export const NodeTunnelStatus = doc(
  z.object({
    namespace: doc(z.string().min(1).max(63), 'Namespace of the IPsecTunnel.'),
    name: doc(z.string().min(1).max(253), 'Name of the IPsecTunnel.'),
    generation: doc(z.int().min(0).optional(), 'Tunnel generation the agent has applied.'),
    ikeSA: IkeSaStatus.optional(),
    childSAs: doc(z.array(ChildSaStatus).max(64).optional(), 'CHILD SAs of this tunnel.'),
    espBlocked: doc(
      z
        .object({
          since: doc(z.string().max(64), 'When the agent found ESP blocked and moved to UDP encapsulation.'),
          message: doc(z.string().max(1024), 'What it observed.'),
        })
        .optional(),
      'ESP (IP protocol 50) is blocked on the path: the tunnel uses forced UDP encapsulation.',
    ),
    encrypted: doc(
      z
        .object({
          status: doc(z.enum(['True', 'False', 'Unknown']), 'Whether our policies and SAs hold every subnet pair.'),
          reason: doc(z.string().max(128), 'CamelCase reason (PoliciesInPlace, PolicyMissing, ...).'),
          message: doc(z.string().max(4096), 'What the check found.'),
          lastTransitionTime: doc(z.string().max(64), 'When the status last changed.'),
          checkedAt: doc(z.string().max(64), 'When the check last ran.'),
          restored: doc(z.int().min(0), 'Kernel policies the check put back since the agent started.'),
        })
        .optional(),
      'Proof of encryption: the kernel policies and outbound SAs of the installed CHILD SAs.',
    ),
    mtu: doc(
      z
        .object({
          underlayMtu: doc(z.int().min(0).max(65535), 'Underlay path MTU between the gateways.'),
          innerMtu: doc(z.int().min(0).max(65535), 'Largest inner packet that fits in ESP (route MTU).'),
          overhead: doc(z.int().min(0).max(65535), 'ESP overhead at this MTU (headers, IV, padding, ICV).'),
          mss: doc(z.int().min(0).max(65535), 'TCP MSS clamped to for IPv4 inner traffic.'),
          clamp: doc(z.enum(['nftables', 'iptables-legacy', 'off', 'failed']), 'How MSS clamping is done.'),
          routeMtu: doc(z.boolean(), 'Whether the remote subnets’ routes carry the inner MTU.'),
          error: doc(z.string().max(1024).optional(), 'Why MTU handling failed, if it did.'),
        })
        .optional(),
      'Path MTU and TCP MSS clamping for this tunnel.',
    ),
    error: doc(
      z
        .object({
          reason: doc(z.string().max(128), 'CamelCase reason.'),
          message: doc(z.string().max(4096), 'Human-readable message (never key material).'),
        })
        .optional(),
      'Last error the agent hit for this tunnel.',
    ),
  }),
  'State of one tunnel on this node.',
);
export type NodeTunnelStatus = z.infer<typeof NodeTunnelStatus>;

export const IPsecNodeConfigStatus = doc(
  z.object({
    agent: doc(
      z
        .object({
          version: doc(z.string().max(64).optional(), 'Agent version.'),
          observedGeneration: doc(z.int().min(0).optional(), 'Spec generation the agent has applied.'),
          startedAt: Timestamp('When the agent started.').optional(),
        })
        .optional(),
      'About the agent. Its liveness is not here: the agent renews the coordination.k8s.io Lease ' +
        'ipsec-mesh-agent-<node> (label ipsecmesh.io/agent-node=<node>, holderIdentity <node>) in the operator ' +
        'namespace, so heartbeats never rewrite this (large) object.',
    ),
    tunnels: doc(z.array(NodeTunnelStatus).max(2000).optional(), 'Per-tunnel SA state.', {
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['namespace', 'name'],
    }),
    conditions: Conditions,
  }),
  'Observed state reported by the agent.',
);
export type IPsecNodeConfigStatus = z.infer<typeof IPsecNodeConfigStatus>;
