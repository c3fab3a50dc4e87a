/** IPsecTunnel: one site-to-site tunnel from this cluster's gateway nodes to a remote IKE peer (namespaced). */
import { z } from 'zod';
import {
  Address,
  ChildSaStatus,
  Conditions,
  Duration,
  doc,
  Identity,
  IkeSaStatus,
  Labels,
  Proposals,
  rules,
  SecretKeyRef,
  Subnets,
  TlsSecretRef,
} from './common.js';

export const Auth = doc(
  z
    .object({
      psk: doc(
        z.object({ secretRef: SecretKeyRef('psk', 'pre-shared key (at least 16 bytes)') }).optional(),
        'Pre-shared key authentication. The key never appears in a spec, status, event or log.',
      ),
      certificate: doc(
        z
          .object({
            secretRef: TlsSecretRef,
            remoteCA: doc(
              z.object({ secretRef: SecretKeyRef('ca.crt', 'PEM CA certificate that must sign the peer') }).optional(),
              'CA that must have issued the remote certificate; defaults to ca.crt of the local Secret.',
            ),
          })
          .optional(),
        'X.509 certificate authentication (RSA/ECDSA/Ed25519 signatures).',
      ),
    })
    .refine((a) => (a.psk ? 1 : 0) + (a.certificate ? 1 : 0) === 1, {
      message: 'exactly one of psk or certificate must be set',
    }),
  'How both peers authenticate; exactly one method.',
  rules({ rule: 'has(self.psk) != has(self.certificate)', message: 'exactly one of psk or certificate must be set' }),
);

export const Dpd = doc(
  z
    .object({
      interval: Duration('Dead peer detection interval; 0s disables DPD.').default('30s'),
      action: doc(
        z.enum(['clear', 'restart', 'hold']).default('restart'),
        'What to do when the peer is dead: clear (remove the SAs), restart (re-initiate), hold (trap and ' +
          're-initiate on traffic).',
      ),
    })
    .default({ interval: '30s', action: 'restart' }),
  'Dead peer detection (RFC 7296 liveness checks).',
);

export const Ike = doc(
  z
    .object({
      proposals: Proposals('IKE', ['aes256gcm16-prfsha384-x25519']),
      lifetime: Duration('IKE SA rekey time, e.g. 4h.').default('4h'),
      dpd: Dpd,
    })
    .default({
      proposals: ['aes256gcm16-prfsha384-x25519'],
      lifetime: '4h',
      dpd: { interval: '30s', action: 'restart' },
    }),
  'IKE SA parameters.',
);

export const Esp = doc(
  z
    .object({
      proposals: Proposals('ESP', ['aes256gcm16-x25519']),
      lifetime: Duration('CHILD SA rekey time, e.g. 1h.').default('1h'),
    })
    .default({ proposals: ['aes256gcm16-x25519'], lifetime: '1h' }),
  'ESP (CHILD SA) parameters.',
);

export const Natt = doc(
  z.enum(['auto', 'force', 'off']).default('auto'),
  'NAT traversal: auto (encapsulate in UDP 4500 when NAT is detected), force (always encapsulate), off.',
);
export const StartAction = doc(
  z.enum(['start', 'trap', 'none']).default('start'),
  'start: initiate at once; trap: initiate on the first matching packet; none: wait for the peer.',
);
export const FailClosed = doc(
  z.boolean().default(true),
  'Install drop policies for the subnets while no SA is up, so traffic never leaves in plaintext.',
);

export const Local = doc(
  z
    .object({
      nodeSelector: doc(Labels.default({}), 'Gateway candidates: nodes carrying all these labels and a live agent.'),
      subnets: Subnets('Local subnets behind the gateway.'),
      id: Identity.optional(),
      address: doc(Address.optional(), "Local IKE address; defaults to the elected gateway node's InternalIP."),
      floating: doc(
        z.boolean().default(false),
        'address is a floating address: the elected gateway node adds it to its interface while it is the gateway ' +
          '(failover keeps the address). Needs address.',
      ),
    })
    .refine((l) => !l.floating || l.address !== undefined, {
      message: 'floating needs address (the floating address)',
      path: ['floating'],
    }),
  'This side of the tunnel.',
  rules({
    rule: '!has(self.floating) || !self.floating || has(self.address)',
    message: 'floating needs address (the floating address)',
  }),
);

export const Remote = doc(
  z.object({
    address: doc(Address, 'Address or DNS name of the remote IKE gateway.'),
    port: doc(z.int().min(1).max(65535).default(500), 'Remote IKE UDP port.'),
    subnets: Subnets('Remote subnets.'),
    id: Identity.optional(),
  }),
  'The remote side of the tunnel.',
);

export const TunnelSettings = {
  auth: Auth,
  ike: Ike,
  esp: Esp,
  natt: Natt,
  startAction: StartAction,
  failClosed: FailClosed,
};

export const IPsecTunnelSpec = doc(
  z.object({ local: Local, remote: Remote, ...TunnelSettings }),
  'Desired state of the tunnel.',
);
export type IPsecTunnelSpec = z.infer<typeof IPsecTunnelSpec>;

export const IPsecTunnelStatus = doc(
  z.object({
    observedGeneration: doc(z.int().min(0).optional(), 'metadata.generation the operator last acted on.'),
    conditions: Conditions,
    gateway: doc(z.string().max(253).optional(), 'Node currently elected as the active gateway.'),
    ikeSA: IkeSaStatus.optional(),
    childSAs: doc(z.array(ChildSaStatus).max(64).optional(), 'Installed CHILD SAs with their counters.'),
    childSACount: doc(z.int().min(0).optional(), 'Number of installed CHILD SAs.'),
  }),
  'Observed state of the tunnel, aggregated by the operator from the gateway agent.',
);
export type IPsecTunnelStatus = z.infer<typeof IPsecTunnelStatus>;
