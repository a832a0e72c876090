// Listening on [::]: IPv4 clients arrive IPv4-mapped and must be budgeted and
// blocked as the IPv4 /32s they are, not as one shared IPv6 /64.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { Recursor } from '../helpers/recursor.js';
import type { Ampguard } from '../helpers/ampguard.js';
import { startPair, stopPair } from '../helpers/pair.js';
import { freePort } from '../helpers/ports.js';
import { dig } from '../helpers/dig.js';
import { until } from '../helpers/blast.js';
import { poll } from '../helpers/poll.js';

const BLAST = resolve('test/helpers/udp-blast.mjs');
let rec: Recursor;
let ag: Ampguard;

beforeAll(async () => {
  // the ladder off: over budget blocks at once, so the subject here is only which prefix
  // is charged and blocked (the ladder has its own tests: test/system/ladder.test.ts)
  ({ rec, ag } = await startPair({ block: { mode: 'userspace' }, policy: { ladder: { enabled: false } } }, { address: '::', port: await freePort('::') }));
});
afterAll(() => stopPair({ rec, ag }));

describe('dual-stack [::] listener', () => {
  it('blocks one flooding IPv4 client, not its IPv4 neighbours', async () => {
    // 40 ~900-byte replies against a burst of 10: over budget whichever worker answers (no wait for late replies: they are not counted)
    execFileSync('node', [BLAST, '127.0.0.1', String(ag.port), '127.0.0.70', '40', 'medium.example.test', 'TXT', '1232', '2', '0']);
    const blocked = async (): Promise<string[]> =>
      ((await (await fetch(`http://127.0.0.1:${ag.metricsPort}/api/blocks`)).json()) as { blocks: { prefix: string }[] }).blocks.map((b) => b.prefix);
    expect(await poll(blocked, (b) => b.length > 0, 10_000)).toEqual(['127.0.0.70']);
    // the flooder's UDP is dropped once every worker has the block
    expect(await until(async () => (await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+notcp', '-b', '127.0.0.70', '+time=1'])).timedOut, 10_000)).toBe(true);
    for (const transport of ['+notcp', '+tcp']) {
      expect((await dig('127.0.0.1', ag.port, 'www.example.test', 'A', [transport, '-b', '127.0.0.71'])).status, transport).toBe('NOERROR');
    }
    expect((await dig('::1', ag.port, 'www.example.test', 'A', ['+notcp'])).status).toBe('NOERROR');
    // the flooder itself still gets TCP
    expect((await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+tcp', '-b', '127.0.0.70'])).status).toBe('NOERROR');
  });
});
