// One TCP connection to a backend (the socket side of src/backend/tcp-forwarder.ts):
// framed, pipelined, with a connect timeout so a backend that never completes
// the handshake (blackholed, or SYN accepted and nothing more) fails its
// queries instead of holding them. Reports how it ended, once.
import net from 'node:net';
import type { BackendSpec } from '../config/compile.js';
import type { TcpUpstreamFailure } from '../metrics/counters.js';
import { FrameReader, frame } from '../dns/framing.js';

export interface UpstreamLink {
  write(message: Buffer): void;
  close(): void;
}

export interface UpstreamEvents {
  onConnect(): void;
  onReply(message: Buffer): void;
  /** the connection is gone; `failure` is null for an orderly close by either side */
  onClose(failure: Exclude<TcpUpstreamFailure, 'pool_full'> | null): void;
}

export type UpstreamConnector = (
  spec: BackendSpec,
  proxyHeader: Buffer | null,
  connectTimeoutMs: number,
  events: UpstreamEvents,
) => UpstreamLink;

export const connectTcpUpstream: UpstreamConnector = (spec, proxyHeader, connectTimeoutMs, events) => {
  const socket = net.connect({ host: spec.address.host, port: spec.address.port });
  socket.setNoDelay(true);
  const reader = new FrameReader(65_535);
  let connected = false;
  let closed = false;
  const finish = (failure: Exclude<TcpUpstreamFailure, 'pool_full'> | null): void => {
    if (closed) return;
    closed = true;
    clearTimeout(connectTimer);
    socket.destroy();
    events.onClose(failure);
  };
  const connectTimer = setTimeout(() => finish('connect_timeout'), connectTimeoutMs);
  if (proxyHeader) socket.write(proxyHeader);
  socket.once('connect', () => {
    connected = true;
    clearTimeout(connectTimer);
    events.onConnect();
  });
  socket.on('data', (chunk: Buffer) => {
    reader.append(chunk);
    for (let m = reader.next(); m !== null && !closed; m = reader.next()) events.onReply(m);
    if (reader.broken) finish('reset');
  });
  socket.on('error', () => finish(connected ? 'reset' : 'connect_error'));
  socket.on('close', () => finish(connected ? null : 'connect_error'));
  return {
    write(message: Buffer): void {
      if (!closed) socket.write(frame(message));
    },
    close: () => finish(null),
  };
};
