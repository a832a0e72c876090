#!/usr/bin/env node
// What one node publishes on the fleet's evidence subject (docs/fleet.md,
// "Cost"): the sealed messages for N active prefixes in one FLUSH_MS window,
// built with the code the node runs (dist/). Prints one JSON line per N.
// usage: node test/helpers/fleet-bytes.mjs [N...]
import { EvidenceBatch } from '../../dist/src/fleet/evidence.js';
import { Sender } from '../../dist/src/fleet/seal.js';
import { FLUSH_MS } from '../../dist/src/fleet/start.js';

const sender = new Sender(Buffer.alloc(32, 1), 'site-1', 'node-01', Date.now());
const counts = process.argv.slice(2).map(Number);
for (const n of counts.length ? counts : [1000, 10000, 100000]) {
  const b = new EvidenceBatch();
  // N distinct IPv4 /32 keys spread over the address space, each charged one ~1000-byte reply
  for (let i = 0; i < n; i++) b.charge(`${(i >>> 16) & 255 | 64}.${(i >>> 8) & 255}.${i & 255}.${(i * 7) & 255}`, 1000 + (i % 232), false);
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  let messages = 0;
  for (const body of b.take()) {
    bytes += JSON.stringify(sender.seal(JSON.stringify(body), Date.now())).length;
    messages++;
  }
  const sealMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const windowsPerSec = 1000 / FLUSH_MS;
  process.stdout.write(JSON.stringify({
    prefixes: n, messages, bytesPerWindow: bytes, bytesPerEntry: +(bytes / n).toFixed(1),
    // each prefix charged once a second (the floor) and in every window (the ceiling: a flood on every prefix)
    bytesPerSecFloor: bytes, bytesPerSecCeiling: Math.round(bytes * windowsPerSec), sealMsPerWindow: +sealMs.toFixed(1),
  }) + '\n');
}
