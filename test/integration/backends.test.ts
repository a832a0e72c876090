// Backends: timeouts and recovery, health checks and failover, PROXY v2 proven
// against the real recursor's ACL, and ampguard's own EDNS-size truncation.
import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { startRecursor } from '../helpers/recursor.js';
import { startAmpguard } from '../helpers/ampguard.js';
import { dig } from '../helpers/dig.js';
import { stopAll } from '../helpers/process.js';
import { freePort } from '../helpers/ports.js';
import { until } from '../helpers/blast.js';
import { poll } from '../helpers/poll.js';
import { encodeMessage, decodeMessage } from '../../src/dns/codec.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await stopAll();
});

const healthFast = { qname: 'example.test', qtype: 'SOA', interval_ms: 200, timeout_ms: 300, fall: 2, rise: 1 };

const UDP_RESPONSES = 'ampguard_responses_total{proto="udp"}';
const BACKEND_TIMEOUTS = 'ampguard_dropped_total{reason="backend_timeout"}';

describe('backend failure', () => {
  it('answers SERVFAIL within the timeout when the backend dies, and recovers when it returns', async () => {
    const rec = await startRecursor();
    cleanups.push(() => rec.close());
    const ag = await startAmpguard({
      config: { backends: [{ address: `127.0.0.1:${rec.port}` }], backend_timeout_ms: 500, health_check: healthFast, block: { mode: 'off' } },
    });
    cleanups.push(() => ag.stop());
    expect((await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+notcp'])).status).toBe('NOERROR');

    await rec.stop();
    // dig gives up after 3 s: an answer at all means ampguard's 500 ms timeout answered, not the client's
    const udp = await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+notcp', '+time=3']);
    expect(udp.status).toBe('SERVFAIL');
    const tcp = await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+tcp', '+time=3']);
    expect(tcp.status).toBe('SERVFAIL');
    expect(await poll(() => ag.metric(BACKEND_TIMEOUTS), (v) => v >= 1)).toBeGreaterThanOrEqual(1);
    expect(await until(async () => (await ag.metric('ampguard_backend_up{backend="127.0.0.1:' + rec.port + '"}')) === 0, 3000)).toBe(true);

    await rec.restart();
    const seen: string[] = [];
    const answered = await until(async () => {
      const status = (await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+notcp'])).status || 'timed out';
      seen.push(status);
      return status === 'NOERROR';
    }, 5000);
    // on failure, what dig saw and what ampguard counted and logged say where the queries went
    const why = async (): Promise<string> => {
      const counted = [...(await ag.metrics())].filter(([k]) => /backend|upstream|dropped|responses/.test(k)).map(([k, v]) => `${k} ${v}`);
      return [`dig saw ${seen.join(', ')}`, ...counted, ag.proc.output().slice(-3000)].join('\n');
    };
    expect(answered, answered ? '' : await why()).toBe(true);
    expect((await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+tcp'])).status).toBe('NOERROR');
    expect(await until(async () => (await ag.metric('ampguard_backend_up{backend="127.0.0.1:' + rec.port + '"}')) === 1, 3000)).toBe(true);
  });

  it('drops instead when backend_timeout_action is drop', async () => {
    const deadPort = await freePort();
    const ag = await startAmpguard({
      config: { backends: [{ address: `127.0.0.1:${deadPort}` }], backend_timeout_ms: 300, backend_timeout_action: 'drop', block: { mode: 'off' } },
    });
    cleanups.push(() => ag.stop());
    const r = await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+notcp', '+time=1']);
    expect(r.timedOut).toBe(true);
    expect(await poll(() => ag.metric(BACKEND_TIMEOUTS), (v) => v >= 1)).toBeGreaterThanOrEqual(1);
  });

  it('skips a backend that fails its health checks and takes it back when it passes', async () => {
    const a = await startRecursor();
    const b = await startRecursor();
    cleanups.push(() => a.close(), () => b.close());
    const ag = await startAmpguard({
      config: {
        backends: [{ address: `127.0.0.1:${a.port}` }, { address: `127.0.0.1:${b.port}`, weight: 3 }],
        backend_timeout_ms: 1000,
        health_check: healthFast,
        block: { mode: 'off' },
      },
    });
    cleanups.push(() => ag.stop());
    const upB = `ampguard_backend_up{backend="127.0.0.1:${b.port}"}`;
    await b.stop();
    expect(await until(async () => (await ag.metric(upB)) === 0, 3000)).toBe(true);
    // With b marked down every query goes to a: none may fail.
    for (let i = 0; i < 20; i++) {
      expect((await dig('127.0.0.1', ag.port, `www.example.test`, 'A', ['+notcp'])).status).toBe('NOERROR');
    }
    // a timeout would have been a SERVFAIL reply, counted with the rest: once all 20
    // replies show in the (per-worker, pushed) counters, so would any timeout
    expect(await poll(() => ag.metric(UDP_RESPONSES), (v) => v >= 20)).toBe(20);
    expect(await ag.metric(BACKEND_TIMEOUTS)).toBe(0);
    await b.restart();
    expect(await until(async () => (await ag.metric(upB)) === 1, 3000)).toBe(true);
  });
});

describe('PROXY protocol v2', () => {
  it('lets the recursor ACL see the real client over UDP and TCP', async () => {
    // The recursor allows 127.0.0.53 and ampguard's own address (for its LOCAL-header health
    // checks), not 127.0.0.2. Without the header every query would come from 127.0.0.1 and be
    // allowed; only a recursor that reads it can tell the clients apart.
    const rec = await startRecursor({ settings: { 'proxy-protocol-from': '127.0.0.1', 'allow-from': '127.0.0.53/32, 127.0.0.1/32' } });
    cleanups.push(() => rec.close());
    const ag = await startAmpguard({
      config: {
        backends: [{ address: `127.0.0.1:${rec.port}`, proxy_protocol: true }],
        backend_timeout_ms: 500,
        health_check: { ...healthFast, fall: 1 },
        block: { mode: 'off' },
      },
    });
    cleanups.push(() => ag.stop());
    for (const transport of ['+notcp', '+tcp']) {
      const allowed = await dig('127.0.0.1', ag.port, 'www.example.test', 'A', [transport, '-b', '127.0.0.53']);
      expect(allowed.status, transport).toBe('NOERROR');
      // The recursor silently drops clients outside allow-from; ampguard then answers SERVFAIL.
      const refused = await dig('127.0.0.1', ag.port, 'www.example.test', 'A', [transport, '-b', '127.0.0.2', '+time=3']);
      expect(refused.status, transport).toBe('SERVFAIL');
    }
    // The LOCAL-header health check is understood too: the backend stays up. With no
    // other traffic, three more questions at the recursor are health checks, and the
    // first of them has had its answer (timeout_ms 300 < two intervals of 200 ms).
    const before = rec.stat('questions');
    expect(await until(async () => rec.stat('questions') >= before + 3, 10_000)).toBe(true);
    expect(await ag.metric(`ampguard_backend_up{backend="127.0.0.1:${rec.port}"}`)).toBe(1);
  });
});

describe("the client's EDNS buffer size", () => {
  it('truncates a reply larger than the client said it can take, even when the backend ignores it', async () => {
    // A backend that always sends the same ~900-byte answer, whatever the query's EDNS size:
    // the real recursor would truncate itself and hide ampguard's own check.
    const server = dgram.createSocket('udp4');
    const port = await freePort();
    await new Promise<void>((r) => server.bind(port, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => server.close(() => r())));
    server.on('message', (msg, rinfo) => {
      const q = decodeMessage(msg);
      if (!q?.questions?.[0]) return;
      const reply = encodeMessage({
        type: 'response', id: q.id, flags: 0x8180, questions: q.questions,
        answers: [{ type: 'TXT', name: q.questions[0].name, ttl: 60, class: 'IN', data: [Buffer.alloc(250, 'a'), Buffer.alloc(250, 'b'), Buffer.alloc(250, 'c'), Buffer.alloc(100, 'd')] }],
      });
      server.send(reply, rinfo.port, rinfo.address);
    });
    const ag = await startAmpguard({ config: { backends: [{ address: `127.0.0.1:${port}` }], block: { mode: 'off' } } });
    cleanups.push(() => ag.stop());
    const small = await dig('127.0.0.1', ag.port, 'x.example.test', 'TXT', ['+notcp', '+ignore', '+bufsize=512']);
    expect(small.flags).toContain('tc');
    expect(small.answerCount).toBe(0);
    const noEdns = await dig('127.0.0.1', ag.port, 'x.example.test', 'TXT', ['+notcp', '+ignore', '+noedns']);
    expect(noEdns.flags).toContain('tc');
    const large = await dig('127.0.0.1', ag.port, 'x.example.test', 'TXT', ['+notcp', '+ignore', '+bufsize=1232']);
    expect(large.flags).not.toContain('tc');
    expect(large.size).toBeGreaterThan(850);
    // the three replies are counted by the workers that sent them and reach the
    // primary's /metrics with their next push: read the count once all three show
    expect(await poll(() => ag.metric(UDP_RESPONSES), (v) => v >= 3)).toBe(3);
    expect(await ag.metric('ampguard_truncated_total{reason="size"}')).toBe(2);
  });
});
