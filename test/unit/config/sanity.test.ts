// The warnings check-config prints for a metrics listener the operator may not
// mean: open beyond this host, or on a port the CLI's fetch refuses (then
// `blocks` and `top` could not reach it). The list of refused ports is checked
// against the fetch of the Node that runs, so a Node that refuses more shows.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { compileConfig, type RuntimeConfig } from '../../../src/config/compile.js';
import { exposureWarnings, FETCH_BLOCKED_PORTS } from '../../../src/config/sanity.js';

function runtime(metricsListen: string): RuntimeConfig {
  const r = loadConfig(`listen: { udp: ['127.0.0.1:5300'] }\nbackends: [{ address: '127.0.0.1:5301' }]\nmetrics: { listen: '${metricsListen}' }\n`);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  const c = compileConfig(r.config, '');
  if (!c.ok) throw new Error(JSON.stringify(c.issues));
  return c.runtime;
}

/** what Node's fetch does with the port: 'refused' before connecting, or 'tried' (a connection was attempted) */
async function fetchOn(port: number): Promise<'refused' | 'tried'> {
  try {
    // 127.0.0.1 with nothing listening (or something that answers): either way fetch tried
    await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
    return 'tried';
  } catch (err) {
    const cause = (err as Error).cause as { message?: string } | undefined;
    return cause?.message === 'bad port' ? 'refused' : 'tried';
  }
}

describe('exposureWarnings', () => {
  it('says nothing of a loopback listener on an ordinary port', () => {
    expect(exposureWarnings(runtime('127.0.0.1:9153'))).toEqual([]);
  });

  it('names a listener open beyond this host', () => {
    const w = exposureWarnings(runtime('0.0.0.0:9153'));
    expect(w.map((i) => i.path)).toEqual(['metrics.listen']);
    expect(w[0]?.message).toContain('is not loopback');
  });

  it('names a port the CLI cannot reach', () => {
    const w = exposureWarnings(runtime('127.0.0.1:6000'));
    expect(w).toHaveLength(1);
    expect(w[0]?.message).toMatch(/port 6000 is one that fetch refuses.*ampguard blocks/);
  });

  it('lists exactly the ports the running Node refuses, among the privileged ones and those around the list', async () => {
    // every listed port and its neighbours, every port below 1025, and the usual metrics ports
    const candidates = new Set<number>();
    for (const p of FETCH_BLOCKED_PORTS) for (const q of [p - 1, p, p + 1]) candidates.add(q);
    for (let p = 1; p <= 1024; p++) candidates.add(p);
    for (const p of [80, 443, 853, 5353, 8053, 8080, 9090, 9153, 9199]) candidates.add(p);
    const wrong: string[] = [];
    for (const p of [...candidates].sort((a, b) => a - b)) {
      const refused = (await fetchOn(p)) === 'refused';
      if (refused !== FETCH_BLOCKED_PORTS.has(p)) wrong.push(`${p}: fetch ${refused ? 'refuses' : 'allows'} it, the list says ${FETCH_BLOCKED_PORTS.has(p) ? 'refused' : 'allowed'}`);
    }
    expect(wrong).toEqual([]);
  }, 60_000);
});
