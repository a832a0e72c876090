// The primary's Workers object with fake workers and fake timers: the
// hello/config/ready handshake, IPC routing, a failed start, respawn with
// backoff and giving up, the hung-worker kill, asks with their timeout, and stop.
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { ASK_TIMEOUT_MS, STOP_KILL_MS, Workers, type WorkerHandle, type WorkerRoutes } from '../../../src/cluster/workers.js';
import { RespawnPolicy } from '../../../src/cluster/respawn.js';
import type { ToPrimary, ToWorker } from '../../../src/cluster/messages.js';
import type { Config } from '../../../src/config/schema.js';
import type { DataplaneSnapshot } from '../../../src/metrics/snapshot.js';

class FakeWorker extends EventEmitter implements WorkerHandle {
  sent: ToWorker[] = [];
  connected = true;
  dead = false;
  killed: (string | undefined)[] = [];
  readonly process: { pid: number; kill: (signal?: NodeJS.Signals) => void };
  constructor(readonly id: number) {
    super();
    this.process = { pid: 1000 + id, kill: (signal) => this.killed.push(signal) };
  }
  send(m: ToWorker): boolean {
    this.sent.push(m);
    return true;
  }
  isConnected(): boolean {
    return this.connected;
  }
  isDead(): boolean {
    return this.dead;
  }
  kill(signal?: string): void {
    this.killed.push(signal);
  }
  disconnect(): void {
    this.connected = false;
  }
  say(m: ToPrimary): void {
    this.emit('message', m);
  }
  exit(code: number | null = 1, signal: string | null = null): void {
    this.dead = true;
    this.connected = false;
    this.emit('exit', code, signal);
  }
  /** hello, then ready, as a worker that starts well */
  boot(): void {
    this.say({ t: 'hello' });
    this.say({ t: 'ready' });
  }
}

const config = { udp_io: 'dgram' } as unknown as Config;

