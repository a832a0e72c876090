// `ampguard top --config FILE [--once] [--interval S] [-n N]`: the top prefixes
// by large-reply bytes in the last minute, as the dashboard shows them, in the
// terminal, refreshed like top(1). Reads the running ampguard's /api/top.
import { CliError, runtimeFromFile } from './common.js';
import { formatHostPort, type HostPort } from '../config/address.js';
import { requestApi } from '../operator/control-client.js';

interface TopAnswer {
  window_s: number;
  top: { prefix: string; bytes: number }[];
}

async function get<T>(listen: HostPort, path: string): Promise<T> {
  const answer = await requestApi(listen, 'GET', path);
  if (answer.status !== 200) throw new Error(`GET ${path} answered ${answer.status}: ${String(answer.body.error)}`);
  return answer.body as T;
}

function formatTop(answer: TopAnswer, blocked: ReadonlySet<string>, now: Date): string {
  const lines = [`ampguard top — large-reply bytes per prefix, last ${answer.window_s} s — ${now.toISOString()}`, ''];
  lines.push(`${'#'.padStart(3)}  ${'prefix'.padEnd(42)} ${'bytes'.padStart(12)} ${'bytes/s'.padStart(10)}  blocked`);
  answer.top.forEach((t, i) => {
    lines.push(`${String(i + 1).padStart(3)}  ${t.prefix.padEnd(42)} ${String(t.bytes).padStart(12)} ${String(Math.round(t.bytes / answer.window_s)).padStart(10)}  ${blocked.has(t.prefix) ? 'yes' : ''}`);
  });
  if (answer.top.length === 0) lines.push('     (no large replies in the last minute)');
  return lines.join('\n') + '\n';
}

export async function topCommand(path: string, opts: { once: boolean; json?: boolean; intervalS: number; n: number }): Promise<number> {
  const listen = runtimeFromFile(path).metricsListen;
  const show = async (): Promise<string> => {
    try {
      const [top, blocks] = await Promise.all([
        get<TopAnswer>(listen, `/api/top?n=${opts.n}`),
        get<{ blocks: { prefix: string }[] }>(listen, '/api/blocks?limit=10000'),
      ]);
      const blocked = new Set(blocks.blocks.map((b) => b.prefix));
      if (opts.json) return JSON.stringify({ window_s: top.window_s, top: top.top.map((t) => ({ ...t, blocked: blocked.has(t.prefix) })) }) + '\n';
      return formatTop(top, blocked, new Date());
    } catch (err) {
      throw new CliError('E_UNREACHABLE', `cannot reach ampguard at ${formatHostPort(listen)}: ${(err as Error).message}`);
    }
  };
  if (opts.once) {
    process.stdout.write(await show());
    return 0;
  }
  for (;;) {
    const text = await show();
    process.stdout.write(`\x1b[H\x1b[2J${text}`);
    await new Promise((r) => setTimeout(r, opts.intervalS * 1000));
  }
}
