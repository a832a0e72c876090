// Guards against drift: the generated config and reference against the schema,
// the metrics registry and config keys against docs/metrics.md and
// config/reference.md, links of the docs, and the import boundaries of
// docs/architecture.md.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { generateDefaultYaml, generateReferenceMarkdown } from '../../src/config/reference.js';
import { loadConfig } from '../../src/config/load.js';
import { createRegistry, registerFleetMetrics, registerWorkerMetrics } from '../../src/metrics/registry.js';
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

// The metric table of docs/metrics.md is the contract: name, type, labels.
const METRICS_DOC = 'docs/metrics.md';
// The names users' dashboards and alerts are written against: never renamed.
const CONTRACT = [
  'ampguard_queries_total', 'ampguard_responses_total', 'ampguard_truncated_total', 'ampguard_large_responses_total',
  'ampguard_query_bytes_total', 'ampguard_response_bytes_total', 'ampguard_blocks_total', 'ampguard_blocked_clients',
  'ampguard_dropped_total', 'ampguard_backend_up', 'ampguard_backend_latency_seconds', 'ampguard_tracked_prefixes',
];

interface DocRow {
  readonly name: string;
  readonly type: string;
  readonly labels: string[];
}

function documentedMetrics(markdown: string): DocRow[] {
  const rows = [...markdown.matchAll(/^\|\s*`(ampguard_\w+)`\s*\|\s*(\w+)\s*\|([^|]*)\|/gm)];
  return rows.map((m) => ({
    name: m[1] as string,
    type: m[2] as string,
    labels: [...(m[3] ?? '').matchAll(/`(\w+)`/g)].map((l) => l[1] as string).sort(),
  }));
}

async function registeredMetrics(): Promise<{ name: string; type: string; labels: string[] }[]> {
  const sources = {
    counters: new Counters(),
    backends: [{ name: 'b', up: true, observeLatency: () => undefined }],
    blockedClients: () => 0,
    trackedPrefixes: () => 0,
    maxTracked: 100000,
    blocksByMode: () => ({ userspace: 1 }),
    kernelErrors: () => 0,
    enforcementDegraded: () => false,
    tcpConnections: () => 0,
  };
  // `as never`: the sources interface grows with the code; the names are what this test is about
  const registry = createRegistry(sources as never);
  // the cluster primary's own (src/cluster/primary.ts)
  registerWorkerMetrics(registry, () => ({ crash: 0, hung: 0 }));
  // with fleet.nats (src/fleet/start.ts)
  registerFleetMetrics(registry, { connected: () => true, peers: () => 2, messages: () => ({ in: 1, out: 1, rejected: 0 }) });
  const out = [];
  for (const m of await registry.getMetricsAsJSON()) {
    if (m.name.startsWith('ampguard_process_')) continue; // prom-client's default metrics
    const declared = (registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] }).labelNames;
    const seen = new Set<string>();
    for (const v of m.values ?? []) for (const l of Object.keys(v.labels)) if (l !== 'le') seen.add(l);
    out.push({ name: m.name, type: String(m.type), labels: [...new Set([...(declared ?? []), ...seen])].sort() });
  }
  return out;
}

describe(`metrics against ${METRICS_DOC}`, () => {
  const rows = documentedMetrics(readFileSync(METRICS_DOC, 'utf8'));

  it('documents every contract metric, each once', () => {
    expect(rows.length).toBeGreaterThanOrEqual(CONTRACT.length);
    for (const name of CONTRACT) expect(rows.map((r) => r.name), name).toContain(name);
    expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
  });

  it('registers every documented metric with its type and labels', async () => {
    const registered = await registeredMetrics();
    for (const row of rows) {
      const m = registered.find((x) => x.name === row.name);
      expect(m, `${row.name} is documented but not registered`).toBeDefined();
      expect(m?.type, row.name).toBe(row.type);
      expect(m?.labels, row.name).toEqual(row.labels);
    }
  });

  it('documents every registered metric (add a row to docs/metrics.md)', async () => {
    const registered = await registeredMetrics();
    expect(registered.length).toBeGreaterThanOrEqual(CONTRACT.length);
    for (const m of registered) expect(rows.map((r) => r.name), `${m.name} is registered but not in ${METRICS_DOC}`).toContain(m.name);
  });
});

