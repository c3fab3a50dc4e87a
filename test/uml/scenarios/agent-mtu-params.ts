/**
 * Parameters shared by scenarios/agent-mtu.ts (inside UML) and ../agent-mtu.test.ts (host). Side-effect free.
 */

/** MTU of the path between the two gateways (the bridge ports); the gateways' own devices keep 1500. */
export const MTU_PATH = 1300;
/** Bytes of the bulk TCP transfer from host 1 to host 2. */
export const MTU_BYTES = 4 * 1024 * 1024;
/** aes256gcm16 in tunnel mode over IPv4 without NAT: floor((1300-20-8-8-16)/4)*4-2 (src/agent/mtu.ts). */
export const MTU_INNER = 1246;
export const MTU_MSS = MTU_INNER - 40;

export type MtuPhaseName = 'off' | 'clamp-only' | 'full';
export const MTU_PHASES: { name: MtuPhaseName; mtu: Record<string, unknown>; timeoutMs: number }[] = [
  { name: 'off', mtu: { enabled: false }, timeoutMs: 20_000 },
  { name: 'clamp-only', mtu: { underlayMtu: MTU_PATH, routeMtu: false }, timeoutMs: 60_000 },
  { name: 'full', mtu: { underlayMtu: MTU_PATH }, timeoutMs: 60_000 },
];

/** Proof-of-encryption scenario (agent-proof.ts): the check's interval. */
export const PROOF_INTERVAL_MS = 1000;

/** ESP-blocked scenario (agent-esp-block.ts): how long the phase without the fallback watches pings fail. */
export const ESP_BLOCK_OFF_MS = 8000;
