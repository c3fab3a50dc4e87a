import { describe, expect, it } from 'vitest';
import {
  checkRules,
  cookieNotify,
  EXCHANGE_RULES,
  type IkeMessage,
  idPayload,
  invalidKePayloadNotify,
  notify,
  type PlainPayload,
  rekeySaNotify,
  selectorFromCidr,
} from '../../src/ike/codec/index.js';
import {
  AuthMethod,
  ExchangeType,
  HeaderFlag,
  KeId,
  NotifyType,
  PayloadType,
  ProtocolId,
} from '../../src/ike/constants.js';

const sa: PlainPayload = {
  type: PayloadType.SA,
  proposals: [{ num: 1, protocol: ProtocolId.IKE, spi: new Uint8Array(0), transforms: [{ type: 4, id: 31 }] }],
};
const ke: PlainPayload = { type: PayloadType.KE, group: KeId.CURVE25519, data: new Uint8Array(32) };
const nonce: PlainPayload = { type: PayloadType.NONCE, data: new Uint8Array(32) };
const idi = idPayload(PayloadType.IDi, { kind: 'fqdn', name: 'site-a.example' });
const idr = idPayload(PayloadType.IDr, { kind: 'fqdn', name: 'site-b.example' });
const auth: PlainPayload = { type: PayloadType.AUTH, method: AuthMethod.SHARED_KEY_MIC, data: new Uint8Array(32) };
const tsi: PlainPayload = { type: PayloadType.TSi, selectors: [selectorFromCidr('198.18.1.0/24')] };
const tsr: PlainPayload = { type: PayloadType.TSr, selectors: [selectorFromCidr('198.18.2.0/24')] };
const del: PlainPayload = { type: PayloadType.DELETE, protocol: ProtocolId.IKE, spiSize: 0, spis: [] };
const eap: PlainPayload = { type: PayloadType.EAP, message: new Uint8Array([2, 1, 0, 4]) };
const vid: PlainPayload = { type: PayloadType.VENDOR_ID, data: new Uint8Array(16) };

function msg(
  exchangeType: ExchangeType,
  response: boolean,
  payloads: PlainPayload[],
  encrypted?: PlainPayload[],
): IkeMessage {
  const m: IkeMessage = {
    initiatorSpi: new Uint8Array(8),
    responderSpi: new Uint8Array(8),
    exchangeType,
    flags: response ? HeaderFlag.RESPONSE : HeaderFlag.INITIATOR,
    messageId: 1,
    payloads,
  };
  if (encrypted) m.encrypted = encrypted;
  return m;
}

function violation(m: IkeMessage): string | undefined {
  const e = checkRules(m);
  if (e === undefined) return undefined;
  expect(e.code).toBe('DECODE_PAYLOAD_RULES');
  expect(e.notify).toBe(NotifyType.INVALID_SYNTAX);
  return e.message;
}

const E = ExchangeType;

