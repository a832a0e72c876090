// The same hostile input against workers: 2, where a crash costs more: a
// worker that dies is respawned (and port-0 datagrams kept a cluster in a
// respawn loop), and the primary that serves HTTP takes every worker with it.
// Nothing dies, DNS is answered, the counters (summed over workers) show it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { resolve } from 'node:path';
import { startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { startStandIn, type StandIn } from '../helpers/stand-in-backend.js';
import { dig } from '../helpers/dig.js';
import { until } from '../helpers/blast.js';
import { query } from '../helpers/wire.js';
import { stopAll } from '../helpers/process.js';

const SPOOF = resolve('test/helpers/spoof-udp.py');
const isRoot = process.getuid?.() === 0;

let standIn: StandIn;
let ag: Ampguard;

beforeAll(async () => {
  standIn = await startStandIn();
  ag = await startAmpguard({
    config: {
      backends: [{ address: `127.0.0.1:${standIn.port}` }],
      health_check: { qname: 'example.test', qtype: 'SOA' },
      block: { mode: 'userspace' },
      workers: 2,
    },
  });
});
afterAll(async () => {
  await stopAll();
  await standIn?.close();
});

const metric = (name: string): Promise<number> => ag.metric(name).then((v) => (Number.isNaN(v) ? 0 : v), () => -1);

function rawHttp(raw: string): Promise<string> {
  return new Promise((done) => {
    const s = net.connect(ag.metricsPort, '127.0.0.1');
    let got = '';
    const end = (): void => {
      clearTimeout(timer);
      s.destroy();
      done(got);
    };
    const timer = setTimeout(end, 3000);
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (/^HTTP\/1\.1 \d{3}/.test(got)) end();
    });
    s.on('error', end);
    s.on('close', end);
    s.write(raw);
  });
}

describe.skipIf(!isRoot)('workers: 2 under hostile input', () => {
  it('no worker dies of port-0 datagrams, the primary not of GET //, and DNS is answered', async () => {
    for (const type of ['A', 'ANY']) {
      execFileSync('python3', [SPOOF, '127.0.0.1', '0', '127.0.0.1', String(ag.port), query('www.example.test', type, 7).toString('hex'), '10']);
    }
    for (let i = 0; i < 3; i++) expect(await rawHttp('GET // HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await until(async () => (await metric('ampguard_dropped_total{reason="bad_source"}')) >= 20, 10_000)).toBe(true);
    expect(await metric('ampguard_http_errors_total{reason="bad_request"}')).toBe(3);
    expect(ag.proc.child.exitCode).toBeNull();
    expect(ag.proc.output()).not.toMatch(/worker died/);
    for (let i = 0; i < 5; i++) {
      const a = await dig('127.0.0.1', ag.port, `q${i}.example.test`, 'A', ['+notcp', '+ignore']);
      expect(a.status, a.raw).toBe('NOERROR');
    }
  });
});
