// A port free for both UDP and TCP on an address, found by binding port 0.
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

export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await tryPort(host, 0);
    if (port !== null) return port;
  }
  throw new Error('no free port');
}
