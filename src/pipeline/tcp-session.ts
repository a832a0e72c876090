// Packet-path step 9 — the queries of one client TCP connection: pipelined, answered
// out of order, forwarded over the shared upstream connections of
// src/backend/tcp-forwarder.ts, never truncated and never charged to a budget. A
// query the backend answers may be the ladder's follow-up of a TC answer.
// The listener feeds it one message at a time and stops at
// tcp.max_in_flight_per_connection (`outstanding`); every answered or failed
// query calls client.roomForNext() so the listener can feed the next.
// A client prefix has at most its share of queries in flight upstream over all
// its connections (tcp.max_in_flight_per_client, ClientShares): the listener
// asks mayForward() before each message and is woken when room comes back.
// Reads backend_timeout_ms, backend_timeout_action.
import { parseQuery } from '../dns/query.js';
import { writeId } from '../dns/header.js';
import { buildServfail } from '../dns/local-answer.js';
import type { BackendPool } from '../backend/pool.js';
import type { TcpForwarder, TcpOrigin, TcpRequest, TcpTicket } from '../backend/tcp-forwarder.js';
import type { Family } from '../config/address.js';
import type { PolicyEnv } from '../policy/env.js';
import type { Counters } from '../metrics/counters.js';
import type { QueryContext } from '../policy/context.js';
import type { ClientShares } from './client-shares.js';
import { TO_BACKEND, judgeQuery, tcpAnswered } from './stages.js';

export interface TcpClient extends TcpOrigin {
  readonly family: Family;
  write(message: Buffer): void;
  /** a query of this connection was answered or failed: room for the next */
  roomForNext(): void;
}

export class TcpSession {
  private readonly tickets = new Set<TcpTicket>();
  private closed = false;
  private readonly wake = (): void => {
    if (!this.closed) this.client.roomForNext();
  };

  constructor(
    private readonly client: TcpClient,
    private readonly env: PolicyEnv<Counters>,
    private readonly pool: BackendPool<unknown>,
    private readonly forwarder: TcpForwarder,
    private readonly shares: ClientShares,
    private readonly clock: () => number,
  ) {}

  /** whether the client's prefix has room for another query upstream; when not, client.roomForNext() is called once it has */
  mayForward(): boolean {
    if (this.shares.room(this.client.key)) return true;
    this.shares.wait(this.client.key, this.wake);
    return false;
  }

  /** queries sent to a backend and not yet answered or failed */
  get outstanding(): number {
    return this.tickets.size;
  }

  onQuery(msg: Buffer): void {
    const c = this.env.counters;
    c.queries.tcp++;
    c.queryBytes.tcp += msg.length;
    const parsed = parseQuery(msg);
    if (parsed === null) {
      c.dropped.malformed++;
      return;
    }
    const ctx: QueryContext = {
      query: msg, parsed, clientAddress: this.client.address, family: this.client.family, proto: 'tcp',
    };
    // the same decision as a UDP query's (only QUERY reaches the recursor, docs/hostile-input.md)
    const outcome = judgeQuery(ctx, this.env, this.clock());
    if (outcome === null) return;
    if (outcome !== TO_BACKEND) {
      this.reply(outcome);
      return;
    }
    let ticket: TcpTicket | null = null;
    let done = false;
    const key = this.client.key;
    // the share is the prefix's slots at the backend: given back when the pool lets go of the query,
    // which for a cancelled one is its answer or deadline, not this connection's close
    this.shares.take(key);
    const finish = (): void => {
      done = true;
      if (ticket) this.tickets.delete(ticket);
    };
    const request: TcpRequest = {
      query: msg,
      qEnd: parsed.qEnd,
      origin: this.client,
      onAnswer: (reply) => {
        finish();
        // answered by the backend: only now may it count as a ladder follow-up (a local NOTIMP never does)
        tcpAnswered(ctx, this.env, this.clock());
        if (this.closed) return;
        writeId(reply, parsed.id);
        this.reply(reply);
        this.client.roomForNext();
      },
      onFinished: () => this.shares.give(key),
      onFailure: () => {
        finish();
        if (this.closed) return;
        c.dropped.backend_timeout++;
        if (this.env.settings.backendTimeoutAction === 'servfail') this.reply(buildServfail(msg, parsed));
        this.client.roomForNext();
      },
    };
    ticket = this.forwarder.forward(this.pool.select().spec, request, this.env.settings.backendTimeoutMs);
    // a query that failed at once (no upstream connection to be had) is already done
    if (ticket !== null && !done) this.tickets.add(ticket);
  }

  /** the client connection is gone: its queries are forgotten, their upstream IDs freed */
  close(): void {
    this.closed = true;
    this.shares.unwait(this.client.key, this.wake);
    // a cancelled query is never reported; its share comes back when the backend is done with it
    for (const t of this.tickets) t.cancel();
    this.tickets.clear();
  }

  private reply(wire: Buffer): void {
    this.env.counters.responses.tcp++;
    this.env.counters.responseBytes.tcp += wire.length;
    this.client.write(wire);
  }
}
