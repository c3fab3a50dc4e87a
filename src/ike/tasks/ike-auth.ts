/**
 * IKE_AUTH authentication (RFC 7296 §1.2, §2.15): IDi/IDr and AUTH, with pre-shared keys or certificates (CERT,
 * CERTREQ, RFC 7427 / classic signatures; src/ike/sa/certificates.ts, src/ike/crypto/signature.ts). The responder
 * picks the peer configuration by the identities it receives, then requires the AUTH method of that
 * configuration: a PSK tunnel refuses signatures and a certificate tunnel refuses PSK (AUTH_METHOD_MISMATCH). INITIAL_CONTACT (§3.10.1) is sent on the first IKE SA to a
 * peer; receiving it removes older IKE SAs of that peer once the new one is up. SET_WINDOW_SIZE (§2.3) is
 * exchanged here.
 */

import { formatIp, parseIp } from '../codec/ip.js';
import type { IkeMessage } from '../codec/message.js';
import type { AuthPayload } from '../codec/payloads/auth.js';
import type { IdPayload } from '../codec/payloads/id.js';
import type { PlainPayload as Payload } from '../codec/payloads/index.js';
import { notify, setWindowSizeNotify, windowSize } from '../codec/payloads/notify.js';
import { AuthMethod, CertEncoding, ExchangeType, IdType, NotifyType, PayloadType } from '../constants.js';
import { authMethodName, isSignatureMethod, signAuth, verifyAuth } from '../crypto/signature.js';
import { IkeError } from '../errors.js';
import type { ConfiguredIdentity } from '../ports.js';
import { pskAuth, signedOctets, verifyPskAuth } from '../sa/auth-psk.js';
import {
  certReqData,
  checkIdentity,
  isSubjectDer,
  localCredentials,
  normalizeDn,
  parseCertificate,
  subjectOf,
  trustAnchors,
  validateChain,
} from '../sa/certificates.js';
import type { Failure } from '../sa/events.js';
import { explanation, FIELD } from '../sa/explain.js';
import type { IkeSa } from '../sa/ike-sa.js';
import { IkeSa as Sa } from '../sa/ike-sa.js';
import { narrow } from '../sa/traffic-selectors.js';
import type { Task, TaskStatus } from './task.js';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export function idPayload(type: PayloadType.IDi | PayloadType.IDr, id: ConfiguredIdentity): IdPayload {
  switch (id.type) {
    case 'ipv4':
    case 'ipv6': {
      const bytes = parseIp(id.value);
      return { type, idType: bytes.length === 4 ? IdType.ID_IPV4_ADDR : IdType.ID_IPV6_ADDR, data: bytes };
    }
    case 'fqdn':
      return { type, idType: IdType.ID_FQDN, data: utf8.encode(id.value) };
    case 'rfc822':
      return { type, idType: IdType.ID_RFC822_ADDR, data: utf8.encode(id.value) };
    case 'keyid':
      return { type, idType: IdType.ID_KEY_ID, data: id.value };
    case 'dn':
      // We would need the DER of the name; only certificates carry it (see peerIdentity).
      throw new IkeError('ENCODE_INVALID', 'a distinguished name can only be the remote identity');
  }
}

/** DER certificates of a message's CERT payloads (X.509 signature encoding only), in order. */
export function certsOf(msg: IkeMessage): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const p of [...msg.payloads, ...(msg.encrypted ?? [])] as Payload[]) {
    if (p.type === PayloadType.CERT && p.encoding === CertEncoding.X509_SIGNATURE) out.push(p.data);
  }
  return out;
}

/**
 * The identity the peer claims. An ID_DER_ASN1_DN is taken as the subject of the certificate it sent when it is
 * that subject (checked without ASN.1: see isSubjectDer); the certificate's validity is checked later.
 */
