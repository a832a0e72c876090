// The TCP fallback cannot be denied to everyone. Against a
// real pdns_recursor that forwards slow.test to an authoritative stand-in
// answering after 1.5 s, in the default mode (native UDP I/O, 2 workers, PROXY
// v2) and without PROXY: while 20 client addresses (10 per worker) each hold a
// connection with a slow query every 0.5 s, and 2 more pipeline slow queries
// at 100/s, other clients' TCP queries are answered NOERROR within 1 s (>= 99
// of 100), and the slow clients still get their answers, the pipelining ones
// more than one per connection per slow query (docs/tcp.md).
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { startRecursor, type Recursor } from '../helpers/recursor.js';
import { startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { slowForwarding, startSlowAuth, type SlowAuth } from '../helpers/slow-auth.js';
import { stopAll } from '../helpers/process.js';
import { poll } from '../helpers/poll.js';
import { query } from '../helpers/wire.js';
import { FrameReader, frame } from '../../src/dns/framing.js';

const SLOW_MS = 1500;
const HOLDERS = 20; // 10 per worker: more than main's 8 upstream connections per worker
const HOLD_INTERVAL_MS = 500;
const PIPELINERS = 2;
const PIPELINE_BATCH = 10; // every 100 ms: 100 queries a second each
const LOAD_MS = 8000;
const FAST_QUERIES = 100;
const FAST_INTERVAL_MS = 40;
const FAST_DEADLINE_MS = 1000;

/** One client TCP connection: queries sent, answers received (rcode), when. */
class Client {
  readonly socket: net.Socket;
  private readonly reader = new FrameReader(65_535);
  private nextId = 0;
  readonly sentAt = new Map<number, number>();
  readonly answers: { rcode: number; ms: number }[] = [];
  closed = false;
  readonly ready: Promise<void>;

  constructor(port: number, localAddress: string) {
    this.socket = net.connect({ port, host: '127.0.0.1', localAddress });
    this.socket.on('close', () => (this.closed = true));
    this.socket.on('error', () => undefined);
    this.socket.on('data', (chunk) => {
      this.reader.append(chunk);
      for (let m = this.reader.next(); m !== null; m = this.reader.next()) {
        const id = m.readUInt16BE(0);
        const at = this.sentAt.get(id);
        if (at === undefined) continue;
        this.sentAt.delete(id);
        this.answers.push({ rcode: m[3]! & 0x0f, ms: Date.now() - at });
      }
    });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }

  get sent(): number {
    return this.answers.length + this.sentAt.size;
  }

  send(name: string): void {
    if (this.closed) return;
    const id = this.nextId++ & 0xffff;
    this.sentAt.set(id, Date.now());
    this.socket.write(frame(query(name, 'A', id)));
  }

  noerror(): number {
    return this.answers.filter((a) => a.rcode === 0).length;
  }
}

/** One query on a fresh connection, as a stub resolver retrying over TCP asks: its rcode, or 'late' after the deadline. */
async function askOnce(port: number, localAddress: string, name: string): Promise<number | 'late' | 'error'> {
  const c = new Client(port, localAddress);
  try {
    await c.ready;
  } catch {
    return 'error';
  }
  c.send(name);
  await poll(() => c, (x) => x.answers.length > 0 || x.closed, FAST_DEADLINE_MS, 5);
  c.socket.destroy();
  const a = c.answers[0];
  return a !== undefined && a.ms <= FAST_DEADLINE_MS ? a.rcode : c.closed && a === undefined ? 'error' : 'late';
}

interface Run {
  readonly fast: (number | 'late' | 'error')[];
  readonly holders: Client[];
  readonly pipeliners: Client[];
  readonly loadMs: number;
}

/** The bounded load: holders and pipeliners for LOAD_MS, other clients' queries once theirs are established; stops by itself. */
async function underSlowLoad(ag: Ampguard, auth: SlowAuth): Promise<Run> {
  const holders: Client[] = [];
  const pipeliners: Client[] = [];
  const timers: NodeJS.Timeout[] = [];
  const started = Date.now();
  try {
    for (let i = 0; i < HOLDERS; i++) holders.push(new Client(ag.port, `127.0.0.${101 + i}`));
    for (let i = 0; i < PIPELINERS; i++) pipeliners.push(new Client(ag.port, `127.0.0.${131 + i}`));
    await Promise.all([...holders, ...pipeliners].map((c) => c.ready));
    let n = 0;
    const holdTick = (): void => {
      n++;
      holders.forEach((c, i) => c.send(`h${i}-${n}.slow.test`));
    };
    holdTick();
    timers.push(setInterval(holdTick, HOLD_INTERVAL_MS));
    let m = 0;
    timers.push(
      setInterval(() => {
        for (const c of pipeliners) for (let k = 0; k < PIPELINE_BATCH; k++) c.send(`p${m++}.slow.test`);
      }, 100),
    );
    let loadOver = false;
    const stop = setTimeout(() => {
      loadOver = true;
      timers.forEach((t) => clearInterval(t));
    }, LOAD_MS);
    timers.push(stop);
    // the slow queries are at the authoritative (held upstream) before the others ask
    await poll(() => auth.received(), (r) => r >= 2 * HOLDERS, 5000);
    const fast: Promise<number | 'late' | 'error'>[] = [];
    for (let i = 0; i < FAST_QUERIES; i++) {
      fast.push(askOnce(ag.port, `127.0.0.${201 + (i % 20)}`, 'www.example.test'));
      await new Promise((r) => setTimeout(r, FAST_INTERVAL_MS));
    }
    const results = await Promise.all(fast);
    // the holders' last queries are answered once the load has stopped
    await poll(() => loadOver, (over) => over, LOAD_MS + 1000);
    await poll(() => holders.every((c) => c.sentAt.size === 0), (done) => done, 2 * SLOW_MS + 2000);
    return { fast: results, holders, pipeliners, loadMs: Date.now() - started };
  } finally {
    timers.forEach((t) => clearInterval(t));
    for (const c of [...holders, ...pipeliners]) c.socket.destroy();
  }
}

describe('the TCP fallback under slow clients', () => {
  let rec: Recursor | undefined;
  let ag: Ampguard | undefined;
  let auth: SlowAuth | undefined;
  afterEach(async () => {
    await ag?.stop();
    await rec?.close();
    await auth?.close();
    await stopAll();
  });

  for (const proxy of [true, false]) {
    it(`answers other clients within 1 s and the slow ones too (${proxy ? 'PROXY v2, the default' : 'without PROXY'}, 2 workers)`, async () => {
      auth = await startSlowAuth(SLOW_MS);
      rec = await startRecursor({
        settings: slowForwarding(auth, proxy),
      });
      ag = await startAmpguard({
        config: {
          backends: [{ address: `127.0.0.1:${rec.port}`, proxy_protocol: proxy }],
          health_check: { qname: 'example.test', qtype: 'SOA' },
          block: { mode: 'off' },
          workers: 2,
        },
      });
      const run = await underSlowLoad(ag, auth);
      const metrics = await ag.metrics();
      const failures = [...metrics].filter(([k]) => k.startsWith('ampguard_tcp_upstream_failures_total'));
      const ok = run.fast.filter((r) => r === 0).length;
      const seen = { fast: run.fast, failures, holders: run.holders.map((c) => `${c.noerror()}/${c.sent}`), pipeliners: run.pipeliners.map((c) => `${c.noerror()}/${c.sent}`) };
      const holderAnswers = run.holders.reduce((n, c) => n + c.noerror(), 0);
      const holderSent = run.holders.reduce((n, c) => n + c.sent, 0);
      console.log(
        `${proxy ? 'PROXY v2' : 'no PROXY'}: other clients ${ok}/${run.fast.length} NOERROR within ${FAST_DEADLINE_MS} ms; ` +
          `holders ${holderAnswers}/${holderSent} NOERROR; pipeliners ${run.pipeliners.map((c) => c.noerror()).join(', ')} answers of ${run.pipeliners.map((c) => c.sent).join(', ')} sent ` +
          `in ${(run.loadMs / 1000).toFixed(1)} s (one at a time would be ${Math.floor(run.loadMs / SLOW_MS)}); ` +
          `upstream failures ${failures.map(([k, v]) => `${/reason="(\w+)"/.exec(k)?.[1]}=${v}`).join(' ')}`,
      );
      expect(ok, JSON.stringify(seen)).toBeGreaterThanOrEqual(99);
      // the holders' queries are all answered, NOERROR
      for (const c of run.holders) expect(c.noerror(), JSON.stringify(seen)).toBeGreaterThanOrEqual(c.sent - 1);
      // one answer per connection per slow query is what one-at-a-time gives: a pipelining client gets several
      const oneAtATime = Math.floor(run.loadMs / SLOW_MS);
      for (const c of run.pipeliners) expect(c.noerror(), JSON.stringify(seen)).toBeGreaterThanOrEqual(3 * oneAtATime);
    }, 60_000);
  }
});
