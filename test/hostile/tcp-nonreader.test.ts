// Issue 8, item 4: TCP clients that pipeline queries for a 3000-byte answer and
// never read. Backpressure must hold ampguard's memory: it stops reading such a
// client, and closes it once its unread answers pass tcp.max_buffered_bytes.
// Other clients are served throughout. Against a real recursor.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Recursor } from '../helpers/recursor.js';
import type { Ampguard } from '../helpers/ampguard.js';
import { startPair, stopPair } from '../helpers/pair.js';
import { dig } from '../helpers/dig.js';
import { query } from '../helpers/wire.js';
import { nonReaderFlood, rssBytes } from '../helpers/tcp-flood.js';

let rec: Recursor;
let ag: Ampguard;

beforeAll(async () => {
  // each non-reader may have 100 answers coming (its connection's cap), not just its prefix's default
  // share of 20: 100 answers of 3000 bytes pass max_buffered_bytes, 20 stay within it (docs/tcp.md)
  ({ rec, ag } = await startPair({ block: { mode: 'off' }, workers: 1, tcp: { max_in_flight_per_client: 100 } }));
});
afterAll(() => stopPair({ rec, ag }));

describe('a TCP client that never reads its answers', () => {
  it('costs bounded memory, is closed and counted, and other clients are served', async () => {
    const pid = ag.proc.child.pid!;
    // warm up, so the baseline includes what serving big answers costs anyway
    for (let i = 0; i < 3; i++) expect((await dig('127.0.0.1', ag.port, 'big.example.test', 'TXT', ['+tcp'])).status).toBe('NOERROR');
    const baseline = rssBytes(pid);
    let peak = baseline;
    const timeline: number[] = [];
    const sampler = setInterval(() => {
      const now = rssBytes(pid);
      peak = Math.max(peak, now);
      if (timeline.length < 1000) timeline.push(Math.round(now / 1e6));
    }, 100);
    const flood = nonReaderFlood({
      port: ag.port,
      localAddresses: ['127.0.0.31', '127.0.0.32', '127.0.0.33', '127.0.0.34', '127.0.0.35', '127.0.0.36', '127.0.0.37', '127.0.0.38'],
      query: query('big.example.test', 'TXT', 1),
      maxQueries: 1_000_000,
      maxMs: 15_000,
    });
    try {
      // served while the flood runs
      await new Promise((r) => setTimeout(r, 3000));
      const during = await dig('127.0.0.1', ag.port, 'big.example.test', 'TXT', ['+tcp', '-b', '127.0.0.53', '+time=3']);
      expect(during.status).toBe('NOERROR');
      expect(during.answerCount).toBe(1);
      const result = await flood.done;
      console.log(`non-reader flood: ${result.sent} queries sent, ${result.closedByPeer} connections closed by ampguard`);
      expect(result.sent).toBeGreaterThan(10_000);
    } finally {
      flood.stop();
      clearInterval(sampler);
    }
    peak = Math.max(peak, rssBytes(pid));
    console.log(`ampguard RSS: ${Math.round(baseline / 1e6)} MB before, ${Math.round(peak / 1e6)} MB at most during the flood; every second: ${timeline.filter((_, i) => i % 10 === 0).join(' ')}`);
    console.log(`answers sent over TCP: ${await ag.metric('ampguard_responses_total{proto="tcp"}')}, closed buffer_full: ${await ag.metric('ampguard_tcp_closed_total{reason="buffer_full"}')}`);
    expect(ag.proc.child.exitCode).toBeNull();
    expect(peak - baseline, `RSS ${Math.round(baseline / 1e6)} MB -> peak ${Math.round(peak / 1e6)} MB`).toBeLessThan(100 * 1024 * 1024);
    // ampguard closed non-readers whose unread answers passed tcp.max_buffered_bytes
    expect(await ag.metric('ampguard_tcp_closed_total{reason="buffer_full"}')).toBeGreaterThan(0);
    const after = await dig('127.0.0.1', ag.port, 'big.example.test', 'TXT', ['+tcp', '-b', '127.0.0.53']);
    expect(after.status).toBe('NOERROR');
  });
});