describe('payload rules', () => {
  it('cover every exchange the engine speaks, in both directions', () => {
    for (const ex of [E.IKE_SA_INIT, E.IKE_AUTH, E.CREATE_CHILD_SA, E.INFORMATIONAL, E.IKE_INTERMEDIATE]) {
      for (const response of [false, true]) {
        expect(EXCHANGE_RULES.some((r) => r.exchange === ex && r.response === response)).toBe(true);
      }
    }
  });

  describe('IKE_SA_INIT', () => {
    it('accepts a normal request and response', () => {
      expect(
        violation(msg(E.IKE_SA_INIT, false, [sa, ke, nonce, notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED), vid])),
      ).toBeUndefined();
      expect(
        violation(
          msg(E.IKE_SA_INIT, true, [
            sa,
            ke,
            nonce,
            { type: PayloadType.CERTREQ, encoding: 4, data: new Uint8Array(20) },
          ]),
        ),
      ).toBeUndefined();
    });
    it('requires SA, KE and Nonce', () => {
      expect(violation(msg(E.IKE_SA_INIT, false, [sa, nonce]))).toMatch(
        /IKE_SA_INIT request: payload KE occurs 0 times, at least 1/,
      );
      expect(violation(msg(E.IKE_SA_INIT, false, [ke, nonce]))).toMatch(/payload SA occurs 0 times/);
    });
    it('rejects duplicates, foreign payloads and encryption', () => {
      expect(violation(msg(E.IKE_SA_INIT, false, [sa, ke, nonce, nonce]))).toMatch(
        /payload NONCE occurs 2 times, at most 1/,
      );
      expect(violation(msg(E.IKE_SA_INIT, false, [sa, ke, nonce, idi]))).toMatch(/payload IDi not allowed/);
      expect(violation(msg(E.IKE_SA_INIT, false, [sa, ke, nonce], []))).toMatch(/encrypted payload not allowed/);
      expect(
        violation(
          msg(E.IKE_SA_INIT, false, [
            sa,
            ke,
            nonce,
            { type: PayloadType.CERTREQ, encoding: 4, data: new Uint8Array(0) },
          ]),
        ),
      ).toMatch(/CERTREQ not allowed/);
    });
    it('waives minimums for COOKIE and error responses', () => {
      expect(violation(msg(E.IKE_SA_INIT, true, [cookieNotify(new Uint8Array(16))]))).toBeUndefined();
      expect(violation(msg(E.IKE_SA_INIT, true, [invalidKePayloadNotify(19)]))).toBeUndefined();
      expect(violation(msg(E.IKE_SA_INIT, true, [notify(NotifyType.NO_PROPOSAL_CHOSEN)]))).toBeUndefined();
      // a COOKIE does not excuse a request
      expect(violation(msg(E.IKE_SA_INIT, false, [cookieNotify(new Uint8Array(16))]))).toMatch(/at least 1/);
    });
  });

  describe('IKE_AUTH', () => {
    it('accepts request and response with a Child SA, and childless ones', () => {
      expect(violation(msg(E.IKE_AUTH, false, [], [idi, idr, auth, sa, tsi, tsr]))).toBeUndefined();
      expect(violation(msg(E.IKE_AUTH, true, [], [idr, auth, sa, tsi, tsr]))).toBeUndefined();
      expect(violation(msg(E.IKE_AUTH, false, [], [idi, auth]))).toBeUndefined();
      expect(violation(msg(E.IKE_AUTH, true, [], [idr, auth, notify(NotifyType.TS_UNACCEPTABLE)]))).toBeUndefined();
      expect(violation(msg(E.IKE_AUTH, false, [], [eap]))).toBeUndefined();
    });
    it('must be protected and keep everything inside SK', () => {
      expect(violation(msg(E.IKE_AUTH, false, [idi, auth]))).toMatch(/must be protected/);
      expect(violation(msg(E.IKE_AUTH, false, [idi], [auth]))).toMatch(/payload IDi must be encrypted/);
    });
    it('keeps SA, TSi and TSr together', () => {
      expect(violation(msg(E.IKE_AUTH, false, [], [idi, auth, sa, tsi]))).toMatch(
        /SA\/TSi\/TSr go together; missing TSr/,
      );
    });
    it('rejects a response IDi and two AUTHs', () => {
      expect(violation(msg(E.IKE_AUTH, true, [], [idi, auth]))).toMatch(/IKE_AUTH response: payload IDi not allowed/);
      expect(violation(msg(E.IKE_AUTH, false, [], [idi, auth, auth]))).toMatch(/AUTH occurs 2 times/);
    });
    it('accepts an undecrypted message and checks only its cleartext part', () => {
      const sk = { type: PayloadType.SK as const, innerNext: 35, body: new Uint8Array(32), aad: new Uint8Array(32) };
      expect(checkRules({ ...msg(E.IKE_AUTH, false, []), payloads: [sk] })).toBeUndefined();
      expect(violation({ ...msg(E.IKE_AUTH, false, []), payloads: [idi, sk] })).toMatch(/IDi must be encrypted/);
    });
  });

  describe('CREATE_CHILD_SA', () => {
    it('accepts Child SA creation, rekey and IKE SA rekey', () => {
      expect(violation(msg(E.CREATE_CHILD_SA, false, [], [sa, nonce, ke, tsi, tsr]))).toBeUndefined();
      expect(
        violation(
          msg(E.CREATE_CHILD_SA, false, [], [rekeySaNotify(ProtocolId.ESP, new Uint8Array(4)), sa, nonce, tsi, tsr]),
        ),
      ).toBeUndefined();
      expect(violation(msg(E.CREATE_CHILD_SA, true, [], [sa, nonce, ke]))).toBeUndefined();
      expect(violation(msg(E.CREATE_CHILD_SA, true, [], [notify(NotifyType.NO_ADDITIONAL_SAS)]))).toBeUndefined();
    });
    it('requires SA and Nonce and paired TS', () => {
      expect(violation(msg(E.CREATE_CHILD_SA, false, [], [sa, tsi, tsr]))).toMatch(/NONCE occurs 0 times/);
      expect(violation(msg(E.CREATE_CHILD_SA, true, [], [sa, nonce, tsr]))).toMatch(/TSi\/TSr go together/);
      expect(violation(msg(E.CREATE_CHILD_SA, false, [], [sa, nonce, auth]))).toMatch(/AUTH not allowed/);
    });
  });

  describe('INFORMATIONAL', () => {
    it('accepts empty (liveness), delete and notify messages', () => {
      expect(violation(msg(E.INFORMATIONAL, false, [], []))).toBeUndefined();
      expect(violation(msg(E.INFORMATIONAL, true, [], []))).toBeUndefined();
      expect(
        violation(msg(E.INFORMATIONAL, false, [], [del, del, notify(NotifyType.INITIAL_CONTACT)])),
      ).toBeUndefined();
    });
    it('rejects unprotected and foreign payloads', () => {
      expect(violation(msg(E.INFORMATIONAL, false, []))).toMatch(/must be protected/);
      expect(violation(msg(E.INFORMATIONAL, false, [], [sa]))).toMatch(/INFORMATIONAL request: payload SA not allowed/);
    });
  });

  describe('IKE_INTERMEDIATE', () => {
    it('accepts an additional key exchange and empty messages', () => {
      expect(violation(msg(E.IKE_INTERMEDIATE, false, [], [ke]))).toBeUndefined();
      expect(violation(msg(E.IKE_INTERMEDIATE, true, [], [ke]))).toBeUndefined();
      expect(violation(msg(E.IKE_INTERMEDIATE, true, [], []))).toBeUndefined();
    });
    it('rejects two KEs and an SA', () => {
      expect(violation(msg(E.IKE_INTERMEDIATE, false, [], [ke, ke]))).toMatch(/KE occurs 2 times, at most 1/);
      expect(violation(msg(E.IKE_INTERMEDIATE, false, [], [sa]))).toMatch(/SA not allowed/);
    });
  });

  it('rejects unsupported exchange types', () => {
    expect(violation(msg(38 as ExchangeType, false, [], []))).toMatch(
      /IKE_SESSION_RESUME request: exchange type not supported/,
    );
    expect(violation(msg(99 as ExchangeType, true, [], []))).toMatch(/UNKNOWN\(99\) response/);
  });
});
