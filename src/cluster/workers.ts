// The cluster primary's workers: fork, the hello/config/ready handshake, IPC
// routing of what they send, respawn with backoff (respawn.ts), the kill of a
// worker that stopped reporting, asks answered by every worker, and the stop.
// The primary (primary.ts) wires it to the enforcer, metrics and fleet; this
// object holds the state that used to live in its closure (started, closing,
// the workers, the asks in flight), so it is tested alone with fake workers.
import cluster from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { WorkerRestartReason } from '../metrics/registry.js';
import type { DataplaneSnapshot } from '../metrics/snapshot.js';
import type { Offender } from '../policy/verdict.js';
import { RespawnPolicy } from './respawn.js';
import type { ToPrimary, ToWorker } from './messages.js';
import type { BudgetDeltas } from '../policy/budgets.js';

export const ASK_TIMEOUT_MS = 2000;
/** a worker that has not left this long after being disconnected at stop is killed */
export const STOP_KILL_MS = 1000;

/** What the primary uses of a cluster worker (node:cluster's Worker has all of it). */
export interface WorkerHandle {
  readonly id: number;
  readonly process: { readonly pid?: number | undefined; kill(signal?: NodeJS.Signals): unknown };
  send(m: ToWorker): unknown;
  isConnected(): boolean;
  isDead(): boolean;
  kill(signal?: string): unknown;
  disconnect(): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'message', listener: (m: ToPrimary) => void): unknown;
  on(event: 'exit', listener: (code: number | null, signal: string | null) => void): unknown;
  once(event: 'exit', listener: () => void): unknown;
}

/** What the primary does with what workers say. */
export interface WorkerRoutes {
  /** the config a (new) worker runs: the primary's in effect now, and the resolv.conf text */
  config(): { readonly config: Config; readonly resolvConf: string };
  /** the blocks a ready worker must hold (the enforcer's list) */
  blocks(): readonly { readonly prefix: string; readonly ttlMs: number }[];
  /** a worker's budget charges (already relayed to the others as debits) */
  charges(m: BudgetDeltas): void;
  offender(o: Offender): void;
  stats(id: number, s: DataplaneSnapshot): void;
  /** a worker is gone: forget its numbers */
  exited(id: number): void;
}

interface WorkersParts {
  readonly routes: WorkerRoutes;
  readonly log: Logger;
  readonly fork?: () => WorkerHandle;
  readonly respawn?: RespawnPolicy;
  /** wall-clock ms for the respawn policy */
  readonly now?: () => number;
}

export class Workers {
  private readonly all = new Set<WorkerHandle>();
  private started = false;
  private closing = false;
  /** workers killed for hanging, whose exit is not a crash */
  private readonly killedHung = new Set<number>();
  private nextAskId = 0;
  private readonly answers = new Map<number, (data: unknown) => void>();
  private fail: (reason: string) => void = () => undefined;
  /** settles with the reason when workers keep dying and the service cannot go on */
  readonly failed = new Promise<string>((resolve) => (this.fail = resolve));
  /** ampguard_worker_restarts_total */
  readonly restarts: Record<WorkerRestartReason, number> = { crash: 0, hung: 0 };
  private readonly forkOne: () => WorkerHandle;
  private readonly respawn: RespawnPolicy;
  private readonly now: () => number;

  constructor(private readonly p: WorkersParts) {
    this.forkOne = p.fork ?? (() => cluster.fork());
    this.respawn = p.respawn ?? new RespawnPolicy();
    this.now = p.now ?? Date.now;
  }

  get size(): number {
    return this.all.size;
  }

  /** Forks `count` workers and waits until each is ready; on a failure kills them all and throws its reason. */
  async start(count: number): Promise<void> {
    try {
      await Promise.all(Array.from({ length: count }, () => this.fork()));
    } catch (err) {
      this.abort();
      throw err;
    }
    this.started = true;
  }

  /** Kills every worker at once: the start failed after they were up. */
  abort(): void {
    this.closing = true;
    for (const w of this.all) w.kill();
  }

  broadcast(m: ToWorker, except?: WorkerHandle): void {
    for (const w of this.all) if (w !== except && w.isConnected()) w.send(m);
  }

