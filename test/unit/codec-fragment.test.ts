import { describe, expect, it } from 'vitest';
import {
  checkRules,
  type DecryptedFragment,
  decodeMessage,
  decryptFragment,
  decryptMessage,
  encodeMessage,
  FragmentReassembler,
  fragmentCapacity,
  fragmentMessage,
  type IkeMessage,
  idPayload,
  skfPayloadOf,
} from '../../src/ike/codec/index.js';
import {
  AuthMethod,
  CertEncoding,
  EncrId,
  ExchangeType,
  HeaderFlag,
  IntegId,
  PayloadType,
} from '../../src/ike/constants.js';
import { createNobleProvider, createNodeProvider, createSkCipher } from '../../src/ike/crypto/index.js';
import type { SkCipher } from '../../src/ike/crypto/provider.js';
import { codeOf } from './codec-helpers.js';

const seq = (n: number, start = 0) => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);

function counterIv(): (n: number) => Uint8Array {
  let c = 0;
  return (n) => {
    c++;
    const iv = new Uint8Array(n);
    new DataView(iv.buffer).setUint32(n - 4, c);
    return iv;
  };
}

const ciphers: [string, SkCipher][] = [];
for (const provider of [createNodeProvider(), createNobleProvider()]) {
  ciphers.push([
    `${provider.name} AES-GCM-16-256`,
    createSkCipher(provider, { encrId: EncrId.AES_GCM_16, keyLength: 256 }, { encKey: seq(36, 1) }),
  ]);
  ciphers.push([
    `${provider.name} AES-CBC-128/HMAC-SHA2-256-128`,
    createSkCipher(
      provider,
      { encrId: EncrId.AES_CBC, keyLength: 128, integId: IntegId.HMAC_SHA2_256_128 },
      { encKey: seq(16, 7), integKey: seq(32, 9) },
    ),
  ]);
}

const big: IkeMessage = {
  initiatorSpi: seq(8, 0x10),
  responderSpi: seq(8, 0x20),
  exchangeType: ExchangeType.IKE_AUTH,
  flags: HeaderFlag.INITIATOR,
  messageId: 1,
  payloads: [],
  encrypted: [
    idPayload(PayloadType.IDi, { kind: 'fqdn', name: 'site-a.example' }),
    { type: PayloadType.CERT, encoding: CertEncoding.X509_SIGNATURE, data: seq(3000, 3) },
    { type: PayloadType.AUTH, method: AuthMethod.DIGITAL_SIGNATURE, data: seq(300, 5) },
  ],
};

