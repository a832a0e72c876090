// Pure: YAML text in, a validated Config or every problem with its key path out
// (CONTRIBUTING.md rule 5). Reading files and exiting belong to the CLI.
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';

export interface ConfigIssue {
  /** dotted key path, e.g. "policy.large_response.rate" or "backends.0.address"; "" for the document */
  readonly path: string;
  readonly message: string;
}

export type LoadResult = { ok: true; config: Config } | { ok: false; issues: ConfigIssue[] };

export function loadConfig(text: string): LoadResult {
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) {
    return { ok: false, issues: doc.errors.map((e) => ({ path: '', message: `YAML: ${e.message.split('\n')[0]}` })) };
  }
  const raw: unknown = doc.toJS() ?? {};
  return validateConfig(raw);
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
  return issues.map((i) => `${i.path}: ${i.message}`).join('\n');
}
