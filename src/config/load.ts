// Pure: YAML text in, a validated Config or every problem with its key path out
// (CONTRIBUTING.md rule 5). Reading files and exiting belong to the CLI.
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';

export interface ConfigIssue {
  /** dotted key path, e.g. "policy.large_response.rate" or "backends.0.address"; "" for the document */
  readonly path: string;
  readonly message: string;
  /** where in the YAML text (1-based), when the problem has a place there */
  readonly line?: number;
  readonly col?: number;
}

type LoadResult = { ok: true; config: Config } | { ok: false; issues: ConfigIssue[] };

export function loadConfig(text: string): LoadResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter: lines });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: doc.errors.map((e) => ({ path: '(YAML)', message: `YAML: ${e.message.split('\n')[0]}`, ...lines.linePos(e.pos[0]) })),
    };
  }
  const raw: unknown = doc.toJS() ?? {};
  const result = validateConfig(raw);
  return result.ok ? result : { ok: false, issues: result.issues.map((i) => ({ ...i, ...placeOf(doc, lines, i.path) })) };
}

/** The line and column of the deepest node of a key path that exists in the document. */
function placeOf(doc: Document, lines: LineCounter, path: string): { line?: number; col?: number } {
  if (path === '' || path === '(top level)') return {};
  const keys: (string | number)[] = path.split('.').map((k) => (/^\d+$/.test(k) ? Number(k) : k));
  for (let n = keys.length; n > 0; n--) {
    const node: unknown = doc.getIn(keys.slice(0, n), true);
    if (isNode(node) && node.range) return lines.linePos(node.range[0]);
  }
  return {};
}

export function validateConfig(raw: unknown): LoadResult {
  const result = configSchema.safeParse(raw);
  if (result.success) return { ok: true, config: result.data };
  return { ok: false, issues: result.error.issues.flatMap(toIssues) };
}

function toIssues(issue: z.core.$ZodIssue): ConfigIssue[] {
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ path: path ? `${path}.${key}` : key, message: 'unknown key' }));
  }
  return [{ path: path || '(top level)', message: issue.message }];
}

export function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}${i.line !== undefined ? ` (line ${i.line}, column ${i.col ?? 1})` : ''}`).join('\n');
}
