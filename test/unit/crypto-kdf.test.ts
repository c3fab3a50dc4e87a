import { describe, expect, it } from 'vitest';
import { EncrId, IntegId, PrfId } from '../../src/ike/constants.js';
import {
  additionalKeSkeyseed,
  childKeyMaterial,
  childKeyMaterialLength,
  deriveChildSaKeys,
  deriveIkeSaKeys,
  ikeKeyLengths,
  ikeKeyMaterial,
  PRF_PLUS_MAX_BLOCKS,
  prf,
  prfPlus,
  prfPlusMaxLength,
  rekeySkeyseed,
  skeyseed,
} from '../../src/ike/crypto/index.js';
import { errorCode, fromHex, loadVectors, providers, toHex } from './crypto-helpers.js';

interface KdfCase {
  name: string;
  origin: string;
  prfId: PrfId;
  ni: string;
  nr: string;
  gir: string;
  girNew: string;
  spii: string;
  spir: string;
  dkmLength: number;
  childDkmLength?: number;
  skeyseed: string;
  dkm: string;
  dkmChild?: string;
  dkmChildDh?: string;
  skeyseedRekey: string;
}
const file = loadVectors<{ cases: KdfCase[] }>('ikev2-kdf-sp800-135.json');
const PRF_LEN = {
  [PrfId.HMAC_SHA1]: 20,
  [PrfId.HMAC_SHA2_256]: 32,
  [PrfId.HMAC_SHA2_384]: 48,
  [PrfId.HMAC_SHA2_512]: 64,
};

describe.each(providers)('IKEv2 KDF known answers, NIST SP 800-135 ($name provider)', (provider) => {
  describe.each(file.cases)('$name', (c) => {
    const ni = fromHex(c.ni);
    const nr = fromHex(c.nr);
    const skd = () => fromHex(c.dkm).subarray(0, PRF_LEN[c.prfId as keyof typeof PRF_LEN]);

    it('SKEYSEED = prf(Ni | Nr, g^ir)', () => {
      expect(toHex(skeyseed(provider, c.prfId, ni, nr, fromHex(c.gir)))).toBe(c.skeyseed);
    });

    it('DKM = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)', () => {
      const dkm = ikeKeyMaterial(
        provider,
        c.prfId,
        fromHex(c.skeyseed),
        ni,
        nr,
        fromHex(c.spii),
        fromHex(c.spir),
        c.dkmLength,
      );
      expect(toHex(dkm)).toBe(c.dkm);
    });

    it('SKEYSEED(rekey) = prf(SK_d, g^ir(new) | Ni | Nr)', () => {
      expect(toHex(rekeySkeyseed(provider, c.prfId, skd(), fromHex(c.girNew), ni, nr))).toBe(c.skeyseedRekey);
      expect(toHex(rekeySkeyseed(provider, c.prfId, skd(), [fromHex(c.girNew)], ni, nr))).toBe(c.skeyseedRekey);
    });
  });
});

// Only cases that publish the child-SA DKMs (the NSS copies of the SHA-384/512 samples do not).
const childCases = file.cases.filter((c) => c.dkmChild !== undefined && c.dkmChildDh !== undefined);

describe.each(providers)('IKEv2 CHILD SA KDF known answers, NIST SP 800-135 ($name provider)', (provider) => {
  describe.each(childCases)('$name', (c) => {
    const ni = fromHex(c.ni);
    const nr = fromHex(c.nr);
    const skd = fromHex(c.dkm).subarray(0, PRF_LEN[c.prfId as keyof typeof PRF_LEN]);

    it('DKM(Child SA) = prf+(SK_d, Ni | Nr)', () => {
      expect(toHex(childKeyMaterial(provider, c.prfId, skd, ni, nr, c.childDkmLength!))).toBe(c.dkmChild);
    });

    it('DKM(Child SA D-H) = prf+(SK_d, g^ir(new) | Ni | Nr)', () => {
      const km = childKeyMaterial(provider, c.prfId, skd, ni, nr, c.childDkmLength!, [fromHex(c.girNew)]);
      expect(toHex(km)).toBe(c.dkmChildDh);
    });
  });
});

