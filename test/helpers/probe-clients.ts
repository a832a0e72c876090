// Many clients, one query each, each from a source port of its own (so
// SO_REUSEPORT spreads them over every worker): how many got which answer.
// The fault tests ask "do real clients get answers again" with it.
import dgram from 'node:dgram';
import { execFile } from 'node:child_process';
import { query } from './wire.js';

export interface ProbeResult {
  readonly sent: number;
  readonly noerror: number;
  readonly servfail: number;
  readonly other: number;
  readonly unanswered: number;
}

/** `clients` queries for `name` A, at most `timeoutMs` for the answers; every socket closed before it returns. */
export async function probeClients(port: number, clients: number, opts: { host?: string; name?: string; timeoutMs?: number } = {}): Promise<ProbeResult> {
  const host = opts.host ?? '127.0.0.1';
  const counts = { noerror: 0, servfail: 0, other: 0 };
  let answered = 0;
  const sockets: dgram.Socket[] = [];
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, opts.timeoutMs ?? 2000);
    for (let i = 0; i < clients; i++) {
      const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
      sockets.push(s);
      s.on('error', () => undefined);
      s.once('message', (m) => {
        const rcode = m.length >= 4 ? m[3]! & 0x0f : -1;
        if (rcode === 0) counts.noerror++;
        else if (rcode === 2) counts.servfail++;
        else counts.other++;
        if (++answered === clients) {
          clearTimeout(timer);
          resolve();
        }
      });
      s.send(query(opts.name ?? 'www.example.test', 'A', i & 0xffff), port, host);
    }
  });
  for (const s of sockets) s.close();
  return { sent: clients, ...counts, unanswered: clients - answered };
}

/** Local ports of the UDP sockets connected to host:port (ampguard's upstream sockets), read with ss. */
export function connectedUdpPorts(host: string, port: number, netns?: string): Promise<number[]> {
  const argv = ['ss', '-Hnu', 'state', 'established', 'dst', `${host}:${port}`];
  const [cmd, ...args] = netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv;
  return new Promise((resolve, reject) => {
    execFile(cmd!, args, (err, stdout) => {
      if (err) return reject(err);
      const ports = stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f.length >= 4)
        .map((f) => Number(f[2]!.slice(f[2]!.lastIndexOf(':') + 1)));
      resolve(ports.filter((p) => Number.isInteger(p) && p > 0));
    });
  });
}
