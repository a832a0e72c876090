#!/usr/bin/env node
// The cost of the fleet's evidence at a site (docs/fleet.md, "Cost"): NODES
// simulated nodes in this process, each publishing sealed evidence for PREFIXES
// active prefixes every FLUSH_MS for SECONDS and receiving (opening, checking,
// parsing) everyone else's, as a node's primary does, through a running
// nats-server whose pid is given. Prints the CPU each spent, per node and for
// the server, and the bytes each node published and received per second.
// usage: node test/helpers/fleet-load.mjs NATS_URL NATS_PID NODES PREFIXES SECONDS
import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { EvidenceBatch, parseEvidence } from '../../dist/src/fleet/evidence.js';
import { Receiver, Sender } from '../../dist/src/fleet/seal.js';
import { FLUSH_MS } from '../../dist/src/fleet/start.js';

const [url, pidText, nodesText, prefixesText, secondsText] = process.argv.slice(2);
const nodes = Math.min(Number(nodesText), 64);
const prefixes = Math.min(Number(prefixesText), 200_000);
const seconds = Math.min(Number(secondsText), 60);
const key = Buffer.alloc(32, 7);
const subject = 'ampguard.load.evidence';
const ticks = () => readFileSync(`/proc/${pidText}/stat`, 'utf8').split(') ')[1].split(' ').slice(11, 13).reduce((a, b) => a + Number(b), 0);

let received = 0;
let receivedBytes = 0;
let sentBytes = 0;
const clients = [];
for (let i = 0; i < nodes; i++) {
  const nc = await connect({ servers: [url], noEcho: true });
  const receiver = new Receiver(key, 'load');
  nc.subscribe(subject, {
    callback: (_e, m) => {
      const r = receiver.accept(m.data, Date.now());
      if (r.ok && parseEvidence(r.env.b)) (received++, (receivedBytes += m.data.length));
    },
  });
  clients.push({ nc, sender: new Sender(key, 'load', `node-${i}`, Date.now()) });
}
// each window, each node charged every one of its active prefixes once (spread over the windows of a second)
const perWindow = Math.ceil(prefixes / (1000 / FLUSH_MS));
const cpu0 = process.cpuUsage();
const srv0 = ticks();
const end = Date.now() + seconds * 1000;
let window = 0;
while (Date.now() < end) {
  for (const [i, c] of clients.entries()) {
    const b = new EvidenceBatch();
    for (let k = 0; k < perWindow; k++) {
      const n = (window * perWindow + k) % prefixes;
      b.charge(`${64 + i}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`, 1100, false);
    }
    for (const body of b.take()) {
      const data = JSON.stringify(c.sender.seal(JSON.stringify(body), Date.now()));
      c.nc.publish(subject, data);
      sentBytes += data.length;
    }
  }
  window++;
  await new Promise((r) => setTimeout(r, FLUSH_MS));
}
for (const c of clients) await c.nc.flush();
await new Promise((r) => setTimeout(r, 500));
const cpu = process.cpuUsage(cpu0);
const srvTicks = ticks() - srv0;
for (const c of clients) await c.nc.close();
process.stdout.write(JSON.stringify({
  nodes, prefixesPerNode: prefixes, seconds, messagesReceived: received,
  publishedBytesPerNodePerSec: Math.round(sentBytes / nodes / seconds),
  receivedBytesPerNodePerSec: Math.round(receivedBytes / nodes / seconds),
  // all simulated nodes share this process: per node, sealing what it sends and opening what it receives
  nodeCpuPercent: +(((cpu.user + cpu.system) / 1e6 / seconds / nodes) * 100).toFixed(1),
  natsServerCpuPercent: +((srvTicks / 100 / seconds) * 100).toFixed(1),
}) + '\n');
