// TCP clients that pipeline queries for a 3000-byte answer and
// never read. Backpressure must hold ampguard's memory: it stops reading such a
// client, and closes it once its unread answers pass tcp.max_buffered_bytes.
// Other clients are served throughout. Against a real recursor.
//
// "Bounded" is shown as a plateau: the attacker keeps at it for 15 s and
// ampguard's resident size after the first 5 s stays within a few MB of what it
// reached in them, while the flood sends several times as much. The size the
// first seconds reach is not a bound of its own: the ~40 MB of 3000-byte answers
// a second that pass through are garbage, collected when V8 gets to it, later
// on a loaded machine (a bound of 100 MB above the baseline after a 1-second
// flood failed in CI at 111 MB, with nothing retained). And ampguard runs with
// its old space capped, so were it to keep what the flood sends it would die of
// it, and the test sees the exit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Recursor } from '../helpers/recursor.js';
import type { Ampguard } from '../helpers/ampguard.js';
import { startPair, stopPair } from '../helpers/pair.js';
import { dig } from '../helpers/dig.js';
import { poll } from '../helpers/poll.js';
import { query } from '../helpers/wire.js';
import { nonReaderFlood, rssBytes } from '../helpers/tcp-flood.js';

/** V8's old space for ampguard here: its idle heap is ~25 MB; a flood it kept would need far more */
const OLD_SPACE_MB = 64;
/** how far the resident size may rise after the first 5 s of the flood (a leak of 1 byte a query would be ~10 MB) */
const PLATEAU_SLACK_MB = 24;

let rec: Recursor;
let ag: Ampguard;

beforeAll(async () => {
  // each non-reader may have 100 answers coming (its connection's cap), not just its prefix's default
  // share of 20: 100 answers of 3000 bytes pass max_buffered_bytes, 20 stay within it (docs/tcp.md)
  ({ rec, ag } = await startPair(
    { block: { mode: 'off' }, workers: 1, tcp: { max_in_flight_per_client: 100 } },
    { wrap: ['env', `NODE_OPTIONS=--max-old-space-size=${OLD_SPACE_MB}`] },
  ));
});
afterAll(() => stopPair({ rec, ag }));

describe('a TCP client that never reads its answers', () => {
  it('costs bounded memory, is closed and counted, and other clients are served', async () => {
    const pid = ag.proc.child.pid!;
    // warm up, so the baseline includes what serving big answers costs anyway
    for (let i = 0; i < 3; i++) expect((await dig('127.0.0.1', ag.port, 'big.example.test', 'TXT', ['+tcp'])).status).toBe('NOERROR');
    const baseline = rssBytes(pid);
    const started = Date.now();
    // [ms since the flood started, RSS MB, queries sent so far]
    const timeline: [number, number, number][] = [];
    let flood: ReturnType<typeof nonReaderFlood> | undefined;
    const sampler = setInterval(() => {
      if (timeline.length < 1000) timeline.push([Date.now() - started, rssBytes(pid) / 1e6, flood?.sentSoFar() ?? 0]);
    }, 100);
    flood = nonReaderFlood({
      port: ag.port,
      localAddresses: ['127.0.0.31', '127.0.0.32', '127.0.0.33', '127.0.0.34', '127.0.0.35', '127.0.0.36', '127.0.0.37', '127.0.0.38'],
      query: query('big.example.test', 'TXT', 1),
      maxQueries: 100_000_000,
      maxMs: 15_000,
    });
    try {
      // served while the flood runs: once ampguard has had to close a non-reader, the flood is at its worst
      const closing = await poll(() => ag.metric('ampguard_tcp_closed_total{reason="buffer_full"}'), (n) => n > 0, 10_000);
      expect(closing, 'no non-reader closed for buffer_full within 10 s').toBeGreaterThan(0);
      const during = await dig('127.0.0.1', ag.port, 'big.example.test', 'TXT', ['+tcp', '-b', '127.0.0.53', '+time=3']);
      expect(during.status).toBe('NOERROR');
      expect(during.answerCount).toBe(1);
      const result = await flood.done;
      console.log(`non-reader flood: ${result.sent} queries sent, ${result.closedByPeer} connections closed by ampguard`);
      expect(result.sent).toBeGreaterThan(100_000);
    } finally {
      flood.stop();
      clearInterval(sampler);
    }
    const early = timeline.filter(([t]) => t <= 5000);
    const late = timeline.filter(([t]) => t > 5000);
    const earlyPeak = Math.max(...early.map(([, mb]) => mb));
    const latePeak = Math.max(...late.map(([, mb]) => mb));
    const sentEarly = early.at(-1)![2];
    const sentLate = late.at(-1)![2] - sentEarly;
    console.log(
      `ampguard RSS: ${Math.round(baseline / 1e6)} MB before; at most ${Math.round(earlyPeak)} MB in the first 5 s (${sentEarly} queries), ` +
        `${Math.round(latePeak)} MB in the 10 s after (${sentLate} more); every second: ${timeline.filter((_, i) => i % 10 === 0).map(([, mb]) => Math.round(mb)).join(' ')}`,
    );
    console.log(`answers sent over TCP: ${await ag.metric('ampguard_responses_total{proto="tcp"}')}, closed buffer_full: ${await ag.metric('ampguard_tcp_closed_total{reason="buffer_full"}')}`);
    expect(ag.proc.child.exitCode, `ampguard exited: ${ag.proc.output().slice(-2000)}`).toBeNull();
    // the attacker kept sending, more than before, and the memory did not follow
    expect(sentLate).toBeGreaterThan(sentEarly);
    expect(latePeak - earlyPeak, `RSS ${Math.round(earlyPeak)} MB after 5 s -> ${Math.round(latePeak)} MB later`).toBeLessThan(PLATEAU_SLACK_MB);
    // ampguard closed non-readers whose unread answers passed tcp.max_buffered_bytes
    expect(await ag.metric('ampguard_tcp_closed_total{reason="buffer_full"}')).toBeGreaterThan(0);
    const after = await dig('127.0.0.1', ag.port, 'big.example.test', 'TXT', ['+tcp', '-b', '127.0.0.53']);
    expect(after.status).toBe('NOERROR');
  });
});
