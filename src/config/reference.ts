// Generates config/ampguard.yaml (every key with its default and description)
// and config/reference.md from the schema, so neither can drift from it; a meta
// test regenerates both and compares.
import { Document, isMap, isPair, isScalar, isSeq, type YAMLMap } from 'yaml';
import { configSchema } from './schema.js';
import { configJsonSchema, walkSchema, type SchemaNode } from './schema-walk.js';

type Node = SchemaNode;

/** What the shipped config sets beyond the defaults: the loopback recursor of deploy/pdns-recursor. */
const SHIPPED_OVERRIDES = {
  backends: [{ address: '127.0.0.1:5300', weight: 1, proxy_protocol: true }],
} as const;

const jsonSchema = configJsonSchema;

function describe(node: Node): string {
  const parts = [node.description ?? ''];
  if (node.enum) parts.push(`one of ${node.enum.map((v) => JSON.stringify(v)).join(', ')}`);
  if (node.minimum !== undefined || node.maximum !== undefined) parts.push(`range ${node.minimum ?? ''}..${node.maximum ?? ''}`);
  if (node.reloadable) parts.push('SIGHUP reloads');
  return parts.filter(Boolean).join('; ');
}

export function generateDefaultYaml(): string {
  const values = { ...configSchema.parse({}), ...SHIPPED_OVERRIDES };
  const ordered = Object.fromEntries(Object.keys(jsonSchema().properties ?? {}).map((k) => [k, values[k as keyof typeof values]]));
  const doc = new Document(ordered);
  const annotate = (map: YAMLMap, schema: Node): void => {
    for (const pair of map.items) {
      if (!isPair(pair) || !isScalar(pair.key)) continue;
      const child = schema.properties?.[String(pair.key.value)];
      if (!child) continue;
      const text = describe(child);
      if (text) pair.key.commentBefore = ` ${text}`;
      if (isMap(pair.value)) annotate(pair.value, child);
      if (isSeq(pair.value) && child.items?.properties) {
        for (const item of pair.value.items) if (isMap(item)) annotate(item, child.items);
      }
      if (isSeq(pair.value) && !child.items?.properties) pair.value.flow = true;
    }
  };
  annotate(doc.contents as YAMLMap, jsonSchema());
  doc.commentBefore =
    ' ampguard configuration: every key with its default (generated from src/config/schema.ts by `npm run gen:config`).\n' +
    ' backends is set to the loopback recursor of deploy/pdns-recursor; without it the first nameserver of /etc/resolv.conf is used.';
  return doc.toString({ lineWidth: 0 });
}

export function generateReferenceMarkdown(): string {
  const rows: string[] = [];
  walkSchema((path, child) => {
    if (child.properties) return;
    const shown = child.default === undefined ? '' : `\`${JSON.stringify(child.default)}\``;
    rows.push(`| \`${path}\` | ${child.type ?? ''} | ${shown} | ${child.reloadable ? 'yes' : 'no'} | ${describe({ ...child, reloadable: false })} |`);
  });
  return [
    '# ampguard configuration reference',
    '',
    'Generated from `src/config/schema.ts` (`npm run gen:config`); a test fails when it drifts.',
    'Every key is optional. An unknown key, a bad address, a bad rate or an out-of-range number stops',
    'the start (and `ampguard check-config`) with every problem named by its key path.',
    '',
    '| key | type | default | SIGHUP | meaning |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}
