/**
 * Declarative payload rules per exchange (modelled on the idea of strongSwan's message.c payload_rules; our own
 * tables from RFC 7296 §1.2-§1.5, RFC 9242, RFC 9370). For each exchange type and direction they say which payload
 * types may appear, how often, and whether inside SK. `checkRules` applies them to a decoded (and decrypted)
 * message in one place.
 *
 * Minimum counts are waived in a message that carries an error notify (type < 16384) or, in an IKE_SA_INIT
 * response, a COOKIE notify: such messages legitimately carry nothing else (RFC 7296 §2.6, §1.3 INVALID_KE_PAYLOAD,
 * §2.21). "Together" groups must all be present or all be absent (SA/TSi/TSr when IKE_AUTH creates a Child SA).
 */
import { ExchangeType, NOTIFY_ERROR_MAX, NotifyType, nameOf, PayloadType } from '../constants.js';
import { DecodeError } from '../errors.js';
import type { IkeMessage } from './message.js';
import type { Payload } from './payloads/index.js';

/** "Any number": bounded by the payload count cap of the decoder. */
export const MANY = Number.POSITIVE_INFINITY;

export interface PayloadRule {
  type: PayloadType;
  min: number;
  max: number;
  /** True: only inside SK. False: only in cleartext. */
  encrypted: boolean;
}

export interface ExchangeRules {
  exchange: ExchangeType;
  response: boolean;
  /** Whether the message must carry SK (all exchanges except IKE_SA_INIT). */
  protected: boolean;
  rules: readonly PayloadRule[];
  /** Groups whose members appear all or none. */
  together?: readonly (readonly PayloadType[])[];
}

const r = (type: PayloadType, min: number, max: number, encrypted: boolean): PayloadRule => ({
  type,
  min,
  max,
  encrypted,
});

const P = PayloadType;

const SA_INIT_REQUEST = [
  r(P.NOTIFY, 0, MANY, false),
  r(P.SA, 1, 1, false),
  r(P.KE, 1, 1, false),
  r(P.NONCE, 1, 1, false),
  r(P.VENDOR_ID, 0, MANY, false),
];
const SA_INIT_RESPONSE = [...SA_INIT_REQUEST, r(P.CERTREQ, 0, MANY, false)];

const AUTH_REQUEST = [
  r(P.NOTIFY, 0, MANY, true),
  r(P.IDi, 0, 1, true),
  r(P.CERT, 0, MANY, true),
  r(P.CERTREQ, 0, MANY, true),
  r(P.IDr, 0, 1, true),
  r(P.AUTH, 0, 1, true),
  r(P.EAP, 0, 1, true),
  r(P.CP, 0, 1, true),
  r(P.SA, 0, 1, true),
  r(P.TSi, 0, 1, true),
  r(P.TSr, 0, 1, true),
  r(P.VENDOR_ID, 0, MANY, true),
];
const AUTH_RESPONSE = [
  r(P.NOTIFY, 0, MANY, true),
  r(P.IDr, 0, 1, true),
  r(P.CERT, 0, MANY, true),
  r(P.AUTH, 0, 1, true),
  r(P.EAP, 0, 1, true),
  r(P.CP, 0, 1, true),
  r(P.SA, 0, 1, true),
  r(P.TSi, 0, 1, true),
  r(P.TSr, 0, 1, true),
  r(P.VENDOR_ID, 0, MANY, true),
];
const CHILD_REQUEST = [
  r(P.NOTIFY, 0, MANY, true),
  r(P.SA, 1, 1, true),
  r(P.NONCE, 1, 1, true),
  r(P.KE, 0, 1, true),
  r(P.TSi, 0, 1, true),
  r(P.TSr, 0, 1, true),
  r(P.VENDOR_ID, 0, MANY, true),
];
const INFORMATIONAL = [
  r(P.NOTIFY, 0, MANY, true),
  r(P.DELETE, 0, MANY, true),
  r(P.CP, 0, 1, true),
  r(P.VENDOR_ID, 0, MANY, true),
];
const INTERMEDIATE = [r(P.NOTIFY, 0, MANY, true), r(P.KE, 0, 1, true), r(P.VENDOR_ID, 0, MANY, true)];
const FOLLOWUP_KE = [r(P.NOTIFY, 0, MANY, true), r(P.KE, 1, 1, true), r(P.VENDOR_ID, 0, MANY, true)];

const TS_TOGETHER = [[P.TSi, P.TSr]] as const;
const CHILD_TOGETHER = [[P.SA, P.TSi, P.TSr]] as const;