describe('config keys against config/reference.md', () => {
  it('names every key of the shipped config, and the docs point to it', () => {
    const reference = readFileSync('config/reference.md', 'utf8');
    const keys = (obj: unknown, prefix = ''): string[] =>
      obj && typeof obj === 'object' && !Array.isArray(obj)
        ? Object.entries(obj).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) ? keys(v, `${prefix}${k}.`) : [`${prefix}${k}`]))
        : [];
    const loaded = loadConfig(readFileSync('config/ampguard.yaml', 'utf8'));
    expect(loaded.ok).toBe(true);
    const all = keys(loaded.ok ? loaded.config : {});
    expect(all.length).toBeGreaterThan(20);
    for (const key of all) expect(reference, key).toContain(`\`${key}\``);
    expect(readFileSync('docs/configuration.md', 'utf8')).toContain('../config/reference.md');
  });
});

describe('documentation stays inside the repository', () => {
  it('README.md, docs/ and code comments cite no file outside it', () => {
    const texts = ['README.md', 'CONTRIBUTING.md', ...readdirSync('docs').map((f) => join('docs', f)), ...sources('src'), ...sources('test')];
    for (const path of texts) {
      const text = readFileSync(path, 'utf8');
      expect(text, path).not.toMatch(/\.\.\/shared|SPEC\.md|STYLE\.md/);
    }
  });

  it('every relative link of README.md and docs/ names a file that exists', () => {
    for (const path of ['README.md', 'CONTRIBUTING.md', ...readdirSync('docs').map((f) => join('docs', f))]) {
      for (const m of readFileSync(path, 'utf8').matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1] as string;
        if (/^[a-z]+:/.test(target)) continue;
        expect(existsSync(resolve(dirname(path), target)), `${path} links ${target}`).toBe(true);
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

describe('import boundaries (docs/architecture.md)', () => {
  const files = sources('src').map((f) => ({ path: relative('src', f), text: readFileSync(f, 'utf8') }));
  const imports = (text: string): string[] => [...text.matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1] as string);

  // The layering of docs/architecture.md: what each folder may import at run time.
  // `import type` may cross it (types vanish at run time); a value import may not.
  const below = (...folders: string[]): string[] => folders;
  const ALLOWED: Record<string, string[]> = {
    net: below(),
    log: below(),
    time: below(),
    config: below('net'),
    dns: below('net'),
    policy: below('config', 'dns', 'log', 'net', 'time'),
    metrics: below('config', 'dns', 'log', 'net', 'policy'),
    kernel: below('config', 'net'),
    native: below('config', 'log', 'net'),
    backend: below('config', 'dns', 'log', 'metrics', 'native', 'net', 'policy'),
    pipeline: below('backend', 'config', 'dns', 'log', 'metrics', 'net', 'policy'),
    listener: below('config', 'dns', 'log', 'metrics', 'native', 'net', 'pipeline', 'policy'),
    enforce: below('config', 'kernel', 'log', 'net', 'policy', 'time'),
    firewall: below('config', 'kernel', 'net'),
    operator: below('config', 'enforce', 'log', 'metrics', 'net', 'policy'),
    replay: below('config', 'dns', 'enforce', 'log', 'metrics', 'net', 'pipeline', 'policy'),
    fleet: below('config', 'enforce', 'log', 'metrics', 'net', 'operator', 'policy'),
  };
  const composition = Object.keys(ALLOWED);
  ALLOWED['.'] = composition.filter((f) => f !== 'replay'); // main.ts, dataplane.ts
  ALLOWED['cluster'] = [...ALLOWED['.']!, '.'];
  ALLOWED['cli'] = [...composition, '.', 'cluster'];
  const valueImports = (text: string): string[] =>
    [...text.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^;'"]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) => m[1] as string);

  it('each folder imports values only from the folders below it (docs/architecture.md)', () => {
    const wrong: string[] = [];
    for (const f of files) {
      const folder = dirname(f.path);
      const allowed = ALLOWED[folder];
      expect(allowed, `${f.path}: a folder docs/architecture.md does not place`).toBeDefined();
      for (const spec of valueImports(f.text)) {
        const target = dirname(relative('src', resolve('src', folder, spec)));
        if (target !== folder && !allowed!.includes(target)) wrong.push(`${f.path} imports ${spec} (${folder} -> ${target})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('sees the imports it checks (a check that finds none would pass anything)', () => {
    const all = files.flatMap((f) => valueImports(f.text));
    expect(all.length).toBeGreaterThan(200);
    expect(valueImports("import {\n  a,\n  b,\n} from '../x/y.js';\nimport type { T } from '../z/w.js';\n")).toEqual(['../x/y.js']);
  });

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

  it('every stage module says which step of docs/packet-path.md it is', () => {
    for (const f of files.filter((x) => /^policy\/(any-to-tcp|size-to-tcp|large-response|blocked-client|budgets|block-table)\.ts$/.test(x.path))) {
      expect(f.text, f.path).toMatch(/Packet-path steps? \d/);
    }
  });
});
