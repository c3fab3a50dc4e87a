// A bulk TCP transfer for the UML MTU scenario, plain JavaScript so that it starts in well under a second inside
// UML (no TypeScript compilation). Run inside a namespace with `ip netns exec NS node bulk-tcp.mjs ...`:
//   server HOST PORT                 counts the bytes of each connection; prints a JSON line every 250 ms while a
//                                    connection is open and one when it ends: {"conn","bytes","done","ms"}
//   client HOST PORT LOCAL BYTES MS  sends BYTES bytes, waits for the server's count, prints one JSON line:
//                                    {"ok","bytes","acked","ms","error"?}; exits after MS milliseconds at the latest
import { connect, createServer } from 'node:net';

const [mode, host, portText, ...rest] = process.argv.slice(2);
const port = Number(portText);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

if (mode === 'server') {
  let n = 0;
  const server = createServer((s) => {
    const conn = ++n;
    const t0 = performance.now();
    let bytes = 0;
    const tick = setInterval(() => out({ conn, bytes, done: false, ms: Math.round(performance.now() - t0) }), 250);
    s.on('data', (d) => {
      bytes += d.length;
    });
    s.on('end', () => {
      clearInterval(tick);
      out({ conn, bytes, done: true, ms: Math.round(performance.now() - t0) });
      s.end(`${bytes}\n`);
    });
    s.on('error', () => clearInterval(tick));
    s.on('close', () => clearInterval(tick));
  });
  server.listen(port, host, () => out({ listening: true }));
} else if (mode === 'client') {
  const [localAddress, bytesText, msText] = rest;
  const total = Number(bytesText);
  const t0 = performance.now();
  const c = connect({ host, port, localAddress });
  let reply = '';
  let written = 0;
  const finish = (o) => {
    out({ bytes: total, ms: Math.round(performance.now() - t0), ...o });
    process.exit(0);
  };
  const timer = setTimeout(
    () => finish({ ok: false, acked: 0, written, error: `timed out after ${msText} ms` }),
    Number(msText),
  );
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const pump = () => {
    while (written < total) {
      const n = Math.min(chunk.length, total - written);
      written += n;
      if (!c.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return;
    }
    c.end();
  };
  c.on('connect', pump);
  c.on('drain', pump);
  c.setEncoding('utf8');
  c.on('data', (d) => {
    reply += d;
  });
  c.on('end', () => {
    clearTimeout(timer);
    const acked = Number(reply.trim());
    finish({ ok: acked === total, acked, written });
  });
  c.on('error', (e) => {
    clearTimeout(timer);
    finish({ ok: false, acked: 0, written, error: e.message });
  });
} else {
  process.stderr.write('usage: bulk-tcp.mjs server HOST PORT | client HOST PORT LOCAL BYTES MS\n');
  process.exit(2);
}
