// What a replay found, as one JSON-ready object and as a table for the
// terminal: totals and amplification before and after the policy, what each
// rule did, the prefixes ranked by bytes, and every block with whether the
// blocked prefix ever sent TCP in the capture (a likely false positive: a
// spoofed victim never completes a handshake). docs/replay.md describes it.
import type { CaptureTotals } from './loop.js';
import type { RunResult } from './runner.js';
import { collateral, type Collateral } from './collateral.js';

interface ReportBlock {
  at: string;
  /** seconds since the capture's first packet */
  t: number;
  prefix: string;
  address: string;
  level: string;
  reason: string;
  charged: number;
  mode: 'blocked' | 'would_block';
  /** TCP messages from the prefix (or network) in the whole capture */
  tcp_queries: number;
  /** any TCP segment at all from it (a handshake is something a spoofer cannot do) */
  sent_tcp: boolean;
  likely_false_positive: boolean;
}

/** the victim's side (reflection.ts): answers without their query, by reflector and target */
interface ReflectionReport {
  /** most UDP answers came without their query: the capture was taken where a reflection attack's answers land */
  detected: boolean;
  answers_without_query: number;
  bytes: number;
  /** of all UDP answers in the capture */
  share: number;
  reflectors: number;
  targets: number;
  /** what the policy would have let all the reflectors send, had each run it */
  allowed_bytes: number;
  /** answers not run through the policy: past the reflectors simulated, or a question that does not walk */
  not_simulated: number;
  by_reflector: {
    reflector: string; answers: number; bytes: number; first: string; last: string; bytes_per_s: number; targets: number;
    allowed_answers: number | null; allowed_bytes: number | null; truncated: number | null; dropped: number | null;
    /** when the policy would have blocked the target at this reflector (seconds since the first packet), or null */
    blocked_t: number | null;
  }[];
  by_target: { target: string; answers: number; bytes: number; bytes_per_s: number; reflectors: number }[];
}

export interface Report {
  captures: string[];
  /** files that broke off (truncated, corrupt): the report covers what came before each offset */
  capture_errors: { file: string; offset: number; message: string }[];
  /** a fault of the replay's own on a frame (a bug), or null */
  internal_error: string | null;
  mode: 'enforce' | 'off (dry run)';
  span: { start: string | null; end: string | null; seconds: number };
  packets: {
    total: number; skipped: Record<string, number>; cut_by_snaplen: number; out_of_order: number;
    tcp_gap_bytes: number; tcp_resync_bytes: number; tcp_mid_stream: number;
    fragments: Record<string, number>;
  };
  totals: {
    queries: { udp: number; tcp: number };
    responses: { udp_captured: number; udp_after: number; tcp: number };
    tcp_bytes_out: number;
    bytes_in: number;
    bytes_out_before: number;
    bytes_out_after: number;
    bytes_suppressed: number;
    amplification_before: number;
    amplification_after: number;
    unpaired_responses: number;
    unanswered_queries: number;
    pairing_overflow: number;
  };
  rules: {
    truncated: { any: number; size: number; budget: number };
    would_truncate: number;
    large_replies: number;
    dropped: Record<string, number>;
    notimp: number;
    tcp_followups: number;
    escalations: Record<string, number>;
    rung_changes: { up: { prefix: number; aggregate: number }; down: { prefix: number; aggregate: number } };
    on_rung_2: { prefix: number; aggregate: number };
    refused: Record<string, number>;
  };
  blocks: ReportBlock[];
  blocks_not_listed: number;
  likely_false_positives: number;
  rung_events: { at: string; t: number; key: string; level: string; rung: number }[];
  top: { prefix: string; queries: number; bytes_in: number; bytes_before: number; bytes_after: number; tcp: number; rung: number }[];
  /** the real clients that would have lost answers, and what the attacker got (collateral.ts) */
  collateral: Collateral;
  reflection: ReflectionReport;
}

const ratio = (a: number, b: number): number => (b > 0 ? Math.round((a / b) * 100) / 100 : 0);
/** the capture reader keeps timestamps within a Date's range; anything else is shown as the number it is */
const iso = (ms: number): string => (Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms));
const per = (bytes: number, first: number, last: number): number => Math.round(bytes / Math.max(1, (last - first) / 1000));

