// Used by asan-test.sh: one native socket receives a datagram, answers it, closes, and
// the process exits normally so that the addon's environment teardown runs under ASan.
'use strict';
const dgram = require('node:dgram');
const b = require(process.env.AMPGUARD_NATIVE_ADDON);
const batch = b.maxBatch;
const arena = new Uint8Array(4096 * batch);
const meta = new Int32Array(b.metaFields * batch);
const addrs = new Uint8Array(16 * batch);
const s = new b.UdpSocket(4, arena, meta, addrs, 4096, batch, (n) => {
  for (let i = 0; i < n; i++) s.sendTo(Buffer.from(arena.subarray(i * 4096, i * 4096 + meta[i * b.metaFields])), meta[i * b.metaFields + 1], '127.0.0.1');
});
s.bind('127.0.0.1', 0, true, 1 << 20);
s.start();
const client = dgram.createSocket('udp4');
client.on('message', (m) => {
  if (m.toString() !== 'ping') throw new Error(`echo was ${m}`);
  client.close();
  s.close();
  console.log('asan smoke: echo received, socket closed');
});
client.send(Buffer.from('ping'), s.localPort(), '127.0.0.1');
