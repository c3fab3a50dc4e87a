/**
 * ML-KEM (FIPS 203) as an IKEv2 key exchange method (draft-ietf-ipsecme-ikev2-mlkem, RFC 9370 additional key
 * exchange): the initiator's KE data is the encapsulation key, the responder's is the ciphertext, and the shared
 * secret is the 32-byte KEM shared key. Implemented with @noble/post-quantum, used by both providers.
 */
import { ml_kem512, ml_kem768, ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { KeId } from '../constants.js';
import { checkLength, invalidPublic, type KemGroup, mlkemEncapsulationMessage, mlkemKeygenSeed } from './groups.js';
import type { KeyExchange, KeyExchangeMethod, Random } from './provider.js';

const KEMS = { [KeId.ML_KEM_512]: ml_kem512, [KeId.ML_KEM_768]: ml_kem768, [KeId.ML_KEM_1024]: ml_kem1024 } as const;

export function mlkemMethod(group: KemGroup): KeyExchangeMethod {
  const kem = KEMS[group.id as keyof typeof KEMS];
  return {
    id: group.id,
    initiatorLength: group.initiatorLength,
    responderLength: group.responderLength,
    initiate(random: Random): KeyExchange {
      const { publicKey, secretKey } = kem.keygen(mlkemKeygenSeed(random));
      return {
        id: group.id,
        publicValue: publicKey,
        complete(peer: Uint8Array): Uint8Array {
          checkLength(group.id, group.responderLength, peer);
          // Decapsulation never fails for a well-sized ciphertext: a forged one yields the implicit-rejection key.
          return kem.decapsulate(peer, secretKey);
        },
      };
    },
    respond(peer: Uint8Array, random: Random) {
      checkLength(group.id, group.initiatorLength, peer);
      let result: { cipherText: Uint8Array; sharedSecret: Uint8Array };
      try {
        // FIPS 203 §7.2 input check (coefficients < q) happens inside encapsulate.
        result = kem.encapsulate(peer, mlkemEncapsulationMessage(random));
      } catch {
        throw invalidPublic(`KE data for method ${group.id} is not a valid encapsulation key`);
      }
      return { publicValue: result.cipherText, sharedSecret: result.sharedSecret };
    },
  };
}
