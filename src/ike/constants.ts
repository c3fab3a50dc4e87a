/**
 * Every IKEv2 protocol number the engine uses, in one place, each with where it comes from.
 *
 * Sources: RFC 7296 §3 (message formats) and the IANA "Internet Key Exchange Version 2 (IKEv2) Parameters"
 * registry, plus the RFCs named per constant. Values are numbers on the wire; names follow the registry.
 */

/** IKE header version byte: major 2, minor 0 (RFC 7296 §3.1). */
export const IKE_VERSION = 0x20;
/** Fixed IKE header length in bytes (RFC 7296 §3.1). */
export const IKE_HEADER_LENGTH = 28;
/** Generic payload header length (RFC 7296 §3.2). */
export const GENERIC_PAYLOAD_HEADER_LENGTH = 4;
/** Non-ESP marker prepended to IKE on UDP 4500 (RFC 3948 §2.2). */
export const NON_ESP_MARKER_LENGTH = 4;
/** Largest IKE message we accept: the header's length field is 32 bits, but no real message exceeds 64 KiB. */
export const MAX_IKE_MESSAGE_LENGTH = 65_535;

/** Exchange types (RFC 7296 §3.1; RFC 7383 does not add any). */
export enum ExchangeType {
  IKE_SA_INIT = 34,
  IKE_AUTH = 35,
  CREATE_CHILD_SA = 36,
  INFORMATIONAL = 37,
  /** RFC 5723 session resumption. */
  IKE_SESSION_RESUME = 38,
  /** RFC 9242 intermediate exchange (used by RFC 9370 multiple key exchanges). */
  IKE_INTERMEDIATE = 43,
  /** RFC 9370 follow-up key exchange. */
  IKE_FOLLOWUP_KE = 44,
}

/** IKE header flags (RFC 7296 §3.1): bit 3 Initiator, bit 4 Version, bit 5 Response. */
export const HeaderFlag = {
  INITIATOR: 0x08,
  VERSION: 0x10,
  RESPONSE: 0x20,
} as const;

/** Next payload types (RFC 7296 §3.2, RFC 7383 §2.5 for SKF). */
export enum PayloadType {
  NONE = 0,
  SA = 33,
  KE = 34,
  IDi = 35,
  IDr = 36,
  CERT = 37,
  CERTREQ = 38,
  AUTH = 39,
  NONCE = 40,
  NOTIFY = 41,
  DELETE = 42,
  VENDOR_ID = 43,
  TSi = 44,
  TSr = 45,
  SK = 46,
  CP = 47,
  EAP = 48,
  /** RFC 6467 generic secure password methods. */
  GSPM = 49,
  /** RFC 7383 encrypted fragment. */
  SKF = 53,
}

/** Critical bit in the generic payload header (RFC 7296 §3.2). */
export const PAYLOAD_CRITICAL_FLAG = 0x80;

/** Security protocol identifiers (RFC 7296 §3.3.1). */
export enum ProtocolId {
  IKE = 1,
  AH = 2,
  ESP = 3,
}

/** Transform types (RFC 7296 §3.3.2; RFC 9370 renames DH to KE and adds ADDKE1..7). */
export enum TransformType {
  ENCR = 1,
  PRF = 2,
  INTEG = 3,
  /** Diffie-Hellman group, "Key Exchange Method" since RFC 9370. */
  KE = 4,
  /** Extended sequence numbers (ESN). */
  ESN = 5,
  ADDKE1 = 6,
  ADDKE2 = 7,
  ADDKE3 = 8,
  ADDKE4 = 9,
  ADDKE5 = 10,
  ADDKE6 = 11,
  ADDKE7 = 12,
}

/** Encryption algorithm transform IDs (IANA IKEv2 Transform Type 1). */
export enum EncrId {
  DES = 2,
  TRIPLE_DES = 3,
  NULL = 11,
  AES_CBC = 12,
  AES_CTR = 13,
  AES_CCM_8 = 14,
  AES_CCM_12 = 15,
  AES_CCM_16 = 16,
  /** AES-GCM with an 8-octet ICV (RFC 5282 for IKE, RFC 4106 for ESP). */
  AES_GCM_8 = 18,
  AES_GCM_12 = 19,
  AES_GCM_16 = 20,
  NULL_AUTH_AES_GMAC = 21,
  CAMELLIA_CBC = 23,
  /** ChaCha20-Poly1305 (RFC 7634). */
  CHACHA20_POLY1305 = 28,
}

