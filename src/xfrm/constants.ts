/**
 * Every kernel constant the XFRM layer uses, with its source.
 *
 * Sources (Linux UAPI headers, stable ABI):
 *   linux/xfrm.h       XFRM_MSG_*, XFRMA_*, XFRMNLGRP_*, XFRM_POLICY_*, XFRM_STATE_*, XFRM_MODE_*, XFRM_SHARE_*, struct sizes
 *   linux/netlink.h    NETLINK_XFRM, NLMSG_*, NLM_F_*, NLA_F_*, NLMSG_ALIGNTO, NLA_ALIGNTO
 *   linux/in.h         IPPROTO_*            linux/socket.h  AF_INET, AF_INET6
 *   linux/udp.h        UDP_ENCAP, UDP_ENCAP_ESPINUDP      linux/in.h  IP_XFRM_POLICY    linux/in6.h  IPV6_XFRM_POLICY
 * Struct sizes are those of x86_64 and arm64 (64-bit alignment of __u64; the only targets we ship for).
 */

// ---- linux/netlink.h -------------------------------------------------------------------------------------------
export const NETLINK_XFRM = 6;
export const NLMSG_HDRLEN = 16; // struct nlmsghdr { __u32 len; __u16 type; __u16 flags; __u32 seq; __u32 pid; }
export const NLMSG_ALIGNTO = 4;
export const NLA_HDRLEN = 4; // struct nlattr { __u16 nla_len; __u16 nla_type; }
export const NLA_ALIGNTO = 4;
export const NLA_F_NESTED = 1 << 15;
export const NLA_F_NET_BYTEORDER = 1 << 14;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

export const NLMSG_NOOP = 0x1;
export const NLMSG_ERROR = 0x2;
export const NLMSG_DONE = 0x3;
export const NLMSG_OVERRUN = 0x4;

export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
/* Modifiers to GET requests */
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
/* Modifiers to NEW requests */
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
/* Flags for ACK messages */
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

// ---- linux/socket.h, linux/in.h, linux/udp.h --------------------------------------------------------------------
export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;
export type AddressFamily = typeof AF_INET | typeof AF_INET6;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_COMP = 108;

export const SOL_UDP = 17;
/** setsockopt(SOL_UDP, UDP_ENCAP, type): linux/udp.h */
export const UDP_ENCAP = 100;
/** draft-ietf-ipsec-udp-encaps-06 / RFC 3948 ESP in UDP (non-IKE marker). linux/udp.h */
export const UDP_ENCAP_ESPINUDP = 2;
export const SOL_IP = 0;
export const SOL_IPV6 = 41;
/** linux/in.h: IP_XFRM_POLICY (per-socket policy; takes a struct, not used: see udp-encap.ts). */
export const IP_XFRM_POLICY = 17;
/** linux/in6.h */
export const IPV6_XFRM_POLICY = 35;

// ---- linux/xfrm.h: message types (XFRM_MSG_BASE = 0x10) ----------------------------------------------------------
export const XFRM_MSG_BASE = 0x10;
export const XFRM_MSG_NEWSA = 0x10;
export const XFRM_MSG_DELSA = 0x11;
export const XFRM_MSG_GETSA = 0x12;
export const XFRM_MSG_NEWPOLICY = 0x13;
export const XFRM_MSG_DELPOLICY = 0x14;
export const XFRM_MSG_GETPOLICY = 0x15;
export const XFRM_MSG_ALLOCSPI = 0x16;
export const XFRM_MSG_ACQUIRE = 0x17;
export const XFRM_MSG_EXPIRE = 0x18;
export const XFRM_MSG_UPDPOLICY = 0x19;
export const XFRM_MSG_UPDSA = 0x1a;
export const XFRM_MSG_POLEXPIRE = 0x1b;
export const XFRM_MSG_FLUSHSA = 0x1c;
export const XFRM_MSG_FLUSHPOLICY = 0x1d;
export const XFRM_MSG_NEWAE = 0x1e;
export const XFRM_MSG_GETAE = 0x1f;
export const XFRM_MSG_REPORT = 0x20;
export const XFRM_MSG_MIGRATE = 0x21;
export const XFRM_MSG_NEWSADINFO = 0x22;
export const XFRM_MSG_GETSADINFO = 0x23;
export const XFRM_MSG_NEWSPDINFO = 0x24;
export const XFRM_MSG_GETSPDINFO = 0x25;
export const XFRM_MSG_MAPPING = 0x26;

