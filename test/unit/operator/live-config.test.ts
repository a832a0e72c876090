// The one reload body both frontends run (main.ts, cluster/primary.ts): the
// reloadable keys change, the rest waits for a restart, the log level follows,
// and turning the aggregate budgets off lifts the network blocks.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { configSchema } from '../../../src/config/schema.js';
import { compileConfig } from '../../../src/config/compile.js';
import { LiveConfig } from '../../../src/operator/live-config.js';

function live(raw: unknown): { live: LiveConfig; log: pino.Logger } {
  const compiled = compileConfig(configSchema.parse(raw), '');
  if (!compiled.ok) throw new Error('test config does not compile');
  const log = pino({ level: 'info', enabled: false });
  return { live: new LiveConfig(compiled.runtime, log), log };
}

const backends = [{ address: '127.0.0.1:5300' }];

describe('LiveConfig.reload', () => {
  it('applies the reloadable keys, keeps the rest, and sets the log level', () => {
    const { live: l, log } = live({ backends });
    let lifted = 0;
    const plan = l.reload(configSchema.parse({ backends, block: { timeout: 30 }, log: { level: 'debug' }, policy: { large_response: { prefix_v4: 24 } } }), { liftNetworks: async () => (lifted++, []) });
    expect(plan.applied).toEqual(expect.arrayContaining(['block.timeout', 'log.level']));
    expect(plan.needRestart).toContain('policy.large_response.prefix_v4');
    expect(l.config.block.timeout).toBe(30);
    expect(l.settings.prefixV4).toBe(32);
    expect(log.level).toBe('debug');
    expect(lifted).toBe(0);
  });

  it('lifts the network blocks when the aggregate budgets go off, and only then', () => {
    const { live: l } = live({ backends });
    let lifted = 0;
    const enforcer = { liftNetworks: async (): Promise<string[]> => (lifted++, []) };
    const off = configSchema.parse({ backends, policy: { large_response: { aggregate: { enabled: false } } } });
    l.reload(off, enforcer);
    expect(l.settings.aggregate.enabled).toBe(false);
    expect(lifted).toBe(1);
    l.reload(off, enforcer);
    expect(lifted).toBe(1);
  });
});