/** Pseudorandom function transform IDs (IANA IKEv2 Transform Type 2). */
export enum PrfId {
  HMAC_MD5 = 1,
  HMAC_SHA1 = 2,
  AES128_XCBC = 4,
  /** RFC 4868 */
  HMAC_SHA2_256 = 5,
  HMAC_SHA2_384 = 6,
  HMAC_SHA2_512 = 7,
  AES128_CMAC = 8,
}

/** Integrity algorithm transform IDs (IANA IKEv2 Transform Type 3). */
export enum IntegId {
  NONE = 0,
  HMAC_MD5_96 = 1,
  HMAC_SHA1_96 = 2,
  AES_XCBC_96 = 5,
  AES_CMAC_96 = 8,
  /** RFC 4868 */
  HMAC_SHA2_256_128 = 12,
  HMAC_SHA2_384_192 = 13,
  HMAC_SHA2_512_256 = 14,
}

/** Key exchange method (DH group) transform IDs (IANA IKEv2 Transform Type 4). */
export enum KeId {
  NONE = 0,
  /** RFC 3526 */
  MODP_2048 = 14,
  MODP_3072 = 15,
  MODP_4096 = 16,
  MODP_6144 = 17,
  MODP_8192 = 18,
  /** RFC 5903 */
  ECP_256 = 19,
  ECP_384 = 20,
  ECP_521 = 21,
  /** RFC 8031 */
  CURVE25519 = 31,
  CURVE448 = 32,
  /** draft-ietf-ipsecme-ikev2-mlkem / IANA early allocation */
  ML_KEM_512 = 35,
  ML_KEM_768 = 36,
  ML_KEM_1024 = 37,
}

/** Extended sequence numbers transform IDs (IANA IKEv2 Transform Type 5). */
export enum EsnId {
  NO_ESN = 0,
  ESN = 1,
}

/** Transform attribute types (RFC 7296 §3.3.5); only Key Length is defined. */
export enum TransformAttributeType {
  KEY_LENGTH = 14,
}
/** Attribute Format bit: 1 = TV (value in the header), 0 = TLV (RFC 7296 §3.3.5). */
export const ATTRIBUTE_FORMAT_TV = 0x8000;

/** Identification types (RFC 7296 §3.5). */
export enum IdType {
  ID_IPV4_ADDR = 1,
  ID_FQDN = 2,
  ID_RFC822_ADDR = 3,
  ID_IPV6_ADDR = 5,
  ID_DER_ASN1_DN = 9,
  ID_DER_ASN1_GN = 10,
  ID_KEY_ID = 11,
}

/** Certificate encodings (RFC 7296 §3.6). */
export enum CertEncoding {
  PKCS7_X509 = 1,
  PGP = 2,
  DNS_SIGNED_KEY = 3,
  X509_SIGNATURE = 4,
  KERBEROS_TOKEN = 6,
  CRL = 7,
  ARL = 8,
  SPKI = 9,
  X509_ATTRIBUTE = 10,
  RAW_RSA_KEY = 11,
  HASH_URL_X509 = 12,
  HASH_URL_X509_BUNDLE = 13,
  /** RFC 7670 */
  RAW_PUBLIC_KEY = 15,
}

/** Authentication methods (RFC 7296 §3.8, RFC 4754, RFC 7427). */
export enum AuthMethod {
  RSA_SIG = 1,
  SHARED_KEY_MIC = 2,
  DSS_SIG = 3,
  /** RFC 4754 */
  ECDSA_SHA256_P256 = 9,
  ECDSA_SHA384_P384 = 10,
  ECDSA_SHA512_P521 = 11,
  /** RFC 7619 */
  NULL_AUTH = 13,
  /** RFC 7427 */
  DIGITAL_SIGNATURE = 14,
}

