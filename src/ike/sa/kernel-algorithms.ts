/**
 * Negotiated ESP transforms -> Linux XFRM algorithm names and key/ICV sizes (the names `ip xfrm state` uses).
 * Sources: linux/net/xfrm/xfrm_algo.c (algorithm names), RFC 4106 (GCM for ESP), RFC 7634 (ChaCha20-Poly1305),
 * RFC 4868 (HMAC-SHA2 truncation lengths).
 */
import { EncrId, IntegId } from '../constants.js';
import { IkeError } from '../errors.js';
import type { KernelSa } from '../ports.js';

export function kernelEncryption(encrId: number): { name: string; icvBits?: number } {
  switch (encrId) {
    case EncrId.AES_GCM_16:
      return { name: 'rfc4106(gcm(aes))', icvBits: 128 };
    case EncrId.AES_GCM_12:
      return { name: 'rfc4106(gcm(aes))', icvBits: 96 };
    case EncrId.AES_GCM_8:
      return { name: 'rfc4106(gcm(aes))', icvBits: 64 };
    case EncrId.CHACHA20_POLY1305:
      return { name: 'rfc7539esp(chacha20,poly1305)', icvBits: 128 };
    case EncrId.AES_CBC:
      return { name: 'cbc(aes)' };
    default:
      throw new IkeError('CRYPTO_UNSUPPORTED', `no kernel algorithm for encryption transform ${encrId}`);
  }
}

export function kernelIntegrity(integId: number): { name: string; truncationBits: number } {
  switch (integId) {
    case IntegId.HMAC_SHA1_96:
      return { name: 'hmac(sha1)', truncationBits: 96 };
    case IntegId.HMAC_SHA2_256_128:
      return { name: 'hmac(sha256)', truncationBits: 128 };
    case IntegId.HMAC_SHA2_384_192:
      return { name: 'hmac(sha384)', truncationBits: 192 };
    case IntegId.HMAC_SHA2_512_256:
      return { name: 'hmac(sha512)', truncationBits: 256 };
    default:
      throw new IkeError('CRYPTO_UNSUPPORTED', `no kernel algorithm for integrity transform ${integId}`);
  }
}

export function kernelAlgorithms(
  encrId: number,
  integId: number | undefined,
  keys: { encKey: Uint8Array; integKey: Uint8Array },
): Pick<KernelSa, 'encryption' | 'integrity'> {
  const e = kernelEncryption(encrId);
  const out: Pick<KernelSa, 'encryption' | 'integrity'> = { encryption: { ...e, key: keys.encKey } };
  if (integId !== undefined && integId !== IntegId.NONE) {
    out.integrity = { ...kernelIntegrity(integId), key: keys.integKey };
  }
  return out;
}
