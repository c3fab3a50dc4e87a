/**
 * A worker process inside one network namespace (started with `ip netns exec NS node --import tsx worker.ts`):
 * it owns that namespace's NETLINK_XFRM socket and its TCP/UDP endpoints, and answers JSON-line requests on stdin:
 *   {id, cmd, args}  ->  {id, ok: true, value} | {id, ok: false, error, code}
 * and pushes XFRM events as {event}. Commands: xfrm (call an XfrmSocket method), apply, encapSocket, tcpEchoServer,
 * tcpExchange, exit.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import { createInterface } from 'node:readline';
import { applyXfrm, executeXfrm, type XfrmAction } from '../../../src/xfrm/apply.js';
import { XFRMNLGRP_ACQUIRE, XFRMNLGRP_EXPIRE } from '../../../src/xfrm/constants.js';
import type { Ownership } from '../../../src/xfrm/ownership.js';
import { XfrmSocket } from '../../../src/xfrm/socket.js';
import { enableEspInUdp, udpEncapType } from '../../../src/xfrm/udp-encap.js';
import { fromWire, toWire } from './wire.js';

const sock = XfrmSocket.open({ groups: [XFRMNLGRP_EXPIRE, XFRMNLGRP_ACQUIRE] });
sock.onEvent((event) => process.stdout.write(`${toWire({ event })}\n`));
const udp: UdpSocket[] = [];
const servers: Server[] = [];
const received: { data: string; from: string; port: number }[] = [];

async function tcpExchange(a: {
  host: string;
  port: number;
  localAddress: string;
  payload: Buffer;
  timeoutMs: number;
}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = connect({ host: a.host, port: a.port, localAddress: a.localAddress });
    const chunks: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`tcp exchange timed out after ${got} bytes`));
    }, a.timeoutMs);
    c.on('connect', () => c.end(a.payload));
    c.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
    });
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

async function handle(cmd: string, args: Record<string, unknown>): Promise<unknown> {
  switch (cmd) {
    case 'xfrm': {
      const m = args.method as string;
      const f = (sock as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[m];
      if (typeof f !== 'function') throw new Error(`no XfrmSocket method ${m}`);
      return f.apply(sock, args.args as unknown[]);
    }
    case 'apply':
      return applyXfrm(sock, args.desired as Parameters<typeof applyXfrm>[1], args.own as Ownership);
    case 'execute':
      return executeXfrm(sock, args.actions as XfrmAction[]);
    case 'plan': {
      const { planXfrm } = await import('../../../src/xfrm/apply.js');
      const sas = await sock.dumpSas();
      const policies = await sock.dumpPolicies();
      return planXfrm(args.desired as Parameters<typeof planXfrm>[0], { sas, policies }, args.own as Ownership);
    }
    case 'udpListen': {
      const s = createSocket({ type: args.family === 6 ? 'udp6' : 'udp4' });
      s.on('message', (m, r) => received.push({ data: m.toString(), from: r.address, port: r.port }));
      await new Promise<void>((r) => s.bind(args.port as number, args.host as string, r));
      udp.push(s);
      return true;
    }
    case 'udpReceived':
      return received;
    case 'udpSendFrom': {
      const s = createSocket({ type: args.family === 6 ? 'udp6' : 'udp4' });
      await new Promise<void>((r) => s.bind(args.localPort as number, args.localAddress as string, r));
      try {
        await new Promise<void>((resolve, reject) => {
          s.send(Buffer.from(args.data as string), args.port as number, args.host as string, (err) =>
            err ? reject(err) : resolve(),
          );
        });
      } finally {
        s.close();
      }
      return true;
    }
    case 'tcpConnect': {
      // Resolves with 'connected' or the error code (EPERM when an XFRM block policy drops the SYN).
      return new Promise((resolve) => {
        const c = connect({
          host: args.host as string,
          port: args.port as number,
          localAddress: args.localAddress as string,
        });
        const t = setTimeout(
          () => {
            c.destroy();
            resolve('timeout');
          },
          (args.timeoutMs as number) ?? 3000,
        );
        c.on('connect', () => {
          clearTimeout(t);
          c.destroy();
          resolve('connected');
        });
        c.on('error', (e: Error & { code?: string }) => {
          clearTimeout(t);
          resolve(e.code ?? e.message);
        });
      });
    }
    case 'encapSocket': {
      const s = createSocket({ type: args.family === 6 ? 'udp6' : 'udp4' });
      await new Promise<void>((r) => s.bind(args.port as number, args.address as string, r));
      enableEspInUdp(s);
      udp.push(s);
      return udpEncapType(s);
    }
    case 'tcpEchoServer': {
      const srv = createServer((c) => c.pipe(c));
      await new Promise<void>((r) => srv.listen(args.port as number, args.host as string, r));
      servers.push(srv);
      return true;
    }
    case 'tcpExchange': {
      const reply = await tcpExchange(args as Parameters<typeof tcpExchange>[0]);
      return { bytes: reply.length, equal: reply.equals(args.payload as Buffer) };
    }
    case 'udpSend': {
      const s = createSocket({ type: args.family === 6 ? 'udp6' : 'udp4' });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.send(Buffer.from('acquire-probe'), args.port as number, args.host as string, () => resolve());
      });
      s.close();
      return true;
    }
    case 'exit':
      for (const s of udp) s.close();
      for (const s of servers) s.close();
      sock.close();
      setImmediate(() => process.exit(0));
      return true;
    default:
      throw new Error(`unknown command ${cmd}`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const req = fromWire<{ id: number; cmd: string; args: Record<string, unknown> }>(line);
  handle(req.cmd, req.args ?? {}).then(
    (value) => process.stdout.write(`${toWire({ id: req.id, ok: true, value })}\n`),
    (err: Error & { code?: string }) =>
      process.stdout.write(`${toWire({ id: req.id, ok: false, error: err.message, code: err.code })}\n`),
  );
});
rl.on('close', () => process.exit(0));
process.stdout.write(`${toWire({ ready: true })}\n`);
