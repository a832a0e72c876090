// The config a frontend runs now, and what a reload (SIGHUP, `ampguard run`'s
// reload) does to it: one body for the single process (main.ts) and the
// cluster primary, which then hand the result to their data path (in process,
// or to the workers).
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { PolicySettings, RuntimeConfig } from '../config/compile.js';
import { reloadConfig, type ReloadPlan } from '../config/reload.js';
import type { Enforcer } from '../enforce/enforcer.js';

export class LiveConfig {
  /** the config in effect: the reloadable keys of the last reload, the rest as started */
  config: Config;
  settings: PolicySettings;

  constructor(runtime: RuntimeConfig, private readonly log: Logger) {
    this.config = runtime.source;
    this.settings = runtime.policy;
  }

  /** Applies the reloadable keys of `next` and returns what changed. */
  reload(next: Config, enforcer: Pick<Enforcer, 'liftNetworks'>): ReloadPlan {
    const r = reloadConfig(this.config, next);
    const networksOff = this.settings.aggregate.enabled && !r.settings.aggregate.enabled;
    this.config = r.config;
    this.settings = r.settings;
    // aggregates turned off: no network block may outlive them (docs/defence.md)
    if (networksOff) void enforcer.liftNetworks().catch((err: Error) => this.log.error({ err: err.message }, 'lifting network blocks failed'));
    this.log.level = this.config.log.level;
    return r.plan;
  }
}
