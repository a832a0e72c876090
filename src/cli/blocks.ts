// `ampguard blocks list|add IP|del IP --config FILE`. While ampguard runs, this
// goes through its /api/blocks (so userspace table and kernel set change
// together); when nothing listens, straight to the kernel set of block.mode.
// Changes prove the operator's token (metrics.token_file) without sending it,
// and only to a server that proved it first (docs/security.md).
import { CliError, runtimeFromFile } from './common.js';
import { parseBlockTargetText } from '../operator/control.js';
import { readToken, cliTokenPath } from '../operator/token.js';
import { callApi, provenRequest, PortRefused, type ApiAnswer } from '../operator/control-client.js';
import { createExec } from '../enforce/exec.js';
import { kernelSettings } from '../kernel/settings.js';
import { kernelSink } from '../enforce/choose.js';
import { prefixKey } from '../policy/prefix.js';
import { formatHostPort } from '../config/address.js';

function printList(body: Record<string, unknown>, json = false): void {
  if (json) return void process.stdout.write(JSON.stringify(body) + '\n');
  const blocks = (body.blocks ?? []) as { prefix: string; expires_in_s: number; where: string }[];
  const why = typeof body.degraded_reason === 'string' ? `: ${body.degraded_reason}` : '';
  process.stdout.write(`mode ${String(body.mode)}${body.degraded ? ` (degraded, blocking in userspace${why})` : ''}, ${String(body.total)} blocked\n`);
  for (const b of blocks) process.stdout.write(`${b.prefix}\texpires in ${b.expires_in_s}s\t${b.where}\n`);
}

interface BlockEventView {
  prefix: string;
  reason: string;
  level?: string;
  rung?: number;
  dry_run?: boolean;
  charged: number;
  at: number;
  expires_at: number;
}

/** The words of the log, ampguard_escalations_total and /api/blocks (enforce/enforcer.ts BlockReason), glossed. */
const REASONS: Record<string, string> = {
  no_followup: 'judged on the ladder: answered with TC, no TCP query came back',
  over_budget: 'over its large-reply budget (policy.ladder off)',
  manual: 'blocked by hand (ampguard blocks add, the API, or a fleet verdict)',
};
const LEVELS: Record<string, string> = {
  prefix: 'the client\'s budget prefix',
  aggregate: 'the aggregate network around it (policy.large_response.aggregate)',
  network: 'a network blocked by hand',
};

/**
 * `blocks show IP`: the block covering IP (its prefix at the configured length,
 * or a network) and what made it: the reason and level in the log's words, the
 * ladder's rung, when, the bytes charged, the expiry, and where it is enforced.
 */
