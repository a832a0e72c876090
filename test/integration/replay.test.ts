// `ampguard replay` as a user runs it (the built CLI): the table, --json, a
// sweep with --plot, and the errors: a truncated capture names its byte
// offset and exits 1 (E_CAPTURE), never a stack trace; bad usage exits 2.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI } from '../helpers/ampguard.js';
import { ethernet, ipv4, pcap, udp } from '../fixtures/capture-writer.js';
import { query } from '../helpers/wire.js';
import { LINK_ETHERNET } from '../../src/replay/packet.js';

const dir = mkdtempSync(join(tmpdir(), 'ampguard-replay-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = join(dir, 'ampguard.yaml');
writeFileSync(config, stringify({ listen: { udp: ['127.0.0.1:5353'], tcp: ['127.0.0.1:5353'] }, block: { mode: 'userspace' } }));

/** a victim on port 5353 (the config's port): 900-byte replies, 20 a second for 6 s */
const capture = join(dir, 'victim.pcap');
{
  const recs = [];
  for (let i = 0; i < 120; i++) {
    const q = query('medium.example.test', 'TXT', i + 1, { udpSize: 4096 });
    const r = Buffer.alloc(900);
    q.copy(r);
    r[2] = r[2]! | 0x80;
    recs.push({ ts: 1_700_000_000_000 + i * 50, data: ethernet(ipv4('198.18.0.12', '198.18.0.1', 17, udp(7000 + i, 5353, q))) });
    recs.push({ ts: 1_700_000_000_000 + i * 50 + 1, data: ethernet(ipv4('198.18.0.1', '198.18.0.12', 17, udp(5353, 7000 + i, r))) });
  }
  writeFileSync(capture, pcap(LINK_ETHERNET, recs));
}

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('node', [CLI, 'replay', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('ampguard replay (CLI)', () => {
  it('prints the report as a table, and as JSON with --json', () => {
    const t = cli(['--config', config, capture]);
    expect(t.stderr).toBe('');
    expect(t.status).toBe(0);
    expect(t.stdout).toMatch(/amplification before \/ after/);
    expect(t.stdout).toMatch(/^198\.18\.0\.12 .* prefix .* no_followup .* blocked/m);
    const j = JSON.parse(cli(['--config', config, '--json', capture]).stdout) as { blocks: { prefix: string }[]; totals: { queries: { udp: number } } };
    expect(j.totals.queries.udp).toBe(120);
    expect(j.blocks.map((b) => b.prefix)).toEqual(['198.18.0.12']);
  });

  it('sweeps a key, one line per value, and writes the plot', () => {
    const plot = join(dir, 'plot.svg');
    const s = cli(['--config', config, '--sweep', 'policy.ladder.min_tc=5,50', '--plot', plot, capture]);
    expect(s.status).toBe(0);
    const lines = s.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^\s*5\s+1\s/);
    expect(lines[2]).toMatch(/^\s*50\s+0\s/);
    expect(readFileSync(plot, 'utf8')).toMatch(/^<svg/);
  });

  it('prints the report of what was read before a capture breaks off, names its byte offset and exits 1; refuses bad usage with 2', () => {
    const bytes = readFileSync(capture);
    const cut = join(dir, 'cut.pcap');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
    const r = cli(['--config', config, cut]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ampguard: E_CAPTURE: .*cut\.pcap: truncated record \(\d+ of \d+ bytes\) at byte offset \d+; the report covers the 239 frames read before it\n$/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(r.stdout).toMatch(/^198\.18\.0\.12 .* prefix .* no_followup .* blocked/m);
    expect(r.stdout).toMatch(/WARNING: .*truncated record.*this report covers what came before it/);
    const j = cli(['--config', config, '--json', cut]);
    expect(j.status).toBe(1);
    expect((JSON.parse(j.stdout) as { capture_errors: unknown[] }).capture_errors).toHaveLength(1);
    // a key that is not the schema's: refused before anything is set
    expect(cli(['--config', config, '--sweep', '__proto__.block=1,2', capture])).toMatchObject({ status: 2, stderr: expect.stringMatching(/^ampguard: E_USAGE: .*"__proto__\.block" is not a config key/) });
    expect(cli(['--config', config, join(dir, 'missing.pcap')])).toMatchObject({ status: 1, stderr: expect.stringMatching(/E_CAPTURE: cannot read capture/) });
    expect(cli(['--config', config, '--plot', join(dir, 'x.svg'), capture])).toMatchObject({ status: 2, stderr: expect.stringMatching(/E_USAGE/) });
    expect(cli(['--config', config, '--sweep', 'policy.large_response.rate=fast', capture])).toMatchObject({ status: 1, stderr: expect.stringMatching(/E_CONFIG: .*policy\.large_response\.rate/s) });
    expect(cli(['--config', config])).toMatchObject({ status: 2, stderr: expect.stringMatching(/E_USAGE/) });
  });
});