function reflectionReport(totals: CaptureTotals, run: RunResult, start: number, topN: number): ReflectionReport {
  const t = totals.reflection;
  const byBytes = <T extends { bytes: number }>(a: [string, T], b: [string, T]): number => b[1].bytes - a[1].bytes;
  let allowed = 0;
  for (const o of run.reflectors.values()) allowed += o.allowedBytes;
  return {
    detected: t.answers > 0 && t.answers * 2 > totals.udpReplies,
    answers_without_query: t.answers,
    bytes: t.bytes,
    share: ratio(t.answers, totals.udpReplies),
    reflectors: t.reflectors.size,
    targets: t.targets.size,
    allowed_bytes: allowed,
    not_simulated: run.reflectorsNotSimulated,
    by_reflector: [...t.reflectors].sort(byBytes).slice(0, topN).map(([reflector, s]) => {
      const o = run.reflectors.get(reflector);
      return {
        reflector, answers: s.answers, bytes: s.bytes, first: iso(s.first), last: iso(s.last), bytes_per_s: per(s.bytes, s.first, s.last), targets: s.peers.size,
        allowed_answers: o?.allowedAnswers ?? null, allowed_bytes: o?.allowedBytes ?? null, truncated: o?.truncated ?? null, dropped: o?.dropped ?? null,
        blocked_t: o?.blockedAt != null ? Math.round((o.blockedAt - start) / 10) / 100 : null,
      };
    }),
    by_target: [...t.targets].sort(byBytes).slice(0, topN).map(([target, s]) => ({
      target, answers: s.answers, bytes: s.bytes, bytes_per_s: per(s.bytes, s.first, s.last), reflectors: s.peers.size,
    })),
  };
}

/** The TCP seen from a blocked key: its own messages, or (for a network) any of its addresses'. */
function tcpOf(run: RunResult, prefix: string, level: string): { n: number; seen: boolean } {
  if (level === 'aggregate') {
    const n = run.aggregateTcp.get(prefix);
    return { n: n ?? 0, seen: n !== undefined };
  }
  return { n: run.prefixes.get(prefix)?.tcp ?? 0, seen: run.tcpSenders.has(prefix) };
}

export function buildReport(totals: CaptureTotals, run: RunResult, topN = 20): Report {
  const c = run.counters;
  const start = totals.packets > 0 ? totals.firstTs : 0;
  const blocks = run.blocks.map((b): ReportBlock => {
    const tcp = tcpOf(run, b.prefix, b.level);
    return {
      at: iso(b.at), t: Math.round((b.at - start) / 10) / 100, prefix: b.prefix, address: b.address, level: b.level,
      reason: b.cause, charged: b.charged, mode: b.mode, tcp_queries: tcp.n, sent_tcp: tcp.seen || tcp.n > 0,
      likely_false_positive: tcp.seen || tcp.n > 0,
    };
  });
  const top = [...run.prefixes]
    .sort((a, b) => b[1].bytesBefore - a[1].bytesBefore || b[1].queries - a[1].queries)
    .slice(0, topN)
    .map(([prefix, p]) => ({ prefix, queries: p.queries, bytes_in: p.bytesIn, bytes_before: p.bytesBefore, bytes_after: p.bytesAfter, tcp: p.tcp, rung: p.rung }));
  return {
    captures: totals.files,
    capture_errors: totals.captureErrors,
    internal_error: totals.internalError,
    mode: run.dryRun ? 'off (dry run)' : 'enforce',
    span: {
      start: totals.packets > 0 ? iso(totals.firstTs) : null,
      end: totals.packets > 0 ? iso(totals.lastTs) : null,
      seconds: Math.round(totals.lastTs - totals.firstTs) / 1000,
    },
    packets: {
      total: totals.packets, skipped: { ...totals.skipped }, cut_by_snaplen: totals.cutBySnaplen, out_of_order: totals.outOfOrder,
      tcp_gap_bytes: totals.tcpGapBytes, tcp_resync_bytes: totals.tcpResyncBytes, tcp_mid_stream: totals.tcpMidStream,
      fragments: { ...totals.reassembly },
    },
    totals: {
      queries: { udp: totals.udpQueries, tcp: totals.tcpQueries },
      responses: { udp_captured: totals.udpReplies, udp_after: run.repliesAfter, tcp: totals.tcpReplies },
      tcp_bytes_out: totals.tcpReplyBytes,
      bytes_in: totals.udpQueryBytes,
      bytes_out_before: totals.udpReplyBytes,
      bytes_out_after: run.bytesAfter,
      bytes_suppressed: Math.max(0, totals.udpReplyBytes - run.bytesAfter),
      amplification_before: ratio(totals.udpReplyBytes, totals.udpQueryBytes),
      amplification_after: ratio(run.bytesAfter, totals.udpQueryBytes),
      unpaired_responses: run.unpairedResponses,
      unanswered_queries: run.unansweredQueries,
      pairing_overflow: run.pairingOverflow,
    },
    rules: {
      truncated: { ...c.truncated },
      would_truncate: c.wouldTruncate,
      large_replies: c.largeResponses,
      dropped: { blocked: c.dropped.blocked, rate: c.dropped.rate, malformed: c.dropped.malformed, bad_source: c.dropped.bad_source },
      notimp: c.localAnswers.notimp,
      tcp_followups: c.tcpFollowUps,
      escalations: { ...c.escalations },
      rung_changes: { up: { ...run.rungUps }, down: { ...run.rungDowns } },
      on_rung_2: { ...run.onRung2 },
      refused: { ...run.refused },
    },
    blocks,
    blocks_not_listed: run.blocksNotListed,
    likely_false_positives: blocks.filter((b) => b.likely_false_positive).length,
    rung_events: run.rungEvents.map((e) => ({ at: iso(e.at), t: Math.round((e.at - start) / 10) / 100, key: e.key, level: e.level, rung: e.rung })),
    top,
    collateral: collateral(run.prefixes, topN),
    reflection: reflectionReport(totals, run, start, topN),
  };
}

