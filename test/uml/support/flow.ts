/**
 * UDP traffic tools for one network namespace (run as `ip netns exec NS node --import tsx flow.ts MODE ...`):
 *
 *   recv ADDR PORT COUNT            counts sequence numbers; prints READY, PROGRESS n (every 100 ms), and on a
 *                                   `stop` line on stdin: RECEIVED {unique, duplicates, lost, gaps, reordered}
 *   send FROM TO PORT RATE COUNT    sends COUNT datagrams at RATE/s (a fresh Buffer per datagram: dgram sends are
 *                                   asynchronous, a reused buffer would repeat sequence numbers); prints STARTED,
 *                                   then SENT {sent, sendErrors, durationMs}
 *   echo ADDR[,ADDR...] PORT        echoes every datagram (one socket per address, so replies leave from the address
 *                                   they were sent to); prints READY
 *   probe-many PAIRS PORT           PAIRS: FROM>TO,FROM>TO,...; per pair one datagram every 200 ms until it is echoed;
 *                                   prints `UP <index> <Date.now()>` per pair, then ALL <Date.now()> and exits
 *   ping FROM TO PORT INTERVAL_MS   one datagram to an echo every INTERVAL_MS; prints `ECHO <sentAt> <rttMs>` for each
 *                                   one that came back (sentAt: Date.now() when it left)
 *
 * Datagram: 4-byte magic 'SEQ1', 4-byte sequence number (big endian), then a text marker padding to 200 bytes.
 */
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';

const [mode, ...args] = process.argv.slice(2);
const MAGIC = 0x53455131;
export const FLOW_MARKER = 'IPSEC-MESH-FLOW-PLAINTEXT-MARKER';

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function recv(addr: string, port: number, count: number): void {
  const seen = new Uint8Array(count);
  let received = 0;
  let unique = 0;
  let duplicates = 0;
  let reordered = 0;
  let highest = -1;
  const s = createSocket({ type: addr.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 4 << 20 });
  s.on('message', (m) => {
    if (m.length < 8 || m.readUInt32BE(0) !== MAGIC) return;
    const seq = m.readUInt32BE(4);
    if (seq >= count) return;
    received++;
    if (seen[seq]) duplicates++;
    else {
      seen[seq] = 1;
      unique++;
    }
    if (seq < highest) reordered++;
    else highest = seq;
  });
  s.bind(port, addr, () => out('READY'));
  const timer = setInterval(() => out(`PROGRESS ${received}`), 100);
  createInterface({ input: process.stdin }).on('line', (l) => {
    if (l.trim() !== 'stop') return;
    clearInterval(timer);
    const gaps: [number, number][] = [];
    let lost = 0;
    for (let i = 0; i < count; i++) {
      if (seen[i]) continue;
      lost++;
      const last = gaps[gaps.length - 1];
      if (last && last[1] === i - 1) last[1] = i;
      else if (gaps.length < 50) gaps.push([i, i]);
    }
    out(`RECEIVED ${JSON.stringify({ received, unique, duplicates, lost, gaps, reordered })}`);
    s.close();
    setImmediate(() => process.exit(0));
  });
}

function datagram(seq: number): Buffer {
  const b = Buffer.alloc(200, FLOW_MARKER);
  b.writeUInt32BE(MAGIC, 0);
  b.writeUInt32BE(seq, 4);
  return b;
}

function send(from: string, to: string, port: number, rate: number, count: number): void {
  const s = createSocket({ type: to.includes(':') ? 'udp6' : 'udp4', sendBufferSize: 4 << 20 });
  let next = 0;
  let done = 0;
  let errors = 0;
  let start = 0;
  const finish = () => {
    out(`SENT ${JSON.stringify({ sent: next, sendErrors: errors, durationMs: performance.now() - start })}`);
    s.close();
    setImmediate(() => process.exit(0));
  };
  s.bind(0, from, () => {
    start = performance.now();
    out('STARTED');
    const tick = () => {
      const due = Math.min(count, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
      while (next < due) {
        // A fresh buffer per datagram (see the header comment).
        s.send(datagram(next), port, to, (err) => {
          if (err) errors++;
          if (++done === count) finish();
        });
        next++;
      }
      if (next < count) setTimeout(tick, 2);
    };
    tick();
  });
}

function echo(addrs: string, port: number): void {
  const list = addrs.split(',');
  let bound = 0;
  for (const addr of list) {
    const s = createSocket({ type: addr.includes(':') ? 'udp6' : 'udp4' });
    s.on('message', (m, r) => s.send(m, r.port, r.address));
    s.bind(port, addr, () => {
      if (++bound === list.length) out('READY');
    });
  }
}

function probeMany(pairs: string, port: number): void {
  const list = pairs.split(',').map((p) => p.split('>') as [string, string]);
  let left = list.length;
  list.forEach(([from, to], i) => {
    const s = createSocket({ type: to.includes(':') ? 'udp6' : 'udp4' });
    const nonce = Buffer.from(`PROBE-${i}`);
    let timer: NodeJS.Timeout | undefined;
    s.on('error', () => {});
    s.on('message', (m) => {
      if (!m.equals(nonce) || timer === undefined) return;
      clearTimeout(timer);
      timer = undefined;
      out(`UP ${i} ${Date.now()}`);
      s.close();
      if (--left === 0) {
        out(`ALL ${Date.now()}`);
        setImmediate(() => process.exit(0));
      }
    });
    s.bind(0, from, () => {
      const shoot = () => {
        s.send(Buffer.from(nonce), port, to, () => {});
        timer = setTimeout(shoot, 200);
      };
      shoot();
    });
  });
}

function ping(from: string, to: string, port: number, intervalMs: number): void {
  const s = createSocket({ type: to.includes(':') ? 'udp6' : 'udp4' });
  s.on('message', (m) => {
    if (m.length !== 16 || m.readUInt32BE(0) !== 0x50494e47) return;
    const sentAt = m.readDoubleBE(8);
    out(`ECHO ${sentAt} ${Date.now() - sentAt}`);
  });
  s.on('error', () => {});
  let seq = 0;
  s.bind(0, from, () => {
    out('STARTED');
    setInterval(() => {
      const b = Buffer.alloc(16);
      b.writeUInt32BE(0x50494e47, 0);
      b.writeUInt32BE(seq++, 4);
      b.writeDoubleBE(Date.now(), 8);
      s.send(b, port, to, () => {});
    }, intervalMs);
  });
}

switch (mode) {
  case 'recv':
    recv(args[0]!, Number(args[1]), Number(args[2]));
    break;
  case 'send':
    send(args[0]!, args[1]!, Number(args[2]), Number(args[3]), Number(args[4]));
    break;
  case 'echo':
    echo(args[0]!, Number(args[1]));
    break;
  case 'probe-many':
    probeMany(args[0]!, Number(args[1]));
    break;
  case 'ping':
    ping(args[0]!, args[1]!, Number(args[2]), Number(args[3]));
    break;
  default:
    process.stderr.write(`unknown mode ${mode}\n`);
    process.exit(2);
}
