/**
 * prf and prf+ (RFC 7296 §2.13) for the HMAC PRFs (RFC 2104, RFC 4868 §2.1.2).
 *
 * For HMAC PRFs the key is used as given, whatever its length (HMAC hashes keys longer than the block size and pads
 * shorter ones); only AES-XCBC / AES-CMAC PRFs would need the key adjustments of RFC 4434 / RFC 4615, and those are
 * not supported.
 */
import type { PrfId } from '../constants.js';
import { CryptoError } from '../errors.js';
import type { CryptoProvider } from './provider.js';
import { prfTransform } from './transforms.js';

/** prf+ produces at most 255 blocks: the counter is a single octet (RFC 7296 §2.13). */
export const PRF_PLUS_MAX_BLOCKS = 255;

export function prf(provider: CryptoProvider, prfId: PrfId, key: Uint8Array, data: Uint8Array): Uint8Array {
  return provider.hmac(prfTransform(prfId).hash, key, data);
}

/** Largest number of bytes prf+ can give for `prfId` (255 * output length). */
export function prfPlusMaxLength(prfId: PrfId): number {
  return PRF_PLUS_MAX_BLOCKS * prfTransform(prfId).outputLength;
}

/**
 * prf+ (K, S) = T1 | T2 | T3 | ... with T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n), truncated to `length`.
 * Throws CryptoError('CRYPTO_PRF_PLUS_LIMIT') when `length` needs more than 255 blocks.
 */
export function prfPlus(
  provider: CryptoProvider,
  prfId: PrfId,
  key: Uint8Array,
  seed: Uint8Array,
  length: number,
): Uint8Array {
  const t = prfTransform(prfId);
  if (!Number.isInteger(length) || length < 0) {
    throw new CryptoError('CRYPTO_INVALID_LENGTH', `prf+ length must be a non-negative integer, got ${length}`);
  }
  const blocks = Math.ceil(length / t.outputLength);
  if (blocks > PRF_PLUS_MAX_BLOCKS) {
    throw new CryptoError(
      'CRYPTO_PRF_PLUS_LIMIT',
      `prf+ with ${t.name} gives at most ${PRF_PLUS_MAX_BLOCKS * t.outputLength} bytes, ${length} requested`,
    );
  }
  const out = new Uint8Array(blocks * t.outputLength);
  // Input buffer: [T(n-1)] | S | n; the first round has no previous block.
  const input = new Uint8Array(t.outputLength + seed.length + 1);
  input.set(seed, t.outputLength);
  for (let n = 1; n <= blocks; n++) {
    input[input.length - 1] = n;
    const block = provider.hmac(t.hash, key, n === 1 ? input.subarray(t.outputLength) : input);
    out.set(block, (n - 1) * t.outputLength);
    input.set(block, 0);
  }
  input.fill(0);
  return length === out.length ? out : out.slice(0, length);
}
