// prefix_v4/prefix_v6 key the kernel set (its netmask, the nft rule's mask) and
// every block: SIGHUP cannot change them, so a reload reports them as needing
// a restart and keeps the running values (docs/enforcement.md).
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { planReload, reloadConfig } from '../../../src/config/reload.js';

describe('prefix lengths on SIGHUP', () => {
  it('are restart-only: reported under needRestart, the running prefix kept', () => {
    const current = configSchema.parse({});
    const next = configSchema.parse({ policy: { large_response: { prefix_v4: 24, prefix_v6: 56 } }, block: { timeout: 30 } });
    const r = reloadConfig(current, next);
    expect(r.plan.needRestart).toEqual(expect.arrayContaining(['policy.large_response.prefix_v4', 'policy.large_response.prefix_v6']));
    expect(r.plan.applied).toContain('block.timeout');
    expect(r.settings.prefixV4).toBe(32);
    expect(r.settings.prefixV6).toBe(64);
    expect(planReload(current, next).applied.includes('policy.large_response.prefix_v4')).toBe(false);
  });
});
