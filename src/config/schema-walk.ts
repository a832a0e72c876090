// The config schema as JSON Schema, and the one walk over its keys: the
// generated reference lists them, reload planning reads their `reloadable`
// marks.
import { z } from 'zod';
import { configSchema } from './schema.js';

export interface SchemaNode {
  type?: string;
  description?: string;
  default?: unknown;
  reloadable?: boolean;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

export function configJsonSchema(): SchemaNode {
  return z.toJSONSchema(configSchema, { io: 'input' }) as SchemaNode;
}

/**
 * Every key in schema order, depth first, with its dotted path: nested
 * objects, and the keys of arrays of objects as "key[].child".
 */
export function walkSchema(visit: (path: string, node: SchemaNode) => void, node: SchemaNode = configJsonSchema(), prefix = ''): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    visit(path, child);
    if (child.properties) walkSchema(visit, child, path);
    else if (child.items?.properties) walkSchema(visit, child.items, `${path}[]`);
  }
}
