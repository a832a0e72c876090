// Before ampguard binds its UDP listen sockets with SO_REUSEPORT (one per worker,
// docs/performance.md), it checks that no other process serves the same
// address: the kernel lets any process of the same user join a SO_REUSEPORT
// group and then splits the clients with it in silence (a second instance
// started by mistake took 17 of 40 queries). A bind without SO_REUSEPORT fails
// with EADDRINUSE while any socket holds the address; it is closed at once.
import dgram from 'node:dgram';
import type { HostPort } from '../config/address.js';

function probe(address: HostPort): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket({ type: address.family === 6 ? 'udp6' : 'udp4', reuseAddr: false });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.close();
      resolve(err);
    });
    socket.bind({ port: address.port, address: address.host, exclusive: true }, () => socket.close(() => resolve(null)));
  });
}

/** The listen addresses another process already serves, as "host:port" (port 0 is never checked). */
export async function udpAddressesInUse(addresses: readonly HostPort[]): Promise<string[]> {
  const inUse: string[] = [];
  for (const a of addresses) {
    if (a.port === 0) continue;
    const err = await probe(a);
    // anything but "in use" (EACCES for a port below 1024, say) is left to the real bind to report
    if (err?.code === 'EADDRINUSE') inUse.push(a.family === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);
  }
  return inUse;
}
