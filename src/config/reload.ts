// Which differences between two configs SIGHUP can apply, from the schema's
// `reloadable` marks; everything else needs a restart and is reported as such.
import type { Config } from './schema.js';
import { walkSchema } from './schema-walk.js';
import { compilePolicy, type PolicySettings } from './compile.js';

function reloadablePaths(): Set<string> {
  const paths = new Set<string>();
  walkSchema((path, node) => {
    if (node.reloadable) paths.add(path);
  });
  return paths;
}

const RELOADABLE = reloadablePaths();

/** Leaf paths whose values differ; arrays count as one leaf. */
function changedPaths(a: unknown, b: unknown, prefix = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => changedPaths(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
}

export interface ReloadPlan {
  /** changed keys SIGHUP applies */
  readonly applied: string[];
  /** changed keys that keep their old value until a restart */
  readonly needRestart: string[];
}

export function planReload(current: Config, next: Config): ReloadPlan {
  const changed = changedPaths(current, next);
  return {
    applied: changed.filter((p) => RELOADABLE.has(p)),
    needRestart: changed.filter((p) => !RELOADABLE.has(p)),
  };
}

/** `current` with the values of `paths` taken from `next`: the config in effect after a reload. */
export function applyPaths(current: Config, next: Config, paths: readonly string[]): Config {
  const out = structuredClone(current) as Record<string, unknown>;
  for (const path of paths) {
    const keys = path.split('.');
    let from: unknown = next;
    let to: Record<string, unknown> = out;
    keys.forEach((key, i) => {
      from = (from as Record<string, unknown> | undefined)?.[key];
      if (i === keys.length - 1) to[key] = structuredClone(from);
      else to = (to[key] ??= {}) as Record<string, unknown>;
    });
  }
  return out as Config;
}

interface Reloaded {
  readonly plan: ReloadPlan;
  /** the config in effect after the reload: the new reloadable keys, the old rest */
  readonly config: Config;
  readonly settings: PolicySettings;
}

/** What SIGHUP does with a newly read config, in one place for both frontends. */
export function reloadConfig(current: Config, next: Config): Reloaded {
  const plan = planReload(current, next);
  const config = applyPaths(current, next, plan.applied);
  return { plan, config, settings: compilePolicy(config) };
}
