import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { compileConfig, resolvConfBackend } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';

function issues(text: string): string[] {
  const r = loadConfig(text);
  return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
}

describe('loadConfig', () => {
  it('fills every default from the schema for an empty file', () => {
    const r = loadConfig('');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.listen.udp).toEqual(['127.0.0.1:5353']);
    expect(r.config.policy.truncate_above).toBe(1232);
    expect(r.config.policy.large_response).toEqual({
      min_bytes: 700, rate: '50kb/min', burst: 10, prefix_v4: 32, prefix_v6: 64, max_tracked: 100000,
      aggregate: { enabled: true, prefix_v4: 24, prefix_v6: 48, multiplier: 8, wide: { enabled: true, prefix_v4: 16, prefix_v6: 32, multiplier: 16 } },
    });
    expect(r.config.policy.ladder).toEqual({ enabled: true, window_ms: 2000, min_tc: 10, followup_share: 0.2, quiet_ms: 10_000 });
    expect(r.config.block).toMatchObject({ mode: 'auto', set: 'throttled-ips', timeout: 600, max_elements: 100000, allowlist: [] });
    expect(r.config.metrics.listen).toBe('127.0.0.1:9153');
    expect(r.config.backends).toBeUndefined();
    expect(r.config).toEqual(configSchema.parse({}));
  });

  it('names unknown keys at every depth', () => {
    expect(issues('colour: red\npolicy:\n  large_response:\n    brust: 3\n').sort()).toEqual([
      'colour: unknown key',
      'policy.large_response.brust: unknown key',
    ]);
  });

  it.each([
    ['listen:\n  udp: ["localhost:53"]', 'listen.udp.0'],
    ['listen:\n  tcp: ["::1:53"]', 'listen.tcp.0'],
    ['backends:\n  - address: "127.0.0.1:0"', 'backends.0.address'],
    ['backends: []', 'backends'],
    ['backends:\n  - address: "127.0.0.1:53"\n    weight: 0', 'backends.0.weight'],
    ['policy:\n  truncate_above: 511', 'policy.truncate_above'],
    ['policy:\n  truncate_above: 1000.5', 'policy.truncate_above'],
    ['policy:\n  large_response:\n    rate: "50kb/fortnight"', 'policy.large_response.rate'],
    ['policy:\n  large_response:\n    prefix_v6: 129', 'policy.large_response.prefix_v6'],
    ['block:\n  mode: iptables', 'block.mode'],
    ['block:\n  set: "a set"', 'block.set'],
    ['block:\n  allowlist: ["192.0.2.0/33"]', 'block.allowlist.0'],
    ['metrics:\n  listen: "9153"', 'metrics.listen'],
    ['log:\n  level: loud', 'log.level'],
    ['backend_timeout_ms: "2s"', 'backend_timeout_ms'],
    ['health_check:\n  interval_ms: 5', 'health_check.interval_ms'],
    ['policy:\n  ladder:\n    quiet_ms: 50', 'policy.ladder.quiet_ms'],
    ['policy:\n  large_response:\n    aggregate:\n      wide:\n        prefix_v4: 32', 'policy.large_response.aggregate.wide.prefix_v4'],
    ['policy:\n  large_response:\n    aggregate:\n      wide:\n        multiplier: 0', 'policy.large_response.aggregate.wide.multiplier'],
  ])('rejects %j at %s', (text, path) => {
    const found = issues(text);
    expect(found.length).toBe(1);
    expect(found[0]).toMatch(new RegExp(`^${path.replace(/\./g, '\\.')}: `));
  });

  it('reports every problem at once', () => {
    expect(issues('policy:\n  truncate_above: 1\nblock:\n  timeout: 0\nlog:\n  level: x\n')).toHaveLength(3);
  });

  it('reports YAML syntax errors', () => {
    expect(issues('listen: [')[0]).toMatch(/^\(YAML\): YAML: /);
    // with the place in the text (the issue said "empty key path and no line or column")
    const r = loadConfig('listen:\n  udp: ["127.0.0.1:5353"\n');
    expect(r.ok ? null : r.issues[0]).toMatchObject({ path: '(YAML)', line: expect.any(Number), col: expect.any(Number) });
    const bad = loadConfig('policy:\n  truncate_above: abc\n');
    expect(bad.ok ? null : bad.issues[0]).toMatchObject({ path: 'policy.truncate_above', line: 2, col: 19 });
  });

  it('accepts IPv6 addresses in brackets', () => {
    expect(issues('listen:\n  udp: ["[::1]:5353"]\nbackends:\n  - address: "[fd00::53]:53"')).toEqual([]);
  });
});

describe('compileConfig', () => {
  it('takes the first nameserver of resolv.conf when no backend is set', () => {
    expect(resolvConfBackend('# x\nsearch a\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n')).toBe('192.0.2.53:53');
    expect(resolvConfBackend('nameserver fe80::1%eth0\n')).toBe('[fe80::1]:53');
    const r = loadConfig('');
    if (!r.ok) throw new Error('default config must load');
    const c = compileConfig(r.config, 'nameserver 192.0.2.53\n');
    expect(c.ok && c.runtime.backends[0]?.name).toBe('192.0.2.53:53');
    const none = compileConfig(r.config, '');
    expect(none.ok).toBe(false);
    expect(!none.ok && none.issues[0]?.path).toBe('backends');
  });

  it('compiles rates and bucket sizes into runtime numbers', () => {
    const r = loadConfig('backends: [{address: "127.0.0.1:53"}]');
    if (!r.ok) throw new Error('must load');
    const c = compileConfig(r.config, '');
    if (!c.ok) throw new Error('must compile');
    // the per-prefix bucket: 50kb/min in bytes per ms, burst 10 x truncate_above 1232 bytes
    expect(c.runtime.policy.prefixBudget).toEqual({ capacity: 10 * 1232, perMs: (50 * 1024) / 60_000, bytes: true });
    expect(c.runtime.listenUdp[0]).toEqual({ host: '127.0.0.1', port: 5353, family: 4 });
  });

  it('rejects duplicate backends', () => {
    const r = loadConfig('backends: [{address: "127.0.0.1:53"}, {address: "127.0.0.1:53"}]');
    if (!r.ok) throw new Error('must load');
    const c = compileConfig(r.config, '');
    expect(!c.ok && c.issues[0]?.path).toBe('backends.1.address');
  });
});