/** Hash algorithm identifiers for SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4, RFC 8420). */
export enum HashAlgorithm {
  SHA1 = 1,
  SHA2_256 = 2,
  SHA2_384 = 3,
  SHA2_512 = 4,
  /** RFC 8420: "Identity" hash, used by Ed25519/Ed448 */
  IDENTITY = 5,
}

/** Traffic selector types (RFC 7296 §3.13.1). */
export enum TsType {
  TS_IPV4_ADDR_RANGE = 7,
  TS_IPV6_ADDR_RANGE = 8,
}

/** Configuration payload types (RFC 7296 §3.15). */
export enum CfgType {
  CFG_REQUEST = 1,
  CFG_REPLY = 2,
  CFG_SET = 3,
  CFG_ACK = 4,
}

/** Configuration attribute types (RFC 7296 §3.15.1). */
export enum CfgAttributeType {
  INTERNAL_IP4_ADDRESS = 1,
  INTERNAL_IP4_NETMASK = 2,
  INTERNAL_IP4_DNS = 3,
  INTERNAL_IP4_NBNS = 4,
  INTERNAL_IP4_DHCP = 6,
  APPLICATION_VERSION = 7,
  INTERNAL_IP6_ADDRESS = 8,
  INTERNAL_IP6_DNS = 10,
  INTERNAL_IP6_DHCP = 12,
  INTERNAL_IP4_SUBNET = 13,
  SUPPORTED_ATTRIBUTES = 14,
  INTERNAL_IP6_SUBNET = 15,
}

/**
 * Notify message types. Error types are < 16384 (RFC 7296 §3.10.1); status types are >= 16384.
 */
export enum NotifyType {
  // Errors (RFC 7296 §3.10.1)
  UNSUPPORTED_CRITICAL_PAYLOAD = 1,
  INVALID_IKE_SPI = 4,
  INVALID_MAJOR_VERSION = 5,
  INVALID_SYNTAX = 7,
  INVALID_MESSAGE_ID = 9,
  INVALID_SPI = 11,
  NO_PROPOSAL_CHOSEN = 14,
  INVALID_KE_PAYLOAD = 17,
  AUTHENTICATION_FAILED = 24,
  SINGLE_PAIR_REQUIRED = 34,
  NO_ADDITIONAL_SAS = 35,
  INTERNAL_ADDRESS_FAILURE = 36,
  FAILED_CP_REQUIRED = 37,
  TS_UNACCEPTABLE = 38,
  INVALID_SELECTORS = 39,
  /** RFC 5685 */
  UNACCEPTABLE_ADDRESSES = 40,
  UNEXPECTED_NAT_DETECTED = 41,
  /** RFC 4555 (MOBIKE) */
  USE_ASSIGNED_HoA = 42,
  TEMPORARY_FAILURE = 43,
  CHILD_SA_NOT_FOUND = 44,
  /** RFC 7427 / RFC 7296 errata: INVALID_GROUP_ID for G-IKEv2 not used here */
  STATE_NOT_FOUND = 47,

