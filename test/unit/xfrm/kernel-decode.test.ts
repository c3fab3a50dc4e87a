/** Decoding what kernels actually sent back (fixtures captured from the host kernel and from UML, see kernel-fixtures.ts). */
import { describe, expect, it } from 'vitest';
import * as C from '../../../src/xfrm/constants.js';
import { decodePolicyBody, decodeSaBody, encodePolicyBody, type XfrmSa } from '../../../src/xfrm/messages.js';
import { POLICY_0, POLICY_1, SA_0, SA_1 } from './kernel-fixtures.js';

const hex = (h: string) => Buffer.from(h, 'hex');
const testKey = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223', 'hex');

describe('decoding kernel XFRM_MSG_NEWPOLICY (host kernel dump)', () => {
  const pols = [POLICY_0, POLICY_1].map((h) => decodePolicyBody(hex(h)));
  it('tunnel policy with template and mark', () => {
    const p = pols.find((x) => x.info.sel.family === C.AF_INET)!;
    expect(p.info.sel).toMatchObject({
      saddr: '198.18.1.0',
      prefixlenS: 24,
      daddr: '198.18.2.0',
      prefixlenD: 24,
      proto: 0,
    });
    expect(p.info).toMatchObject({ dir: C.XFRM_POLICY_OUT, action: C.XFRM_POLICY_ALLOW, priority: 0x10000 - 48 });
    expect(p.info.lft.hardByteLimit).toBe(C.XFRM_INF);
    expect(p.info.curlft.addTime).toBeGreaterThan(1_700_000_000n); // the kernel stamped it
    expect(p.info.index & C.XFRM_POLICY_MAX).toBe(C.XFRM_POLICY_OUT); // kernel-chosen index encodes the dir
    expect(p.mark).toEqual({ v: 0x42, m: 0xff });
    expect(p.type).toBe(C.XFRM_POLICY_TYPE_MAIN); // the kernel always reports XFRMA_POLICY_TYPE
    expect(p.tmpls).toEqual([
      {
        id: { daddr: '192.0.2.2', spi: 0, proto: C.IPPROTO_ESP },
        family: C.AF_INET,
        saddr: '192.0.2.1',
        reqid: 0x4d490001,
        mode: C.XFRM_MODE_TUNNEL,
        share: 0,
        optional: 0,
        aalgos: 0xffffffff,
        ealgos: 0xffffffff,
        calgos: 0xffffffff,
      },
    ]);
  });
  it('IPv6 bypass policy: ports in network order, our index kept', () => {
    const p = pols.find((x) => x.info.sel.family === C.AF_INET6)!;
    expect(p.info.sel).toMatchObject({
      daddr: '::',
      saddr: '::',
      proto: C.IPPROTO_UDP,
      dport: 4500,
      dportMask: 0xffff,
      sport: 0,
    });
    expect(p.info).toMatchObject({ dir: C.XFRM_POLICY_IN, priority: 1, index: 0x4d490000 });
    expect(p.tmpls).toEqual([]);
  });
  it('re-encodes the kernel info struct byte for byte', () => {
    for (const h of [POLICY_0, POLICY_1]) {
      const b = hex(h);
      const p = decodePolicyBody(b);
      expect(encodePolicyBody({ info: p.info, tmpls: [] }).subarray(0, C.SIZEOF_XFRM_USERPOLICY_INFO)).toEqual(
        b.subarray(0, C.SIZEOF_XFRM_USERPOLICY_INFO),
      );
    }
  });
});

describe('decoding kernel XFRM_MSG_NEWSA (UML kernel dump)', () => {
  const sas: XfrmSa[] = [SA_0, SA_1].map((h) => decodeSaBody(hex(h)));
  it('AES-GCM-256 with UDP encapsulation and mark', () => {
    const s = sas.find((x) => x.info.id.spi === 0x1001)!;
    expect(s.info).toMatchObject({
      family: C.AF_INET,
      saddr: '192.0.2.1',
      reqid: 0x4d490001,
      mode: C.XFRM_MODE_TUNNEL,
      replayWindow: 32,
    });
    expect(s.info.id).toEqual({ daddr: '192.0.2.2', spi: 0x1001, proto: C.IPPROTO_ESP });
    expect(s.info.lft.softByteLimit).toBe(4096n);
    expect(s.aead).toEqual({ name: 'rfc4106(gcm(aes))', key: testKey, icvLen: 128 });
    expect(s.encap).toEqual({ type: C.UDP_ENCAP_ESPINUDP, sport: 4500, dport: 4500, oa: '0.0.0.0' });
    expect(s.mark).toEqual({ v: 7, m: 0xffffffff });
    expect(s.info.curlft.addTime).toBeGreaterThan(1_700_000_000n); // stamped by the kernel
  });
  it('AES-CBC-256 + HMAC-SHA-256 keeps the 128-bit truncation (XFRMA_ALG_AUTH_TRUNC), IPv6', () => {
    const s = sas.find((x) => x.info.id.spi === 0x1002)!;
    expect(s.info).toMatchObject({ family: C.AF_INET6, saddr: '2001:db8:ff::1' });
    expect(s.info.id.daddr).toBe('2001:db8:ff::2');
    expect(s.crypt).toEqual({ name: 'cbc(aes)', key: testKey.subarray(0, 32) });
    expect(s.auth).toEqual({ name: 'hmac(sha256)', key: testKey.subarray(0, 32), truncLen: 128 });
    expect(s.aead).toBeUndefined();
    expect(s.encap).toBeUndefined();
  });
});
