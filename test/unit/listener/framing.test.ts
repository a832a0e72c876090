import { describe, expect, it } from 'vitest';
import { FrameReader, frame } from '../../../src/listener/framing.js';

describe('TCP framing', () => {
  const msgs = [Buffer.from('hello'), Buffer.alloc(300, 7), Buffer.from('x')];
  const stream = Buffer.concat(msgs.map(frame));

  it('returns whole messages however the stream is split', () => {
    for (let cut = 1; cut < 20; cut++) {
      const r = new FrameReader(65535);
      const out: Buffer[] = [];
      for (let i = 0; i < stream.length; i += cut) out.push(...(r.push(stream.subarray(i, i + cut)) ?? []));
      expect(out).toEqual(msgs);
      expect(r.partial).toBe(false);
    }
  });

  it('knows when a message is half read', () => {
    const r = new FrameReader(65535);
    expect(r.push(stream.subarray(0, 4))).toEqual([]);
    expect(r.partial).toBe(true);
  });

  it('rejects a zero or oversize length', () => {
    expect(new FrameReader(65535).push(Buffer.from([0, 0]))).toBeNull();
    expect(new FrameReader(100).push(Buffer.from([0, 101]))).toBeNull();
  });
});