function showBlock(ip: string, family: 4 | 6, body: Record<string, unknown>, prefixV4: number, prefixV6: number, json: boolean): number {
  const key = prefixKey(ip, family, prefixV4, prefixV6);
  const blocks = (body.blocks ?? []) as { prefix: string; expires_in_s: number; where: string }[];
  const block = blocks.find((b) => b.prefix === key) ?? blocks.find((b) => b.prefix.includes('/') && prefixCovers(b.prefix, ip, family));
  const events = (body.recent ?? []) as BlockEventView[];
  const event = block
    ? events.find((e) => e.prefix === block.prefix && !e.dry_run)
    : events.find((e) => e.dry_run && e.expires_at > Date.now() && (e.prefix === key || (e.prefix.includes('/') && prefixCovers(e.prefix, ip, family))));
  const facts = event
    ? { reason: event.reason, level: event.level ?? 'prefix', rung: event.rung ?? 3, bytes: event.charged, at: new Date(event.at).toISOString(), ...(event.dry_run ? { dry_run: true } : {}) }
    : {};
  if (json) {
    process.stdout.write(JSON.stringify({ address: ip, blocked: block !== undefined, ...(block ?? {}), ...facts }) + '\n');
    return block ? 0 : 1;
  }
  if (!block) {
    const dry = event ? `; block.mode off: it would have been blocked as ${event.prefix} (${event.reason}, ${event.level ?? 'prefix'}) at ${new Date(event.at).toISOString()}` : '';
    process.stdout.write(`${ip} is not blocked (prefix ${key})${dry}\n`);
    return 1;
  }
  const lines = [`${ip}: blocked as ${block.prefix}`];
  if (event) {
    const level = event.level ?? 'prefix';
    lines.push(
      `  reason:  ${event.reason}${REASONS[event.reason] ? ` (${REASONS[event.reason]})` : ''}`,
      `  level:   ${level}${LEVELS[level] ? ` (${LEVELS[level]})` : ''}`,
      `  rung:    ${event.rung ?? 3} (blocked)`,
      `  when:    ${new Date(event.at).toISOString()}`,
      `  bytes:   ${event.charged} large-reply bytes charged when it tripped`,
    );
  } else {
    lines.push('  reason:  unknown: not among the latest 100 block events (loaded from the kernel set at start, or older)');
  }
  lines.push(
    `  expires: in ${block.expires_in_s} s`,
    `  where:   ${block.where === 'userspace' ? 'userspace (ampguard drops its queries)' : `kernel (${block.where} set: dropped before ampguard)`}`,
  );
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

function prefixCovers(net: string, ip: string, family: 4 | 6): boolean {
  const bits = Number(net.split('/')[1]);
  return !net.includes(':') === (family === 4) && prefixKey(ip, family, bits, bits) === net;
}

export async function blocksCommand(path: string, args: string[], opts: { json?: boolean } = {}): Promise<number> {
  try {
    return await blocks(path, args, opts);
  } catch (err) {
    if (err instanceof PortRefused) throw new CliError('E_UNREACHABLE', err.message);
    throw err;
  }
}

async function blocks(path: string, args: string[], opts: { json?: boolean }): Promise<number> {
  const rt = runtimeFromFile(path);
  const [action, text] = args;
  if (action !== 'list' && action !== 'add' && action !== 'del' && action !== 'show') throw new CliError('E_USAGE', 'blocks: list | show IP | add IP|NET/LEN | del IP|NET/LEN', 2);
  if (action === 'show') {
    const parsed = parseBlockTargetText(text ?? '');
    if (!parsed.ok || parsed.bits !== undefined) throw new CliError('E_USAGE', `blocks show: ${parsed.ok ? 'takes an address' : parsed.error}`, 2);
    const k = kernelSettings(rt);
    const answer = await callApi(rt.metricsListen, 'GET', '/api/blocks');
    if (answer?.status === 200) return showBlock(parsed.address, parsed.family, answer.body, k.prefixV4, k.prefixV6, opts.json ?? false);
    throw new CliError('E_UNREACHABLE', `ampguard is not running at ${formatHostPort(rt.metricsListen)}: \`blocks list\` reads the kernel set without it`);
  }
  const parsed = action === 'list' ? null : parseBlockTargetText(text ?? '');
  if (parsed && !parsed.ok) throw new CliError('E_USAGE', `blocks ${action}: ${parsed.error}`, 2);
  const ip = parsed?.ok ? parsed.address : undefined;
  const family = parsed?.ok ? parsed.family : 0;
  const bits = parsed?.ok ? parsed.bits : undefined;

  const method = action === 'list' ? 'GET' : action === 'add' ? 'POST' : 'DELETE';
  const tokenFile = cliTokenPath(path, rt.source.metrics.token_file);
  const where = formatHostPort(rt.metricsListen);
  const target = action === 'list' ? '/api/blocks' : `/api/blocks?address=${encodeURIComponent(bits === undefined ? (ip as string) : `${ip as string}/${bits}`)}`;
  let answer: ApiAnswer | null;
  if (action === 'list') {
    answer = await callApi(rt.metricsListen, method, target);
  } else {
    let token: string | null = null;
    let tokenError = '';
    try {
      token = readToken(tokenFile);
    } catch (err) {
      tokenError = (err as Error).message;
    }
    if (token === null) {
      // without the token nothing is sent but a request for a nonce: is anyone there?
      const probe = await callApi(rt.metricsListen, 'GET', '/healthz');
      if (probe !== null) throw new CliError('E_AUTH', `cannot prove the token to ampguard at ${where}: cannot read the token file ${tokenFile}: ${tokenError}`);
      answer = null;
    } else {
      const outcome = await provenRequest(rt.metricsListen, token, method, target);
      if (outcome.kind === 'unproven') {
        throw new CliError(
          'E_AUTH',
          `what listens at ${where} could not prove it holds the token in ${tokenFile} (${outcome.detail}): not ampguard, or ampguard with another token file; nothing was sent and nothing changed`,
        );
      }
      if (outcome.kind === 'refused') throw new CliError('E_AUTH', `ampguard at ${where} said ${outcome.answer.status}: ${String(outcome.answer.body.error)}`);
      answer = outcome.kind === 'answer' ? outcome.answer : null;
    }
  }
  if (answer) {
    if (answer.status === 401) throw new CliError('E_AUTH', `ampguard at ${where} refused the proof of the token in ${tokenFile}: ${String(answer.body.error)}`);
    if (answer.status === 400 && answer.body.code === 'E_REFUSED') throw new CliError('E_REFUSED', String(answer.body.error));
    if (answer.status !== 200) throw new CliError('E_UNREACHABLE', `ampguard at ${where} said ${answer.status}: ${String(answer.body.error)}`);
    if (action === 'list') printList(answer.body, opts.json);
    else {
      const networks = Array.isArray(answer.body.networks) ? (answer.body.networks as unknown[]).map(String) : [];
      const also = networks.length > 0 ? ` and the network${networks.length > 1 ? 's' : ''} ${networks.join(', ')} that held it` : '';
      process.stdout.write(`${action === 'add' ? 'blocked' : 'unblocked'} ${String(answer.body.blocked ?? answer.body.unblocked)}${also}\n`);
    }
    return 0;
  }

  const mode = rt.source.block.mode;
  if (mode === 'userspace' || mode === 'off') {
    throw new CliError('E_UNREACHABLE', `ampguard is not running at ${formatHostPort(rt.metricsListen)} and block.mode ${mode} keeps no kernel set`);
  }
  const k = kernelSettings(rt);
  const sink = kernelSink(mode === 'auto' ? 'ipset' : mode, k, createExec());
  if (action === 'list') {
    const entries = await sink.list();
    // the per-prefix sets and the aggregate networks' sets (docs/defence.md): networks are listed as net/len
    if (!entries) throw new CliError('E_KERNEL', `cannot read the ${sink.mode} sets ${[k.set, k.set6, k.setNet, k.setNet6].join(', ')}`);
    printList({ mode: `${sink.mode} (kernel set; ampguard not running)`, total: entries.length, blocks: entries.map((e) => ({ prefix: e.prefix, expires_in_s: e.timeoutSec, where: sink.mode })) }, opts.json);
    return 0;
  }
  const fam = family as 4 | 6;
  // a network is keyed at its own length, in the network sets (docs/defence.md)
  const prefix = bits === undefined ? prefixKey(ip as string, fam, k.prefixV4, k.prefixV6) : prefixKey(ip as string, fam, bits, bits);
  const started = await sink.start();
  if (!started.ok) throw new CliError('E_KERNEL', started.error ?? 'kernel set unavailable');
  const r = action === 'add'
    ? await sink.add([{ prefix, family: fam, timeoutSec: k.timeoutSec, ...(bits === undefined ? {} : { network: true }) }])
    : await sink.remove({ prefix, family: fam, ...(bits === undefined ? {} : { network: true }) });
  if (!r.ok) throw new CliError('E_KERNEL', r.error ?? 'kernel command failed');
  process.stdout.write(`${action === 'add' ? 'blocked' : 'unblocked'} ${prefix} (kernel set; ampguard not running)\n`);
  return 0;
}
