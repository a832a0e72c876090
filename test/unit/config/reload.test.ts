import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { applyPaths, planReload } from '../../../src/config/reload.js';

describe('planReload', () => {
  const base = configSchema.parse({});
  it('applies thresholds and keeps listen addresses for a restart', () => {
    const next = configSchema.parse({
      policy: { truncate_above: 900, large_response: { rate: '10kb/min', max_tracked: 5 } },
      listen: { udp: ['127.0.0.1:53'] },
      block: { allowlist: ['192.0.2.0/24'] },
    });
    const plan = planReload(base, next);
    expect(plan.applied.sort()).toEqual(['block.allowlist', 'policy.large_response.rate', 'policy.truncate_above']);
    expect(plan.needRestart.sort()).toEqual(['listen.udp', 'policy.large_response.max_tracked']);
    const effective = applyPaths(base, next, plan.applied);
    expect(effective.policy.truncate_above).toBe(900);
    expect(effective.listen.udp).toEqual(['127.0.0.1:5353']);
    expect(effective.policy.large_response.max_tracked).toBe(100000);
    // the restart-only change is reported again next time, since it is still not in effect
    expect(planReload(effective, next).needRestart.sort()).toEqual(['listen.udp', 'policy.large_response.max_tracked']);
  });
});
