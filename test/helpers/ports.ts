// A port free for both UDP and TCP on an address, found by binding it.
import dgram from 'node:dgram';
import net from 'node:net';

async function tryPort(host: string, port: number): Promise<number | null> {
  const tcp = net.createServer();
  const bound = await new Promise<number | null>((resolve) => {
    tcp.once('error', () => resolve(null));
    tcp.listen(port, host, () => resolve((tcp.address() as net.AddressInfo).port));
  });
  if (bound === null) return null;
  const udp = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const ok = await new Promise<boolean>((resolve) => {
    udp.once('error', () => resolve(false));
    udp.bind(bound, host, () => resolve(true));
  });
  await new Promise<void>((r) => tcp.close(() => r()));
  if (ok) await new Promise<void>((r) => udp.close(() => r()));
  return ok ? bound : null;
}

// Ports below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999
// by default): a port the kernel picked for us could be picked again, between our
// check and the server's bind, as the source port of some outgoing connection (a test
// that opens hundreds of them made ampguard fail with EADDRINUSE).
const LOW = 20_000;
const HIGH = 32_767;
/** handed out by this process already: two servers of one test never get the same port */
const given = new Set<number>();

export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const candidate = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (given.has(candidate)) continue;
    const port = await tryPort(host, candidate);
    if (port !== null) {
      given.add(port);
      return port;
    }
  }
  throw new Error('no free port');
}
