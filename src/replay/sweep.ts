// `--sweep KEY=V1,V2,...` (one or two keys, dotted config paths): one
// configuration per value (per pair of values), each checked by the config
// schema like a file would be, all replayed in the same pass over the capture.
// One line per configuration, so an operator picks a threshold from a table.
import { parse as parseYamlValue } from 'yaml';
import { z } from 'zod';
import { validateConfig, formatIssues } from '../config/load.js';
import { configSchema, type Config } from '../config/schema.js';
import type { Report } from './report.js';

export interface SweepAxis {
  readonly key: string;
  readonly values: readonly unknown[];
  /** the values as the operator wrote them */
  readonly texts: readonly string[];
}

export interface SweepPoint {
  /** the value of each axis, as written */
  readonly values: readonly string[];
  readonly config: Config;
}

export interface SweepLine {
  values: Record<string, string>;
  prefixes_blocked: number;
  networks_blocked: number;
  on_rung_2: { prefix: number; aggregate: number };
  tc_budget: number;
  bytes_out_after: number;
  bytes_suppressed: number;
  amplification_after: number;
  likely_false_positives: number;
  /** real clients (TCP or small answers) that would have lost answers, and how many answers (collateral.ts) */
  collateral: { clients: number; queries_lost: number };
  /** the other prefixes: bytes sent in their name, bytes the policy would have delivered to them */
  attacker: { bytes_sent: number; bytes_delivered: number };
}

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
}

let leafPaths: Set<string> | null = null;

/**
 * Every key a sweep may set: the dotted paths of the schema's leaves (a value,
 * or a list of values), never a section, an item of a list of sections
 * (backends) or anything the schema does not name (__proto__, constructor).
 */
function sweepableKeys(): ReadonlySet<string> {
  if (leafPaths !== null) return leafPaths;
  const out = new Set<string>();
  const walk = (node: SchemaNode, prefix: string): void => {
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const path = prefix ? `${prefix}.${key}` : key;
      if (child.properties) walk(child, path);
      else out.add(path);
    }
  };
  walk(z.toJSONSchema(configSchema, { io: 'input' }) as SchemaNode, '');
  leafPaths = out;
  return out;
}

/** Parses "a.b.c=1,2,3"; throws an Error naming what is wrong. */
export function parseSweep(spec: string): SweepAxis {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new Error(`--sweep "${spec}": expected KEY=V1,V2,... (KEY a dotted config path)`);
  const key = spec.slice(0, eq).trim();
  // checked against the schema before anything is set: a key like __proto__.x would otherwise reach Object.prototype
  if (!sweepableKeys().has(key)) {
    throw new Error(`--sweep "${spec}": "${key}" is not a config key that takes a value (see config/reference.md, e.g. policy.large_response.rate)`);
  }
  const texts = spec.slice(eq + 1).split(',').map((v) => v.trim()).filter((v) => v !== '');
  if (texts.length === 0) throw new Error(`--sweep "${spec}": no values`);
  // YAML scalars, as the value would be written in the config file (numbers, booleans, strings)
  return { key, texts, values: texts.map((t) => parseYamlValue(t) as unknown) };
}

/** Sets a path of sweepableKeys() (so no part of it is a prototype's name), as own properties only. */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  if (!sweepableKeys().has(path)) throw new Error(`--sweep: "${path}" is not a config key`);
  const parts = path.split('.');
  let o = target;
  for (const p of parts.slice(0, -1)) {
    const next = Object.hasOwn(o, p) ? o[p] : undefined;
    if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) {
      Object.defineProperty(o, p, { value: {}, enumerable: true, writable: true, configurable: true });
    }
    o = o[p] as Record<string, unknown>;
  }
  Object.defineProperty(o, parts[parts.length - 1]!, { value, enumerable: true, writable: true, configurable: true });
}

/** Every configuration of the sweep, each validated; throws with the key path of a bad value. */
export function sweepConfigs(raw: unknown, axes: readonly SweepAxis[]): SweepPoint[] {
  if (axes.length > 2) throw new Error('--sweep takes one or two keys');
  const points: { values: string[]; set: [string, unknown][] }[] = [{ values: [], set: [] }];
  for (const axis of axes) {
    const next: typeof points = [];
    for (const p of points) {
      axis.values.forEach((v, i) => next.push({ values: [...p.values, axis.texts[i]!], set: [...p.set, [axis.key, v]] }));
    }
    points.splice(0, points.length, ...next);
  }
  return points.map((p) => {
    const copy = structuredClone((raw ?? {}) as Record<string, unknown>);
    for (const [k, v] of p.set) setPath(copy, k, v);
    const checked = validateConfig(copy);
    if (!checked.ok) throw new Error(`--sweep ${p.set.map(([k, v]) => `${k}=${String(v)}`).join(' ')}: ${formatIssues(checked.issues)}`);
    return { values: p.values, config: checked.config };
  });
}

export function sweepLine(axes: readonly SweepAxis[], point: SweepPoint, r: Report): SweepLine {
  const values: Record<string, string> = {};
  axes.forEach((a, i) => (values[a.key] = point.values[i]!));
  const prefixes = new Set(r.blocks.filter((b) => b.level === 'prefix').map((b) => b.prefix));
  const networks = new Set(r.blocks.filter((b) => b.level === 'aggregate').map((b) => b.prefix));
  return {
    values,
    prefixes_blocked: prefixes.size,
    networks_blocked: networks.size,
    on_rung_2: r.rules.on_rung_2,
    tc_budget: r.rules.truncated.budget + r.rules.would_truncate,
    bytes_out_after: r.totals.bytes_out_after,
    bytes_suppressed: r.totals.bytes_suppressed,
    amplification_after: r.totals.amplification_after,
    likely_false_positives: r.likely_false_positives,
    collateral: { clients: r.collateral.clients_hurt, queries_lost: r.collateral.queries_lost },
    attacker: { bytes_sent: r.collateral.attacker.bytes_sent, bytes_delivered: r.collateral.attacker.bytes_delivered },
  };
}

export function formatSweep(axes: readonly SweepAxis[], lines: readonly SweepLine[]): string {
  const head = [...axes.map((a) => a.key), 'prefixes blocked', 'networks blocked', 'rung 2 (prefix/aggr)', 'TC budget', 'bytes suppressed', 'ampl. after', 'likely false pos.', 'collateral (clients/answers lost)', 'attacker (bytes delivered/sent)'];
  const rows = lines.map((l) => [
    ...axes.map((a) => l.values[a.key] ?? ''),
    String(l.prefixes_blocked), String(l.networks_blocked), `${l.on_rung_2.prefix}/${l.on_rung_2.aggregate}`,
    String(l.tc_budget), l.bytes_suppressed.toLocaleString('en-US'), String(l.amplification_after), String(l.likely_false_positives),
    `${l.collateral.clients}/${l.collateral.queries_lost}`, `${l.attacker.bytes_delivered.toLocaleString('en-US')}/${l.attacker.bytes_sent.toLocaleString('en-US')}`,
  ]);
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((v, i) => v.padStart(widths[i]!)).join('  ')).join('\n') + '\n';
}
