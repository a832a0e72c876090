#!/usr/bin/env node
// Bounded client behaviour for the ladder's system tests, from one source
// address (or several, for a spread flood), for SECONDS at QPS in all, then
// prints one JSON line and exits.
//   nat    a NAT address carrying many stubs: mostly A/AAAA/MX, a few percent
//          ~900-byte TXT and ANY (EDNS 1232); a TC answer is retried over TCP
//          at once, an unanswered query is retried over UDP after 1 s, twice;
//          counts lookups answered in full (NOERROR without TC, by either).
//   victim a spoofed victim: queries "from" it for ANY, ~900 and ~3000-byte TXT
//          with a 4096-byte EDNS buffer; nobody there retries over TCP; counts
//          the bytes sent in each second and the bytes their replies brought.
//   stub   a stub that never retries over TCP, asking for ~900-byte TXT.
//   nat-txt  the NAT, asking only for ~900-byte TXT.
//   small  a real client asking only for small answers (A) over UDP, never
//          retrying over TCP; counts lookups answered in full.
//   helper a real host asking over TCP only (a connection per query) for the
//          names a victim flood asks for: no UDP at all.
// usage: ladder-traffic.mjs MODE SERVER PORT SECONDS QPS SRC[,SRC...]
// PORT may be a list (PORT,PORT,...): the UDP queries go to each in turn (a
// client spread over the nodes of a site by ECMP); LADDER_TCP_PORT sends the
// TCP retries to another port than the UDP query's (a split client).
import dgram from 'node:dgram';
import net from 'node:net';
import { encodeMessage } from '../../dist/src/dns/codec.js';

const [mode, server, portText, secondsText, qpsText, sourcesText] = process.argv.slice(2);
const ports = portText.split(',').map(Number);
const tcpPort = process.env.LADDER_TCP_PORT ? Number(process.env.LADDER_TCP_PORT) : null;
const seconds = Math.min(Number(secondsText), 120);
const qps = Math.min(Number(qpsText), 5000);
const sources = sourcesText.split(',');

const MIXES = {
  nat: [
    ...Array(30).fill(['www.example.test', 'A']), ...Array(20).fill(['mail.example.test', 'A']),
    ...Array(20).fill(['example.test', 'AAAA']), ...Array(14).fill(['ns1.example.test', 'A']),
    ...Array(8).fill(['example.test', 'MX']), ...Array(4).fill(['medium.example.test', 'TXT']),
    ...Array(4).fill(['example.test', 'ANY']),
  ],
  victim: [['example.test', 'ANY'], ['medium.example.test', 'TXT'], ['big.example.test', 'TXT'], ['medium.example.test', 'TXT']],
  stub: [['medium.example.test', 'TXT']],
  // a NAT whose every lookup is a large answer: each ladder TC is followed by exactly one TCP query
  'nat-txt': [['medium.example.test', 'TXT']],
  small: [['www.example.test', 'A'], ['mail.example.test', 'A'], ['ns1.example.test', 'A']],
  helper: [['medium.example.test', 'TXT'], ['big.example.test', 'TXT'], ['example.test', 'ANY']],
};
const mix = MIXES[mode];
if (!mix) throw new Error(`unknown mode ${mode}`);
const udpSize = mode === 'victim' ? 4096 : 1232;

const totals = {
  lookups: 0, full: 0, viaTcp: 0, tc: 0, servfail: 0, unanswered: 0, udpRetries: 0, tcpErrors: 0,
  bytesSent: 0, bytesReceived: 0, perSecond: [],
};
const second = () => Math.floor((Date.now() - start) / 1000);
const perSecond = (i) => (totals.perSecond[i] ??= { sent: 0, received: 0, replies: 0 });

function encode(id, name, type) {
  return encodeMessage({
    type: 'query', id, flags: 0x100, questions: [{ name, type, class: 'IN' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: udpSize }],
  });
}

/** lookups waiting for an answer, by "socket index:id" */
const pending = new Map();
let nextId = 0;

function finish(key, outcome) {
  const p = pending.get(key);
  if (!p) return;
  pending.delete(key);
  totals[outcome]++;
}

