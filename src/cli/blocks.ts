// `ampguard blocks list|add IP|del IP --config FILE`. While ampguard runs, this
// goes through its /api/blocks (so userspace table and kernel set change
// together); when it does not run, straight to the kernel set of block.mode.
// Changes send the operator's token (metrics.token_file, docs/security.md).
import http from 'node:http';
import { CliError, runtimeFromFile } from './common.js';
import { parseBlockTargetText } from '../operator/control.js';
import { readToken, tokenPath } from '../operator/token.js';
import { createExec } from '../enforce/exec.js';
import { kernelSettings } from '../kernel/settings.js';
import { kernelSink } from '../enforce/choose.js';
import { prefixKey } from '../policy/prefix.js';
import type { RuntimeConfig } from '../config/compile.js';
import { formatHostPort } from '../config/address.js';

interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
}

function callApi(rt: RuntimeConfig, method: string, query: string, token: string | null): Promise<ApiAnswer | null> {
  const { host, port } = rt.metricsListen;
  const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
  return new Promise((resolve) => {
    const req = http.request({ host, port, method, path: `/api/blocks${query}`, headers, timeout: 3000 }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
        } catch {
          resolve(null);
        }
      });
    });
    req.on('error', () => resolve(null));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

function printList(body: Record<string, unknown>): void {
  const blocks = (body.blocks ?? []) as { prefix: string; expiresInSec: number; where: string }[];
  process.stdout.write(`mode ${String(body.mode)}${body.degraded ? ' (degraded: userspace only)' : ''}, ${String(body.total)} blocked\n`);
  for (const b of blocks) process.stdout.write(`${b.prefix}\texpires in ${b.expiresInSec}s\t${b.where}\n`);
}

export async function blocksCommand(path: string, args: string[]): Promise<number> {
  const rt = runtimeFromFile(path);
  const [action, text] = args;
  if (action !== 'list' && action !== 'add' && action !== 'del') throw new CliError('E_USAGE', 'blocks: list | add IP|NET/LEN | del IP|NET/LEN', 2);
  const parsed = action === 'list' ? null : parseBlockTargetText(text ?? '');
  if (parsed && !parsed.ok) throw new CliError('E_USAGE', `blocks ${action}: ${parsed.error}`, 2);
  const ip = parsed?.ok ? parsed.address : undefined;
  const family = parsed?.ok ? parsed.family : 0;
  const bits = parsed?.ok ? parsed.bits : undefined;

  const method = action === 'list' ? 'GET' : action === 'add' ? 'POST' : 'DELETE';
  const tokenFile = tokenPath(path, rt.source.metrics.token_file);
  let token: string | null = null;
  let tokenError = '';
  if (action !== 'list') {
    try {
      token = readToken(tokenFile);
    } catch (err) {
      tokenError = (err as Error).message;
    }
  }
  const target = bits === undefined ? (ip as string) : `${ip as string}/${bits}`;
  const answer = await callApi(rt, method, action === 'list' ? '' : `?address=${encodeURIComponent(target)}`, token);
  if (answer) {
    if (answer.status === 401 || answer.status === 503) {
      const why = token === null ? `cannot read the token file ${tokenFile}: ${tokenError}` : `the token in ${tokenFile} was refused`;
      throw new CliError('E_AUTH', `ampguard at ${formatHostPort(rt.metricsListen)} said ${answer.status}: ${String(answer.body.error)} (${why})`);
    }
    if (answer.status !== 200) throw new CliError('E_UNREACHABLE', `ampguard at ${formatHostPort(rt.metricsListen)} said ${answer.status}: ${String(answer.body.error)}`);
    if (action === 'list') printList(answer.body);
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
    printList({ mode: `${sink.mode} (kernel set; ampguard not running)`, total: entries.length, blocks: entries.map((e) => ({ prefix: e.prefix, expiresInSec: e.timeoutSec, where: sink.mode })) });
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