// ---- linux/xfrm.h: enum xfrm_attr_type_t ---------------------------------------------------------------------------
export const XFRMA_UNSPEC = 0;
export const XFRMA_ALG_AUTH = 1; // struct xfrm_algo (legacy: 96-bit truncation; never sent by us)
export const XFRMA_ALG_CRYPT = 2; // struct xfrm_algo
export const XFRMA_ALG_COMP = 3; // struct xfrm_algo
export const XFRMA_ENCAP = 4; // struct xfrm_encap_tmpl
export const XFRMA_TMPL = 5; // struct xfrm_user_tmpl[]
export const XFRMA_SA = 6; // struct xfrm_usersa_info (in EXPIRE of policy / reports)
export const XFRMA_POLICY = 7; // struct xfrm_userpolicy_info
export const XFRMA_SEC_CTX = 8;
export const XFRMA_LTIME_VAL = 9; // struct xfrm_lifetime_cur
export const XFRMA_REPLAY_VAL = 10; // struct xfrm_replay_state
export const XFRMA_REPLAY_THRESH = 11;
export const XFRMA_ETIMER_THRESH = 12;
export const XFRMA_SRCADDR = 13; // xfrm_address_t
export const XFRMA_COADDR = 14;
export const XFRMA_LASTUSED = 15; // __u64
export const XFRMA_POLICY_TYPE = 16; // struct xfrm_userpolicy_type
export const XFRMA_MIGRATE = 17;
export const XFRMA_ALG_AEAD = 18; // struct xfrm_algo_aead
export const XFRMA_KMADDRESS = 19;
export const XFRMA_ALG_AUTH_TRUNC = 20; // struct xfrm_algo_auth (explicit truncation length)
export const XFRMA_MARK = 21; // struct xfrm_mark
export const XFRMA_TFCPAD = 22; // __u32
export const XFRMA_REPLAY_ESN_VAL = 23; // struct xfrm_replay_state_esn
export const XFRMA_SA_EXTRA_FLAGS = 24; // __u32
export const XFRMA_PROTO = 25; // __u8
export const XFRMA_ADDRESS_FILTER = 26;
export const XFRMA_PAD = 27;
export const XFRMA_OFFLOAD_DEV = 28;
export const XFRMA_SET_MARK = 29;
export const XFRMA_SET_MARK_MASK = 30;
export const XFRMA_IF_ID = 31; // __u32
export const XFRMA_MTIMER_THRESH = 32;
export const XFRMA_SA_DIR = 33;

// ---- linux/xfrm.h: enum xfrm_nlgroups (multicast groups, 1-based for NETLINK_ADD_MEMBERSHIP) -----------------------
export const XFRMNLGRP_NONE = 0;
export const XFRMNLGRP_ACQUIRE = 1;
export const XFRMNLGRP_EXPIRE = 2;
export const XFRMNLGRP_SA = 3;
export const XFRMNLGRP_POLICY = 4;
export const XFRMNLGRP_AEVENTS = 5;
export const XFRMNLGRP_REPORT = 6;
export const XFRMNLGRP_MIGRATE = 7;
export const XFRMNLGRP_MAPPING = 8;

