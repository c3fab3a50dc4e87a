/**
 * `ipsec-mesh bench crypto [--json] [--ms=N]`: operations per second of the crypto providers.
 *
 *  - key exchange, per method and provider: one party's full work (key generation from the Random port plus the
 *    shared secret from a precomputed peer value); for ML-KEM the whole exchange (keygen, encapsulate, decapsulate);
 *  - prf+ producing 200 bytes with PRF_HMAC_SHA2_256 (about the IKE SA key material of an AES-GCM-256 suite);
 *  - AEAD seal and open of 1 KiB with AES-GCM-128, AES-GCM-256 and ChaCha20-Poly1305 (16-byte tags).
 * Each measurement runs for --ms milliseconds (default 300) after a short warm-up.
 */
import { randomFillSync } from 'node:crypto';
import { type BenchContext, opsPerSecond } from '../../src/cli/bench-report.js';
import { KeId, nameOf, PrfId } from '../../src/ike/constants.js';
import { createNobleProvider, createNodeProvider, prfPlus } from '../../src/ike/crypto/index.js';
import type { AeadName, CryptoProvider, Random } from '../../src/ike/crypto/provider.js';

const random: Random = (length) => randomFillSync(new Uint8Array(length));

const KE_METHODS = [
  KeId.MODP_2048,
  KeId.MODP_3072,
  KeId.MODP_4096,
  KeId.ECP_256,
  KeId.ECP_384,
  KeId.ECP_521,
  KeId.CURVE25519,
  KeId.CURVE448,
  KeId.ML_KEM_768,
];

function keyExchangeOp(provider: CryptoProvider, id: KeId): () => void {
  const method = provider.keyExchange(id);
  if (id === KeId.ML_KEM_768) {
    return () => {
      const initiator = method.initiate(random);
      const { publicValue } = method.respond(initiator.publicValue, random);
      initiator.complete(publicValue);
    };
  }
  const peer = method.initiate(random).publicValue;
  return () => {
    method.initiate(random).complete(peer);
  };
}

export async function run(ctx: BenchContext): Promise<void> {
  const msArg = ctx.args.find((a) => a.startsWith('--ms='));
  const ms = msArg ? Number(msArg.slice(5)) : 300;
  const providers = [createNodeProvider(), createNobleProvider()];
  // opsPerSecond warms up for at most 100 ms; the JIT needs longer for the pure-JS paths, so each measurement is
  // preceded by a discarded short run.
  const measure = (fn: () => void) => {
    opsPerSecond(fn, Math.min(150, ms / 2));
    return opsPerSecond(fn, ms);
  };
  const report = (name: string, provider: CryptoProvider, value: number, extra: Record<string, unknown> = {}) =>
    ctx.report({ suite: 'crypto', name, value: Math.round(value), unit: 'ops/s', provider: provider.name, ...extra });

  for (const id of KE_METHODS) {
    for (const provider of providers) {
      report(`ke ${nameOf(KeId, id)} full exchange`, provider, measure(keyExchangeOp(provider, id)), {
        keId: id,
      });
    }
  }

  const key = random(32);
  const seed = random(64 + 16);
  for (const provider of providers) {
    report(
      'prf+ HMAC_SHA2_256 200 bytes',
      provider,
      measure(() => prfPlus(provider, PrfId.HMAC_SHA2_256, key, seed, 200)),
    );
  }

  const plaintext = random(1024);
  const aad = random(32);
  const nonce = random(12);
  const aeads: [string, AeadName, number][] = [
    ['AES-GCM-128', 'aes-gcm', 16],
    ['AES-GCM-256', 'aes-gcm', 32],
    ['ChaCha20-Poly1305', 'chacha20-poly1305', 32],
  ];
  for (const [label, alg, keyLength] of aeads) {
    const k = random(keyLength);
    for (const provider of providers) {
      const sealed = provider.aeadSeal(alg, k, nonce, aad, plaintext, 16);
      report(
        `aead ${label} seal 1KiB`,
        provider,
        measure(() => provider.aeadSeal(alg, k, nonce, aad, plaintext, 16)),
      );
      report(
        `aead ${label} open 1KiB`,
        provider,
        measure(() => provider.aeadOpen(alg, k, nonce, aad, sealed, 16)),
      );
    }
  }
}