function table(head: string[], rows: (string | number)[][]): string[] {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ').trimEnd());
}

const num = (n: number): string => n.toLocaleString('en-US');

export function formatReport(r: Report): string {
  const t = r.totals;
  const out: string[] = [];
  out.push(`ampguard replay: ${r.captures.join(', ')}`);
  out.push(`capture ${r.span.start ?? '-'} .. ${r.span.end ?? '-'} (${r.span.seconds} s), policy mode: ${r.mode}`);
  const skipped = Object.entries(r.packets.skipped).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${num(n)}`).join(', ');
  out.push(`packets ${num(r.packets.total)}; skipped: ${skipped || 'none'}${r.packets.cut_by_snaplen ? `; ${num(r.packets.cut_by_snaplen)} replies cut by snaplen (wire length used)` : ''}`);
  const fr = r.packets.fragments;
  if ((fr.fragments ?? 0) > 0) {
    const lost = ['duplicate', 'overlap', 'timeout', 'evicted', 'invalid', 'incomplete'].filter((k) => (fr[k] ?? 0) > 0).map((k) => `${k} ${num(fr[k]!)}`).join(', ');
    out.push(`IP fragments ${num(fr.fragments!)}: ${num(fr.reassembled!)} datagrams reassembled${lost ? `; ${lost}` : ''}`);
  }
  if (r.packets.tcp_mid_stream > 0 || r.packets.tcp_resync_bytes > 0 || r.packets.tcp_gap_bytes > 0) {
    out.push(`TCP: ${num(r.packets.tcp_mid_stream)} streams picked up mid-way, ${num(r.packets.tcp_resync_bytes)} bytes passed over to find a message, ${num(r.packets.tcp_gap_bytes)} bytes missing from the capture`);
  }
  out.push('');
  out.push(...table(['totals', 'value'], [
    ['UDP queries', num(t.queries.udp)],
    ['TCP queries', num(t.queries.tcp)],
    ['UDP replies (captured / after policy)', `${num(t.responses.udp_captured)} / ${num(t.responses.udp_after)}`],
    ['TCP answers (bytes)', `${num(t.responses.tcp)} (${num(t.tcp_bytes_out)})`],
    ['bytes in (UDP queries)', num(t.bytes_in)],
    ['bytes out before policy', num(t.bytes_out_before)],
    ['bytes out after policy', num(t.bytes_out_after)],
    ['bytes suppressed', num(t.bytes_suppressed)],
    ['amplification before / after', `${t.amplification_before} / ${t.amplification_after}`],
    ['replies without their query', num(t.unpaired_responses)],
    ['queries never answered', num(t.unanswered_queries)],
  ]));
  out.push('');
  const ru = r.rules;
  out.push(...table(['rule', 'count'], [
    ['TC any-to-tcp', num(ru.truncated.any)],
    ['TC size-to-tcp', num(ru.truncated.size)],
    ['TC budget (ladder rung 2)', num(ru.truncated.budget)],
    ...(r.mode === 'enforce' ? [] : [['TC budget, not sent (dry run)', num(ru.would_truncate)]]),
    ['large replies sent', num(ru.large_replies)],
    ['TCP follow-ups counted', num(ru.tcp_followups)],
    ['rung 1 -> 2 (prefix / aggregate)', `${num(ru.rung_changes.up.prefix)} / ${num(ru.rung_changes.up.aggregate)}`],
    ['rung 2 -> 1 (prefix / aggregate)', `${num(ru.rung_changes.down.prefix)} / ${num(ru.rung_changes.down.aggregate)}`],
    ['keys on rung 2 (prefix / aggregate)', `${num(ru.on_rung_2.prefix)} / ${num(ru.on_rung_2.aggregate)}`],
    ['escalations (rung 3)', Object.entries(ru.escalations).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || '0'],
    ['queries dropped: blocked', num(ru.dropped.blocked ?? 0)],
    ['replies dropped: tripped a block', num(ru.dropped.rate ?? 0)],
    ['blocks refused (allowlist / invalid / full)', `${ru.refused.allowlist} / ${ru.refused.invalid} / ${ru.refused.full}`],
  ]));
  out.push('');
  if (r.blocks.length === 0) {
    out.push('blocks: none');
  } else {
    out.push(`blocks (${r.blocks.length}${r.blocks_not_listed ? `, and ${r.blocks_not_listed} not listed` : ''}; ${r.likely_false_positives} likely false positives):`);
    out.push(...table(['prefix', 't (s)', 'time', 'level', 'reason', 'mode', 'TCP msgs', 'note'], r.blocks.map((b) => [
      b.prefix, b.t.toFixed(2), b.at, b.level, b.reason, b.mode, b.tcp_queries,
      b.likely_false_positive ? 'LIKELY FALSE POSITIVE: it sent TCP' : '',
    ])));
  }
  out.push('');
  out.push(`top prefixes by reply bytes:`);
  out.push(...table(['prefix', 'queries', 'bytes in', 'bytes before', 'bytes after', 'TCP', 'rung'], r.top.map((p) => [
    p.prefix, num(p.queries), num(p.bytes_in), num(p.bytes_before), num(p.bytes_after), num(p.tcp), p.rung,
  ])));
  const co = r.collateral;
  out.push('');
  out.push(`collateral: ${num(co.clients_hurt)} of ${num(co.real_clients)} real clients (TCP or small answers) would have lost ${num(co.queries_lost)} answers;`
    + ` the attacker's ${num(co.attacker.prefixes)} prefixes: ${num(co.attacker.bytes_delivered)} bytes delivered for ${num(co.attacker.bytes_sent)} sent (${co.attacker.amplification}x)`);
  if (co.hurt.length > 0) {
    out.push(...table(['client prefix', 'queries', 'answers lost', 'TCP', 'small answers', 'rung'], co.hurt.map((c) => [
      c.prefix, num(c.queries), num(c.lost), num(c.tcp), num(c.small_answers), c.rung,
    ])));
  }
  const v = r.reflection;
  if (v.detected) {
    out.push('');
    out.push(`THE VICTIM'S SIDE: ${Math.round(v.share * 100)}% of the UDP answers (${num(v.answers_without_query)}, ${num(v.bytes)} bytes) came without their query:`);
    out.push('the capture was taken where a reflection attack lands; the totals above describe a resolver and do not apply.');
    out.push(`${num(v.reflectors)} reflectors, ${num(v.targets)} targets. Had each reflector run this policy, it would have sent ${num(v.allowed_bytes)} of the ${num(v.bytes)} bytes.`);
    out.push(...table(['reflector', 'answers', 'bytes', 'bytes/s', 'targets', 'first', 'policy: would send', 'TC', 'dropped', 'blocked at (s)'], v.by_reflector.map((x) => [
      x.reflector, num(x.answers), num(x.bytes), num(x.bytes_per_s), num(x.targets), x.first,
      x.allowed_bytes === null ? 'not simulated' : num(x.allowed_bytes), x.truncated ?? '-', x.dropped ?? '-', x.blocked_t === null ? '-' : x.blocked_t.toFixed(2),
    ])));
    out.push('');
    out.push(...table(['target', 'answers', 'bytes', 'bytes/s', 'reflectors'], v.by_target.map((x) => [x.target, num(x.answers), num(x.bytes), num(x.bytes_per_s), num(x.reflectors)])));
  }
  for (const e of r.capture_errors) out.push(`\nWARNING: ${e.message}: the capture breaks off there; this report covers what came before it`);
  if (r.internal_error !== null) out.push(`\nWARNING: internal error, frames skipped: ${r.internal_error}`);
  return out.join('\n') + '\n';
}