// ---- linux/xfrm.h: policies ---------------------------------------------------------------------------------------
export const XFRM_POLICY_TYPE_MAIN = 0;
export const XFRM_POLICY_TYPE_SUB = 1;
export const XFRM_POLICY_IN = 0;
export const XFRM_POLICY_OUT = 1;
export const XFRM_POLICY_FWD = 2;
/** XFRM_POLICY_MAX: a user-chosen policy index must satisfy (index & XFRM_POLICY_MAX) === dir (verify_newpolicy_info). */
export const XFRM_POLICY_MAX = 3;
export type PolicyDir = typeof XFRM_POLICY_IN | typeof XFRM_POLICY_OUT | typeof XFRM_POLICY_FWD;
export const XFRM_POLICY_ALLOW = 0;
export const XFRM_POLICY_BLOCK = 1;
export const XFRM_POLICY_LOCALOK = 1;
export const XFRM_POLICY_ICMP = 2;

export const XFRM_SHARE_ANY = 0;
export const XFRM_SHARE_SESSION = 1;
export const XFRM_SHARE_USER = 2;
export const XFRM_SHARE_UNIQUE = 3;

// ---- linux/xfrm.h: states ------------------------------------------------------------------------------------------
export const XFRM_MODE_TRANSPORT = 0;
export const XFRM_MODE_TUNNEL = 1;
export const XFRM_MODE_ROUTEOPTIMIZATION = 2;
export const XFRM_MODE_IN_TRIGGER = 3;
export const XFRM_MODE_BEET = 4;

export const XFRM_STATE_NOECN = 1;
export const XFRM_STATE_DECAP_DSCP = 2;
export const XFRM_STATE_NOPMTUDISC = 4;
export const XFRM_STATE_WILDRECV = 8;
export const XFRM_STATE_ICMP = 16;
export const XFRM_STATE_AF_UNSPEC = 32;
export const XFRM_STATE_ALIGN4 = 64;
export const XFRM_STATE_ESN = 128;

export const XFRM_SA_XFLAG_DONT_ENCAP_DSCP = 1;
export const XFRM_SA_XFLAG_OSEQ_MAY_WRAP = 2;

/** linux/xfrm.h: #define XFRM_INF (~(__u64)0) */
export const XFRM_INF = 0xffff_ffff_ffff_ffffn;

/** SPI range for XFRM_MSG_ALLOCSPI: RFC 4303 §2.1 reserves 1..255. */
export const SPI_MIN = 0x100;
export const SPI_MAX = 0xffff_ffff;

// ---- struct sizes (x86_64/arm64) -------------------------------------------------------------------------------------
export const SIZEOF_XFRM_ADDRESS = 16; // union { __be32 a4; __be32 a6[4]; struct in6_addr in6; }
export const SIZEOF_XFRM_SELECTOR = 56;
export const SIZEOF_XFRM_ID = 24; // daddr(16) spi(4) proto(1) + pad 3
export const SIZEOF_XFRM_LIFETIME_CFG = 64;
export const SIZEOF_XFRM_LIFETIME_CUR = 32;
export const SIZEOF_XFRM_STATS = 12;
export const SIZEOF_XFRM_USERSA_INFO = 224; // 217 bytes of fields, padded to 8
export const SIZEOF_XFRM_USERSA_ID = 24;
export const SIZEOF_XFRM_USERSPI_INFO = 232;
export const SIZEOF_XFRM_USERPOLICY_INFO = 168;
export const SIZEOF_XFRM_USERPOLICY_ID = 64;
export const SIZEOF_XFRM_USER_TMPL = 64;
export const SIZEOF_XFRM_USER_EXPIRE = 232;
export const SIZEOF_XFRM_USER_POLEXPIRE = 176;
export const SIZEOF_XFRM_USER_ACQUIRE = 280;
export const SIZEOF_XFRM_ENCAP_TMPL = 24;
export const SIZEOF_XFRM_MARK = 8;
export const SIZEOF_XFRM_USERPOLICY_TYPE = 6;
export const SIZEOF_XFRM_REPLAY_STATE_ESN = 24; // without the bitmap
export const XFRM_ALG_NAME_LEN = 64; // char alg_name[64]
