// Guards against drift: the generated config, reference, docs/metrics.md and
// error-code table against the schema, the registry and the code's list of
// error codes; config keys against config/reference.md, links of the docs,
// and the import boundaries of docs/architecture.md.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { generateDefaultYaml, generateReferenceMarkdown } from '../../src/config/reference.js';
import { loadConfig } from '../../src/config/load.js';
import { generateMetricsMarkdown, metricReference, METRIC_NOTES } from '../../src/metrics/reference.js';
import { ERROR_CODES } from '../../src/cli/error-codes.js';
import { withErrorTable } from './gen-docs.js';

describe('generated files', () => {
  it('config/ampguard.yaml is what the schema generates (run `npm run gen:config`)', () => {
    expect(readFileSync('config/ampguard.yaml', 'utf8')).toBe(generateDefaultYaml());
  });
  it('config/reference.md is what the schema generates (run `npm run gen:config`)', () => {
    expect(readFileSync('config/reference.md', 'utf8')).toBe(generateReferenceMarkdown());
  });
  it('docs/metrics.md is what the registry generates (run `npm run build && npm run gen:docs`)', async () => {
    expect(readFileSync('docs/metrics.md', 'utf8')).toBe(await generateMetricsMarkdown());
  });
  it('the error-code table of docs/operations.md is what src/cli/error-codes.ts generates (run `npm run gen:docs`)', () => {
    const text = readFileSync('docs/operations.md', 'utf8');
    expect(text).toBe(withErrorTable(text));
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
  return (await metricReference()).map((m) => ({ name: m.name, type: m.type, labels: [...m.labels].sort() }));
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

  it('documents every registered metric (run `npm run gen:docs`)', async () => {
    const registered = await registeredMetrics();
    expect(registered.length).toBeGreaterThanOrEqual(CONTRACT.length);
    for (const m of registered) expect(rows.map((r) => r.name), `${m.name} is registered but not in ${METRICS_DOC}`).toContain(m.name);
  });

  it('keeps notes only for registered metrics', async () => {
    const names = (await registeredMetrics()).map((m) => m.name);
    for (const name of Object.keys(METRIC_NOTES)) expect(names, `METRIC_NOTES.${name}`).toContain(name);
  });
});

describe('error codes against src/cli/error-codes.ts', () => {
  const codesIn = (text: string): string[] => [...text.matchAll(/\bE_[A-Z][A-Z_]*[A-Z]\b/g)].map((m) => m[0]);
  const listed = Object.keys(ERROR_CODES);

  it('every code the code raises or prints is in the list', () => {
    const raised = new Set(sources('src').filter((f) => !f.endsWith('error-codes.ts')).flatMap((f) => codesIn(readFileSync(f, 'utf8'))));
    expect(raised.size).toBeGreaterThan(5);
    for (const code of raised) expect(listed, code).toContain(code);
  });

  it('every code in the list is raised somewhere (no dead codes)', () => {
    const raised = new Set(sources('src').filter((f) => !f.endsWith('error-codes.ts')).flatMap((f) => codesIn(readFileSync(f, 'utf8'))));
    for (const code of listed) expect([...raised], code).toContain(code);
  });

  it('the README and docs name only codes of the list, and architecture.md names them all', () => {
    for (const path of ['README.md', ...readdirSync('docs').map((f) => join('docs', f))]) {
      for (const code of codesIn(readFileSync(path, 'utf8'))) expect(listed, `${path} names ${code}`).toContain(code);
    }
    const architecture = new Set(codesIn(readFileSync('docs/architecture.md', 'utf8')));
    for (const code of listed) expect([...architecture], `docs/architecture.md lists ${code}`).toContain(code);
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

  // The layering of docs/architecture.md: what each folder may import. `import type`
  // counts too: a type lives in the lowest layer that uses it, so a folder reads
  // without the ones above it.
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
  // every relative import and re-export, `import type` included
  const localImports = (text: string): string[] =>
    [...text.matchAll(/^(?:import|export)\s+(?:[^;'"]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) => m[1] as string);

  it('each folder imports values and types only from the folders below it (docs/architecture.md)', () => {
    const wrong: string[] = [];
    for (const f of files) {
      const folder = dirname(f.path);
      const allowed = ALLOWED[folder];
      expect(allowed, `${f.path}: a folder docs/architecture.md does not place`).toBeDefined();
      for (const spec of localImports(f.text)) {
        const target = dirname(relative('src', resolve('src', folder, spec)));
        if (target !== folder && !allowed!.includes(target)) wrong.push(`${f.path} imports ${spec} (${folder} -> ${target})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('sees the imports it checks (a check that finds none would pass anything)', () => {
    const all = files.flatMap((f) => localImports(f.text));
    expect(all.length).toBeGreaterThan(200);
    expect(localImports("import {\n  a,\n  b,\n} from '../x/y.js';\nimport type { T } from '../z/w.js';\nexport type { U } from './u.js';\n")).toEqual(['../x/y.js', '../z/w.js', './u.js']);
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
