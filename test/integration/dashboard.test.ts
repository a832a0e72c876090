// The dashboard as a person sees it: headless Chromium (Debian's, driven by
// playwright-core) opens / while traffic flows; every panel must show data and
// the page must log no errors. The screenshot is what the README shows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import type { Recursor } from '../helpers/recursor.js';
import type { Ampguard } from '../helpers/ampguard.js';
import { onStopAll } from '../helpers/process.js';
import { startPair, stopPair } from '../helpers/pair.js';
import { poll } from '../helpers/poll.js';

const CHROMIUM = '/usr/bin/chromium';
const TRAFFIC = resolve('test/helpers/traffic.mjs');
const missing = existsSync(CHROMIUM) ? null : `${CHROMIUM} is not installed (Debian package chromium)`;
if (missing) console.warn(`dashboard test skipped: ${missing}`);

let rec: Recursor;
let ag: Ampguard;
let browser: Browser | undefined;
const SOURCES = [...Array.from({ length: 8 }, (_, i) => `127.0.0.${40 + i}`), '127.0.1.48', '127.0.1.49'].join(',');

describe.skipIf(missing !== null)('dashboard', () => {
  beforeAll(async () => {
    ({ rec, ag } = await startPair({
      // 127.0.0.40-47 may send any volume; 127.0.1.48 and .49 go over budget, get TC
      // answers, never come back over TCP and are blocked. They sit in a /24 of their own:
      // in 127.0.0.0/24 the allowlisted eight would empty the network's aggregate budget
      // and the network (which can never be blocked, it holds allowlisted hosts) would
      // answer them TC before their own budgets ran out (docs/defence.md). Each sends ~3
      // large replies a second past its budget: a 4 s window with 3 TC answers judges it
      // within the 25 s of traffic, where the defaults (2 s, 10) never would.
      block: { mode: 'userspace', timeout: 300, allowlist: ['127.0.0.40/29'] },
      policy: { large_response: { max_tracked: 1000 }, ladder: { window_ms: 4000, min_tc: 3 } },
    }));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await stopPair({ rec, ag });
  });

  it('renders every panel with data and no console errors', async () => {
    // 25 s of bounded traffic from ten sources
    const traffic = spawn('node', [TRAFFIC, '127.0.0.1', String(ag.port), '25', '150', SOURCES], { stdio: 'ignore' });
    const done = new Promise((r) => traffic.once('exit', r));
    try {
      const page = await browser!.newPage({ viewport: { width: 1400, height: 1200 } });
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`http://127.0.0.1:${ag.metricsPort}/`);
      const panels = await page.locator('[data-panel]').evaluateAll((els) => els.map((e) => e.getAttribute('data-panel')));
      expect(panels).toEqual(['queries', 'truncated', 'ladder', 'large', 'amplification', 'blocks', 'tracked', 'backends', 'top', 'recent']);
      await page.waitForFunction(() => [...document.querySelectorAll('[data-panel]')].every((e) => e.getAttribute('data-state') === 'ready'), undefined, { timeout: 40_000 });
      // the blocks appear once the ladder judges .48 and .49; each table is read until it shows what it must
      const text = (selector: string) => async (): Promise<string> => (await page.locator(selector).first().textContent()) ?? '';
      const recent = await poll(text('[data-panel="recent"] tbody'), (t) => /no_followup, (prefix|aggregate)/.test(t), 30_000);
      const why = async (): Promise<string> => {
        const m = await ag.metrics();
        const ladder = [...m].filter(([k]) => /escalations|ladder_prefixes|blocks_total|blocks_refused|truncated_total\{reason="budget"/.test(k));
        const log = ag.proc.output().split('\n').filter((l) => /"module":"(ladder|enforce)"/.test(l));
        return [await (await fetch(`http://127.0.0.1:${ag.metricsPort}/api/blocks`)).text(), ...ladder.map(([k, v]) => `${k} ${v}`), ...log].join('\n');
      };
      expect(recent, /no_followup, (prefix|aggregate)/.test(recent) ? '' : await why()).toMatch(/no_followup, (prefix|aggregate)/);
      for (const name of ['queries', 'truncated', 'ladder', 'large', 'amplification', 'blocks', 'tracked', 'backends']) {
        expect(await page.locator(`[data-panel="${name}"] canvas`).count(), name).toBeGreaterThan(0);
      }
      expect(await poll(text('[data-panel="top"] tbody tr'), (t) => /127\.0\.[01]\.\d+/.test(t), 10_000)).toMatch(/127\.0\.[01]\.\d+/);
      expect(await poll(text('[data-panel="backends"] > table tbody'), (t) => /up/.test(t), 10_000)).toMatch(/up/);
      expect(await poll(text('#status'), (t) => /block mode userspace/.test(t), 10_000)).toMatch(/block mode userspace/);
      let shot = process.env.AMPGUARD_SCREENSHOT;
      if (!shot) {
        const dir = mkdtempSync(join(tmpdir(), 'ampguard-shot-'));
        onStopAll(() => rmSync(dir, { recursive: true, force: true }));
        shot = join(dir, 'dashboard.png');
      }
      await page.screenshot({ path: shot, fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      traffic.kill();
      await done;
    }
  });
});