/** The rule table. */
export const EXCHANGE_RULES: readonly ExchangeRules[] = [
  { exchange: ExchangeType.IKE_SA_INIT, response: false, protected: false, rules: SA_INIT_REQUEST },
  { exchange: ExchangeType.IKE_SA_INIT, response: true, protected: false, rules: SA_INIT_RESPONSE },
  { exchange: ExchangeType.IKE_AUTH, response: false, protected: true, rules: AUTH_REQUEST, together: CHILD_TOGETHER },
  { exchange: ExchangeType.IKE_AUTH, response: true, protected: true, rules: AUTH_RESPONSE, together: CHILD_TOGETHER },
  {
    exchange: ExchangeType.CREATE_CHILD_SA,
    response: false,
    protected: true,
    rules: CHILD_REQUEST,
    together: TS_TOGETHER,
  },
  {
    exchange: ExchangeType.CREATE_CHILD_SA,
    response: true,
    protected: true,
    rules: CHILD_REQUEST,
    together: TS_TOGETHER,
  },
  { exchange: ExchangeType.INFORMATIONAL, response: false, protected: true, rules: INFORMATIONAL },
  { exchange: ExchangeType.INFORMATIONAL, response: true, protected: true, rules: INFORMATIONAL },
  { exchange: ExchangeType.IKE_INTERMEDIATE, response: false, protected: true, rules: INTERMEDIATE },
  { exchange: ExchangeType.IKE_INTERMEDIATE, response: true, protected: true, rules: INTERMEDIATE },
  { exchange: ExchangeType.IKE_FOLLOWUP_KE, response: false, protected: true, rules: FOLLOWUP_KE },
  { exchange: ExchangeType.IKE_FOLLOWUP_KE, response: true, protected: true, rules: FOLLOWUP_KE },
];

export function rulesFor(exchange: number, response: boolean): ExchangeRules | undefined {
  return EXCHANGE_RULES.find((e) => e.exchange === exchange && e.response === response);
}

const pname = (t: number) => nameOf(PayloadType as unknown as Record<string, string | number>, t);

function violation(exchange: number, response: boolean, text: string): DecodeError {
  const where = `${nameOf(ExchangeType as unknown as Record<string, string | number>, exchange)} ${response ? 'response' : 'request'}`;
  return new DecodeError('DECODE_PAYLOAD_RULES', `${where}: ${text}`, { notify: NotifyType.INVALID_SYNTAX });
}

/**
 * Check a message against the rules of its exchange. Call after decryptMessage (or reassembly); on a message whose
 * SK is still encrypted only the cleartext part is checked. Returns undefined when the message conforms, else a
 * DecodeError('DECODE_PAYLOAD_RULES') naming the payload and the rule broken.
 */
export function checkRules(msg: IkeMessage): DecodeError | undefined {
  const response = (msg.flags & 0x20) !== 0;
  const ex = rulesFor(msg.exchangeType, response);
  if (!ex) return violation(msg.exchangeType, response, 'exchange type not supported');

  const stillEncrypted = msg.payloads.some((p) => p.type === P.SK || p.type === P.SKF);
  const clear = msg.payloads.filter((p) => p.type !== P.SK && p.type !== P.SKF);
  const inner: readonly Payload[] = msg.encrypted ?? [];

  if (!ex.protected) {
    if (stillEncrypted || msg.encrypted !== undefined) {
      return violation(msg.exchangeType, response, 'encrypted payload not allowed in this exchange');
    }
  } else if (!stillEncrypted && msg.encrypted === undefined) {
    return violation(msg.exchangeType, response, 'message must be protected by an SK payload');
  }

  const byType = new Map<number, PayloadRule>(ex.rules.map((x) => [x.type, x]));
  const counts = new Map<number, number>();
  for (const [list, inSk] of [
    [clear, false],
    [inner, true],
  ] as const) {
    for (const p of list) {
      const rule = byType.get(p.type);
      if (!rule) return violation(msg.exchangeType, response, `payload ${pname(p.type)} not allowed`);
      if (rule.encrypted !== inSk) {
        return violation(
          msg.exchangeType,
          response,
          `payload ${pname(p.type)} must be ${rule.encrypted ? 'encrypted' : 'unencrypted'}`,
        );
      }
      const n = (counts.get(p.type) ?? 0) + 1;
      counts.set(p.type, n);
      if (n > rule.max) {
        return violation(msg.exchangeType, response, `payload ${pname(p.type)} occurs ${n} times, at most ${rule.max}`);
      }
    }
  }

  // An undecrypted protected message: the inner counts are unknown yet.
  if (ex.protected && stillEncrypted) return undefined;

  const all = [...clear, ...inner];
  const waive = all.some(
    (p) =>
      p.type === P.NOTIFY &&
      (p.notifyType <= NOTIFY_ERROR_MAX ||
        (msg.exchangeType === ExchangeType.IKE_SA_INIT && response && p.notifyType === NotifyType.COOKIE)),
  );
  if (!waive) {
    for (const rule of ex.rules) {
      const n = counts.get(rule.type) ?? 0;
      if (n < rule.min) {
        return violation(
          msg.exchangeType,
          response,
          `payload ${pname(rule.type)} occurs ${n} times, at least ${rule.min}`,
        );
      }
    }
  }
  for (const group of ex.together ?? []) {
    const present = group.filter((t) => (counts.get(t) ?? 0) > 0);
    if (present.length > 0 && present.length < group.length) {
      const missing = group.filter((t) => !present.includes(t)).map(pname);
      return violation(
        msg.exchangeType,
        response,
        `payloads ${group.map(pname).join('/')} go together; missing ${missing.join(', ')}`,
      );
    }
  }
  return undefined;
}
