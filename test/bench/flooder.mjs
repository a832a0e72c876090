#!/usr/bin/env node
// A bounded UDP flood for the benchmark: the same small query from SRC to
// SERVER:PORT as fast as this process can send, for SECONDS, then it prints
// {"sent":N} and exits. usage: flooder.mjs SERVER PORT SRC SECONDS
import dgram from 'node:dgram';
import { encodeMessage } from '../../dist/src/dns/codec.js';

const [server, port, src, seconds] = process.argv.slice(2);
const socket = dgram.createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
const q = encodeMessage({ type: 'query', id: 1, flags: 0x100, questions: [{ name: 'medium.example.test', type: 'TXT', class: 'IN' }] });
const end = Date.now() + Number(seconds) * 1000;
let sent = 0;
let inFlight = 0;
socket.bind(0, src, () => {
  const burst = () => {
    if (Date.now() >= end) {
      const finish = () => (inFlight > 0 ? setTimeout(finish, 10) : (process.stdout.write(JSON.stringify({ sent }) + '\n'), socket.close()));
      return finish();
    }
    // bounded: never more than 2000 datagrams queued in the process
    for (let i = 0; i < 500 && inFlight < 2000; i++) {
      inFlight++;
      socket.send(q, Number(port), server, () => {
        inFlight--;
        sent++;
      });
    }
    setImmediate(burst);
  };
  burst();
});
