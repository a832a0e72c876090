// The UDP I/O mode (docs/performance.md): udp_io native runs on the batched addon,
// dgram on node:dgram, auto falls back to dgram with one warning when the addon does
// not load, and native without an addon refuses to start. The mode shows in
// /metrics and /api/stats; workers in native mode each bind their own SO_REUSEPORT socket.
import { afterEach, describe, expect, it } from 'vitest';
import { startRecursor, type Recursor } from '../helpers/recursor.js';
import { CLI, startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { startProc, stopAll } from '../helpers/process.js';
import { query, udpExchange, decodeMessage } from '../helpers/wire.js';
import { loadNative } from '../../src/native/index.js';
import { poll } from '../helpers/poll.js';
import { freePort } from '../helpers/ports.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let rec: Recursor | undefined;
let ag: Ampguard | undefined;
const savedAddon = process.env.AMPGUARD_NATIVE_ADDON;

afterEach(async () => {
  if (savedAddon === undefined) delete process.env.AMPGUARD_NATIVE_ADDON;
  else process.env.AMPGUARD_NATIVE_ADDON = savedAddon;
  await ag?.stop();
  await rec?.close();
  await stopAll();
  ag = undefined;
  rec = undefined;
});

async function start(config: Record<string, unknown>): Promise<Ampguard> {
  rec = await startRecursor();
  ag = await startAmpguard({
    config: { backends: [{ address: `127.0.0.1:${rec.port}` }], health_check: { qname: 'example.test', qtype: 'SOA' }, block: { mode: 'off' }, ...config },
  });
  return ag;
}

async function stats(a: Ampguard): Promise<{ udp_io_mode: string; udp_io: Record<string, number> }> {
  const res = await fetch(`http://127.0.0.1:${a.metricsPort}/api/stats`);
  return (await res.json()) as { udp_io_mode: string; udp_io: Record<string, number> };
}

/** 200 queries in one burst from one socket (the client's default receive buffer holds ~256 replies), each answered with its own ID */
async function burst(a: Ampguard): Promise<void> {
  const ids = Array.from({ length: 200 }, (_, i) => i + 1);
  const replies = await udpExchange(a.port, ids.map((id) => query('www.example.test', 'A', id)), ids.length, 10_000);
  expect(new Set(replies.map((r) => decodeMessage(r)?.id))).toEqual(new Set(ids));
}

const native = loadNative().binding !== null;
if (!loadNative().binding) console.log(`native UDP tests skipped: ${loadNative().reason}`);

describe.skipIf(!native)('udp_io: native', () => {
  it('serves UDP on the addon, shown in /metrics and /api/stats', async () => {
    const a = await start({ udp_io: 'native', workers: 1 });
    expect(await a.metric('ampguard_udp_io_mode{mode="native"}')).toBe(1);
    expect(await a.metric('ampguard_udp_io_mode{mode="dgram"}')).toBe(0);
    expect((await stats(a)).udp_io_mode).toBe('native');
    await burst(a);
  });

  it('a query longer than a receive slot is counted and dropped as malformed', async () => {
    const a = await start({ udp_io: 'native', workers: 1 });
    const before = await a.metric('ampguard_dropped_total{reason="malformed"}');
    const big = Buffer.concat([query('www.example.test', 'A', 7), Buffer.alloc(5000)]);
    expect(await udpExchange(a.port, [big], 1, 300)).toEqual([]);
    expect(await poll(() => a.metric('ampguard_dropped_total{reason="malformed"}'), (v) => v >= before + 1)).toBe(before + 1);
    await burst(a);
  });

  it('two workers each bind their own socket on the port (SO_REUSEPORT) and both count as native', async () => {
    const a = await start({ udp_io: 'native', workers: 2 });
    expect(await poll(() => a.metric('ampguard_udp_io_mode{mode="native"}'), (v) => v === 2)).toBe(2);
    expect((await stats(a)).udp_io).toEqual({ native: 2, dgram: 0 });
    await burst(a);
  });
});

describe('udp_io fallback', () => {
  it('dgram is node:dgram', async () => {
    const a = await start({ udp_io: 'dgram', workers: 1 });
    expect(await a.metric('ampguard_udp_io_mode{mode="dgram"}')).toBe(1);
    expect((await stats(a)).udp_io_mode).toBe('dgram');
    await burst(a);
  });

  it('auto without a loadable addon runs on dgram and says so once', async () => {
    process.env.AMPGUARD_NATIVE_ADDON = '/nonexistent/ampguard_udp.node';
    const a = await start({ udp_io: 'auto', workers: 1 });
    expect(await a.metric('ampguard_udp_io_mode{mode="dgram"}')).toBe(1);
    expect(a.proc.output().match(/batched UDP I\/O unavailable/g)).toHaveLength(1);
    await burst(a);
  });

  it('auto without a loadable addon says so once with two workers too', async () => {
    process.env.AMPGUARD_NATIVE_ADDON = '/nonexistent/ampguard_udp.node';
    const a = await start({ udp_io: 'auto', workers: 2 });
    expect(await poll(() => a.metric('ampguard_udp_io_mode{mode="dgram"}'), (v) => v === 2)).toBe(2);
    expect(a.proc.output().match(/batched UDP I\/O unavailable/g)).toHaveLength(1);
  });

  it('native without a loadable addon refuses to start, naming the reason', async () => {
    process.env.AMPGUARD_NATIVE_ADDON = '/nonexistent/ampguard_udp.node';
    const dir = mkdtempSync(join(tmpdir(), 'ampguard-io-'));
    const config = join(dir, 'ampguard.yaml');
    const [port, metricsPort] = [await freePort('127.0.0.1'), await freePort()];
    writeFileSync(
      config,
      `listen: { udp: ["127.0.0.1:${port}"], tcp: [] }\nbackends: [{ address: "127.0.0.1:9" }]\nudp_io: native\nworkers: 1\nblock: { mode: userspace }\nmetrics: { listen: "127.0.0.1:${metricsPort}" }\n`,
    );
    const proc = startProc('node', [CLI, 'run', '--config', config]);
    await proc.waitFor(/E_START.*udp_io: native, but addon failed to load/s, 20_000);
  });
});
