// Parsing of "IP:port" / "[IPv6]:port" strings from the config. Done once at load
// (CONTRIBUTING.md rule 13), so the packet path only ever sees numbers and family tags.
import { isIP } from 'node:net';

export type Family = 4 | 6;

export interface HostPort {
  readonly host: string;
  readonly port: number;
  readonly family: Family;
}

/** Parses "1.2.3.4:53" or "[::1]:53"; returns null when the string is neither. */
export function parseHostPort(text: string): HostPort | null {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const host = m[1] as string;
  const port = Number(m[2]);
  const family = isIP(host);
  if ((family !== 4 && family !== 6) || port < 1 || port > 65535) return null;
  // A bare IPv6 address without brackets is rejected by the regexes above.
  if (family === 6 && !text.startsWith('[')) return null;
  return { host, port, family };
}

export function formatHostPort(hp: HostPort): string {
  return hp.family === 6 ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}
