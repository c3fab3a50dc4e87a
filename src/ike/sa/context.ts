/**
 * What an IKE SA and its tasks may use of the engine that owns them: the ports, the crypto provider, SA
 * registration and events. Kept as an interface so that SAs and tasks do not import the engine.
 */
import type { CryptoProvider } from '../crypto/provider.js';
import type { EnginePorts } from '../ports.js';
import type { ChildSa } from './child-sa.js';
import type { ChildConfig, PeerConfig } from './config.js';
import type { EngineEvent } from './events.js';
import type { IkeSa } from './ike-sa.js';

export interface EngineContext {
  readonly ports: EnginePorts<PeerConfig>;
  readonly provider: CryptoProvider;
  /** Nonce length in bytes (at least half the PRF key length, RFC 7296 §2.10). */
  readonly nonceLength: number;
  /** Answer ESP_RECEIVED_QUERY notifies (src/ike/tasks/esp-check.ts). */
  readonly answerEspQueries: boolean;
  emit(event: EngineEvent): void;
  /** Index the SA under its (new) local SPI. */
  register(sa: IkeSa): void;
  unregister(sa: IkeSa): void;
  nextUid(): number;
  /** The SA's configuration changed (a responder picked one by identity): re-index it. */
  configChanged(sa: IkeSa, oldName: string): void;
  /**
   * The reqid of a CHILD SA configuration: stable for a (peer, child) pair, so that rekeyed and duplicate CHILD SAs
   * share their policies.
   */
  reqidFor(peer: string, child: string): number;
  /** Count a user of a kernel policy; true when it is the first (install it). */
  acquirePolicy(key: string, childUid: number): boolean;
  /** Drop a user of a kernel policy; true when it was the last (remove it). */
  releasePolicy(key: string, childUid: number): boolean;
  /** Other IKE SAs with the same peer (for INITIAL_CONTACT and IKE rekey collisions). */
  sasOfPeer(configName: string): IkeSa[];
  /** A CHILD SA was installed: schedule its rekey and expiry. */
  onChildInstalled(sa: IkeSa, child: ChildSa): void;
  /** An IKE SA was established: schedule its rekey and liveness checks. */
  onIkeEstablished(sa: IkeSa): void;
  /** Rekey a CHILD SA after `delayMs` (retry after a failed or colliding rekey). */
  scheduleChildRekey(sa: IkeSa, child: ChildSa, delayMs: number): void;
  /** Rekey an IKE SA after `delayMs`. */
  scheduleIkeRekey(sa: IkeSa, delayMs: number): void;
  /** Create a CHILD SA of `config` on `sa` after `delayMs`. */
  scheduleChildCreate(sa: IkeSa, config: ChildConfig, delayMs: number): void;
  /** Restart a peer's negotiation later (DPD action restart, start action retries). */
  scheduleRestart(config: PeerConfig, reason: string): void;
}
