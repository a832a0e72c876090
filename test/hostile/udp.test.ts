// Hostile input on the UDP entry points of a running ampguard (built CLI, real
// sockets on loopback): spoofed datagrams from source port 0 (through a raw
// socket, test/helpers/spoof-udp.py), a stand-in backend that answers with
// every kind of bad reply and forges datagrams to the upstream port, and
// non-QUERY opcodes. Each time: the process is alive, real queries are still
// answered, and the counter of docs/hostile-input.md shows what happened.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { hostileTarget } from '../helpers/hostile-target.js';
import { dig } from '../helpers/dig.js';
import { until } from '../helpers/blast.js';
import { query, udpExchange } from '../helpers/wire.js';

const SPOOF = resolve('test/helpers/spoof-udp.py');
const isRoot = process.getuid?.() === 0;

const target = hostileTarget({ health_check: { interval_ms: 200 }, backend_timeout_ms: 400 });

function rssMb(): number {
  const status = readFileSync(`/proc/${target.ag.proc.child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Infinity) / 1024;
}

async function answersRealQueries(): Promise<void> {
  const a = await dig('127.0.0.1', target.ag.port, 'www.example.test', 'A', ['+notcp', '+ignore']);
  expect(a.status, a.raw).toBe('NOERROR');
}

const metric = (name: string): Promise<number> => target.ag.metric(name).then((v) => (Number.isNaN(v) ? 0 : v));

describe.skipIf(!isRoot)('spoofed source port 0', () => {
  it('drops A and ANY queries from port 0, counted, and keeps answering', async () => {
    const before = await metric('ampguard_dropped_total{reason="bad_source"}');
    for (const type of ['A', 'ANY']) {
      const hex = query('www.example.test', type, 4242).toString('hex');
      execFileSync('python3', [SPOOF, '127.0.0.1', '0', '127.0.0.1', String(target.ag.port), hex, '5']);
    }
    expect(await until(async () => (await metric('ampguard_dropped_total{reason="bad_source"}')) >= before + 10, 10_000)).toBe(true);
    expect(target.alive()).toBe(true);
    await answersRealQueries();
  });
});

describe('a misbehaving backend', () => {
  const cases: [label: string, reason: string][] = [
    ['short', 'short'],
    ['headeronly', 'short'],
    ['wrongid', 'unknown_id'],
    ['noqr', 'not_response'],
    ['garbage', ''],
    ['unsolicited', 'unknown_id'],
  ];
  for (const [label, reason] of cases) {
    it(`survives "${label}" replies${reason ? `, counted as ${reason}` : ''}`, async () => {
      const name = `ampguard_upstream_rejected_total{reason="${reason}"}`;
      const before = reason ? await metric(name) : 0;
      await Promise.all(Array.from({ length: 5 }, () => dig('127.0.0.1', target.ag.port, `${label}.example.test`, 'A', ['+notcp', '+ignore', '+time=1'])));
      if (reason) expect(await until(async () => (await metric(name)) >= before + 5, 10_000)).toBe(true);
      expect(target.alive()).toBe(true);
      await answersRealQueries();
    });
  }

  it('passes an oversized reply through the response stages (TC=1), never whole', async () => {
    const a = await dig('127.0.0.1', target.ag.port, 'oversized.example.test', 'A', ['+notcp', '+ignore', '+bufsize=4096']);
    expect(a.flags).toContain('tc');
    expect(a.size).toBeLessThan(512);
    expect(target.alive()).toBe(true);
  });

  it('never needed the fault barrier for any of it, and stayed small', async () => {
    expect(await metric('ampguard_dropped_total{reason="internal_error"}')).toBe(0);
    expect(await metric('ampguard_dropped_total{reason="malformed"}')).toBe(0);
    // a generous ceiling (it idles near 80 MB), not a measurement
    expect(rssMb()).toBeLessThan(256);
  });
});

describe('opcodes other than QUERY', () => {
  it('answers UPDATE and NOTIFY with NOTIMP, no larger than the query, and forwards neither', async () => {
    const forwardedBefore = target.standIn.received.length;
    const messages = [5, 4, 2].map((opcode, i) => {
      const q = query('example.test', 'SOA', 900 + i, { udpSize: 1232 });
      q[2] = (q[2]! & 0x87) | (opcode << 3);
      return q;
    });
    const replies = await udpExchange(target.ag.port, messages, messages.length, 3000);
    expect(replies).toHaveLength(3);
    for (const r of replies) {
      expect(r[3]! & 0x0f).toBe(4); // NOTIMP
      expect(r.length).toBeLessThanOrEqual(messages[0]!.length);
    }
    // the health checks keep reaching the stand-in; nothing but QUERY ever does
    expect(target.standIn.received.slice(forwardedBefore).every((m) => ((m[2]! >> 3) & 0x0f) === 0)).toBe(true);
    expect(await metric('ampguard_local_answers_total{reason="notimp"}')).toBeGreaterThanOrEqual(3);
    expect(target.alive()).toBe(true);
  });
});
