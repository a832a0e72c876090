// /healthz sees the data path, and a hung worker is replaced (docs/operations.md,
// "Health"), in the mode users run: native UDP I/O, two workers.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { startRecursor } from '../helpers/recursor.js';
import { startAmpguard } from '../helpers/ampguard.js';
import { startStandIn } from '../helpers/stand-in-backend.js';
import { stopAll } from '../helpers/process.js';
import { poll } from '../helpers/poll.js';
import { probeClients, type ProbeResult } from '../helpers/probe-clients.js';
import { query, udpSend } from '../helpers/wire.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
  await stopAll();
});

const healthFast = { qname: 'example.test', qtype: 'SOA', interval_ms: 200, timeout_ms: 300, fall: 2, rise: 1 };

async function healthz(port: number): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { status: r.status, body: await r.text() };
}

/** pids of the primary's children: the workers */
function workerPids(primary: number): number[] {
  const out = execFileSync('pgrep', ['-P', String(primary)], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean).map(Number);
}

describe('health and workers (native, 2 workers)', () => {
  it('replaces a stopped worker: its clients are answered again within 5 s, health says why meanwhile', async () => {
    const rec = await startRecursor();
    cleanups.push(() => rec.close());
    const ag = await startAmpguard({
      config: { workers: 2, backends: [{ address: `127.0.0.1:${rec.port}` }], health_check: healthFast, block: { mode: 'userspace' } },
    });
    cleanups.push(() => ag.stop());
    expect(await poll(() => ag.metric('ampguard_udp_io_mode{mode="native"}'), (v) => v === 2)).toBe(2);
    expect((await poll(() => healthz(ag.metricsPort), (h) => h.status === 200)).status).toBe(200);
    const enough = (r: ProbeResult): boolean => r.noerror >= 99;
    expect(await poll(() => probeClients(ag.port, 100), enough)).toSatisfy(enough);

    const pids = workerPids(ag.proc.child.pid!);
    expect(pids).toHaveLength(2);
    const stopped = pids[0]!;
    process.kill(stopped, 'SIGSTOP');
    // whatever happens, the stopped process does not outlive the test
    cleanups.push(() => {
      try {
        process.kill(stopped, 'SIGKILL');
      } catch {
        // already gone: the primary killed it
      }
    });

    // about half the clients hash to the stopped worker until it is replaced
    const seen: string[] = [];
    const unhealthy = poll(() => healthz(ag.metricsPort), (h) => {
      if (h.status !== 200) seen.push(h.body.trim());
      return h.status !== 200;
    }, 5000);
    const answered = await poll(() => probeClients(ag.port, 100, { timeoutMs: 500 }), enough, 5000);
    expect(answered, `${JSON.stringify(answered)}\n${ag.proc.output().slice(-2000)}`).toSatisfy(enough);
    expect((await unhealthy).status, 'healthz never said a worker was missing').toBe(503);
    expect(seen.join('\n')).toMatch(/silent for|workers not running/);
    expect(await poll(() => ag.metric('ampguard_worker_restarts_total{reason="hung"}'), (v) => v === 1)).toBe(1);
    expect(ag.proc.output()).toMatch(/"msg":"worker stopped reporting: killing and replacing it"/);
    // the replacement serves, and health is whole again
    expect((await poll(() => healthz(ag.metricsPort), (h) => h.status === 200, 10_000)).status).toBe(200);
    expect(workerPids(ag.proc.child.pid!)).not.toContain(stopped);
  });

  it('fails /healthz, naming the worker, when its queries get no reply while the prober gets answers', async () => {
    // a backend that answers the health check (example.test SOA) and drops every "silent.*" query
    const standIn = await startStandIn();
    cleanups.push(() => standIn.close());
    const ag = await startAmpguard({
      config: { workers: 2, backends: [{ address: `127.0.0.1:${standIn.port}` }], backend_timeout_ms: 300, health_check: healthFast, block: { mode: 'userspace' } },
    });
    cleanups.push(() => ag.stop());
    expect((await poll(() => healthz(ag.metricsPort), (h) => h.status === 200)).status).toBe(200);
    // bounded: 40 clients a round, until health turns (it needs a whole 3 s window), 10 s at most
    const dead = await poll(async () => {
      await udpSend(ag.port, Array.from({ length: 40 }, (_, i) => query('silent.example.test', 'A', i)));
      return healthz(ag.metricsPort);
    }, (h) => h.status === 503, 10_000);
    expect(dead.status).toBe(503);
    expect(dead.body).toMatch(/^worker \d+: upstream UDP path dead: \d+ queries forwarded in \d+ s and no reply read, while the health check gets answers$/m);
    // answers again: healthy again once a window holds a reply
    const ok = await poll(async () => {
      await probeClients(ag.port, 20, { name: 'www.example.test', timeoutMs: 300 });
      return healthz(ag.metricsPort);
    }, (h) => h.status === 200, 10_000);
    expect(ok.status).toBe(200);
  });

  it('answers SERVFAIL in time while the upstream is slow, and in full once it is fast again', async () => {
    const standIn = await startStandIn();
    cleanups.push(() => standIn.close());
    const ag = await startAmpguard({
      config: { workers: 2, backends: [{ address: `127.0.0.1:${standIn.port}` }], backend_timeout_ms: 400, health_check: healthFast, block: { mode: 'userspace' } },
    });
    cleanups.push(() => ag.stop());
    expect((await probeClients(ag.port, 50)).noerror).toBe(50);
    standIn.delayMs = 1000;
    // every client gets an answer (SERVFAIL) within ampguard's timeout, long before the backend's
    const slow = await probeClients(ag.port, 50, { timeoutMs: 900 });
    expect(slow, JSON.stringify(slow)).toMatchObject({ servfail: 50, unanswered: 0 });
    expect(await poll(() => ag.metric('ampguard_dropped_total{reason="backend_timeout"}'), (v) => v >= 50)).toBeGreaterThanOrEqual(50);
    // the late replies are read and refused, not taken for someone else's answer
    expect(await poll(() => ag.metric('ampguard_upstream_rejected_total{reason="unknown_id"}'), (v) => v >= 50, 5000)).toBeGreaterThanOrEqual(50);
    standIn.delayMs = 0;
    const fast = await poll(() => probeClients(ag.port, 50), (r) => r.noerror === 50);
    expect(fast.noerror).toBe(50);
    expect((await poll(() => healthz(ag.metricsPort), (h) => h.status === 200)).status).toBe(200);
  });
});
