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

let nodeInstance: CryptoProvider | undefined;
let nobleInstance: CryptoProvider | undefined;

/** The default provider (node:crypto). Stateless apart from per-method caches, so one instance is shared. */
export function defaultProvider(): CryptoProvider {
  nodeInstance ??= createNodeProvider();
  return nodeInstance;
}

/** The @noble reference provider. */
export function nobleProvider(): CryptoProvider {
  nobleInstance ??= createNobleProvider();
  return nobleInstance;
}
