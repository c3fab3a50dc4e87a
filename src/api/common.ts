/**
 * Building blocks shared by the custom resources: addresses, CIDRs, durations, proposals, secret references,
 * conditions. Every schema carries a description (it becomes `kubernetes explain` text) and, where the API server
 * can check it, a CEL rule in `x-kubernetes-validations` that mirrors the zod refinement.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

export const GROUP = 'ipsecmesh.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

type Rule = { rule: string; message: string; reason?: string; fieldPath?: string };

/** Attach a description and optional Kubernetes schema extensions (copied into the generated CRDs). */
export function doc<T extends z.ZodType>(schema: T, description: string, extra: Record<string, unknown> = {}): T {
  return schema.meta({ description, ...extra }) as T;
}

export function rules(...r: Rule[]): { 'x-kubernetes-validations': Rule[] } {
  return { 'x-kubernetes-validations': r };
}

// ---- addresses -----------------------------------------------------------------------------------------------

/** Parse a CIDR into family, network address as bigint and prefix length; undefined when malformed. */
export function parseCidr(s: string): { family: 4 | 6; base: bigint; prefix: number; bits: number } | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const addr = s.slice(0, slash);
  const p = s.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(p)) return undefined;
  const fam = isIP(addr);
  if (fam !== 4 && fam !== 6) return undefined;
  const bits = fam === 4 ? 32 : 128;
  const prefix = Number(p);
  if (prefix > bits) return undefined;
  const base = ipToBigInt(addr);
  if (base === undefined) return undefined;
  return { family: fam, base, prefix, bits };
}

