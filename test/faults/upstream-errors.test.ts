// Faults on the upstream UDP path, in the mode users run (native UDP I/O, two
// workers, PROXY v2 to a real recursor): a forged ICMP port-unreachable aimed at
// ampguard's upstream sockets, and the recursor restarting under load (the
// kernel then sends those ICMPs itself). Either sets the error of a connected
// UDP socket; the socket must keep reading (docs/hostile-input.md, "Upstream
// socket errors"), so real clients get answers again as soon as the recursor
// does, and the error is counted.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { startRecursor, type Recursor } from '../helpers/recursor.js';
import { startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { stopAll } from '../helpers/process.js';
import { poll } from '../helpers/poll.js';
import { connectedUdpPorts, probeClients, type ProbeResult } from '../helpers/probe-clients.js';

const root = process.getuid?.() === 0;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await stopAll();
});

const CLIENTS = 200;
/** the bar: at least 99% of real clients answered NOERROR */
const enough = (r: ProbeResult): boolean => r.noerror >= Math.ceil(CLIENTS * 0.99);

async function frontAndRecursor(): Promise<{ rec: Recursor; ag: Ampguard }> {
  const rec = await startRecursor({ settings: { 'proxy-protocol-from': '127.0.0.1' } });
  cleanups.push(() => rec.close());
  const ag = await startAmpguard({
    config: {
      workers: 2,
      backends: [{ address: `127.0.0.1:${rec.port}`, proxy_protocol: true }],
      backend_timeout_ms: 500,
      health_check: { qname: 'example.test', qtype: 'SOA', interval_ms: 200, timeout_ms: 300, fall: 2, rise: 1 },
      block: { mode: 'userspace' },
    },
  });
  cleanups.push(() => ag.stop());
  // the default I/O is what is under test: both workers must run the addon
  expect(await poll(() => ag.metric('ampguard_udp_io_mode{mode="native"}'), (v) => v === 2)).toBe(2);
  expect(enough(await poll(() => probeClients(ag.port, CLIENTS), enough))).toBe(true);
  return { rec, ag };
}

describe.skipIf(!root)('upstream socket errors (native, 2 workers, PROXY v2)', () => {
  it('keeps answering after a forged ICMP port-unreachable to every upstream socket', async () => {
    const { rec, ag } = await frontAndRecursor();
    const ports = await connectedUdpPorts('127.0.0.1', rec.port);
    // one upstream socket per worker (the prober's own socket may be there too)
    expect(ports.length).toBeGreaterThanOrEqual(2);
    execFileSync('python3', ['test/helpers/forge-icmp.py', '127.0.0.1', '127.0.0.1', String(rec.port), ...ports.map(String)]);

    // nothing is down: answers must not stop at all; the poll only absorbs the first round's timing
    const after = await poll(() => probeClients(ag.port, CLIENTS), enough, 3000);
    expect(after, JSON.stringify(after)).toSatisfy(enough);
    // the error reached the sockets and was counted (the test proves the fault was injected)
    const errors = await poll(() => ag.metric('ampguard_udp_io_errors_total{side="upstream",reason="socket_error"}'), (v) => v >= 2);
    expect(errors).toBeGreaterThanOrEqual(2);
  });

  it('answers again within 3 s of a recursor restart under load', async () => {
    const { rec, ag } = await frontAndRecursor();
    await rec.stop();
    // load while the recursor is down: every upstream send now earns a kernel ICMP port-unreachable
    const during = await probeClients(ag.port, CLIENTS, { timeoutMs: 1500 });
    expect(during.noerror).toBeLessThan(CLIENTS);
    expect(await poll(() => ag.metric('ampguard_udp_io_errors_total{side="upstream",reason="socket_error"}'), (v) => v >= 1)).toBeGreaterThanOrEqual(1);
    await rec.restart();
    const after = await poll(() => probeClients(ag.port, CLIENTS), enough, 3000);
    expect(after, `${JSON.stringify(after)}\n${ag.proc.output().slice(-2000)}`).toSatisfy(enough);
  });
});