function tcpRetry(key, p) {
  const q = encode(p.id, p.name, p.type);
  const frame = Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q]);
  const sock = net.connect({ host: server, port: tcpPort ?? p.port, localAddress: p.src });
  let buf = Buffer.alloc(0);
  const fail = () => {
    if (!pending.has(key)) return;
    totals.tcpErrors++;
    p.tcpFailed = true; // the UDP retries may still answer it
  };
  sock.setTimeout(3000, () => { fail(); sock.destroy(); });
  sock.on('error', fail);
  sock.on('connect', () => sock.write(frame));
  sock.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
    const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
    sock.end();
    const rcode = msg[3] & 15;
    if (rcode === 0) {
      totals.viaTcp++;
      finish(key, 'full');
    } else if (rcode === 2) finish(key, 'servfail');
    else finish(key, 'unanswered');
  });
}

const sockets = await Promise.all(sources.map((src, index) => new Promise((resolve) => {
  const s = dgram.createSocket(src.includes(':') ? 'udp6' : 'udp4');
  s.on('message', (m) => {
    totals.bytesReceived += m.length;
    const key = m.length < 12 ? '' : `${index}:${m.readUInt16BE(0)}`;
    const p = pending.get(key);
    // a reply counts in the second its query's bytes were counted in (the last send of it): what each
    // second's queries brought back (by arrival, a reply near a second's end would land in the next
    // second with another mix; by a clock read apart from the send's, its query's bytes could too)
    const ps = perSecond(p ? p.sentSecond : second());
    ps.received += m.length;
    ps.replies++;
    if (!p) return;
    const tc = (m[2] & 2) !== 0;
    const rcode = m[3] & 15;
    if (tc) {
      totals.tc++;
      if (mode.startsWith('nat') && !p.tcpTried) {
        p.tcpTried = true;
        tcpRetry(key, p);
      } else if (!mode.startsWith('nat')) finish(key, 'unanswered');
      return;
    }
    if (rcode === 0) finish(key, 'full');
    else if (rcode === 2) finish(key, 'servfail');
    else finish(key, 'unanswered');
  });
  s.bind(0, src, () => resolve({ s, src, index }));
})));

function send(sock, p) {
  const q = encode(p.id, p.name, p.type);
  sock.s.send(q, p.port, server);
  totals.bytesSent += q.length;
  p.sentSecond = second();
  perSecond(p.sentSecond).sent += q.length;
}

// UDP retries after 1 s without an answer (twice), given up after 3.5 s in all
const retryTimer = setInterval(() => {
  const now = Date.now();
  for (const [key, p] of pending) {
    if (now - p.firstAt > 3500) finish(key, 'unanswered');
    else if (mode.startsWith('nat') && (!p.tcpTried || p.tcpFailed) && now - p.lastAt > 1000 && p.udpTries < 3) {
      p.udpTries++;
      p.lastAt = now;
      totals.udpRetries++;
      send(sockets[p.sock], p);
    } else if (!mode.startsWith('nat') && mode !== 'helper' && now - p.firstAt > 1500) finish(key, 'unanswered');
  }
}, 100);

const start = Date.now();
const total = Math.floor(qps * seconds);
for (let i = 0; i < total; i++) {
  const sock = sockets[i % sockets.length];
  // 37 is prime to the mixes' lengths: the rare types are spread out, not bunched
  const [name, type] = mix[(i * 37) % mix.length];
  const id = nextId = (nextId + 1) & 0xffff;
  const p = { port: ports[i % ports.length], id, name, type, src: sock.src, sock: sock.index, firstAt: Date.now(), lastAt: Date.now(), sentSecond: 0, udpTries: 1, tcpTried: false, tcpFailed: false };
  pending.set(`${sock.index}:${id}`, p);
  totals.lookups++;
  if (mode === 'helper') {
    p.tcpTried = true;
    tcpRetry(`${sock.index}:${id}`, p);
  } else send(sock, p);
  const wait = start + ((i + 1) * 1000) / qps - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
// let the last answers (and TCP retries) come in
const drainEnd = Date.now() + 4000;
const DRAIN_POLL_MS = 50;
while (pending.size > 0 && Date.now() < drainEnd) await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
for (const key of [...pending.keys()]) finish(key, 'unanswered');
clearInterval(retryTimer);
for (const s of sockets) s.s.close();
process.stdout.write(JSON.stringify(totals) + '\n');
