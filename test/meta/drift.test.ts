// Guards against drift: the generated config and reference against the schema,
// the metrics registry against SPEC.md, and the import boundaries of STYLE.md.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { generateDefaultYaml, generateReferenceMarkdown } from '../../src/config/reference.js';
import { loadConfig } from '../../src/config/load.js';
import { createRegistry } from '../../src/metrics/registry.js';
import { Counters } from '../../src/metrics/counters.js';

describe('generated files', () => {
  it('config/ampguard.yaml is what the schema generates (run `npm run gen:config`)', () => {
    expect(readFileSync('config/ampguard.yaml', 'utf8')).toBe(generateDefaultYaml());
  });
  it('config/reference.md is what the schema generates (run `npm run gen:config`)', () => {
    expect(readFileSync('config/reference.md', 'utf8')).toBe(generateReferenceMarkdown());
  });
  it('the shipped config loads', () => {
    expect(loadConfig(readFileSync('config/ampguard.yaml', 'utf8')).ok).toBe(true);
  });
});

const SPEC = resolve('..', 'shared', 'SPEC.md');

describe('metrics against SPEC.md', () => {
  it.skipIf(!existsSync(SPEC))('registers every metric of the table with its type and labels', async () => {
    const spec = readFileSync(SPEC, 'utf8');
    const rows = [...spec.matchAll(/^\|\s*(`ampguard_[^|]+?)\s*\|\s*(\w+)\s*\|\s*([^|]*?)\s*\|$/gm)];
    expect(rows.length).toBeGreaterThanOrEqual(10);
    const registry = createRegistry({
      counters: new Counters(),
      backends: [{ name: 'b', up: true, observeLatency: () => undefined }],
      blockedClients: () => 0,
      trackedPrefixes: () => 0,
      maxTracked: 100000,
      blocksByMode: () => ({}),
      kernelErrors: () => 0,
      enforcementDegraded: () => false,
      tcpConnections: () => 0,
    });
    const metrics = await registry.getMetricsAsJSON();
    for (const [, names, type, labels] of rows) {
      const expectedLabels = [...(labels ?? '').matchAll(/`(\w+)`/g)].map((m) => m[1]);
      for (const name of [...(names ?? '').matchAll(/`(ampguard_\w+)`/g)].map((m) => m[1])) {
        const m = metrics.find((x) => x.name === name);
        expect(m, name).toBeDefined();
        expect(m?.type, name).toBe(type);
        expect(m?.help.length, `${name} help`).toBeGreaterThan(10);
        for (const v of m?.values ?? []) {
          const own = Object.keys(v.labels).filter((l) => l !== 'le');
          expect(own.sort(), name).toEqual([...expectedLabels].sort());
        }
      }
    }
  });
});

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('import boundaries (STYLE.md)', () => {
  const files = sources('src').map((f) => ({ path: relative('src', f), text: readFileSync(f, 'utf8') }));
  const imports = (text: string): string[] => [...text.matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1] as string);

  it('only src/dns imports dns-packet', () => {
    for (const f of files) if (imports(f.text).includes('dns-packet')) expect(f.path, f.path).toMatch(/^dns\//);
  });

  it('policy, dns, pipeline and backend selection touch no sockets', () => {
    const pure = files.filter((f) => /^(policy|dns|pipeline|config|firewall)\//.test(f.path) || /^backend\/(select|health|inflight|pool|proxy-protocol)\.ts$/.test(f.path));
    expect(pure.length).toBeGreaterThan(15);
    for (const f of pure) {
      for (const i of imports(f.text)) expect(['node:dgram', 'node:http', 'node:child_process'], `${f.path} imports ${i}`).not.toContain(i);
      // from node:net, only the address predicates
      for (const m of f.text.matchAll(/^import \{([^}]*)\} from 'node:net'/gm)) {
        for (const name of (m[1] as string).split(',').map((x) => x.trim())) expect(['isIP', 'isIPv4', 'isIPv6'], f.path).toContain(name);
      }
      expect(f.text, f.path).not.toMatch(/^import (net|\* as net) from 'node:net'/m);
    }
  });

  it('every stage module says which SPEC step it is', () => {
    for (const f of files.filter((x) => /^policy\/(any-to-tcp|size-to-tcp|large-response|blocked-client|budgets|block-table)\.ts$/.test(x.path))) {
      expect(f.text, f.path).toMatch(/SPEC step/);
    }
  });
});
