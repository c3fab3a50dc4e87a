/** The agent settings file (`agent.yaml` in standalone mode): local addresses, node name, ports, state directory. */
import { isIP } from 'node:net';
import { z } from 'zod';
import { API_VERSION, parseDuration } from '../api/common.js';

export const AgentSettings = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('AgentSettings'),
  /** Name of this node (status and logs). */
  nodeName: z.string().min(1).max(253),
  /** Local IKE addresses to listen on (each gets UDP ikePort and nattPort). */
  addresses: z
    .array(z.string().refine((s) => isIP(s) !== 0, { message: 'must be an IP address' }))
    .min(1)
    .max(64),
  ikePort: z.int().min(1).max(65535).default(500),
  nattPort: z.int().min(1).max(65535).default(4500),
  /** Directory for the status socket and state files. */
  stateDir: z.string().min(1).default('/run/ipsec-mesh'),
  /** For IPsecMesh objects: the name of this node's site. */
  site: z.string().min(1).max(40).optional(),
  /** New IKE_SA_INIT requests accepted per source address and second (burst twice that). */
  initRateLimit: z.number().positive().default(50),
  /** Half-open IKE SAs above which cookies are required (RFC 7296 §2.6). */
  cookieThreshold: z.int().min(0).default(50),
  /** IKE retransmission: first timeout, back-off base, tries (defaults as strongSwan: 4s, 1.8, 5). */
  retransmit: z
    .object({
      timeout: z.string().default('4s'),
      base: z.number().min(1).max(4).default(1.8),
      tries: z.int().min(0).max(20).default(5),
    })
    .default({ timeout: '4s', base: 1.8, tries: 5 }),
  /**
   * IKE fragmentation (RFC 7383): protected messages larger than this many bytes (IKE header to ICV, without the
   * IP/UDP headers) are sent as fragments when the peer supports it. 1280 keeps IKE_AUTH with certificates clear of
   * IP fragmentation on most paths; lower it for paths with a smaller MTU.
   */
  ikeFragmentSize: z.int().min(200).max(65535).default(1280),
  /** Prometheus metrics on this port (0: off). */
  metricsPort: z.int().min(0).max(65535).default(0),
  metricsAddress: z.string().default('0.0.0.0'),
  /**
   * Path MTU and TCP MSS for the tunnels (src/agent/mtu*.ts): the route to each remote subnet gets the MTU that
   * fits inside ESP on the underlay, and forwarded TCP SYNs to/from remote subnets get their MSS clamped.
   */
  mtu: z
    .object({
      enabled: z.boolean().default(true),
      /** Underlay path MTU between the gateways; default: the MTU of the route/interface towards each peer. */
      underlayMtu: z.int().min(576).max(65535).optional(),
      clampMss: z.boolean().default(true),
      routeMtu: z.boolean().default(true),
      /** Netfilter tool for clamping: auto tries nftables first and falls back to iptables-legacy. */
      backend: z.enum(['auto', 'nftables', 'iptables-legacy']).default('auto'),
    })
    .default({ enabled: true, clampMss: true, routeMtu: true, backend: 'auto' }),
  /**
   * Proof of encryption (src/agent/encryption-check.ts): every interval, check that each installed CHILD SA's
   * subnet pairs are held by our kernel policies and its outbound SA exists; restore missing policies.
   */
  encryptionCheck: z
    .object({
      enabled: z.boolean().default(true),
      interval: z
        .string()
        .regex(/^\d+(ms|s|m)$/, 'a duration such as 5s or 500ms')
        .refine((d) => (parseDuration(d) ?? 0) >= 100, 'at least 100ms')
        .default('5s'),
      restore: z.boolean().default(true),
    })
    .default({ enabled: true, interval: '5s', restore: true }),
  /**
   * ESP blocked (src/agent/esp-block.ts): when a plain-ESP CHILD SA sends at least `minPackets` in `window` and
   * receives nothing, ask the peer over IKE what it received. `auto` (default): renegotiate the tunnel with forced
   * UDP encapsulation when the peer confirms it received nothing (ipsec-mesh peers); with peers that do not report
   * (other IKE implementations) only log, as one-way traffic looks the same. `heuristic`: switch when the peer
   * answers IKE at all, whatever it reports. `off`: never. `enabled: false` is an older spelling of `mode: off`.
   */
  espBlockedFallback: z
    .object({
      mode: z.enum(['auto', 'heuristic', 'off']).default('auto'),
      enabled: z.boolean().optional(),
      interval: z
        .string()
        .regex(/^\d+(ms|s|m)$/, 'a duration such as 2s or 500ms')
        .refine((d) => (parseDuration(d) ?? 0) >= 100, 'at least 100ms')
        .default('2s'),
      window: z
        .string()
        .regex(/^\d+(ms|s|m)$/, 'a duration such as 10s')
        .default('10s'),
      minPackets: z.int().min(1).default(10),
    })
    .default({ mode: 'auto', interval: '2s', window: '10s', minPackets: 10 }),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
});
export type AgentSettings = z.infer<typeof AgentSettings>;
