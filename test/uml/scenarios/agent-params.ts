/**
 * Parameters shared by the agent scenario scripts (which run inside UML) and their test files (which run on the
 * host). Side-effect free: a test file must never import a scenario script itself, which would run it on the host.
 */

/** Scenario 2: ESP algorithm x initiator, with the kernel's name of the algorithm. */
export const STRONGSWAN_CASES = [
  { alg: 'aes256gcm16', kernel: 'rfc4106(gcm(aes))', initiator: 'agent' },
  { alg: 'aes256-sha256', kernel: 'cbc(aes)', initiator: 'agent' },
  { alg: 'chacha20poly1305', kernel: 'rfc7539esp(chacha20,poly1305)', initiator: 'agent' },
  { alg: 'aes256gcm16', kernel: 'rfc4106(gcm(aes))', initiator: 'charon' },
  { alg: 'aes256-sha256', kernel: 'cbc(aes)', initiator: 'charon' },
  { alg: 'chacha20poly1305', kernel: 'rfc7539esp(chacha20,poly1305)', initiator: 'charon' },
] as const;

/** Scenarios 5 and 6: DPD interval of the agents. */
export const DPD_INTERVAL_S = 3;
/** Retransmission settings of the agents (AgentSettings.retransmit, set by the Lab): 1 s, base 1.5, 3 tries. */
export const RETRANSMIT_TOTAL_S = 1 + 1.5 + 1.5 ** 2 + 1.5 ** 3;
