// The Prometheus rules and the Grafana dashboard's expressions, as data.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export const RULES_FILE = 'deploy/prometheus/ampguard.rules.yml';

export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  annotations?: { runbook?: string };
}

export const rules: Rule[] = (parse(readFileSync(RULES_FILE, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

const dashboard = JSON.parse(readFileSync('deploy/grafana/ampguard.json', 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
export const panelExprs: string[] = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
