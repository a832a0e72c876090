// A listener that cannot bind says where and what would fix it: the protocol
// and address, and for a port below 1024 refused to an unprivileged process,
// the capability it lacks (the shipped unit grants it).

/** host and port as the config writes them ("[::1]:53"); net/ sits below config/, so not formatHostPort */
function formatted(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

const WHY: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EADDRINUSE: 'address in use: another process listens there',
  EADDRNOTAVAIL: 'the address is not on any interface of this host',
};

/** The errno name in a Node error, or in the message of the native addon's. */
function errnoOf(err: Error): string | null {
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && code in WHY) return code;
  if (/permission denied/i.test(err.message)) return 'EACCES';
  if (/address already in use/i.test(err.message)) return 'EADDRINUSE';
  if (/cannot assign requested address/i.test(err.message)) return 'EADDRNOTAVAIL';
  return null;
}

class BindError extends Error {
  constructor(message: string, readonly errno: string | null) {
    super(message);
  }
}

export function bindError(err: Error, proto: 'udp' | 'tcp' | 'http', address: { host: string; port: number }): BindError {
  const errno = errnoOf(err);
  const where = `${proto} ${formatted(address)}`;
  let hint = '';
  if ((errno === 'EACCES' || errno === 'EPERM') && address.port < 1024) {
    hint = `; ports below 1024 need root or CAP_NET_BIND_SERVICE (the shipped unit grants it: AmbientCapabilities=CAP_NET_BIND_SERVICE)`;
  } else if (errno === 'EADDRINUSE') {
    hint = `; see who: ss -${proto === 'udp' ? 'u' : 't'}lnp 'sport = :${address.port}'`;
  }
  return new BindError(`cannot listen on ${where}: ${errno !== null ? `${errno} (${WHY[errno]})` : err.message}${hint}`, errno);
}
