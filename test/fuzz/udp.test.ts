// Property-based fuzz of the whole UDP path in-process: real stages and tables,
// a fake listener socket that throws on port 0 as dgram does, and a fake
// backend whose replies are the forwarded queries shaped by the fuzzer (right,
// padded, cut, flipped, wrong ID, QR=0, noise). Each run is a sequence of
// client datagrams, backend replies and clock ticks (which expire what is in
// flight); each run starts from empty tables; after each:
//   - the fault barrier never fired (internal_error 0): nothing inside threw;
//   - every query ended exactly once or is in flight: queries = responses + drops + in flight;
//   - nothing went to port 0, or to an address/port that did not ask;
//   - ampguard's own answers (TC, NOTIMP) are never larger than the query;
//   - the tables stay within their bounds.
// `npm test` runs a fixed seed; `npm run fuzz` a random one and FUZZ_RUNS.
import { describe, it } from 'vitest';
import fc from 'fast-check';
import { UdpPath, type PendingUdp, type UdpReplyTarget } from '../../src/pipeline/udp-path.js';
import { BackendPool, type Backend } from '../../src/backend/pool.js';
import { compilePolicy } from '../../src/config/compile.js';
import { configSchema } from '../../src/config/schema.js';
import { BudgetTable } from '../../src/policy/budgets.js';
import { BlockTable } from '../../src/policy/block-table.js';
import { Counters } from '../../src/metrics/counters.js';
import type { PolicyEnv } from '../../src/policy/env.js';
import { parseHostPort } from '../../src/config/address.js';
import { readId } from '../../src/dns/header.js';
import { clientMessage, fuzzParams, replyShape, shapeReply, type ReplyShape } from './arbitraries.js';

const MAX_TRACKED = 64;
const MAX_BLOCKS = 64;
const MAX_IN_FLIGHT = 32;

const sources = [
  ['198.18.0.1', 4], ['198.18.0.2', 4], ['198.18.7.9', 4], ['0.0.0.0', 4],
  ['fd00::1', 6], ['fd00::2', 6], ['fd00:0:0:1::1', 6], ['::', 6],
] as const;
const port = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(5353, 40000, 65535) }, fc.constant(0), fc.integer({ min: 1, max: 65535 }));

type Op =
  | { op: 'query'; msg: Buffer; src: number; port: number }
  | { op: 'reply'; pick: number; shape: ReplyShape }
  | { op: 'tick'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('query' as const), msg: clientMessage, src: fc.nat({ max: sources.length - 1 }), port }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('reply' as const), pick: fc.nat(), shape: replyShape }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.constantFrom(1, 50, 400, 2000, 60_000) }) },
);

const sum = (r: Record<string, number>): number => {
  let n = 0;
  for (const k in r) n += r[k]!;
  return n;
};

/** One path for every run (its in-flight table costs a 64k shuffle to build); each run leaves it empty. */
function harness() {
  let now = 1_000_000;
  const settings = compilePolicy(configSchema.parse({ backend_timeout_ms: 500, backend_timeout_action: 'drop' }));
  const env: PolicyEnv<Counters> = { settings, budgets: new BudgetTable(MAX_TRACKED), blocks: new BlockTable(MAX_BLOCKS), counters: new Counters() };
  const pool = new BackendPool<PendingUdp>([{ name: 'b', address: parseHostPort('127.0.0.1:53')!, weight: 1, proxyProtocol: false }], MAX_IN_FLIGHT);
  const backend = pool.backends[0] as Backend<PendingUdp>;
  const path = new UdpPath(env, pool, (o, t) => {
    env.blocks.add(o.prefix, t + 60_000);
    return true;
  }, () => now);
  let forwarded: Buffer[] = [];
  backend.sender = { send: (q: Buffer) => void forwarded.push(Buffer.from(q)) };
  const run = (ops: Op[]) => {
    forwarded = [];
    const c = env.counters;
    const before = { internal: c.dropped.internal_error, queries: c.queries.udp, responses: c.responses.udp, ended: c.responses.udp + sum(c.dropped) };
    const asked = new Set<string>();
    let sends = 0;
    let problem: string | null = null;
    let current: Buffer | null = null;
    const target: UdpReplyTarget = {
      localAddress: '127.0.0.1',
      localPort: 53,
      send(wire, p, address) {
        sends++;
        if (p <= 0 || p > 65535) throw Object.assign(new RangeError(`bad port ${p}`), { code: 'ERR_SOCKET_BAD_PORT' });
        if (!asked.has(`${address}|${p}`)) problem ??= `reply to ${address}:${p}, which never asked`;
        if (current !== null && wire.length > current.length) problem ??= `local answer of ${wire.length} bytes to a ${current.length}-byte query`;
      },
    };
    for (const o of ops) {
      if (o.op === 'query') {
        const [address, family] = sources[o.src]!;
        if (o.port !== 0) asked.add(`${address}|${o.port}`);
        current = o.msg;
        path.onQuery(Buffer.from(o.msg), address, family, address, o.port, target);
        current = null;
      } else if (o.op === 'reply') {
        path.onReply(backend, shapeReply(forwarded.length ? forwarded[o.pick % forwarded.length] : undefined, o.shape));
      } else {
        now += o.ms;
        path.sweep();
      }
      if (backend.inflight.size > MAX_IN_FLIGHT) problem ??= `in flight ${backend.inflight.size}`;
      if (env.budgets.size > MAX_TRACKED) problem ??= `tracked ${env.budgets.size}`;
      if (env.blocks.size > MAX_BLOCKS) problem ??= `blocked ${env.blocks.size}`;
    }
    // Every run starts from the same state, so a counterexample replays alone:
    // what is still in flight is taken out (counted as abandoned) and the next run
    // gets fresh budget and block tables.
    const inflightLeft = backend.inflight.size;
    for (const q of forwarded) backend.inflight.take(readId(q));
    const tables = env as { budgets: BudgetTable; blocks: BlockTable };
    tables.budgets = new BudgetTable(MAX_TRACKED);
    tables.blocks = new BlockTable(MAX_BLOCKS);
    return {
      problem,
      internalErrors: c.dropped.internal_error - before.internal,
      queries: c.queries.udp - before.queries,
      ended: c.responses.udp + sum(c.dropped) - before.ended,
      inflightLeft,
      inflightAfter: backend.inflight.size,
      responses: c.responses.udp - before.responses,
      sends,
    };
  };
  return { run, env };
}

describe('fuzz: the UDP path', () => {
  it('never throws, answers only who asked, ends every query once, stays bounded', () => {
    const h = harness();
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 8 }), (ops) => {
        // plain comparisons: an expect() per run would cost more than the run
        const r = h.run(ops);
        if (r.problem !== null) throw new Error(r.problem);
        if (r.internalErrors !== 0) throw new Error(`the fault barrier fired ${r.internalErrors} times`);
        if (r.ended + r.inflightLeft !== r.queries) throw new Error(`${r.queries} queries, ${r.ended} ended, ${r.inflightLeft} in flight`);
        if (r.inflightAfter !== 0) throw new Error(`${r.inflightAfter} in flight that this run never forwarded`);
        if (r.sends !== r.responses) throw new Error(`${r.sends} sends, ${r.responses} responses counted`);
      }),
      fuzzParams(70_000, 0.7),
    );
  });
});
