#!/usr/bin/env node
// A bounded UDP query sender for tests in network namespaces: sends COUNT
// queries from SRC to SERVER:PORT, one every INTERVAL ms, waits WAIT ms for
// the last replies, prints {"sent":N,"received":N,"truncated":N} and exits.
// usage: udp-blast.mjs SERVER PORT SRC COUNT NAME TYPE [BUFSIZE] [INTERVAL] [WAIT]
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { encodeMessage } from '../../dist/src/dns/codec.js';

const [server, port, src, count, name, type, bufsize = '1232', interval = '2', wait = '500'] = process.argv.slice(2);
const socket = dgram.createSocket(isIPv6(server) ? 'udp6' : 'udp4');
let received = 0;
let truncated = 0;
socket.on('message', (m) => {
  received++;
  if (m[2] & 0x02) truncated++;
});
socket.bind(0, src, async () => {
  const total = Math.min(Number(count), 100000);
  for (let i = 0; i < total; i++) {
    const q = encodeMessage({
      type: 'query', id: i & 0xffff, flags: 0x100, questions: [{ name, type, class: 'IN' }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: Number(bufsize) }],
    });
    socket.send(q, Number(port), server);
    if (Number(interval) > 0) await new Promise((r) => setTimeout(r, Number(interval)));
  }
  setTimeout(() => {
    process.stdout.write(JSON.stringify({ sent: total, received, truncated }) + '\n');
    socket.close();
  }, Number(wait));
});
