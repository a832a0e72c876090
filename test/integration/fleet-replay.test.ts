// A fleet verdict replayed after it ran out (docs/fleet.md): someone on the NATS
// bus who holds no site key records a sealed unblock from the verdict bucket
// and puts it back into the bucket long after its `exp`. The seal still
// verifies (stored verdicts are old by nature, so their time is not checked
// against STALE_MS), and a node used to apply it: a block of the same prefix
// made since by the ladder (evidence, not a verdict, so nothing newer in its
// `applied` table) was lifted, on every node, again every time the node forgot
// the replayed verdict. One node of a real ampguard (workers as users run it),
// a real nats-server and pdns_recursor.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { startRecursor, type Recursor } from '../helpers/recursor.js';
import { startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { startNats, writeSiteKey, type Nats } from '../helpers/nats.js';
import { stopAll } from '../helpers/process.js';
import { waitFor } from '../helpers/poll.js';
import { seal } from '../../src/fleet/seal.js';
import { verdictKey } from '../../src/fleet/verdict.js';

const TRAFFIC = resolve('test/helpers/ladder-traffic.mjs');
const SITE = 'lab';
const VICTIM = '127.0.0.71';
let rec: Recursor;
let nats: Nats;
let keyFile: string;
let ag: Ampguard;
let nc: NatsConnection | null = null;

async function blockedHere(): Promise<boolean> {
  const r = (await (await fetch(`http://127.0.0.1:${ag.metricsPort}/api/blocks`)).json()) as { blocks: { prefix: string }[] };
  return r.blocks.some((b) => b.prefix === VICTIM);
}

beforeAll(async () => {
  rec = await startRecursor();
  nats = await startNats();
  keyFile = writeSiteKey();
  ag = await startAmpguard({
    config: {
      backends: [{ address: `127.0.0.1:${rec.port}` }],
      health_check: { qname: 'example.test', qtype: 'SOA' },
      block: { mode: 'userspace', timeout: 60 },
      policy: { large_response: { aggregate: { enabled: false } } },
      fleet: { nats: [nats.url], site: SITE, node: 'a', key_file: keyFile },
    },
  });
});

afterAll(async () => {
  await nc?.close();
  await ag?.stop();
  await rec?.close();
  await stopAll();
});

describe('fleet verdicts', () => {
  it('an unblock replayed into the bucket after its exp is rejected: the ladder block it names stays', async () => {
    const connected = async (): Promise<boolean> =>
      ((await (await fetch(`http://127.0.0.1:${ag.metricsPort}/api/stats`)).json()) as { fleet: { connected: boolean } | null }).fleet?.connected === true;
    expect(await waitFor(connected, 15_000)).toBe(true);
    // the ladder blocks a spoofed victim (no TCP follow-ups)
    await promisify(execFile)('node', [TRAFFIC, 'victim', '127.0.0.1', String(ag.port), '4', '150', VICTIM], { timeout: 60_000 });
    expect(await waitFor(blockedHere, 10_000)).toBe(true);
    // an operator's unblock of ten minutes ago, sealed then by node b: what anyone on the bus could have recorded
    const at = Date.now() - 600_000;
    const key = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'utf8');
    const stale = seal(key, SITE, 'b', at, at * 1000, JSON.stringify({ op: 'unblock', p: VICTIM, at, exp: at + 60_000 }));
    nc = await connect({ servers: nats.url });
    const kv = await new Kvm(jetstream(nc)).open(`ampguard-blocks-${SITE}`);
    const rejectedBefore = await ag.metric('ampguard_fleet_messages_total{direction="rejected"}');
    await kv.put(verdictKey(VICTIM), JSON.stringify(stale));
    // the node has read it once it either rejected or applied it
    const handled = async (): Promise<boolean> =>
      (await ag.metric('ampguard_fleet_messages_total{direction="rejected"}')) > rejectedBefore || /"msg":"fleet: site verdict applied"/.test(ag.proc.output());
    expect(await waitFor(handled, 10_000)).toBe(true);
    expect(await blockedHere()).toBe(true);
    expect(ag.proc.output()).not.toMatch(/"msg":"fleet: site verdict applied"/);
    expect(await ag.metric('ampguard_fleet_messages_total{direction="rejected"}')).toBe(rejectedBefore + 1);
  }, 60_000);
});