  // Status types (RFC 7296 §3.10.1 and others)
  INITIAL_CONTACT = 16384,
  SET_WINDOW_SIZE = 16385,
  ADDITIONAL_TS_POSSIBLE = 16386,
  IPCOMP_SUPPORTED = 16387,
  NAT_DETECTION_SOURCE_IP = 16388,
  NAT_DETECTION_DESTINATION_IP = 16389,
  COOKIE = 16390,
  USE_TRANSPORT_MODE = 16391,
  HTTP_CERT_LOOKUP_SUPPORTED = 16392,
  REKEY_SA = 16393,
  ESP_TFC_PADDING_NOT_SUPPORTED = 16394,
  NON_FIRST_FRAGMENTS_ALSO = 16395,
  /** RFC 4555 */
  MOBIKE_SUPPORTED = 16396,
  ADDITIONAL_IP4_ADDRESS = 16397,
  ADDITIONAL_IP6_ADDRESS = 16398,
  NO_ADDITIONAL_ADDRESSES = 16399,
  UPDATE_SA_ADDRESSES = 16400,
  COOKIE2 = 16401,
  NO_NATS_ALLOWED = 16402,
  /** RFC 4739 */
  MULTIPLE_AUTH_SUPPORTED = 16404,
  ANOTHER_AUTH_FOLLOWS = 16405,
  /** RFC 5685 */
  REDIRECT_SUPPORTED = 16406,
  REDIRECT = 16407,
  REDIRECTED_FROM = 16408,
  /** RFC 5723 */
  TICKET_LT_OPAQUE = 16409,
  TICKET_REQUEST = 16410,
  TICKET_ACK = 16411,
  TICKET_NACK = 16412,
  TICKET_OPAQUE = 16413,
  /** RFC 5739 */
  LINK_ID = 16414,
  /** RFC 5840 */
  USE_WESP_MODE = 16415,
  /** RFC 5996 */
  ROHC_SUPPORTED = 16416,
  /** RFC 5998 */
  EAP_ONLY_AUTHENTICATION = 16417,
  /** RFC 6023 */
  CHILDLESS_IKEV2_SUPPORTED = 16418,
  /** RFC 6290 */
  QUICK_CRASH_DETECTION = 16419,
  /** RFC 6311 */
  IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420,
  IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421,
  IKEV2_MESSAGE_ID_SYNC = 16422,
  IPSEC_REPLAY_COUNTER_SYNC = 16423,
  /** RFC 6467 */
  SECURE_PASSWORD_METHODS = 16424,
  /** RFC 6631 */
  PSK_PERSIST = 16425,
  PSK_CONFIRM = 16426,
  /** RFC 6989 */
  ERX_SUPPORTED = 16427,
  /** RFC 7383 */
  IKEV2_FRAGMENTATION_SUPPORTED = 16430,
  /** RFC 7427 */
  SIGNATURE_HASH_ALGORITHMS = 16431,
  /** RFC 8983 */
  USE_PPK = 16435,
  PPK_IDENTITY = 16436,
  NO_PPK_AUTH = 16437,
  /** RFC 9242 */
  INTERMEDIATE_EXCHANGE_SUPPORTED = 16438,
  /** RFC 9370 */
  ADDITIONAL_KEY_EXCHANGE = 16441,
  /** RFC 9329 (TCP encapsulation) */
  USE_AGGFRAG = 16442,
}

/**
 * ipsec-mesh's own status notifies, from the private-use range (40960-65535, RFC 7296 §3.10.1; a peer that does not
 * know a status type ignores it). Each carries MESH_NOTIFY_MAGIC first, so a peer using the same number for
 * something else is not misread.
 *   ESP_RECEIVED_QUERY: in an INFORMATIONAL request, protocol ESP and the SPI of one of the receiver's inbound CHILD
 *     SAs: "how many packets did that SA receive?"
 *   ESP_RECEIVED: in the response, the same SPI; data is the magic and the packet count (8 octets, big endian).
 */
export const MeshNotify = { ESP_RECEIVED_QUERY: 52481, ESP_RECEIVED: 52482 } as const;
/** "imsh" + version 1. */
export const MESH_NOTIFY_MAGIC = Uint8Array.of(0x69, 0x6d, 0x73, 0x68, 0x01);

/** Notify types below this value are errors (RFC 7296 §3.10.1). */
export const NOTIFY_ERROR_MAX = 16383;

/** The key pad for PSK AUTH: "Key Pad for IKEv2" without NUL, 17 octets (RFC 7296 §2.15). */
export const PSK_KEY_PAD = 'Key Pad for IKEv2';

/** IKE UDP ports (RFC 7296 §2, RFC 3948). */
export const IKE_PORT = 500;
export const IKE_NATT_PORT = 4500;

/** Human-readable name of an enum value, e.g. nameOf(NotifyType, 14) === 'NO_PROPOSAL_CHOSEN'. */
export function nameOf(e: Record<string, string | number>, value: number): string {
  const name = (e as Record<number, string | undefined>)[value];
  return typeof name === 'string' ? name : `UNKNOWN(${value})`;
}
