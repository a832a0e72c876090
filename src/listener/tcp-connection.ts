// One accepted TCP connection's state machine (docs/tcp.md): the read pump
// that hands framed messages to the TcpSession within the in-flight bounds,
// backpressure in both directions (reading stops while messages wait or answers
// are not draining; unread answers past tcp.max_buffered_bytes close it), the
// half-close after the client's last query, and the read and idle timeouts.
// Reads tcp.max_in_flight_per_connection, tcp.max_buffered_bytes,
// tcp.read_timeout_ms, tcp.idle_timeout_ms. Feeds ampguard_tcp_closed_total
// through its owner (onClose). The socket and timers are parameters, so a unit
// test drives every transition with a fake socket and clock.
import type { Config } from '../config/schema.js';
import type { TcpCloseReason } from '../metrics/counters.js';
import { FrameReader, frame } from '../dns/framing.js';
import type { TcpClient, TcpSession } from '../pipeline/tcp-session.js';

const MAX_MESSAGE = 65_535;
/**
 * Received bytes kept beyond what is being processed: more than one whole
 * message, so an incomplete message at the head never stops reading (it would
 * wait forever), and little enough that a pipelining client costs at most this
 * plus one socket read while its queries wait for in-flight room.
 */
export const READ_AHEAD = MAX_MESSAGE + 2;

/** What a connection uses of its socket (node's net.Socket has all of it). */
export interface ConnectionSocket {
  readonly writableLength: number;
  write(data: Uint8Array): boolean;
  pause(): unknown;
  resume(): unknown;
  end(): unknown;
  destroy(): unknown;
  /** the idle timer: fires after ms without traffic either way */
  setTimeout(ms: number, onIdle: () => void): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'drain' | 'end' | 'close', listener: () => void): unknown;
}

/** One-shot timers (the read timeout), injectable with a fake clock. */
interface ConnectionTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const nodeTimers: ConnectionTimers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

type ConnectionSettings = Pick<Config['tcp'], 'max_in_flight_per_connection' | 'max_buffered_bytes' | 'read_timeout_ms' | 'idle_timeout_ms'>;

interface ConnectionHooks {
  /** the connection is gone: `reason` null when the socket closed by itself (the client went away) */
  onClose(reason: TcpCloseReason | null): void;
  /** the session threw: the connection closes as internal_error (the owner logs, rate-limited) */
  onError(err: unknown): void;
}

export class TcpConnection {
  private readonly reader = new FrameReader(MAX_MESSAGE);
  private readonly session: TcpSession;
  private readTimer: unknown = null;
  /** the socket refused our last write: answers are not draining */
  private writeBlocked = false;
  /** the client half-closed: it sends no more queries */
  private ended = false;
  private endSent = false;
  private closed = false;
  /** inside pump(): a roomForNext() from the session during onQuery must not re-enter */
  private pumping = false;

  constructor(
    private readonly socket: ConnectionSocket,
    client: Omit<TcpClient, 'write' | 'roomForNext'>,
    private readonly settings: ConnectionSettings,
    newSession: (client: TcpClient) => TcpSession,
    private readonly hooks: ConnectionHooks,
    private readonly timers: ConnectionTimers = nodeTimers,
  ) {
    this.session = newSession({ ...client, write: (message) => this.write(message), roomForNext: () => this.pump() });
    // Idle: nothing received or sent and nothing outstanding for idle_timeout_ms. Whole
    // queries waiting only for the prefix's share (its other connections busy) are our
    // doing, not idleness; waiting for a client that does not read is its own.
    socket.setTimeout(settings.idle_timeout_ms, () => {
      if (this.session.outstanding === 0 && (this.writeBlocked || this.reader.buffered === 0)) this.close('idle');
    });
    socket.on('data', (chunk: Buffer) => {
      this.reader.append(chunk);
      this.pump();
    });
    socket.on('drain', () => {
      this.writeBlocked = false;
      this.pump();
    });
    socket.on('end', () => {
      this.ended = true;
      this.pump();
    });
    socket.on('close', () => this.close(null));
  }

  /** Closes the connection once; `reason` null: the client closed it. */
  close(reason: TcpCloseReason | null): void {
    if (this.closed) return;
    this.closed = true;
    this.stopReadTimer();
    this.session.close();
    this.socket.destroy();
    this.hooks.onClose(reason);
  }

  private write(message: Buffer): void {
    if (this.closed) return;
    const drained = this.socket.write(frame(message));
    // a client that does not read its answers costs us memory: only so much, then it goes
    if (this.socket.writableLength > this.settings.max_buffered_bytes) return this.close('buffer_full');
    if (!drained) this.writeBlocked = true;
  }

  /**
   * Hands waiting messages to the session while it has in-flight room and the
   * client drains its answers, then decides whether to read more.
   */
  private pump(): void {
    if (this.closed || this.pumping) return;
    this.pumping = true;
    let handed = 0;
    try {
      handed = this.handMessages();
    } catch (err) {
      this.hooks.onError(err);
      return this.close('internal_error');
    } finally {
      this.pumping = false;
    }
    if (this.closed) return;
    if (this.reader.broken) return this.close('framing');
    this.armReadTimer(handed);
    if (!this.writeBlocked && this.reader.buffered < READ_AHEAD) this.socket.resume();
    else this.socket.pause();
    // Half-close: the client sent its last query; once all are answered, close our side too.
    // A whole query still framed here (waiting for the prefix's share) is not answered yet;
    // an incomplete one never will be, the client having sent its last byte.
    const waiting = this.reader.buffered > 0 && !this.reader.partial;
    if (this.ended && !this.endSent && !this.writeBlocked && this.session.outstanding === 0 && !waiting) {
      this.endSent = true;
      this.socket.end();
    }
  }

  private handMessages(): number {
    let handed = 0;
    const maxInFlight = this.settings.max_in_flight_per_connection;
    // mayForward last: it registers for a wake-up only when the prefix's share is all that stops us
    while (!this.closed && !this.writeBlocked && this.session.outstanding < maxInFlight && this.session.mayForward()) {
      const m = this.reader.next();
      if (m === null) break;
      // a copy: the query outlives the read buffer it came in (until answered), and must not pin it
      this.session.onQuery(Buffer.from(m));
      handed++;
    }
    return handed;
  }

  /**
   * Read timeout: a message that has started must be complete in time (slowloris).
   * The clock is per message: a client streaming thousands of queries ends most
   * reads in the middle of one, and each completed message restarts it.
   */
  private armReadTimer(handed: number): void {
    if (handed > 0) this.stopReadTimer();
    if (this.reader.partial) {
      this.readTimer ??= this.timers.set(() => this.close('read_timeout'), this.settings.read_timeout_ms);
    } else {
      this.stopReadTimer();
    }
  }

  private stopReadTimer(): void {
    if (this.readTimer === null) return;
    this.timers.clear(this.readTimer);
    this.readTimer = null;
  }
}
