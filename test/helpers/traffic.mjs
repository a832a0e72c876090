#!/usr/bin/env node
// Bounded mixed DNS traffic over UDP for operator-view tests: small answers,
// ~900-byte TXT and ANY from several source addresses, at QPS for SECONDS.
// Then waits for the replies still on their way: until every query has had
// its reply, or (some may legitimately never come: dropped, blocked, lost) no
// reply has come for 300 ms, at most 2 s; with REPLIES=all only the 2 s end it.
// Prints {"sent","received","bytesSent","bytesReceived","byType","receivedByType"}
// (byType: queries sent per type; receivedByType: replies per question type) and exits.
// usage: traffic.mjs SERVER PORT SECONDS QPS SRC[,SRC...] [REPLIES]
import dgram from 'node:dgram';
import { decodeMessage, encodeMessage } from '../../dist/src/dns/codec.js';

const [server, port, seconds, qps, sources, replies = ''] = process.argv.slice(2);
const mix = [
  ['www.example.test', 'A'], ['mail.example.test', 'A'], ['example.test', 'MX'], ['medium.example.test', 'TXT'],
  ['www.example.test', 'A'], ['example.test', 'ANY'], ['ns1.example.test', 'A'], ['medium.example.test', 'TXT'],
];
const totals = { sent: 0, received: 0, bytesSent: 0, bytesReceived: 0, byType: {}, receivedByType: {} };
const countReply = (m) => {
  totals.received++;
  totals.bytesReceived += m.length;
  const type = decodeMessage(m)?.questions?.[0]?.type ?? '?';
  totals.receivedByType[type] = (totals.receivedByType[type] ?? 0) + 1;
};
const sockets = await Promise.all(sources.split(',').map((src) => new Promise((resolve) => {
  const s = dgram.createSocket('udp4');
  s.on('message', countReply);
  s.bind(0, src, () => resolve(s));
})));
const total = Math.min(Number(qps) * Number(seconds), 200_000);
const interval = 1000 / Number(qps);
const start = Date.now();
for (let i = 0; i < total; i++) {
  // every source gets the whole mix
  const [name, type] = mix[Math.floor(i / sockets.length) % mix.length];
  const q = encodeMessage({ type: 'query', id: i & 0xffff, flags: 0x100, questions: [{ name, type, class: 'IN' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 }] });
  sockets[i % sockets.length].send(q, Number(port), server);
  totals.sent++;
  totals.byType[type] = (totals.byType[type] ?? 0) + 1;
  totals.bytesSent += q.length;
  const due = start + (i + 1) * interval;
  const wait = due - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
let lastReplyAt = Date.now();
for (const s of sockets) s.on('message', () => (lastReplyAt = Date.now()));
const lastReplyBy = Date.now() + 2000;
const quietEnough = () => replies !== 'all' && Date.now() - lastReplyAt >= 300;
const POLL_MS = 20;
while (totals.received < totals.sent && Date.now() < lastReplyBy && !quietEnough()) await new Promise((r) => setTimeout(r, POLL_MS));
for (const s of sockets) s.close();
process.stdout.write(JSON.stringify(totals) + '\n');
