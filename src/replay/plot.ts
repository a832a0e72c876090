// The sweep as a picture (`--plot FILE`): a hand-written SVG, no plotting
// dependency. The first key's values run along the x axis (in the order
// given); the top panel shows prefixes blocked, keys on rung 2 and likely
// false positives, the bottom panel the bytes suppressed. With a second key,
// each of its values is its own line.
import type { SweepAxis, SweepLine } from './sweep.js';

const W = 760;
const PANEL_H = 220;
const LEFT = 70;
const RIGHT = 170;
const TOP = 40;
const GAP = 60;
const COLOURS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

interface Series {
  name: string;
  colour: string;
  dash?: string;
  points: number[];
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function panel(y0: number, title: string, xs: readonly string[], series: readonly Series[], fmt: (n: number) => string): string {
  const plotW = W - LEFT - RIGHT;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.points)));
  const x = (i: number): number => LEFT + (xs.length === 1 ? plotW / 2 : (i * plotW) / (xs.length - 1));
  const y = (v: number): number => y0 + PANEL_H - (v / max) * PANEL_H;
  const out: string[] = [`<text x="${LEFT}" y="${y0 - 10}" font-weight="bold">${esc(title)}</text>`];
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    out.push(`<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${LEFT - 6}" y="${y(v) + 4}" text-anchor="end">${esc(fmt(v))}</text>`);
  }
  xs.forEach((label, i) => out.push(`<text x="${x(i)}" y="${y0 + PANEL_H + 18}" text-anchor="middle">${esc(label)}</text>`));
  series.forEach((s, j) => {
    const pts = s.points.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    out.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} points="${pts}"/>`);
    s.points.forEach((v, i) => out.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${s.colour}"><title>${esc(`${s.name}: ${fmt(v)}`)}</title></circle>`));
    const ly = y0 + 12 + j * 18;
    out.push(`<line x1="${W - RIGHT + 12}" x2="${W - RIGHT + 32}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.colour}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(`<text x="${W - RIGHT + 38}" y="${ly}">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

export function sweepSvg(axes: readonly SweepAxis[], lines: readonly SweepLine[], title: string): string {
  const xAxis = axes[0]!;
  const xs = xAxis.texts;
  const groups = axes.length === 2 ? axes[1]!.texts : [''];
  const at = (g: string, xi: number): SweepLine | undefined =>
    lines.find((l) => l.values[xAxis.key] === xs[xi] && (axes.length < 2 || l.values[axes[1]!.key] === g));
  const counts: Series[] = [];
  const bytes: Series[] = [];
  groups.forEach((g, gi) => {
    const suffix = axes.length === 2 ? ` (${axes[1]!.key}=${g})` : '';
    const colour = COLOURS[gi % COLOURS.length]!;
    const pick = (f: (l: SweepLine) => number): number[] => xs.map((_, i) => {
      const l = at(g, i);
      return l ? f(l) : 0;
    });
    counts.push({ name: `blocked${suffix}`, colour, points: pick((l) => l.prefixes_blocked + l.networks_blocked) });
    if (axes.length === 1) {
      counts.push({ name: 'on rung 2', colour: COLOURS[1]!, dash: '6 3', points: pick((l) => l.on_rung_2.prefix + l.on_rung_2.aggregate) });
      counts.push({ name: 'likely false pos.', colour: COLOURS[2]!, dash: '2 3', points: pick((l) => l.likely_false_positives) });
    }
    bytes.push({ name: `suppressed${suffix}`, colour, points: pick((l) => l.bytes_suppressed) });
  });
  const H = TOP + 2 * PANEL_H + GAP + 50;
  const kb = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : String(Math.round(n)));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    panel(TOP + 20, `prefixes and networks, by ${xAxis.key}`, xs, counts, (n) => String(Math.round(n * 100) / 100)),
    panel(TOP + 20 + PANEL_H + GAP, `UDP reply bytes suppressed, by ${xAxis.key}`, xs, bytes, kb),
    `</svg>`,
    '',
  ].join('\n');
}
