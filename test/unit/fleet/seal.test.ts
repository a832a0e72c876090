// The seals on fleet messages (src/fleet/seal.ts), on a fake clock: a sealed,
// fresh, new message is taken; unsealed, forged, stale, replayed or reordered
// ones are not; a restarted node is not a replay.
import { describe, expect, it } from 'vitest';
import { open, Receiver, seal, Sender, STALE_MS } from '../../../src/fleet/seal.js';

const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const T0 = 1_800_000_000_000;
const bytes = (x: unknown): Uint8Array => Buffer.from(JSON.stringify(x));

describe('Receiver', () => {
  it('takes a sealed message and gives back its body', () => {
    const s = new Sender(KEY, 'lab', 'a', T0);
    const r = new Receiver(KEY, 'lab').accept(bytes(s.seal('{"d":[]}', T0)), T0);
    expect(r.ok && r.env.b).toBe('{"d":[]}');
  });

  it('drops unsealed, malformed and wrongly sealed messages', () => {
    const r = new Receiver(KEY, 'lab');
    expect(r.accept(bytes({ n: 'a', t: T0, s: 1, b: '{}' }), T0)).toEqual({ ok: false, reason: 'malformed' });
    expect(r.accept('not json', T0)).toEqual({ ok: false, reason: 'malformed' });
    expect(r.accept(bytes(seal(Buffer.from('another key, same length!!!!!!!!'), 'lab', 'a', T0, 1, '{}')), T0)).toEqual({ ok: false, reason: 'signature' });
    // another site's key material is the same, its messages are not ours
    expect(r.accept(bytes(seal(KEY, 'other', 'a', T0, 1, '{}')), T0)).toEqual({ ok: false, reason: 'signature' });
    // a body changed after sealing
    const env = seal(KEY, 'lab', 'a', T0, 1, '{"d":[]}');
    expect(r.accept(bytes({ ...env, b: '{"d":[["198.18.0.1",1e9]]}' }), T0)).toEqual({ ok: false, reason: 'signature' });
    expect(r.accept(bytes({ ...env, s: 2 }), T0)).toEqual({ ok: false, reason: 'signature' });
  });

  it('takes a message exactly STALE_MS old and drops one a millisecond older (or as far ahead)', () => {
    const r = new Receiver(KEY, 'lab');
    expect(r.accept(bytes(seal(KEY, 'lab', 'a', T0, 1, '{}')), T0 + STALE_MS).ok).toBe(true);
    expect(r.accept(bytes(seal(KEY, 'lab', 'a', T0, 2, '{}')), T0 + STALE_MS + 1)).toEqual({ ok: false, reason: 'stale' });
    expect(r.accept(bytes(seal(KEY, 'lab', 'a', T0 + STALE_MS + 1, 3, '{}')), T0)).toEqual({ ok: false, reason: 'stale' });
  });

  it('drops a replayed or reordered message of a node, not the same number from another node', () => {
    const r = new Receiver(KEY, 'lab');
    const m5 = bytes(seal(KEY, 'lab', 'a', T0, 5, '{}'));
    expect(r.accept(m5, T0).ok).toBe(true);
    expect(r.accept(m5, T0 + 1)).toEqual({ ok: false, reason: 'replay' });
    expect(r.accept(bytes(seal(KEY, 'lab', 'a', T0, 4, '{}')), T0 + 1)).toEqual({ ok: false, reason: 'replay' });
    expect(r.accept(bytes(seal(KEY, 'lab', 'b', T0, 5, '{}')), T0 + 1).ok).toBe(true);
    expect(r.accept(bytes(seal(KEY, 'lab', 'a', T0, 6, '{}')), T0 + 1).ok).toBe(true);
  });

  it('takes a restarted node: its sequence starts at its start time', () => {
    const r = new Receiver(KEY, 'lab');
    const before = new Sender(KEY, 'lab', 'a', T0);
    for (let i = 0; i < 1000; i++) expect(r.accept(bytes(before.seal('{}', T0)), T0).ok).toBe(true);
    const after = new Sender(KEY, 'lab', 'a', T0 + 5);
    expect(r.accept(bytes(after.seal('{}', T0 + 5)), T0 + 5).ok).toBe(true);
    expect(after.firstSeq).toBeGreaterThan(before.firstSeq + 1000);
  });
});

describe('open (stored verdicts)', () => {
  it('checks the seal only: a stored verdict is old by nature', () => {
    const env = seal(KEY, 'lab', 'a', T0, 1, '{}');
    expect(open(KEY, 'lab', bytes(env)).ok).toBe(true);
    expect(open(Buffer.from('x'.repeat(32)), 'lab', bytes(env)).ok).toBe(false);
  });
});