export function ipToBigInt(addr: string): bigint | undefined {
  const fam = isIP(addr);
  if (fam === 4) {
    return addr.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
  }
  if (fam !== 6) return undefined;
  let a = addr;
  const v4 = a.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4?.[1]) {
    const n = ipToBigInt(v4[1]) ?? 0n;
    a = `${a.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) return undefined;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
}

/** A CIDR whose host bits are zero (the kernel would silently mask them; we make the user say what they mean). */
export function isCanonicalCidr(s: string): boolean {
  const c = parseCidr(s);
  if (!c) return false;
  const hostMask = (1n << BigInt(c.bits - c.prefix)) - 1n;
  return (c.base & hostMask) === 0n;
}

/** Inclusive [first, last] of a CIDR, tagged by family, for overlap checks. */
export function cidrRange(s: string): { family: 4 | 6; first: bigint; last: bigint } | undefined {
  const c = parseCidr(s);
  if (!c) return undefined;
  const hostMask = (1n << BigInt(c.bits - c.prefix)) - 1n;
  const first = c.base & ~hostMask;
  return { family: c.family, first, last: first | hostMask };
}

export function cidrsOverlap(a: string, b: string): boolean {
  const x = cidrRange(a);
  const y = cidrRange(b);
  return !!x && !!y && x.family === y.family && x.first <= y.last && y.first <= x.last;
}

const HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export const Cidr = doc(
  z
    .string()
    .max(64)
    .refine(isCanonicalCidr, { message: 'must be a CIDR with zero host bits, e.g. 198.18.1.0/24 or 2001:db8::/48' }),
  'An IPv4 or IPv6 subnet in CIDR notation with zero host bits, e.g. 198.18.1.0/24 or 2001:db8:1::/48.',
  rules({
    rule: 'isCIDR(self) && cidr(self).masked() == cidr(self)',
    message: 'must be a CIDR with zero host bits, e.g. 198.18.1.0/24 or 2001:db8::/48',
  }),
);

export const Subnets = (what: string) =>
  doc(z.array(Cidr).min(1).max(64), `${what} Traffic selectors of the CHILD SAs; at least one.`, {
    'x-kubernetes-list-type': 'set',
  });

export const Address = doc(
  z
    .string()
    .min(1)
    .max(253)
    .refine((s) => isIP(s) !== 0 || HOSTNAME.test(s), { message: 'must be an IP address or a DNS name' }),
  'An IPv4/IPv6 address or DNS name of an IKE endpoint.',
  rules({
    rule: `isIP(self) || self.matches('${HOSTNAME.source}')`,
    message: 'must be an IP address or a DNS name',
  }),
);

export const Identity = doc(
  z.string().min(1).max(255),
  'IKE identity (IDi/IDr): an IP address, an FQDN (site-a.example), an email address (user@example.org) or a ' +
    'distinguished name ("C=CH, O=example, CN=gw"). Defaults to the IKE address.',
);

export const Labels = doc(
  z.record(z.string().max(317), z.string().max(63)),
  'Node labels that must all match (equality-based selector).',
);

// ---- time ----------------------------------------------------------------------------------------------------

const DURATION = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;

/** Parse a Go-style duration ("4h", "1h30m", "10s", "500ms") to milliseconds; undefined when malformed. */
export function parseDuration(s: string): number | undefined {
  if (!DURATION.test(s)) return undefined;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const m of s.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) total += Number(m[1]) * (unit[m[2] ?? 's'] ?? 0);
  return total;
}

export const Duration = (description: string) =>
  doc(z.string().max(32).regex(DURATION, 'must be a duration such as 4h, 1h30m, 10s or 500ms'), description, {
    pattern: DURATION.source,
  });

export const Timestamp = (description: string) => doc(z.string(), description, { format: 'date-time' });

// ---- proposals -----------------------------------------------------------------------------------------------

/** strongSwan swanctl proposal syntax: algorithm tokens joined by '-', e.g. aes256gcm16-prfsha384-x25519. */
export const PROPOSAL = /^[a-z0-9_]+(-[a-z0-9_]+)*$/;

export const Proposals = (kind: 'IKE' | 'ESP', def: string[]) =>
  doc(
    z
      .array(
        doc(
          z.string().min(1).max(256).regex(PROPOSAL, 'must use swanctl syntax, e.g. aes256gcm16-prfsha384-x25519'),
          `One ${kind} proposal in strongSwan swanctl syntax (algorithms joined by '-').`,
          { pattern: PROPOSAL.source },
        ),
      )
      .min(1)
      .max(16)
      .default(def),
    `${kind} proposals in order of preference, in strongSwan swanctl syntax, e.g. ${def.join(', ')}.`,
  );

// ---- references ----------------------------------------------------------------------------------------------

export const SecretKeyRef = (defaultKey: string, what: string) =>
  doc(
    z.object({
      name: doc(z.string().min(1).max(253), 'Name of the Secret, in the namespace of this resource.'),
      key: doc(z.string().min(1).max(253).default(defaultKey), `Key within the Secret holding the ${what}.`),
    }),
    `Reference to the Secret key holding the ${what}.`,
  );

export const TlsSecretRef = doc(
  z.object({
    name: doc(
      z.string().min(1).max(253),
      'Name of a kubernetes.io/tls Secret (tls.crt, tls.key, optionally ca.crt), e.g. issued by cert-manager.',
    ),
  }),
  'Reference to the Secret holding the local certificate and private key.',
);

// ---- status --------------------------------------------------------------------------------------------------

export const ConditionStatus = z.enum(['True', 'False', 'Unknown']);

export const Condition = doc(
  z.object({
    type: doc(
      z.string().max(316),
      'Type of the condition: Ready, Accepted, IKEEstablished, ChildSAInstalled, Encrypted, Degraded.',
    ),
    status: doc(ConditionStatus, 'Status of the condition: True, False or Unknown.'),
    observedGeneration: doc(
      z.int().min(0).optional(),
      'metadata.generation of the resource this condition was computed from.',
    ),
    lastTransitionTime: Timestamp('When the condition last changed status.'),
    reason: doc(z.string().max(1024), 'CamelCase machine-readable reason for the last transition.'),
    message: doc(z.string().max(32768), 'Human-readable details about the last transition.'),
  }),
  'A condition per Kubernetes API conventions.',
);
export type Condition = z.infer<typeof Condition>;

export const Conditions = doc(z.array(Condition).max(16).optional(), 'Current state of the resource.', {
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
});

export const IkeSaState = z.enum(['Connecting', 'Established', 'Rekeying', 'Deleting', 'Down']);

export const IkeSaStatus = doc(
  z.object({
    state: doc(IkeSaState, 'State of the IKE SA.'),
    spis: doc(
      z
        .object({
          initiator: doc(z.string().regex(/^[0-9a-f]{16}$/), 'Initiator SPI, 16 hex digits.'),
          responder: doc(z.string().regex(/^[0-9a-f]{16}$/), 'Responder SPI, 16 hex digits.'),
        })
        .optional(),
      'IKE SA SPIs.',
    ),
    algorithms: doc(z.string().max(256).optional(), 'Negotiated IKE proposal in swanctl syntax.'),
    localAddress: doc(z.string().max(64).optional(), 'Local IKE endpoint address:port.'),
    remoteAddress: doc(z.string().max(64).optional(), 'Remote IKE endpoint address:port.'),
    establishedAt: Timestamp('When the IKE SA was established.').optional(),
    rekeyAt: Timestamp('When the IKE SA will be rekeyed.').optional(),
    natDetected: doc(z.boolean().optional(), 'True when NAT was detected and UDP encapsulation is in use.'),
  }),
  'State of the IKE SA.',
);
export type IkeSaStatus = z.infer<typeof IkeSaStatus>;

const Counter = (d: string) => doc(z.int().min(0).default(0), d, { format: 'int64' });

export const ChildSaStatus = doc(
  z.object({
    name: doc(z.string().max(253).optional(), 'Name of the CHILD SA (the tunnel or its subnet pair).'),
    state: doc(z.enum(['Installing', 'Installed', 'Rekeying', 'Deleting']), 'State of the CHILD SA.'),
    spis: doc(
      z.object({
        in: doc(z.string().regex(/^[0-9a-f]{8}$/), 'Inbound ESP SPI, 8 hex digits.'),
        out: doc(z.string().regex(/^[0-9a-f]{8}$/), 'Outbound ESP SPI, 8 hex digits.'),
      }),
      'ESP SPIs.',
    ),
    algorithms: doc(z.string().max(256).optional(), 'Negotiated ESP proposal in swanctl syntax.'),
    trafficSelectors: doc(
      z
        .object({
          local: doc(z.array(doc(z.string().max(64), 'A traffic selector (CIDR).')).max(64), 'Local selectors.'),
          remote: doc(z.array(doc(z.string().max(64), 'A traffic selector (CIDR).')).max(64), 'Remote selectors.'),
        })
        .optional(),
      'Negotiated traffic selectors.',
    ),
    bytesIn: Counter('Bytes received.'),
    bytesOut: Counter('Bytes sent.'),
    packetsIn: Counter('Packets received.'),
    packetsOut: Counter('Packets sent.'),
    installedAt: Timestamp('When the CHILD SA was installed in the kernel.').optional(),
    rekeyAt: Timestamp('When the CHILD SA will be rekeyed.').optional(),
  }),
  'State and counters of one CHILD SA.',
);
export type ChildSaStatus = z.infer<typeof ChildSaStatus>;