function setup(opts: { respawn?: RespawnPolicy } = {}) {
  const forked: FakeWorker[] = [];
  const seen = { charges: 0, offenders: 0, stats: [] as number[], exited: [] as number[] };
  let blocks = [{ prefix: '198.18.0.0', ttlMs: 5000 }];
  const routes: WorkerRoutes = {
    config: () => ({ config, resolvConf: 'nameserver 127.0.0.1\n' }),
    blocks: () => blocks,
    charges: () => void seen.charges++,
    offender: () => void seen.offenders++,
    stats: (id) => void seen.stats.push(id),
    exited: (id) => void seen.exited.push(id),
  };
  let nextId = 1;
  let now = 0;
  const workers = new Workers({
    routes,
    log: pino({ level: 'silent' }),
    fork: () => {
      const w = new FakeWorker(nextId++);
      forked.push(w);
      return w;
    },
    respawn: opts.respawn ?? new RespawnPolicy({ baseDelayMs: 500, maxDelayMs: 30_000, windowMs: 60_000, maxCrashes: 3 }),
    now: () => now,
  });
  return {
    workers, forked, seen,
    setBlocks: (b: typeof blocks) => (blocks = b),
    advanceWall: (ms: number) => (now += ms),
    /** starts `n` workers that all boot */
    async startAll(n: number) {
      const started = workers.start(n);
      for (const w of forked) w.boot();
      await started;
    },
  };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Workers', () => {
  it('answers hello with the config in effect and a ready worker with the blocks it must hold', async () => {
    const t = setup();
    await t.startAll(2);
    expect(t.workers.size).toBe(2);
    for (const w of t.forked) {
      expect(w.sent[0]).toEqual({ t: 'config', config, resolvConf: 'nameserver 127.0.0.1\n' });
      expect(w.sent[1]).toEqual({ t: 'block', prefix: '198.18.0.0', ttlMs: 5000 });
    }
  });

  it('relays charges to the other workers as debits and routes offenders and stats', async () => {
    const t = setup();
    await t.startAll(3);
    const [a, b, c] = t.forked as [FakeWorker, FakeWorker, FakeWorker];
    const before = b.sent.length;
    a.say({ t: 'charges', d: [['198.18.0.1', 100]] });
    expect(a.sent.some((m) => m.t === 'debits')).toBe(false);
    expect(b.sent.slice(before)).toEqual([{ t: 'debits', d: [['198.18.0.1', 100]], a: undefined, f: undefined }]);
    expect(c.sent.at(-1)?.t).toBe('debits');
    expect(t.seen.charges).toBe(1);
    a.say({ t: 'offender', o: { address: '198.18.0.1', family: 4, prefix: '198.18.0.1', charged: 1 } as never });
    b.say({ t: 'stats', s: {} as DataplaneSnapshot });
    expect(t.seen.offenders).toBe(1);
    expect(t.seen.stats).toEqual([b.id]);
  });

  it('a worker that fails to start fails the start with its reason and kills the others', async () => {
    const t = setup();
    const started = t.workers.start(2);
    const [a, b] = t.forked as [FakeWorker, FakeWorker];
    a.boot();
    b.say({ t: 'failed', err: 'udp 127.0.0.1:53: address in use' });
    b.exit(1);
    await expect(started).rejects.toThrow('address in use');
    expect(a.killed).toEqual([undefined]);
    // no respawn: it would loop
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.forked).toHaveLength(2);
  });

  it('a worker that exits before it is ready without a word fails the start', async () => {
    const t = setup();
    const started = t.workers.start(1);
    t.forked[0]?.exit(7);
    await expect(started).rejects.toThrow('a worker exited before it was ready (7)');
  });

  it('replaces a worker that died after the respawn delay, counts the crash and sends it the blocks of now', async () => {
    const t = setup();
    await t.startAll(2);
    t.forked[0]?.exit(1);
    expect(t.seen.exited).toEqual([1]);
    expect(t.workers.restarts.crash).toBe(1);
    await vi.advanceTimersByTimeAsync(499);
    expect(t.forked).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.forked).toHaveLength(3);
    t.setBlocks([]);
    t.forked[2]?.boot();
    expect(t.forked[2]?.sent).toEqual([{ t: 'config', config, resolvConf: 'nameserver 127.0.0.1\n' }]);
    expect(t.workers.size).toBe(2);
  });

  it('gives up when workers keep dying', async () => {
    const t = setup();
    await t.startAll(3);
    let failed: string | null = null;
    void t.workers.failed.then((r) => (failed = r));
    t.forked[0]?.exit(1);
    t.forked[1]?.exit(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(failed).toBeNull();
    t.forked[2]?.exit(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(failed).toBe('3 workers died within 60 s');
  });

  it('kills a silent worker once, counts it as hung (not a crash), and replaces it', async () => {
    const t = setup();
    await t.startAll(2);
    const w = t.forked[1] as FakeWorker;
    t.workers.killSilent([w.id]);
    t.workers.killSilent([w.id]);
    expect(w.process.pid).toBe(1002);
    expect(t.workers.restarts.hung).toBe(1);
    w.exit(null, 'SIGKILL');
    expect(t.workers.restarts).toEqual({ crash: 0, hung: 1 });
    await vi.advanceTimersByTimeAsync(500);
    expect(t.forked).toHaveLength(3);
  });

  it('ask: every worker answers; one that does not counts as empty after the timeout', async () => {
    const t = setup();
    await t.startAll(2);
    const [a] = t.forked as [FakeWorker, FakeWorker];
    const answers = t.workers.ask<string[]>({ what: 'top', n: 5 }, []);
    const q = a.sent.at(-1);
    expect(q).toMatchObject({ t: 'ask', what: 'top', n: 5 });
    a.say({ t: 'answer', id: (q as { id: number }).id, data: ['198.18.0.1'] });
    await vi.advanceTimersByTimeAsync(ASK_TIMEOUT_MS - 1);
    let done = false;
    void answers.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await answers).toEqual([['198.18.0.1'], []]);
  });

  it('stop: disconnects each worker, kills one that stays, and replaces none', async () => {
    const t = setup();
    await t.startAll(2);
    const [a, b] = t.forked as [FakeWorker, FakeWorker];
    const stopped = t.workers.stop();
    expect(a.connected).toBe(false);
    a.exit(0);
    await vi.advanceTimersByTimeAsync(STOP_KILL_MS);
    expect(b.killed).toEqual(['SIGKILL']);
    b.exit(null, 'SIGKILL');
    await stopped;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.forked).toHaveLength(2);
    expect(t.workers.restarts.crash).toBe(0);
  });

  it('broadcast skips disconnected workers and the one excepted', async () => {
    const t = setup();
    await t.startAll(3);
    const [a, b, c] = t.forked as [FakeWorker, FakeWorker, FakeWorker];
    c.connected = false;
    const n = [a.sent.length, b.sent.length, c.sent.length];
    t.workers.broadcast({ t: 'unblock', prefix: '198.18.0.1' }, a);
    expect([a.sent.length, b.sent.length, c.sent.length]).toEqual([n[0], (n[1] as number) + 1, n[2]]);
  });
});
