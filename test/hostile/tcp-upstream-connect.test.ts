// TCP to a backend whose handshake never completes (a listener with a full
// accept queue drops further SYNs, as a blackholed address would): the upstream
// connect timeout fails the queries with SERVFAIL (backend_timeout_action) and
// counts it, instead of holding them; ampguard stays up and UDP still works.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { startAmpguard } from '../helpers/ampguard.js';
import { stopAll } from '../helpers/process.js';
import { dig } from '../helpers/dig.js';
import { until } from '../helpers/tcp-flood.js';

// listen(0), then fill the accept queue itself and never accept: SYNs to it go unanswered
const BLACKHOLE = `
import socket, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)
port = s.getsockname()[1]
fill = []
for i in range(4):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(('127.0.0.1', port))
    except BlockingIOError: pass
    fill.append(c)
time.sleep(0.3)
print(port, flush=True)
time.sleep(120)
`;

let blackhole: ChildProcess | null = null;
afterEach(async () => {
  blackhole?.kill('SIGKILL');
  blackhole = null;
  await stopAll();
});

function startBlackhole(): Promise<number> {
  const child = spawn('python3', ['-c', BLACKHOLE], { stdio: ['ignore', 'pipe', 'inherit'] });
  blackhole = child;
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`blackhole exited ${code}`)));
  });
}

describe('a TCP backend that never completes the handshake', () => {
  it('fails queries after upstream_connect_timeout_ms with SERVFAIL, counted, and stays up', async () => {
    const port = await startBlackhole();
    const ag = await startAmpguard({
      config: {
        backends: [{ address: `127.0.0.1:${port}` }],
        block: { mode: 'off' },
        workers: 1,
        // far longer than the dig timeout: only the connect timeout can answer in time
        backend_timeout_ms: 30_000,
        tcp: { upstream_connect_timeout_ms: 300 },
      },
    });
    for (let i = 0; i < 3; i++) {
      const r = await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+tcp', '+time=5']);
      expect(r.status).toBe('SERVFAIL');
    }
    expect(await until(async () => (await ag.metric('ampguard_tcp_upstream_failures_total{reason="connect_timeout"}')) >= 1, 5000)).toBe(true);
    expect(await ag.metric('ampguard_dropped_total{reason="backend_timeout"}')).toBeGreaterThanOrEqual(3);
    expect(ag.proc.child.exitCode).toBeNull();
  });
});