export function peerIdentity(p: IdPayload, msg: IkeMessage): ConfiguredIdentity | undefined {
  if (p.idType !== IdType.ID_DER_ASN1_DN) return identityOf(p);
  const first = certsOf(msg)[0];
  if (!first) return undefined;
  try {
    const leaf = parseCertificate(first, 'certificate');
    return isSubjectDer(leaf, p.data) ? { type: 'dn', value: subjectOf(leaf) } : undefined;
  } catch {
    return undefined;
  }
}

/** The identity an ID payload carries, or undefined for types we do not match on. */
export function identityOf(p: IdPayload): ConfiguredIdentity | undefined {
  switch (p.idType) {
    case IdType.ID_IPV4_ADDR:
      return { type: 'ipv4', value: formatIp(p.data) };
    case IdType.ID_IPV6_ADDR:
      return { type: 'ipv6', value: formatIp(p.data) };
    case IdType.ID_FQDN:
      return { type: 'fqdn', value: fromUtf8.decode(p.data) };
    case IdType.ID_RFC822_ADDR:
      return { type: 'rfc822', value: fromUtf8.decode(p.data) };
    case IdType.ID_KEY_ID:
      return { type: 'keyid', value: p.data };
    default:
      return undefined;
  }
}

export function sameIdentity(a: ConfiguredIdentity, b: ConfiguredIdentity): boolean {
  if (a.type !== b.type) return false;
  if (a.type === 'keyid' || b.type === 'keyid') {
    const x = a.value as Uint8Array;
    const y = b.value as Uint8Array;
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
  if (a.type === 'dn' || b.type === 'dn') return normalizeDn(a.value as string) === normalizeDn(b.value as string);
  if (a.type === 'fqdn' || a.type === 'rfc822')
    return (a.value as string).toLowerCase() === (b.value as string).toLowerCase();
  // Compare addresses in canonical form.
  return formatIp(parseIp(a.value as string)) === formatIp(parseIp(b.value as string));
}

export function describeIdentity(id: ConfiguredIdentity | undefined): string {
  if (!id) return '(none)';
  if (id.type === 'keyid') return `keyid:${Array.from(id.value, (b) => b.toString(16).padStart(2, '0')).join('')}`;
  return `${id.type}:${id.value}`;
}

/** ID payload body for AUTH: ID type, three reserved bytes, data (RFC 7296 §2.15 "RestOfInitIDPayload"). */
export function idBody(p: IdPayload): Uint8Array {
  const out = new Uint8Array(4 + p.data.length);
  out[0] = p.idType;
  out.set(p.data, 4);
  return out;
}

/**
 * A DN identity is taken only when it is the DER of the subject of the certificate the peer sent (we compare bytes:
 * no ASN.1 decoding). Peers that identify by their certificate's subject send exactly that; a DN typed into a
 * configuration may be re-encoded (another string type) and does not match.
 */
const DN_NOT_SUBJECT: Failure = {
  code: 'CERT_IDENTITY_MISMATCH',
  message:
    "the peer's distinguished-name identity is not, byte for byte, the subject of the certificate it sent (or it sent none); let the peer identify by its certificate's subject (strongSwan: no id, or an FQDN/IP/email from the subjectAltName)",
};

/** Our own credentials could not be used (bad key, no acceptable signature hash, ...). */
function localFailure(e: unknown): Failure {
  if (e instanceof IkeError) {
    return { code: e.code as Failure['code'], message: `cannot authenticate ourselves: ${e.message}` };
  }
  return { code: 'PROTOCOL_ERROR', message: `cannot authenticate ourselves: ${e instanceof Error ? e.message : e}` };
}

/** How long stale IKE SAs of a peer that sent INITIAL_CONTACT keep their kernel SAs (make-before-break). */
export const INITIAL_CONTACT_GRACE_MS = 3000;

export class IkeAuthTask implements Task<IkeMessage, IkeMessage> {
  readonly name = 'ike-auth';
  private failure: number | undefined;
  private peerInitialContact = false;

  constructor(private readonly sa: IkeSa) {}

  exchange(): number {
    return ExchangeType.IKE_AUTH;
  }

  // ---- initiator -----------------------------------------------------------------------------------------------

  build(req: IkeMessage): void {
    const sa = this.sa;
    try {
      const idi = idPayload(PayloadType.IDi, sa.config.localId);
      req.encrypted!.push(idi);
      req.encrypted!.push(...this.ownCerts());
      if (sa.ctx.sasOfPeer(sa.config.name).every((o) => o === sa || o.state === 'connecting')) {
        req.encrypted!.push(notify(NotifyType.INITIAL_CONTACT));
      }
      const auth = sa.config.auth;
      if (auth.method === 'certificate' && auth.sendCertReq !== false) {
        req.encrypted!.push({
          type: PayloadType.CERTREQ,
          encoding: CertEncoding.X509_SIGNATURE,
          data: certReqData(trustAnchors(auth)),
        });
      }
      if (sa.config.remoteId && sa.config.remoteId.type !== 'dn') {
        req.encrypted!.push(idPayload(PayloadType.IDr, sa.config.remoteId));
      }
      req.encrypted!.push(this.ownAuth(sa.initRequest, sa.nr, sa.keys!.skPi, idi));
    } catch (e) {
      // Our own credentials are unusable (the agent checks them before, so this is rare): nothing to send.
      sa.fail(localFailure(e));
      sa.destroy('local authentication failed');
      throw e;
    }
    if (sa.config.windowSize > 1) req.encrypted!.push(setWindowSizeNotify(sa.config.windowSize));
  }

  /** CERT payloads of our chain (certificate tunnels). */
  private ownCerts(): Payload[] {
    const auth = this.sa.config.auth;
    if (auth.method !== 'certificate') return [];
    return localCredentials(auth).chain.map((data) => ({
      type: PayloadType.CERT,
      encoding: CertEncoding.X509_SIGNATURE,
      data,
    }));
  }

  /** Our AUTH payload: PSK MAC or signature over our signed octets (RFC 7296 §2.15). */
  private ownAuth(ownInit: Uint8Array, peerNonce: Uint8Array, skP: Uint8Array, id: IdPayload): AuthPayload {
    const sa = this.sa;
    const p = sa.ctx.provider;
    const octets = signedOctets(p, sa.suite!.prfId, { ownInitMessage: ownInit, peerNonce, skP, idBody: idBody(id) });
    const auth = sa.config.auth;
    if (auth.method === 'psk') {
      return {
        type: PayloadType.AUTH,
        method: AuthMethod.SHARED_KEY_MIC,
        data: pskAuth(p, sa.suite!.prfId, auth.psk, octets),
      };
    }
    const signed = signAuth(localCredentials(auth).key, octets, {
      peerHashes: sa.peerSignatureHashes,
      ...(auth.rsaPadding ? { rsaPadding: auth.rsaPadding } : {}),
    });
    return { type: PayloadType.AUTH, method: signed.method, data: signed.data };
  }

  process(res: IkeMessage): TaskStatus {
    const sa = this.sa;
    const err = Sa.errorNotify(res);
    const authP = Sa.payload(res, PayloadType.AUTH);
    if (err && !authP) {
      const name = NotifyType[err.notifyType] ?? String(err.notifyType);
      const psk = sa.config.auth.method === 'psk';
      const us = describeIdentity(sa.config.localId);
      const them = describeIdentity(sa.config.remoteId);
      const authFailed = err.notifyType === NotifyType.AUTHENTICATION_FAILED;
      const syntax = err.notifyType === NotifyType.INVALID_SYNTAX;
      sa.fail({
        code: authFailed ? 'AUTHENTICATION_FAILED' : syntax ? 'INVALID_SYNTAX' : 'PEER_ERROR',
        message: authFailed
          ? explanation({
              what: `IKE_AUTH refused with AUTHENTICATION_FAILED: the peer did not accept us as ${us} (${psk ? 'pre-shared key' : 'certificate'})`,
              offered: `identity ${us} (${FIELD.localId}) authenticated with ${psk ? 'our pre-shared key' : 'our certificate'}, expecting the peer as ${them} (${FIELD.remoteId})`,
              peer: 'answered AUTHENTICATION_FAILED; it does not say whether the key or the identity was wrong',
              mismatch: psk
                ? `either the pre-shared keys differ, or the peer has no connection for identity ${us}`
                : `the peer does not trust our certificate's CA, does not accept ${us}, or does not use certificates`,
              fix: psk
                ? `make ${FIELD.psk} hold the same key as the peer's, and make the peer's remote identity ${us}`
                : `give the peer our CA, make its remote identity ${us} (a subjectAltName of our certificate in ${FIELD.certificate})`,
            })
          : syntax
            ? explanation({
                what: 'IKE_AUTH refused with INVALID_SYNTAX: the peer could not parse our request',
                offered: `identity ${us}, ${sa.config.children.length} CHILD SA(s)`,
                peer: 'answered INVALID_SYNTAX (IKEv2 does not say which part it disliked)',
                fix: `check the peer's log; fragmentation or certificate payloads are the usual suspects (try ikeFragmentSize 1280, or the plain proposal \`aes256-sha256\` in ${FIELD.espProposals})`,
              })
            : `peer answered IKE_AUTH with ${name}`,
        notify: err.notifyType,
      });
      return 'failed';
    }
    const idr = Sa.payload(res, PayloadType.IDr);
    if (!idr || !authP) {
      sa.fail({ code: 'PROTOCOL_ERROR', message: 'IKE_AUTH response lacks IDr or AUTH' });
      return 'failed';
    }
    const peerId = peerIdentity(idr, res);
    if (!peerId && idr.idType === IdType.ID_DER_ASN1_DN) {
      sa.fail(DN_NOT_SUBJECT);
      return 'failed';
    }
    if (sa.config.remoteId && (!peerId || !sameIdentity(peerId, sa.config.remoteId))) {
      sa.fail({
        code: 'IDENTITY_MISMATCH',
        message: explanation({
          what: `the peer identified as ${describeIdentity(peerId)}, not as ${describeIdentity(sa.config.remoteId)}`,
          offered: `we expect ${describeIdentity(sa.config.remoteId)} (${FIELD.remoteId})`,
          peer: `sent IDr ${describeIdentity(peerId)}`,
          mismatch: `${FIELD.remoteId} ${describeIdentity(sa.config.remoteId)} != ${describeIdentity(peerId)}`,
          fix: `if ${describeIdentity(peerId)} is the right peer set ${FIELD.remoteId} to ${peerId && peerId.type !== 'keyid' ? peerId.value : describeIdentity(peerId)}; otherwise set the peer's local identity to ${describeIdentity(sa.config.remoteId)}`,
        }),
      });
      return 'failed';
    }
    const failure = this.verify(authP, res, sa.initResponse, sa.ni, sa.keys!.skPr, idr, peerId);
    if (failure) {
      sa.fail(failure);
      return 'failed';
    }
    sa.remoteIdBody = idBody(idr);
    sa.authUsed = sa.config.auth;
    this.windowFrom(res);
    sa.established();
    return 'done';
  }

  /** Check the peer's AUTH (and certificates) against the configuration in force; a Failure when it fails. */
  private verify(
    authP: AuthPayload,
    msg: IkeMessage,
    peerInitMessage: Uint8Array,
    ourNonce: Uint8Array,
    skP: Uint8Array,
    id: IdPayload,
    peerId: ConfiguredIdentity | undefined,
  ): Failure | undefined {
    const sa = this.sa;
    const config = sa.config;
    const who = `peer ${describeIdentity(peerId)}`;
    const p = sa.ctx.provider;
    const octets = signedOctets(p, sa.suite!.prfId, {
      ownInitMessage: peerInitMessage,
      peerNonce: ourNonce,
      skP,
      idBody: idBody(id),
    });
    const auth = config.auth;
    if (auth.method === 'psk') {
      if (authP.method !== AuthMethod.SHARED_KEY_MIC) {
        return {
          code: 'AUTH_METHOD_MISMATCH',
          message: `${who} authenticates with ${authMethodName(authP.method)}, but tunnel ${config.name} is configured for a pre-shared key`,
        };
      }
      if (!verifyPskAuth(p, sa.suite!.prfId, auth.psk, octets, authP.data)) {
        return {
          code: 'AUTHENTICATION_FAILED',
          message: explanation({
            what: `${who} failed to authenticate: its AUTH does not match the pre-shared key of tunnel ${config.name}`,
            offered: `pre-shared key of tunnel ${config.name}, expecting ${describeIdentity(config.remoteId)} (${FIELD.remoteId})`,
            peer: `identified as ${describeIdentity(peerId)} and signed with a different key`,
            mismatch: 'the pre-shared keys differ (the identities match)',
            fix: `make ${FIELD.psk} hold the same key as the peer's (compare digests with \`ipsec-mesh diagnose --peer-config-dir\`; never paste the key itself)`,
          }),
        };
      }
      return undefined;
    }
    if (!isSignatureMethod(authP.method)) {
      return {
        code: 'AUTH_METHOD_MISMATCH',
        message: `${who} authenticates with ${authMethodName(authP.method)}, but tunnel ${config.name} is configured for certificates`,
      };
    }
    try {
      const leaf = validateChain(certsOf(msg), trustAnchors(auth), sa.ctx.ports.clock.wallNow());
      checkIdentity(leaf, id.idType, id.data);
      verifyAuth(leaf.publicKey, authP.method, authP.data, octets);
    } catch (e) {
      if (e instanceof IkeError) return { code: e.code as Failure['code'], message: `${who}: ${e.message}` };
      throw e;
    }
    return undefined;
  }

  private windowFrom(msg: IkeMessage): void {
    const w = Sa.notifyOf(msg, NotifyType.SET_WINDOW_SIZE);
    if (w) this.sa.tm.setPeerWindow(Math.min(windowSize(w), 64));
  }

  // ---- responder -----------------------------------------------------------------------------------------------

  processRequest(req: IkeMessage): void {
    const sa = this.sa;
    const idi = Sa.payload(req, PayloadType.IDi);
    const authP = Sa.payload(req, PayloadType.AUTH);
    if (!idi || !authP) {
      this.failure = NotifyType.AUTHENTICATION_FAILED;
      sa.fail({ code: 'PROTOCOL_ERROR', message: 'IKE_AUTH request lacks IDi or AUTH' });
      return;
    }
    const peerId = peerIdentity(idi, req);
    if (!peerId && idi.idType === IdType.ID_DER_ASN1_DN) {
      this.failure = NotifyType.AUTHENTICATION_FAILED;
      sa.fail({ ...DN_NOT_SUBJECT, notify: NotifyType.AUTHENTICATION_FAILED });
      return;
    }
    const idrP = Sa.payload(req, PayloadType.IDr);
    const wantedLocal = idrP ? identityOf(idrP) : undefined;
    // Of the tunnels the identities fit, prefer one whose CHILD SA configuration fits the proposed traffic
    // selectors: two tunnels between the same gateways and identities differ only there.
    const lookup = sa.ctx.ports.config;
    const fitting = peerId ? sa.candidates.filter((c) => lookup.byIdentities(peerId, wantedLocal, [c]) === c) : [];
    const tsi = Sa.payload(req, PayloadType.TSi);
    const tsr = Sa.payload(req, PayloadType.TSr);
    const bySelectors =
      tsi && tsr
        ? fitting.find((c) =>
            c.children.some(
              (ch) => narrow(tsi.selectors, ch.remoteTs).length > 0 && narrow(tsr.selectors, ch.localTs).length > 0,
            ),
          )
        : undefined;
    const chosen = bySelectors ?? fitting[0];
    if (!chosen) {
      this.failure = NotifyType.AUTHENTICATION_FAILED;
      sa.fail({
        code: 'IDENTITY_MISMATCH',
        message: explanation({
          what: `no tunnel configured for peer identity ${describeIdentity(peerId)}${
            wantedLocal ? ` asking for our identity ${describeIdentity(wantedLocal)}` : ''
          } from ${sa.remote.address}; answered AUTHENTICATION_FAILED`,
          offered: `tunnels for ${sa.remote.address} expect ${
            sa.candidates
              .map((c) => `${describeIdentity(c.remoteId)} (as ${describeIdentity(c.localId)}, tunnel ${c.name})`)
              .join(', ') || '(none)'
          }`,
          peer: `sent IDi ${describeIdentity(peerId)}${wantedLocal ? ` and IDr ${describeIdentity(wantedLocal)}` : ''}`,
          mismatch: `${FIELD.remoteId} (or ${FIELD.localId}) differs from what the peer sends`,
          fix: `set ${FIELD.remoteId} of the tunnel to ${describeIdentity(peerId)}, or the peer's local identity to what ${FIELD.remoteId} says${
            wantedLocal ? `; the peer also expects us as ${describeIdentity(wantedLocal)} (${FIELD.localId})` : ''
          }`,
        }),
        notify: NotifyType.AUTHENTICATION_FAILED,
      });
      return;
    }
    sa.setConfig(chosen);
    const failure = this.verify(authP, req, sa.initRequest, sa.nr, sa.keys!.skPi, idi, peerId);
    if (failure) {
      this.failure = NotifyType.AUTHENTICATION_FAILED;
      sa.fail({ ...failure, notify: NotifyType.AUTHENTICATION_FAILED });
      return;
    }
    sa.remoteIdBody = idBody(idi);
    sa.authUsed = sa.config.auth;
    this.peerInitialContact = Sa.notifyOf(req, NotifyType.INITIAL_CONTACT) !== undefined;
    this.windowFrom(req);
  }

  buildResponse(res: IkeMessage): TaskStatus {
    const sa = this.sa;
    if (this.failure !== undefined) {
      res.encrypted!.push(notify(this.failure));
      return 'failed';
    }
    let payloads: Payload[];
    try {
      const idr = idPayload(PayloadType.IDr, sa.config.localId);
      payloads = [idr, ...this.ownCerts(), this.ownAuth(sa.initResponse, sa.ni, sa.keys!.skPr, idr)];
    } catch (e) {
      res.encrypted!.push(notify(NotifyType.AUTHENTICATION_FAILED));
      sa.fail({ ...localFailure(e), notify: NotifyType.AUTHENTICATION_FAILED });
      return 'failed';
    }
    res.encrypted!.push(...payloads);
    if (sa.config.windowSize > 1) res.encrypted!.push(setWindowSizeNotify(sa.config.windowSize));
    sa.established();
    if (this.peerInitialContact) {
      // The peer lost its state: older IKE SAs with it are stale. Remove them a little later, not at once: a peer
      // that restarted may still send on the kernel SAs it kept (the agent adopts them) until it has installed the
      // CHILD SAs of this exchange, and our old inbound SAs must take that traffic until then.
      const stale = sa.ctx
        .sasOfPeer(sa.config.name)
        .filter((o) => o !== sa && o.establishedMono !== undefined && o.establishedMono < sa.createdMono);
      for (const other of stale) other.state = 'rekeyed';
      sa.setTimer('initial-contact', INITIAL_CONTACT_GRACE_MS, () => {
        for (const other of stale) {
          if (other.state !== 'destroyed') {
            other.destroy('peer sent INITIAL_CONTACT');
          }
        }
      });
    }
    return 'done';
  }
}