function shuffle<T>(a: T[], seed: number): T[] {
  const out = a.slice();
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe.each(ciphers)('fragmentation with %s', (_name, cipher) => {
  const maxSize = 576;
  const fragments = fragmentMessage(big, { cipher, iv: counterIv(), maxSize });

  it('splits into SKF fragments no larger than maxSize (RFC 7383 §2.5)', () => {
    expect(fragments.length).toBeGreaterThan(5);
    fragments.forEach((f, i) => {
      expect(f.length).toBeLessThanOrEqual(maxSize);
      const m = decodeMessage(f);
      expect(m.messageId).toBe(1);
      expect(f[16]).toBe(PayloadType.SKF); // IKE header Next Payload
      const skf = skfPayloadOf(m)!;
      expect(skf.fragmentNumber).toBe(i + 1);
      expect(skf.totalFragments).toBe(fragments.length);
      // only the first fragment names the first inner payload
      expect(skf.innerNext).toBe(i === 0 ? PayloadType.IDi : PayloadType.NONE);
      expect(checkRules(m)).toBeUndefined();
    });
    // all but the last are filled up to the capacity
    expect(fragments[0]!.length).toBeGreaterThan(maxSize - cipher.blockSize);
    expect(fragmentCapacity(cipher, maxSize)).toBeGreaterThan(400);
  });

  it('reassembles out of order with duplicates', () => {
    const r = new FragmentReassembler();
    const decrypted = fragments.map((f) => decryptFragment(decodeMessage(f), cipher));
    const order = shuffle([...decrypted, decrypted[2]!, decrypted[0]!], 7);
    let complete: IkeMessage | undefined;
    let duplicates = 0;
    for (const f of order) {
      const res = r.add(f);
      if (res.status === 'complete') complete = res.message;
      if (res.status === 'duplicate') duplicates++;
    }
    expect(duplicates).toBe(2);
    expect(complete).toBeDefined();
    expect(complete!.encrypted).toEqual(big.encrypted);
    expect(complete!.messageId).toBe(1);
    expect(checkRules(complete!)).toBeUndefined();
  });

  it('rejects a tampered fragment before reassembly', () => {
    const f = fragments[1]!.slice();
    f[f.length - 20]! ^= 1;
    expect(codeOf(() => decryptFragment(decodeMessage(f), cipher))).toBe('DECODE_INTEGRITY');
    expect(codeOf(() => decryptMessage(decodeMessage(f), cipher))).toBe('DECODE_BAD_VALUE');
  });

  it('a protected message round-trips through encodeMessage and decryptMessage', () => {
    const bytes = encodeMessage(big, { cipher, iv: counterIv() });
    const back = decryptMessage(decodeMessage(bytes), cipher);
    expect(back.encrypted).toEqual(big.encrypted);
    expect(back.payloads).toEqual([]);
    expect((bytes.length - 28 - 4 - cipher.ivLength - cipher.icvLength) % cipher.blockSize).toBe(0);
  });
});

describe('FragmentReassembler', () => {
  const header = { initiatorSpi: seq(8), responderSpi: seq(8, 8), exchangeType: 35, flags: 8, messageId: 1 };
  const frag = (n: number, total: number, data: Uint8Array, innerNext = 0): DecryptedFragment => ({
    header,
    cleartext: [],
    fragmentNumber: n,
    totalFragments: total,
    innerNext,
    data,
  });
  // an inner chain of one Vendor ID payload of 12 bytes, split in three
  const chain = Uint8Array.from([0, 0, 0, 16, ...seq(12, 0x40)]);
  const parts = [chain.subarray(0, 5), chain.subarray(5, 11), chain.subarray(11)];

  it('restarts when Total Fragments grows and ignores stale fragments (RFC 7383 §2.6)', () => {
    const r = new FragmentReassembler();
    expect(r.add(frag(1, 2, chain.subarray(0, 8), PayloadType.VENDOR_ID)).status).toBe('incomplete');
    // the sender re-fragmented into 3
    expect(r.add(frag(2, 3, parts[1]!))).toEqual({ status: 'incomplete', received: 1, total: 3 });
    expect(r.add(frag(2, 2, chain.subarray(8))).status).toBe('stale');
    expect(r.add(frag(3, 3, parts[2]!)).status).toBe('incomplete');
    const res = r.add(frag(1, 3, parts[0]!, PayloadType.VENDOR_ID));
    expect(res.status).toBe('complete');
    if (res.status !== 'complete') return;
    expect(res.message.encrypted).toEqual([{ type: PayloadType.VENDOR_ID, data: seq(12, 0x40) }]);
    expect(r.add(frag(1, 3, parts[0]!, PayloadType.VENDOR_ID)).status).toBe('duplicate');
  });

  it('enforces the fragment count and byte limits', () => {
    expect(codeOf(() => new FragmentReassembler({ maxFragments: 2 }).add(frag(1, 3, parts[0]!)))).toBe(
      'DECODE_TOO_MANY',
    );
    const r = new FragmentReassembler({ maxBytes: 10 });
    r.add(frag(1, 3, parts[0]!, PayloadType.VENDOR_ID));
    expect(codeOf(() => r.add(frag(2, 3, parts[1]!)))).toBe('DECODE_TOO_LARGE');
    expect(r.received).toBe(0);
  });

  it('rejects fragments of another message and bad numbers', () => {
    const r = new FragmentReassembler();
    r.add(frag(1, 3, parts[0]!, PayloadType.VENDOR_ID));
    expect(codeOf(() => r.add({ ...frag(2, 3, parts[1]!), header: { ...header, messageId: 2 } }))).toBe(
      'DECODE_BAD_VALUE',
    );
    expect(codeOf(() => r.add(frag(4, 3, parts[1]!)))).toBe('DECODE_BAD_VALUE');
  });

  it('reports a malformed reassembled chain as a DecodeError', () => {
    const r = new FragmentReassembler();
    r.add(frag(1, 2, Uint8Array.from([0, 0, 0, 40]), PayloadType.VENDOR_ID));
    expect(codeOf(() => r.add(frag(2, 2, seq(3))))).toBe('DECODE_TRUNCATED');
  });

  it('fragmentMessage validates its input', () => {
    const cipher = ciphers[0]![1];
    expect(
      codeOf(() => fragmentMessage({ ...big, encrypted: undefined }, { cipher, iv: counterIv(), maxSize: 576 })),
    ).toBe('ENCODE_INVALID');
    expect(codeOf(() => fragmentMessage(big, { cipher, iv: counterIv(), maxSize: 60 }))).toBe('ENCODE_INVALID');
    expect(
      codeOf(() =>
        fragmentMessage(
          { ...big, payloads: [{ type: PayloadType.VENDOR_ID, data: seq(4) }] },
          { cipher, iv: counterIv(), maxSize: 576 },
        ),
      ),
    ).toBe('ENCODE_INVALID');
  });
});

describe('fragmentMessage IV source', () => {
  it('refuses one fixed IV for several fragments (AEAD nonce reuse)', () => {
    const cipher = ciphers[0]![1];
    expect(codeOf(() => fragmentMessage(big, { cipher, iv: new Uint8Array(8), maxSize: 576 }))).toBe('ENCODE_INVALID');
  });
});