describe('KDF vector coverage', () => {
  it('has SKEYSEED, DKM and rekey cases for every HMAC PRF, and full child-SA cases for SHA-1 and SHA-256', () => {
    for (const id of [PrfId.HMAC_SHA1, PrfId.HMAC_SHA2_256, PrfId.HMAC_SHA2_384, PrfId.HMAC_SHA2_512]) {
      expect(file.cases.some((c) => c.prfId === id && c.skeyseed && c.dkm && c.skeyseedRekey)).toBe(true);
    }
    for (const id of [PrfId.HMAC_SHA1, PrfId.HMAC_SHA2_256]) {
      expect(file.cases.some((c) => c.prfId === id && c.dkmChild && c.dkmChildDh)).toBe(true);
    }
    expect(file.source).toMatch(/SP 800-135/);
  });
});

describe.each(providers)('prf+ and key splitting ($name provider)', (provider) => {
  it('prf+ follows RFC 7296 §2.13: T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n)', () => {
    const key = fromHex('0102030405');
    const seed = fromHex('aabbcc');
    const t1 = provider.hmac('sha256', key, fromHex('aabbcc01'));
    const t2 = provider.hmac('sha256', key, Uint8Array.from([...t1, 0xaa, 0xbb, 0xcc, 2]));
    const t3 = provider.hmac('sha256', key, Uint8Array.from([...t2, 0xaa, 0xbb, 0xcc, 3]));
    expect(toHex(prfPlus(provider, PrfId.HMAC_SHA2_256, key, seed, 70))).toBe(
      toHex(Uint8Array.from([...t1, ...t2, ...t3])).slice(0, 140),
    );
    // Shorter outputs are prefixes.
    expect(toHex(prfPlus(provider, PrfId.HMAC_SHA2_256, key, seed, 5))).toBe(toHex(t1).slice(0, 10));
    expect(prfPlus(provider, PrfId.HMAC_SHA2_256, key, seed, 0)).toHaveLength(0);
  });

  it('prf+ stops at 255 blocks with CRYPTO_PRF_PLUS_LIMIT', () => {
    const key = new Uint8Array(20);
    expect(prfPlusMaxLength(PrfId.HMAC_SHA1)).toBe(255 * 20);
    expect(prfPlus(provider, PrfId.HMAC_SHA1, key, new Uint8Array(4), PRF_PLUS_MAX_BLOCKS * 20)).toHaveLength(5100);
    expect(errorCode(() => prfPlus(provider, PrfId.HMAC_SHA1, key, new Uint8Array(4), 5101))).toBe(
      'CRYPTO_PRF_PLUS_LIMIT',
    );
    expect(errorCode(() => prfPlus(provider, PrfId.HMAC_SHA1, key, new Uint8Array(4), -1))).toBe(
      'CRYPTO_INVALID_LENGTH',
    );
  });

  it('prf uses an HMAC key of any length as is, and rejects unsupported PRFs', () => {
    const long = new Uint8Array(200).fill(1);
    expect(toHex(prf(provider, PrfId.HMAC_SHA2_512, long, new Uint8Array(1)))).toBe(
      toHex(provider.hmac('sha512', long, new Uint8Array(1))),
    );
    expect(errorCode(() => prf(provider, PrfId.AES128_XCBC, new Uint8Array(16), new Uint8Array(1)))).toBe(
      'CRYPTO_UNSUPPORTED',
    );
  });

  it('splits SK_* in RFC 7296 §2.14 order with lengths from the negotiated transforms (AES-CBC + HMAC)', () => {
    const suite = {
      prfId: PrfId.HMAC_SHA2_384,
      encrId: EncrId.AES_CBC,
      keyLength: 192,
      integId: IntegId.HMAC_SHA2_256_128,
    };
    expect(ikeKeyLengths(suite)).toEqual({ prf: 48, integ: 32, encr: 24, total: 3 * 48 + 2 * 32 + 2 * 24 });
    const seed = new Uint8Array(48).fill(5);
    const [ni, nr, spiI, spiR] = [
      fromHex('0001'),
      fromHex('0203'),
      new Uint8Array(8).fill(1),
      new Uint8Array(8).fill(2),
    ];
    const keys = deriveIkeSaKeys(provider, suite, seed, ni, nr, spiI, spiR);
    const km = ikeKeyMaterial(provider, suite.prfId, seed, ni, nr, spiI, spiR, 256);
    const parts = [keys.skD, keys.skAi, keys.skAr, keys.skEi, keys.skEr, keys.skPi, keys.skPr];
    expect(parts.map((p) => p.length)).toEqual([48, 32, 32, 24, 24, 48, 48]);
    expect(toHex(Uint8Array.from(parts.flatMap((p) => [...p])))).toBe(toHex(km));
    expect(errorCode(() => deriveIkeSaKeys(provider, suite, seed, ni, nr, new Uint8Array(4), spiR))).toBe(
      'CRYPTO_INVALID_LENGTH',
    );
  });

  it('gives AEAD suites no SK_a and salted SK_e (AES-GCM-16-256: 36 bytes, ChaCha20-Poly1305: 36 bytes)', () => {
    const gcm = ikeKeyLengths({ prfId: PrfId.HMAC_SHA2_256, encrId: EncrId.AES_GCM_16, keyLength: 256 });
    expect(gcm).toEqual({ prf: 32, integ: 0, encr: 36, total: 3 * 32 + 2 * 36 });
    const chacha = ikeKeyLengths({ prfId: PrfId.HMAC_SHA2_512, encrId: EncrId.CHACHA20_POLY1305 });
    expect(chacha.encr).toBe(36);
  });

  it('splits CHILD SA KEYMAT initiator->responder first, encryption key before integrity key (RFC 7296 §2.17)', () => {
    const suite = { encrId: EncrId.AES_CBC, keyLength: 128, integId: IntegId.HMAC_SHA1_96 };
    const skD = new Uint8Array(32).fill(9);
    const [ni, nr] = [fromHex('11'), fromHex('22')];
    const keys = deriveChildSaKeys(provider, PrfId.HMAC_SHA2_256, skD, suite, ni, nr);
    expect(childKeyMaterialLength(suite)).toBe(2 * (16 + 20));
    const km = childKeyMaterial(provider, PrfId.HMAC_SHA2_256, skD, ni, nr, 72);
    expect(toHex(keys.initiatorToResponder.encKey)).toBe(toHex(km.subarray(0, 16)));
    expect(toHex(keys.initiatorToResponder.integKey)).toBe(toHex(km.subarray(16, 36)));
    expect(toHex(keys.responderToInitiator.encKey)).toBe(toHex(km.subarray(36, 52)));
    expect(toHex(keys.responderToInitiator.integKey)).toBe(toHex(km.subarray(52, 72)));
    // With PFS the new g^ir precedes the nonces.
    const gir = new Uint8Array(32).fill(3);
    const pfs = deriveChildSaKeys(provider, PrfId.HMAC_SHA2_256, skD, suite, ni, nr, [gir]);
    const kmPfs = prfPlus(provider, PrfId.HMAC_SHA2_256, skD, Uint8Array.from([...gir, ...ni, ...nr]), 72);
    expect(toHex(pfs.initiatorToResponder.encKey)).toBe(toHex(kmPfs.subarray(0, 16)));
    const gcm = deriveChildSaKeys(
      provider,
      PrfId.HMAC_SHA2_256,
      skD,
      { encrId: EncrId.AES_GCM_16, keyLength: 256 },
      ni,
      nr,
    );
    expect(gcm.initiatorToResponder.encKey).toHaveLength(36);
    expect(gcm.initiatorToResponder.integKey).toHaveLength(0);
  });

  it('RFC 9370: additional key exchanges chain SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)', () => {
    const [ni, nr] = [fromHex('aa'), fromHex('bb')];
    const skD = new Uint8Array(32).fill(4);
    const sk1 = new Uint8Array(32).fill(6);
    expect(toHex(additionalKeSkeyseed(provider, PrfId.HMAC_SHA2_256, skD, sk1, ni, nr))).toBe(
      toHex(provider.hmac('sha256', skD, Uint8Array.from([...sk1, ...ni, ...nr]))),
    );
    const gir = new Uint8Array(32).fill(8);
    expect(toHex(rekeySkeyseed(provider, PrfId.HMAC_SHA2_256, skD, [gir, sk1], ni, nr))).toBe(
      toHex(provider.hmac('sha256', skD, Uint8Array.from([...gir, ...sk1, ...ni, ...nr]))),
    );
  });
});
