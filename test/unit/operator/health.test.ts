// /healthz's judgement (src/operator/health.ts) with a stepped clock: silent
// workers, a dead upstream path while the prober gets answers, no backend up.
import { describe, expect, it } from 'vitest';
import { DataPathHealth, dataPathSample } from '../../../src/operator/health.js';

const up = (forwarded: number, upstreamReplies: number, backendUp = true) => ({ forwarded, upstreamReplies, backendUp });

describe('DataPathHealth', () => {
  it('is healthy while every worker reports and reads replies', () => {
    const h = new DataPathHealth({ silentMs: 2500, windowMs: 3000, minForwarded: 20 });
    for (let t = 0; t <= 5000; t += 1000) {
      h.beat(1, t, up(t, t));
      h.beat(2, t, up(t, t));
    }
    expect(h.verdict(5000, 2)).toEqual({ ok: true, reasons: [] });
  });

  it('names a worker silent for silentMs, not before', () => {
    const h = new DataPathHealth({ silentMs: 2500, windowMs: 3000, minForwarded: 20 });
    h.beat(1, 0, up(0, 0));
    h.beat(2, 0, up(0, 0));
    h.beat(1, 2000, up(0, 0));
    expect(h.silent(2499)).toEqual([]);
    expect(h.verdict(2499, 2).ok).toBe(true);
    expect(h.silent(2500)).toEqual([2]);
    expect(h.verdict(2500, 2)).toEqual({ ok: false, reasons: ['worker 2 silent for 2.5 s'] });
    h.forget(2);
    expect(h.verdict(2500, 2).reasons).toEqual(['1 of 2 workers not running']);
  });

  it('calls the upstream path dead when queries go out, none come back and the prober gets answers', () => {
    const h = new DataPathHealth({ silentMs: 2500, windowMs: 3000, minForwarded: 20 });
    h.beat(1, 0, up(100, 100));
    h.beat(1, 1000, up(110, 100));
    h.beat(1, 2000, up(120, 100));
    // the window is not whole yet
    expect(h.verdict(2000, 1).ok).toBe(true);
    h.beat(1, 3000, up(120, 100));
    // 20 forwarded over the window, no reply read
    expect(h.verdict(3000, 1)).toEqual({ ok: false, reasons: ['worker 1: upstream UDP path dead: 20 queries forwarded in 3 s and no reply read, while the health check gets answers'] });
    // one reply read in the window: alive (a slow or lossy backend is not a dead path)
    h.beat(1, 4000, up(140, 101));
    expect(h.verdict(4000, 1).ok).toBe(true);
  });

  it('does not call a quiet path dead, nor one whose backend the prober sees down', () => {
    const h = new DataPathHealth({ silentMs: 2500, windowMs: 3000, minForwarded: 20 });
    for (let t = 0; t <= 4000; t += 1000) h.beat(1, t, up(t / 200, 0));
    expect(h.verdict(4000, 1).ok).toBe(true); // 15 forwarded over the window: below minForwarded
    const d = new DataPathHealth({ silentMs: 2500, windowMs: 3000, minForwarded: 20 });
    for (let t = 0; t <= 4000; t += 1000) d.beat(1, t, up(t, 0, false));
    expect(d.verdict(4000, 1)).toEqual({ ok: false, reasons: ['no backend up'] });
  });

  it('reads a sample from counters or a snapshot, missing fields as 0', () => {
    expect(dataPathSample({ forwarded: 3, upstreamReplies: 2 }, true)).toEqual(up(3, 2));
    expect(dataPathSample({}, false)).toEqual(up(0, 0, false));
  });
});
