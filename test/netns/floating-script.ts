/** Runs inside a fresh namespace: claims and releases floating addresses next to the node's own (rtnetlink). */
import { execFileSync } from 'node:child_process';
import { FloatingAddressError, RtnlAddresses } from '../../src/agent/floating.js';

const addrs = () =>
  (
    JSON.parse(execFileSync('ip', ['-j', 'addr', 'show', 'dev', 'ul0'], { encoding: 'utf8' })) as {
      addr_info: { local: string; prefixlen: number }[];
    }[]
  )[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
const out: Record<string, unknown> = {};
const c = new RtnlAddresses();
await c.claim('192.0.2.10', '192.0.2.11');
await c.claim('2001:db8:5::10', '2001:db8:5::11');
await c.claim('192.0.2.10', '192.0.2.11'); // again: no error, no duplicate
out.claimed = addrs();
await c.release('192.0.2.10');
await c.release('2001:db8:5::10');
await c.release('192.0.2.10'); // again: nothing to do
out.released = addrs();
try {
  await c.claim('192.0.2.20', '198.18.99.1');
  out.noInterface = 'no error';
} catch (e) {
  out.noInterface = e instanceof FloatingAddressError ? `${e.reason}: ${e.message}` : `untyped ${e}`;
}
c.close();
console.log(JSON.stringify(out));
