// Raw DNS over UDP and TCP for what dig cannot do: malformed packets, exact IDs,
// pipelining on one connection.
import dgram from 'node:dgram';
import net from 'node:net';
import { encodeMessage, decodeMessage, type Packet } from '../../src/dns/codec.js';

export function query(name: string, type: string, id: number, opts: { udpSize?: number } = {}): Buffer {
  const packet: Packet = { type: 'query', id, flags: 0x0100, questions: [{ name, type: type as 'A', class: 'IN' }] };
  if (opts.udpSize) packet.additionals = [{ type: 'OPT', name: '.', udpPayloadSize: opts.udpSize } as never];
  return encodeMessage(packet);
}

/** Sends datagrams and collects replies until `count` arrive or timeoutMs passes. */
export async function udpExchange(port: number, messages: Buffer[], count: number, timeoutMs = 2000, host = '127.0.0.1'): Promise<Buffer[]> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const replies: Buffer[] = [];
  await new Promise<void>((resolve) => socket.bind(0, resolve));
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    socket.on('message', (m) => {
      replies.push(m);
      if (replies.length >= count) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  for (const m of messages) socket.send(m, port, host);
  await done;
  socket.close();
  return replies;
}

/** Sends datagrams that get no reply (malformed ones): resolves once the kernel has taken them all. */
export async function udpSend(port: number, messages: Buffer[], host = '127.0.0.1'): Promise<void> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve) => socket.bind(0, resolve));
  await Promise.all(messages.map((m) => new Promise<void>((resolve) => socket.send(m, port, host, () => resolve()))));
  socket.close();
}

/** Writes all messages on one TCP connection at once, reads `count` framed replies. */
export async function tcpPipeline(port: number, messages: Buffer[], count: number, timeoutMs = 5000, host = '127.0.0.1'): Promise<Buffer[]> {
  const socket = net.connect(port, host);
  const replies: Buffer[] = [];
  let pending = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        replies.push(pending.subarray(2, 2 + pending.readUInt16BE(0)));
        pending = pending.subarray(2 + pending.readUInt16BE(0));
      }
      if (replies.length >= count) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  socket.write(Buffer.concat(messages.map((m) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]))));
  await done;
  socket.destroy();
  return replies;
}

export { decodeMessage };
