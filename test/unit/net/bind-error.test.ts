import { describe, expect, it } from 'vitest';
import { bindError } from '../../../src/net/bind-error.js';

const err = (code: string, message = code): Error => Object.assign(new Error(message), { code });

describe('bindError', () => {
  it('names the address and, below port 1024, the capability', () => {
    const e = bindError(err('EACCES'), 'udp', { host: '198.18.0.1', port: 53 });
    expect(e.message).toBe('cannot listen on udp 198.18.0.1:53: EACCES (permission denied); ports below 1024 need root or CAP_NET_BIND_SERVICE (the shipped unit grants it: AmbientCapabilities=CAP_NET_BIND_SERVICE)');
    expect(bindError(err('EACCES'), 'tcp', { host: '::1', port: 5353 }).message).toBe('cannot listen on tcp [::1]:5353: EACCES (permission denied)');
  });
  it('reads the native addon\'s messages too, and says who to ask when the port is in use', () => {
    expect(bindError(new Error('bind: Permission denied'), 'udp', { host: '127.0.0.1', port: 53 }).message).toContain('CAP_NET_BIND_SERVICE');
    expect(bindError(err('EADDRINUSE'), 'tcp', { host: '127.0.0.1', port: 53 }).message).toContain("ss -tlnp 'sport = :53'");
    expect(bindError(new Error('bind: Cannot assign requested address'), 'udp', { host: '192.0.2.1', port: 53 }).message).toContain('not on any interface');
    expect(bindError(new Error('odd'), 'http', { host: '127.0.0.1', port: 9153 }).message).toBe('cannot listen on http 127.0.0.1:9153: odd');
  });
});
