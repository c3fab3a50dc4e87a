import { describe, expect, it } from 'vitest';
import { IntegId, type PrfId } from '../../src/ike/constants.js';
import { integTransform, prf } from '../../src/ike/crypto/index.js';
import type { HashName } from '../../src/ike/crypto/provider.js';
import { fromHex, loadVectors, providers, toHex } from './crypto-helpers.js';

interface MacVector {
  name: string;
  hash: HashName;
  key: string;
  data: string;
  mac: string;
}
const rfc2202 = loadVectors<{ vectors: MacVector[] }>('hmac-sha1-rfc2202.json');
const rfc4231 = loadVectors<{ vectors: MacVector[] }>('hmac-sha2-rfc4231.json');
const rfc4868 = loadVectors<{
  prf: { name: string; prfId: PrfId; key: string; data: string; output: string }[];
  auth: { name: string; integId: IntegId; key: string; data: string; icv: string }[];
}>('hmac-sha2-rfc4868.json');

describe.each(providers)('HMAC known answers ($name provider)', (provider) => {
  it.each([...rfc2202.vectors, ...rfc4231.vectors])('$name', (v) => {
    const mac = provider.hmac(v.hash, fromHex(v.key), fromHex(v.data));
    // RFC 4231 test case 5 publishes only the leading 128 bits.
    expect(toHex(mac.subarray(0, v.mac.length / 2))).toBe(v.mac);
    expect(mac.length).toBe({ sha1: 20, sha256: 32, sha384: 48, sha512: 64 }[v.hash]);
  });

  it.each(rfc4868.prf)('RFC 4868 $name', (v) => {
    expect(toHex(prf(provider, v.prfId, fromHex(v.key), fromHex(v.data)))).toBe(v.output);
  });

  it.each(rfc4868.auth)('RFC 4868 §2.7.2 $name: ICV is the truncated HMAC', (v) => {
    const t = integTransform(v.integId);
    const key = fromHex(v.key);
    expect(key.length).toBe(t.keyLength);
    const icv = provider.hmac(t.hash, key, fromHex(v.data)).subarray(0, t.icvLength);
    expect(toHex(icv)).toBe(v.icv);
  });

  it('HMAC-SHA1-96 (RFC 2404) is the leading 12 bytes of RFC 2202 test case 1', () => {
    const t = integTransform(IntegId.HMAC_SHA1_96);
    const v = rfc2202.vectors[0]!;
    const icv = provider.hmac(t.hash, fromHex(v.key), fromHex(v.data)).subarray(0, t.icvLength);
    expect(toHex(icv)).toBe('b617318655057264e28bc0b6');
  });

  it('hashes the empty string (FIPS 180-4 known digests)', () => {
    const empty = new Uint8Array(0);
    expect(toHex(provider.hash('sha1', empty))).toBe('da39a3ee5e6b4b0d3255bfef95601890afd80709');
    expect(toHex(provider.hash('sha256', empty))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });
});

describe('vector files', () => {
  it('name their sources', () => {
    for (const f of [rfc2202, rfc4231, rfc4868]) expect(f.source).toMatch(/RFC \d+/);
  });
});
