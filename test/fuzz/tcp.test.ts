// Property-based fuzz of the TCP path in-process: a TcpSession with a fake
// client, over the shared upstream pool (TcpForwarder) with a fake connector
// whose connections the fuzzer drives: they come up, answer with the written
// queries shaped (right, padded, cut, flipped, wrong ID, QR=0, noise), close
// with or without a failure, and deliver their close late as sockets do. Each
// run is a sequence of those; after each:
//   - nothing threw (the session has no barrier of its own to hide a throw);
//   - every query ended once or is outstanding: queries = responses + drops + outstanding;
//   - the client only ever gets answers carrying the ID of a query it sent;
//   - at most tcp.upstream_connections_per_backend connections, and none left after close.
// `npm test` runs a fixed seed; `npm run fuzz` a random one and FUZZ_RUNS.
import { describe, it } from 'vitest';
import fc from 'fast-check';
import { TcpSession, type TcpClient } from '../../src/pipeline/tcp-session.js';
import { TcpForwarder } from '../../src/backend/tcp-forwarder.js';
import { ClientShares } from '../../src/pipeline/client-shares.js';
import type { UpstreamConnector, UpstreamEvents } from '../../src/backend/upstream-tcp.js';
import { BackendPool } from '../../src/backend/pool.js';
import { compilePolicy } from '../../src/config/compile.js';
import { configSchema } from '../../src/config/schema.js';
import { BudgetTable } from '../../src/policy/budgets.js';
import { BlockTable } from '../../src/policy/block-table.js';
import { Counters } from '../../src/metrics/counters.js';
import type { PolicyEnv } from '../../src/policy/env.js';
import { parseHostPort } from '../../src/config/address.js';
import { clientMessage, fuzzParams, replyShape, shapeReply, type ReplyShape } from './arbitraries.js';

const CONNECTIONS_PER_BACKEND = 3;

type Failure = 'connect_timeout' | 'connect_error' | 'reset' | null;
type Op =
  | { op: 'query'; msg: Buffer }
  | { op: 'connect'; link: number }
  | { op: 'reply'; link: number; pick: number; shape: ReplyShape }
  | { op: 'close'; link: number; failure: Failure }
  | { op: 'deliver' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('query' as const), msg: clientMessage }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('connect' as const), link: fc.nat() }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('reply' as const), link: fc.nat(), pick: fc.nat(), shape: replyShape }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('close' as const), link: fc.nat(), failure: fc.constantFrom('connect_timeout' as const, 'connect_error' as const, 'reset' as const, null) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'deliver' as const }) },
);

interface FakeLink {
  readonly events: UpstreamEvents;
  readonly written: Buffer[];
  closed: boolean;
}

const sum = (r: Record<string, number>): number => {
  let n = 0;
  for (const k in r) n += r[k]!;
  return n;
};

function harness() {
  const settings = compilePolicy(configSchema.parse({ backend_timeout_ms: 500, backend_timeout_action: 'drop' }));
  const env: PolicyEnv<Counters> = { settings, budgets: new BudgetTable(64), blocks: new BlockTable(64), counters: new Counters() };
  const spec = (proxyProtocol: boolean) => ({ name: 'b', address: parseHostPort('127.0.0.1:53')!, weight: 1, proxyProtocol });
  const pools = [new BackendPool<unknown>([spec(false)], 100), new BackendPool<unknown>([spec(true)], 100)];

  const run = (proxy: boolean, ops: Op[]) => {
    const links: FakeLink[] = [];
    const lateCloses: FakeLink[] = [];
    const connector: UpstreamConnector = (_spec, _header, _timeout, events) => {
      const link: FakeLink = { events, written: [], closed: false };
      links.push(link);
      return {
        write: (m) => void (link.closed || link.written.push(Buffer.from(m))),
        // a socket reports its close on a later turn: held until a 'deliver' op
        close: () => void (link.closed || lateCloses.push(link)),
      };
    };
    const c = env.counters;
    const forwarder = new TcpForwarder({ connectionsPerBackend: CONNECTIONS_PER_BACKEND, connectionsPerClient: 2, connectTimeoutMs: 1000, queueTimeoutMs: 200 }, connector, c);
    const sentIds = new Set<number>();
    let problem: string | null = null;
    const client: TcpClient = {
      address: '198.18.0.1', port: 40000, localAddress: '127.0.0.1', localPort: 53, family: 4, key: '198.18.0.1',
      write(m) {
        if (m.length < 2 || !sentIds.has(m.readUInt16BE(0))) problem ??= `answer with an ID the client never sent (${m.length} bytes)`;
      },
      roomForNext: () => undefined,
    };
    const session = new TcpSession(client, env, pools[proxy ? 1 : 0]!, forwarder, new ClientShares(1000), () => 0);
    const before = { queries: c.queries.tcp, ended: c.responses.tcp + sum(c.dropped) };
    const closeLink = (l: FakeLink, failure: Failure): void => {
      if (l.closed) return;
      l.closed = true;
      l.events.onClose(failure);
    };
    for (const o of ops) {
      const l = 'link' in o && links.length > 0 ? links[o.link % links.length] : undefined;
      switch (o.op) {
        case 'query':
          if (o.msg.length >= 2) sentIds.add(o.msg.readUInt16BE(0));
          session.onQuery(Buffer.from(o.msg));
          break;
        case 'connect':
          if (l && !l.closed) l.events.onConnect();
          break;
        case 'reply':
          if (l && !l.closed) l.events.onReply(shapeReply(l.written.length ? l.written[o.pick % l.written.length] : undefined, o.shape));
          break;
        case 'close':
          if (l) closeLink(l, o.failure);
          break;
        case 'deliver':
          for (const x of lateCloses.splice(0)) closeLink(x, null);
          break;
      }
      if (forwarder.connections > CONNECTIONS_PER_BACKEND) problem ??= `${forwarder.connections} upstream connections`;
    }
    const outstanding = session.outstanding;
    const counted = { queries: c.queries.tcp - before.queries, ended: c.responses.tcp + sum(c.dropped) - before.ended };
    session.close();
    forwarder.close();
    while (lateCloses.length) for (const x of lateCloses.splice(0)) closeLink(x, null);
    return { problem, outstanding, ...counted, connectionsLeft: forwarder.connections };
  };
  return { run };
}

describe('fuzz: the TCP session and upstream pool', () => {
  it('never throws, answers with the client\'s IDs, ends every query once, bounded connections', () => {
    const h = harness();
    fc.assert(
      fc.property(fc.boolean(), fc.array(op, { minLength: 1, maxLength: 10 }), (proxy, ops) => {
        const r = h.run(proxy, ops);
        if (r.problem !== null) throw new Error(r.problem);
        if (r.queries !== r.ended + r.outstanding) throw new Error(`${r.queries} queries, ${r.ended} ended, ${r.outstanding} outstanding`);
        if (r.connectionsLeft !== 0) throw new Error(`${r.connectionsLeft} upstream connections left after close`);
      }),
      fuzzParams(30_000, 0.3),
    );
  });
});
