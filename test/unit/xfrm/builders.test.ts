import { describe, expect, it } from 'vitest';
import { buildSa } from '../../../src/xfrm/builders.js';
import * as C from '../../../src/xfrm/constants.js';

const aead = { name: 'rfc4106(gcm(aes))', key: Buffer.alloc(20, 1), icvLen: 128 };

describe('buildSa', () => {
  it('a plain tunnel-mode AEAD SA: legacy replay window, infinite limits, any/any selector of the outer family', () => {
    const sa = buildSa({ src: '2001:db8:ff::1', dst: '2001:db8:ff::2', spi: 0xc0000001, reqid: 5, aead });
    expect(sa.info).toMatchObject({
      family: C.AF_INET6,
      mode: C.XFRM_MODE_TUNNEL,
      replayWindow: 32,
      flags: 0,
      reqid: 5,
    });
    expect(sa.info.id).toEqual({ daddr: '2001:db8:ff::2', spi: 0xc0000001, proto: C.IPPROTO_ESP });
    expect(sa.info.sel).toMatchObject({ family: C.AF_INET6, daddr: '::', prefixlenD: 0 });
    expect(sa.info.lft.hardByteLimit).toBe(C.XFRM_INF);
    expect(sa.replayEsn).toBeUndefined();
  });
  it('ESN or a window above 32 moves the window into XFRMA_REPLAY_ESN_VAL and zeroes replay_window', () => {
    const esn = buildSa({ src: '192.0.2.1', dst: '192.0.2.2', spi: 1, reqid: 5, aead, esn: true, replayWindow: 128 });
    expect(esn.info.flags & C.XFRM_STATE_ESN).toBe(C.XFRM_STATE_ESN);
    expect(esn.info.replayWindow).toBe(0);
    expect(esn.replayEsn).toMatchObject({ replayWindow: 128, bmp: [0, 0, 0, 0] });
    const wide = buildSa({ src: '192.0.2.1', dst: '192.0.2.2', spi: 1, reqid: 5, aead, replayWindow: 1024 });
    expect(wide.info.flags & C.XFRM_STATE_ESN).toBe(0);
    expect(wide.info.replayWindow).toBe(0);
    expect(wide.replayEsn?.bmp).toHaveLength(32);
  });
  it('UDP encapsulation and lifetimes', () => {
    const sa = buildSa({
      src: '192.0.2.1',
      dst: '192.0.2.2',
      spi: 1,
      reqid: 5,
      aead,
      encap: { sport: 4500, dport: 31000 },
      lifetime: { softByteLimit: 1000n, hardAddExpiresSeconds: 3600n },
    });
    expect(sa.encap).toEqual({ type: C.UDP_ENCAP_ESPINUDP, sport: 4500, dport: 31000, oa: '0.0.0.0' });
    expect(sa.info.lft).toMatchObject({
      softByteLimit: 1000n,
      hardByteLimit: C.XFRM_INF,
      hardAddExpiresSeconds: 3600n,
    });
  });
  it('rejects inconsistent algorithm sets and mixed families', () => {
    const crypt = { name: 'cbc(aes)', key: Buffer.alloc(32) };
    const auth = { name: 'hmac(sha256)', key: Buffer.alloc(32), truncLen: 128 };
    expect(() => buildSa({ src: '192.0.2.1', dst: '192.0.2.2', spi: 1, reqid: 1, aead, crypt })).toThrow(/either/);
    expect(() => buildSa({ src: '192.0.2.1', dst: '192.0.2.2', spi: 1, reqid: 1 })).toThrow(/needs/);
    expect(() =>
      buildSa({ src: '192.0.2.1', dst: '192.0.2.2', spi: 1, reqid: 1, crypt, auth: { ...auth, truncLen: 0 } }),
    ).toThrow(/truncation/);
    expect(() => buildSa({ src: '192.0.2.1', dst: '2001:db8::2', spi: 1, reqid: 1, aead })).toThrow(/families/);
    expect(buildSa({ src: '192.0.2.1', dst: '192.0.2.2', spi: 1, reqid: 1, crypt, auth }).auth?.truncLen).toBe(128);
  });
});
