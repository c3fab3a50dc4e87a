/** Public surface of the kernel data plane (NETLINK_XFRM). Pure codecs, socket, apply. No dependency on src/ike. */
export * from './address.js';
export * from './apply.js';
export * from './builders.js';
export * from './constants.js';
export * from './messages.js';
export * from './netlink.js';
export * from './ownership.js';
export * from './policies.js';
export * from './socket.js';
export * from './structs.js';
export * from './udp-encap.js';
