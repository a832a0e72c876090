// One TCP connection to a backend, carrying the queries of one client
// connection (so a PROXY v2 header can name that client), pipelined.
import net from 'node:net';
import type { BackendSpec } from '../config/compile.js';
import { FrameReader, frame } from '../listener/framing.js';

export interface UpstreamStream {
  write(message: Buffer): void;
  close(): void;
}

export interface UpstreamHandlers {
  onReply(message: Buffer): void;
  /** the connection is gone; outstanding queries will not be answered on it */
  onClose(): void;
}

export function connectTcpUpstream(spec: BackendSpec, proxyHeader: Buffer | null, handlers: UpstreamHandlers): UpstreamStream {
  const socket = net.connect({ host: spec.address.host, port: spec.address.port });
  socket.setNoDelay(true);
  const reader = new FrameReader(65_535);
  let closed = false;
  const finish = (): void => {
    if (closed) return;
    closed = true;
    socket.destroy();
    handlers.onClose();
  };
  if (proxyHeader) socket.write(proxyHeader);
  socket.on('data', (chunk: Buffer) => {
    const messages = reader.push(chunk);
    if (messages === null) return finish();
    for (const m of messages) handlers.onReply(m);
  });
  socket.on('error', finish);
  socket.on('close', finish);
  return {
    write(message: Buffer): void {
      if (!closed) socket.write(frame(message));
    },
    close: finish,
  };
}
