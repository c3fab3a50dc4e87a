/**
 * UDP transport for IKE (RFC 7296 §2, RFC 3948): sockets on UDP 500 and 4500 for every local address (IPv4 and
 * IPv6). On 4500 IKE messages carry a four-byte zero non-ESP marker, added on send and stripped on receive; one-byte
 * 0xFF datagrams are NAT keepalives and are ignored. New IKE_SA_INIT requests are rate-limited per source address
 * (token bucket) before the engine sees them.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import type { Endpoint, Sender } from '../ike/ports.js';

export type Receiver = (packet: Uint8Array, from: Endpoint, to: Endpoint) => void;

export interface TransportStats {
  received: number;
  sent: number;
  keepalivesReceived: number;
  /** Datagrams on the NAT-T port without the non-ESP marker (ESP the kernel did not take). */
  droppedNonIke: number;
  /** IKE_SA_INITs dropped by the per-source rate limit. */
  rateLimited: number;
  sendErrors: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

const NON_ESP_MARKER = new Uint8Array(4);

export class UdpTransport implements Sender {
  readonly stats: TransportStats = {
    received: 0,
    sent: 0,
    keepalivesReceived: 0,
    droppedNonIke: 0,
    rateLimited: 0,
    sendErrors: 0,
  };
  private readonly sockets = new Map<string, Socket>();
  private readonly buckets = new Map<string, Bucket>();
  private receiver: Receiver = () => {};

  constructor(
    private readonly options: {
      addresses: string[];
      ikePort: number;
      nattPort: number;
      /** IKE_SA_INIT requests per second per source address (burst: twice that). */
      initRate: number;
      onError?: (message: string) => void;
    },
  ) {}

  onReceive(r: Receiver): void {
    this.receiver = r;
  }

  /** The bound NAT-T sockets (for UDP_ENCAP in the kernel data plane). */
  nattSockets(): Socket[] {
    return [...this.sockets.entries()].filter(([k]) => k.endsWith(`|${this.options.nattPort}`)).map(([, s]) => s);
  }

  async start(): Promise<void> {
    for (const address of this.options.addresses) await this.bind(address);
  }

  /** Addresses with bound IKE sockets. */
  boundAddresses(): string[] {
    return [...new Set([...this.sockets.keys()].map((k) => k.slice(0, k.lastIndexOf('|'))))];
  }

  /** Listen on the IKE and NAT-T ports of one more address (a floating address); returns the NAT-T socket. */
  async bind(address: string): Promise<Socket> {
    for (const port of [this.options.ikePort, this.options.nattPort]) {
      if (this.sockets.has(`${address}|${port}`)) continue;
      const type = isIP(address) === 6 ? 'udp6' : 'udp4';
      const socket = createSocket({ type, reuseAddr: false, ...(type === 'udp6' ? { ipv6Only: true } : {}) });
      await new Promise<void>((resolve, reject) => {
        socket.once('error', (e) => {
          socket.close();
          reject(e);
        });
        socket.bind({ address, port, exclusive: true }, () => {
          socket.removeAllListeners('error');
          resolve();
        });
      });
      socket.on('error', (e) => this.options.onError?.(`socket ${address}:${port}: ${e.message}`));
      socket.on('message', (msg, rinfo) =>
        this.onMessage(msg, { address: rinfo.address, port: rinfo.port }, { address, port }),
      );
      this.sockets.set(`${address}|${port}`, socket);
    }
    return this.sockets.get(`${address}|${this.options.nattPort}`)!;
  }

  /** Stop listening on an address (before a floating address is removed). */
  async unbind(address: string): Promise<void> {
    for (const port of [this.options.ikePort, this.options.nattPort]) {
      const s = this.sockets.get(`${address}|${port}`);
      if (!s) continue;
      this.sockets.delete(`${address}|${port}`);
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.sockets.values()].map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.sockets.clear();
  }

  private onMessage(msg: Buffer, from: Endpoint, to: Endpoint): void {
    this.stats.received++;
    let packet: Uint8Array = msg;
    if (to.port === this.options.nattPort) {
      if (msg.length === 1 && msg[0] === 0xff) {
        this.stats.keepalivesReceived++;
        return;
      }
      if (msg.length < 4 || msg[0] !== 0 || msg[1] !== 0 || msg[2] !== 0 || msg[3] !== 0) {
        this.stats.droppedNonIke++;
        return;
      }
      packet = msg.subarray(4);
    }
    // New IKE_SA_INIT requests (responder SPI zero, exchange 34, not a response) are rate-limited per source.
    if (packet.length >= 28 && packet[18] === 34 && (packet[19]! & 0x20) === 0 && isZero(packet, 8, 16)) {
      if (!this.take(from.address)) {
        this.stats.rateLimited++;
        return;
      }
    }
    this.receiver(new Uint8Array(packet), from, to);
  }

  private take(source: string): boolean {
    const now = performance.now();
    const rate = this.options.initRate;
    const burst = rate * 2;
    const b = this.buckets.get(source) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    this.buckets.set(source, b);
    if (this.buckets.size > 100_000) this.buckets.delete(this.buckets.keys().next().value!);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  send(packet: Uint8Array, from: Endpoint, to: Endpoint): void {
    const socket = this.sockets.get(`${from.address}|${from.port}`);
    if (!socket) {
      this.stats.sendErrors++;
      this.options.onError?.(`no socket bound to ${from.address}:${from.port}`);
      return;
    }
    const data = from.port === this.options.nattPort ? Buffer.concat([NON_ESP_MARKER, packet]) : Buffer.from(packet);
    socket.send(data, to.port, to.address, (err) => {
      if (err) {
        this.stats.sendErrors++;
        this.options.onError?.(`send to ${to.address}:${to.port}: ${err.message}`);
      } else this.stats.sent++;
    });
  }

  /** NAT keepalive (RFC 3948 §2.3): one 0xFF byte from our NAT-T port. */
  keepalive(from: Endpoint, to: Endpoint): void {
    const socket = this.sockets.get(`${from.address}|${this.options.nattPort}`);
    socket?.send(Buffer.from([0xff]), to.port, to.address);
  }
}

function isZero(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i] !== 0) return false;
  return true;
}
