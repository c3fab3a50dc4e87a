/** The IKE crypto suite: providers, transform tables, SK payload ciphers, prf / prf+ and the IKEv2 key derivations. */
import { createNobleProvider } from './noble-provider.js';
import { createNodeProvider } from './node-provider.js';
import type { CryptoProvider } from './provider.js';

export { type GroupParams, groupParams, knownGroupIds } from './groups.js';
export * from './kdf.js';
export { createNobleProvider } from './noble-provider.js';
export { createNodeProvider } from './node-provider.js';
export * from './prf.js';
export type * from './provider.js';
export * from './sk-cipher.js';
export * from './transforms.js';

/**
 * The default provider (node:crypto). A new instance per call: providers hold only per-method caches, and the engine
 * keeps no module-level state (DESIGN.md: no globals or singletons), so callers create one and pass it around.
 */
export function defaultProvider(): CryptoProvider {
  return createNodeProvider();
}

/** The @noble reference provider (pure JavaScript; also the ML-KEM implementation behind both providers). */
export function nobleProvider(): CryptoProvider {
  return createNobleProvider();
}