  /**
   * Kills the workers that stopped reporting (SIGSTOP, a blocked event loop): each
   * still holds its share of the SO_REUSEPORT clients, which the others take at
   * once; its exit starts a replacement (docs/operations.md, "Health").
   */
  killSilent(ids: Iterable<number>): void {
    for (const id of ids) {
      const w = [...this.all].find((x) => x.id === id);
      if (!w || this.killedHung.has(id) || this.closing) continue;
      this.killedHung.add(id);
      this.restarts.hung++;
      this.p.log.error({ worker: id, pid: w.process.pid }, 'worker stopped reporting: killing and replacing it');
      w.process.kill('SIGKILL');
    }
  }

  /** asks every worker; one that does not answer in time counts as an empty answer */
  ask<T>(question: { what: 'top'; n: number }, empty: T): Promise<T[]> {
    return Promise.all(
      [...this.all].map(
        (w) =>
          new Promise<T>((resolve) => {
            const id = this.nextAskId++;
            const finish = (data: unknown): void => {
              clearTimeout(timer);
              this.answers.delete(id);
              resolve(data as T);
            };
            const timer = setTimeout(() => finish(empty), ASK_TIMEOUT_MS);
            this.answers.set(id, finish);
            if (w.isConnected()) w.send({ t: 'ask', id, ...question } satisfies ToWorker);
          }),
      ),
    );
  }

  /** From now on a worker that exits is not replaced (the stop has begun). */
  beginStop(): void {
    this.closing = true;
  }

  /** Disconnects every worker (it finishes and exits) and kills one that has not left after STOP_KILL_MS. */
  async stop(): Promise<void> {
    this.closing = true;
    await Promise.all(
      [...this.all].map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            w.once('exit', () => resolve());
            const kill = setTimeout(() => w.kill('SIGKILL'), STOP_KILL_MS);
            kill.unref();
            if (w.isConnected()) w.disconnect();
            else w.kill('SIGKILL');
          }),
      ),
    );
  }

  private fork(): Promise<void> {
    return new Promise((resolve, reject) => {
      const w = this.forkOne();
      this.all.add(w);
      let failure: string | undefined;
      // sending to a worker that just died fails with EPIPE; its 'exit' is what counts
      w.on('error', () => undefined);
      w.on('message', (m: ToPrimary) => {
        if (m.t === 'failed') {
          // reject now: the exit may be seen before this message
          failure = m.err;
          if (!this.started) reject(new Error(m.err));
        } else if (m.t === 'ready') {
          for (const b of this.p.routes.blocks()) w.send({ t: 'block', prefix: b.prefix, ttlMs: b.ttlMs } satisfies ToWorker);
          if (this.started) this.p.log.info({ worker: w.id, pid: w.process.pid }, 'replacement worker ready');
          resolve();
        } else {
          this.route(w, m);
        }
      });
      w.on('exit', (code, signal) => {
        if (this.exited(w, code, signal)) reject(new Error(failure ?? `a worker exited before it was ready (${code ?? signal}); see its log line above`));
      });
    });
  }

  private route(w: WorkerHandle, m: Exclude<ToPrimary, { t: 'failed' | 'ready' }>): void {
    switch (m.t) {
      case 'hello':
        w.send({ t: 'config', ...this.p.routes.config() } satisfies ToWorker);
        break;
      case 'charges':
        this.broadcast({ t: 'debits', d: m.d, a: m.a, f: m.f }, w);
        this.p.routes.charges(m);
        break;
      case 'offender':
        this.p.routes.offender(m.o);
        break;
      case 'stats':
        this.p.routes.stats(w.id, m.s);
        break;
      case 'answer':
        this.answers.get(m.id)?.(m.data);
        break;
    }
  }

  /** A worker left; returns true when that fails the start (a worker that cannot start: respawning it would loop). */
  private exited(w: WorkerHandle, code: number | null, signal: string | null): boolean {
    this.all.delete(w);
    this.p.routes.exited(w.id);
    const hung = this.killedHung.delete(w.id);
    if (this.closing) return false;
    if (!this.started) return true;
    const decision = this.respawn.onCrash(this.now());
    if ('giveUp' in decision) {
      this.p.log.fatal({ worker: w.id, code, signal, reason: decision.giveUp }, 'workers keep dying, ampguard gives up');
      this.fail(decision.giveUp);
      return false;
    }
    if (!hung) this.restarts.crash++;
    this.p.log.error({ worker: w.id, code, signal, respawn_in_ms: decision.respawnInMs }, hung ? 'hung worker killed, starting another' : 'worker died, starting another');
    setTimeout(() => {
      if (!this.closing) this.fork().catch((err: Error) => this.p.log.error({ err: err.message }, 'worker restart failed'));
    }, decision.respawnInMs);
    return false;
  }
}
