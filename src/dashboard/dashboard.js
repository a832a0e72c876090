// ampguard's live dashboard: polls /api/stats, /api/top and /api/blocks every
// POLL_MS, turns successive counter snapshots into rates, and draws them with
// uPlot (served from the same process: no CDN, the machines are offline).
// Each panel's element gets data-state="ready" once it shows data.
/* global uPlot */
(() => {
  'use strict';
  const POLL_MS = 2000;
  const KEEP = 150; // points: five minutes at POLL_MS
  const COLORS = ['#1f6feb', '#d9480f', '#2f9e44', '#ae3ec9', '#e8590c', '#0c8599'];

  const panel = (name) => document.querySelector(`[data-panel="${name}"]`);
  const ready = (name) => panel(name).setAttribute('data-state', 'ready');

  /** one chart: a time axis and named series, fed one point per poll */
  function chart(name, seriesNames, opts = {}) {
    const el = panel(name).querySelector('.chart');
    const data = [[], ...seriesNames.map(() => [])];
    const plot = new uPlot(
      {
        width: Math.max(300, el.clientWidth || 420),
        height: 170,
        series: [{}, ...seriesNames.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 1.5, ...(opts.series?.[i] ?? {}) }))],
        axes: [{}, { size: 60 }],
        scales: { x: { time: true }, y: opts.y ?? {} },
        legend: { live: false },
      },
      data,
      el,
    );
    return {
      push(t, values) {
        data[0].push(t);
        values.forEach((v, i) => data[i + 1].push(Number.isFinite(v) ? v : null));
        if (data[0].length > KEEP) for (const col of data) col.shift();
        plot.setData(data);
        if (data[0].length >= 2) ready(name);
      },
    };
  }

  const charts = {
    queries: chart('queries', ['udp', 'tcp']),
    truncated: chart('truncated', ['any', 'size', 'budget (rung 2)']),
    ladder: chart('ladder', ['prefixes on rung 2', 'networks on rung 2', 'TCP follow-ups/s', 'escalations/s']),
    large: chart('large', ['large replies']),
    amplification: chart('amplification', ['factor']),
    blocks: chart('blocks', ['blocks/s', 'blocked clients']),
    tracked: chart('tracked', ['tracked', 'max_tracked'], { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } }),
    backends: null, // created once the backend names are known
  };

  const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–');
  const sum = (o) => Object.values(o ?? {}).reduce((a, b) => a + b, 0);
  const rate = (a, b, dt) => (a === undefined || b === undefined ? NaN : Math.max(0, (b - a) / dt));
  const cell = (text, cls) => {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  };
  const fillTable = (name, rows) => {
    const body = panel(name).querySelector(':scope > table tbody');
    body.replaceChildren(
      ...(rows.length ? rows : [[cell('none yet')]]).map((cells) => {
        const tr = document.createElement('tr');
        tr.append(...cells);
        return tr;
      }),
    );
  };

  let last = null;

  function onStats(s) {
    const t = s.time / 1000;
    if (last) {
      const dt = (s.time - last.time) / 1000;
      if (dt <= 0) return;
      charts.queries.push(t, [rate(last.queries.udp, s.queries.udp, dt), rate(last.queries.tcp, s.queries.tcp, dt)]);
      charts.truncated.push(t, [rate(last.truncated.any, s.truncated.any, dt), rate(last.truncated.size, s.truncated.size, dt), rate(last.truncated.budget, s.truncated.budget, dt)]);
      charts.ladder.push(t, [
        s.ladder_prefixes?.prefix ?? 0,
        s.ladder_prefixes?.aggregate ?? 0,
        rate(last.tcp_followups, s.tcp_followups, dt),
        rate(sum(last.escalations), sum(s.escalations), dt),
      ]);
      // the collateral: clients that showed they are real (TCP, small answers) and are on TC or blocked now
      const co = s.collateral_clients ?? {};
      panel('ladder').querySelector('.note').textContent = `collateral: real clients blocked ${fmt(co.blocked ?? 0)}, on TC ${fmt(co.tc ?? 0)}`;
      charts.large.push(t, [rate(last.large_responses, s.large_responses, dt)]);
      const qIn = (s.query_bytes.udp ?? 0) - (last.query_bytes.udp ?? 0);
      const rOut = (s.response_bytes.udp ?? 0) - (last.response_bytes.udp ?? 0);
      charts.amplification.push(t, [qIn > 0 ? rOut / qIn : NaN]);
      charts.blocks.push(t, [rate(sum(last.blocks), sum(s.blocks), dt), s.blocked_clients]);
      charts.tracked.push(t, [s.tracked_prefixes, s.max_tracked]);
      panel('tracked').querySelector('.note').textContent = `${fmt(s.tracked_prefixes)} of ${fmt(s.max_tracked)} (${fmt((100 * s.tracked_prefixes) / Math.max(1, s.max_tracked), 1)}%)`;
      if (!charts.backends) charts.backends = chart('backends', s.backends.map((b) => `${b.name} ms`));
      const latencies = s.backends.map((b) => {
        const prev = last.backends.find((x) => x.name === b.name);
        const n = prev ? b.latency_count - prev.latency_count : 0;
        return n > 0 ? (1000 * (b.latency_sum - prev.latency_sum)) / n : NaN;
      });
      charts.backends.push(t, latencies);
      fillTable('backends', s.backends.map((b, i) => [cell(b.name), cell(b.up ? 'up' : 'DOWN', b.up ? 'up' : 'down'), cell(`${fmt(latencies[i], 2)} ms`, 'num')]));
    }
    last = s;
  }

  function onTop(top) {
    const rungs = { 1: 'under budget', 2: 'TC (rung 2)', 3: 'blocked' };
    fillTable('top', top.top.map((x) => [cell(x.prefix), cell(fmt(x.bytes), 'num'), cell(fmt(x.bytes / top.window_s), 'num'), cell(rungs[x.rung] ?? '–', x.rung === 3 ? 'down' : '')]));
    ready('top');
  }

  function onBlocks(b) {
    const now = Date.now();
    fillTable('recent', b.recent.slice(0, 20).map((e) => [
      cell(new Date(e.at).toLocaleTimeString()),
      cell(e.prefix),
      cell(e.address),
      // the words of the log, the metrics and `ampguard blocks show` (no_followup, over_budget, manual), level beside them
      cell(`${e.dry_run ? 'would block (mode off): ' : ''}${e.reason}, ${e.level}`),
      cell(fmt(e.charged), 'num'),
      cell(e.expires_at > now ? `in ${fmt((e.expires_at - now) / 1000)} s` : 'expired'),
    ]));
    ready('recent');
  }

  async function poll() {
    const status = document.getElementById('status');
    try {
      const get = async (path) => {
        const res = await fetch(path, { cache: 'no-store' });
        if (!res.ok) throw new Error(`${path}: ${res.status}`);
        return res.json();
      };
      const [stats, top, blocks] = await Promise.all([get('/api/stats'), get('/api/top?n=15'), get('/api/blocks?limit=0')]);
      onStats(stats);
      onTop(top);
      onBlocks(blocks);
      // fleet.nats (docs/fleet.md): the peers this node hears, or that it judges alone while NATS is away
      const fleet = stats.fleet ? ` · fleet: ${stats.fleet.connected ? `${stats.fleet.peers} peer${stats.fleet.peers === 1 ? '' : 's'}` : 'NATS unreachable, judging alone'}` : '';
      status.textContent = `block mode ${blocks.mode}${blocks.degraded ? ' (DEGRADED: userspace only)' : ''} · ${fmt(blocks.total)} blocked${fleet} · updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      status.textContent = `cannot reach ampguard: ${err.message}`;
    }
    setTimeout(poll, POLL_MS);
  }

  poll();
})();
