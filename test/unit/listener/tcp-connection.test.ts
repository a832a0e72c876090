// One TCP connection's state machine with a fake socket, a fake session and a
// fake clock: the read pump within the in-flight bound, backpressure both ways,
// half-close, read and idle timeouts, buffer_full, framing and internal errors.
import { describe, expect, it } from 'vitest';
import { READ_AHEAD, TcpConnection, type ConnectionSocket } from '../../../src/listener/tcp-connection.js';
import type { TcpClient, TcpSession } from '../../../src/pipeline/tcp-session.js';
import type { TcpCloseReason } from '../../../src/metrics/counters.js';
import { FakeTimers } from '../../helpers/fake-timers.js';

class FakeSocket implements ConnectionSocket {
  writableLength = 0;
  /** what write() returns: false once the kernel buffer is "full" */
  accepts = true;
  written: Buffer[] = [];
  paused = false;
  endCalls = 0;
  destroyed = false;
  idleMs = 0;
  onIdle: (() => void) | null = null;
  private listeners = new Map<string, ((chunk: Buffer) => void)[]>();
  write(data: Uint8Array): boolean {
    this.written.push(Buffer.from(data));
    this.writableLength += data.length;
    return this.accepts;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  end(): void {
    this.endCalls++;
  }
  destroy(): void {
    this.destroyed = true;
  }
  setTimeout(ms: number, onIdle: () => void): void {
    this.idleMs = ms;
    this.onIdle = onIdle;
  }
  on(event: string, listener: (chunk: Buffer) => void): void {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
  }
  emit(event: 'data' | 'drain' | 'end' | 'close', chunk?: Buffer): void {
    for (const l of this.listeners.get(event) ?? []) l(chunk ?? Buffer.alloc(0));
  }
}

class FakeSession {
  queries: Buffer[] = [];
  outstanding = 0;
  share = true;
  closed = 0;
  throwOnQuery = false;
  constructor(readonly client: TcpClient) {}
  mayForward(): boolean {
    return this.share;
  }
  onQuery(m: Buffer): void {
    if (this.throwOnQuery) throw new Error('boom');
    this.queries.push(m);
    this.outstanding++;
  }
  /** the backend answered one query */
  answer(reply = Buffer.from([1, 2, 3])): void {
    this.outstanding--;
    this.client.write(reply);
    this.client.roomForNext();
  }
  close(): void {
    this.closed++;
  }
}

const settings = { max_in_flight_per_connection: 2, max_buffered_bytes: 100, read_timeout_ms: 1000, idle_timeout_ms: 5000 };

function framed(len: number, fill = 7): Buffer {
  const b = Buffer.alloc(len + 2, fill);
  b.writeUInt16BE(len, 0);
  return b;
}

function setup(over: Partial<typeof settings> = {}) {
  const socket = new FakeSocket();
  const clock = new FakeTimers();
  const closes: (TcpCloseReason | null)[] = [];
  const errors: unknown[] = [];
  let session!: FakeSession;
  const conn = new TcpConnection(
    socket,
    { address: '198.18.0.1', port: 5353, family: 4, key: '198.18.0.1', localAddress: '127.0.0.1', localPort: 53 },
    { ...settings, ...over },
    (client) => {
      session = new FakeSession(client);
      return session as unknown as TcpSession;
    },
    { onClose: (reason) => closes.push(reason), onError: (err) => errors.push(err) },
    clock,
  );
  return { socket, clock, closes, errors, session, conn };
}

describe('TcpConnection', () => {
  it('hands whole messages to the session, at most max_in_flight at once, and the rest as answers come', () => {
    const t = setup();
    t.socket.emit('data', Buffer.concat([framed(12, 1), framed(12, 2), framed(12, 3)]));
    expect(t.session.queries.map((q) => q[0])).toEqual([1, 2]);
    t.session.answer();
    expect(t.session.queries.map((q) => q[0])).toEqual([1, 2, 3]);
    // answers are framed with their length
    expect(t.socket.written[0]).toEqual(Buffer.from([0, 3, 1, 2, 3]));
  });

  it('waits while the prefix share says no, and resumes on roomForNext()', () => {
    const t = setup();
    t.session.share = false;
    t.socket.emit('data', framed(12));
    expect(t.session.queries).toHaveLength(0);
    t.session.share = true;
    t.session.client.roomForNext();
    expect(t.session.queries).toHaveLength(1);
  });

  it('a message split across reads is handed once complete', () => {
    const t = setup();
    const m = framed(12);
    t.socket.emit('data', m.subarray(0, 5));
    expect(t.session.queries).toHaveLength(0);
    t.socket.emit('data', m.subarray(5));
    expect(t.session.queries).toHaveLength(1);
  });

  it('pauses reading past READ_AHEAD buffered bytes and resumes when they are handed', () => {
    const t = setup({ max_in_flight_per_connection: 1 });
    t.socket.emit('data', framed(12));
    expect(t.socket.paused).toBe(false);
    // one query in flight: the next ones wait in the reader
    const big = Buffer.concat(Array.from({ length: Math.ceil(READ_AHEAD / 514) + 1 }, () => framed(512)));
    t.socket.emit('data', big);
    expect(t.socket.paused).toBe(true);
    while (t.session.outstanding > 0) t.session.answer();
    expect(t.socket.paused).toBe(false);
  });

  it('stops handing and reading while answers do not drain, and goes on after drain', () => {
    const t = setup({ max_buffered_bytes: 1000 });
    t.socket.accepts = false;
    t.socket.emit('data', framed(12));
    t.session.answer();
    t.socket.emit('data', framed(12));
    expect(t.session.queries).toHaveLength(1);
    expect(t.socket.paused).toBe(true);
    t.socket.accepts = true;
    t.socket.writableLength = 0;
    t.socket.emit('drain');
    expect(t.session.queries).toHaveLength(2);
    expect(t.socket.paused).toBe(false);
  });

  it('closes as buffer_full when unread answers pass max_buffered_bytes', () => {
    const t = setup({ max_buffered_bytes: 10 });
    t.socket.emit('data', framed(12));
    t.session.answer(Buffer.alloc(9)); // 11 bytes framed
    expect(t.closes).toEqual(['buffer_full']);
    expect(t.socket.destroyed).toBe(true);
    expect(t.session.closed).toBe(1);
  });

  it('exactly max_buffered_bytes unread is kept', () => {
    const t = setup({ max_buffered_bytes: 11 });
    t.socket.emit('data', framed(12));
    t.session.answer(Buffer.alloc(9));
    expect(t.closes).toEqual([]);
  });

  it('half-close: ends our side once every query is answered', () => {
    const t = setup();
    t.socket.emit('data', Buffer.concat([framed(12), framed(12)]));
    t.socket.emit('end');
    expect(t.socket.endCalls).toBe(0);
    t.session.answer();
    expect(t.socket.endCalls).toBe(0);
    t.session.answer();
    expect(t.socket.endCalls).toBe(1);
    t.socket.emit('data', Buffer.alloc(0));
    expect(t.socket.endCalls).toBe(1);
  });

  it('half-close: a query still waiting for the prefix share is answered before our side ends', () => {
    // a NAT's stub sends one query and shuts its sending side while the prefix's other
    // connections hold its whole share: the query waits framed, and must not be dropped
    const t = setup();
    t.session.share = false;
    t.socket.emit('data', framed(12));
    t.socket.emit('end');
    expect(t.socket.endCalls).toBe(0);
    t.session.share = true;
    t.session.client.roomForNext();
    expect(t.session.queries).toHaveLength(1);
    expect(t.socket.endCalls).toBe(0);
    t.session.answer();
    expect(t.socket.endCalls).toBe(1);
  });

  it('half-close: an incomplete message left at the end is never waited for', () => {
    const t = setup();
    t.socket.emit('data', Buffer.concat([framed(12), framed(12).subarray(0, 5)]));
    t.socket.emit('end');
    t.session.answer();
    expect(t.socket.endCalls).toBe(1);
  });

  it('half-close waits for the answers to drain', () => {
    const t = setup({ max_buffered_bytes: 1000 });
    t.socket.emit('data', framed(12));
    t.socket.emit('end');
    t.socket.accepts = false;
    t.session.answer();
    expect(t.socket.endCalls).toBe(0);
    t.socket.emit('drain');
    expect(t.socket.endCalls).toBe(1);
  });

  it('read timeout: a started message must complete within read_timeout_ms', () => {
    const t = setup();
    t.socket.emit('data', framed(12).subarray(0, 4));
    t.clock.advance(999);
    expect(t.closes).toEqual([]);
    t.clock.advance(1);
    expect(t.closes).toEqual(['read_timeout']);
  });

  it('read timeout restarts with each completed message and stops when none is partial', () => {
    const t = setup({ max_in_flight_per_connection: 100 });
    const m = framed(12);
    t.socket.emit('data', Buffer.concat([m, m.subarray(0, 3)]));
    t.clock.advance(900);
    // the partial one completes along with the start of the next: a fresh clock
    t.socket.emit('data', Buffer.concat([m.subarray(3), m.subarray(0, 3)]));
    t.clock.advance(900);
    expect(t.closes).toEqual([]);
    t.socket.emit('data', m.subarray(3));
    expect(t.clock.pending).toBe(0);
    t.clock.advance(10_000);
    expect(t.closes).toEqual([]);
  });

  it('idle: closes when nothing is outstanding and nothing buffered', () => {
    const t = setup();
    expect(t.socket.idleMs).toBe(5000);
    t.socket.emit('data', framed(12));
    t.socket.onIdle?.();
    expect(t.closes).toEqual([]); // a query is outstanding
    t.session.answer();
    t.socket.onIdle?.();
    expect(t.closes).toEqual(['idle']);
  });

  it('idle: whole queries waiting for the prefix share are not idleness', () => {
    const t = setup();
    t.session.share = false;
    t.socket.emit('data', framed(12));
    t.socket.onIdle?.();
    expect(t.closes).toEqual([]);
  });

  it('a zero-length message closes as framing', () => {
    const t = setup();
    t.socket.emit('data', Buffer.from([0, 0]));
    expect(t.closes).toEqual(['framing']);
  });

  it('a session that throws closes as internal_error and is reported once', () => {
    const t = setup();
    t.session.throwOnQuery = true;
    t.socket.emit('data', framed(12));
    expect(t.closes).toEqual(['internal_error']);
    expect(t.errors).toHaveLength(1);
  });

  it('the client closing is a close without a reason, once; writes after it are dropped', () => {
    const t = setup();
    t.socket.emit('data', framed(12));
    t.socket.emit('close');
    t.socket.emit('close');
    expect(t.closes).toEqual([null]);
    expect(t.session.closed).toBe(1);
    const before = t.socket.written.length;
    t.session.answer();
    expect(t.socket.written.length).toBe(before);
  });

  it('close cancels the read timer', () => {
    const t = setup();
    t.socket.emit('data', framed(12).subarray(0, 4));
    expect(t.clock.pending).toBe(1);
    t.socket.emit('close');
    expect(t.clock.pending).toBe(0);
  });
});
