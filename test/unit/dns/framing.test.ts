import { describe, expect, it } from 'vitest';
import { FrameReader, frame } from '../../../src/dns/framing.js';

/** what the listener and the upstream connection do with a chunk: append, then take every whole message (null once broken) */
function feed(r: FrameReader, chunk: Buffer): Buffer[] | null {
  r.append(chunk);
  const out: Buffer[] = [];
  for (let m = r.next(); m !== null; m = r.next()) out.push(m);
  return r.broken ? null : out;
}

describe('TCP framing', () => {
  const msgs = [Buffer.from('hello'), Buffer.alloc(300, 7), Buffer.from('x')];
  const stream = Buffer.concat(msgs.map(frame));

  it('returns whole messages however the stream is split', () => {
    for (let cut = 1; cut < 20; cut++) {
      const r = new FrameReader(65535);
      const out: Buffer[] = [];
      for (let i = 0; i < stream.length; i += cut) out.push(...(feed(r, stream.subarray(i, i + cut)) ?? []));
      expect(out).toEqual(msgs);
      expect(r.partial).toBe(false);
    }
  });

  it('knows when a message is half read', () => {
    const r = new FrameReader(65535);
    expect(feed(r, stream.subarray(0, 4))).toEqual([]);
    expect(r.partial).toBe(true);
  });

  it('rejects a zero or oversize length', () => {
    expect(feed(new FrameReader(65535), Buffer.from([0, 0]))).toBeNull();
    expect(feed(new FrameReader(100), Buffer.from([0, 101]))).toBeNull();
  });
});

describe('TCP framing, one message at a time', () => {
  const msgs = Array.from({ length: 50 }, (_, i) => Buffer.alloc(10 + i, i));
  const stream = Buffer.concat(msgs.map(frame));

  it('hands out messages one by one and keeps the rest buffered', () => {
    const r = new FrameReader(65535);
    r.append(stream);
    expect(r.next()).toEqual(msgs[0]);
    expect(r.next()).toEqual(msgs[1]);
    expect(r.buffered).toBe(stream.length - frame(msgs[0]!).length - frame(msgs[1]!).length);
    // whole messages waiting are not a slow sender
    expect(r.partial).toBe(false);
    const rest: Buffer[] = [];
    for (let m = r.next(); m !== null; m = r.next()) rest.push(m);
    expect(rest).toEqual(msgs.slice(2));
    expect(r.buffered).toBe(0);
  });

  it('is partial only while the message at the head is incomplete', () => {
    const r = new FrameReader(65535);
    r.append(stream.subarray(0, 1));
    expect(r.partial).toBe(true);
    r.append(stream.subarray(1, 5));
    expect(r.partial).toBe(true);
    expect(r.next()).toBeNull();
    r.append(stream.subarray(5, 12));
    expect(r.partial).toBe(false);
    expect(r.next()).toEqual(msgs[0]);
  });

  it('reassembles a message trickled in one byte at a time', () => {
    const big = Buffer.alloc(20_000, 3);
    const r = new FrameReader(65535);
    const wire = frame(big);
    for (let i = 0; i < wire.length - 1; i++) {
      r.append(wire.subarray(i, i + 1));
      expect(r.next()).toBeNull();
    }
    r.append(wire.subarray(wire.length - 1));
    expect(r.next()).toEqual(big);
  });

  it('stays broken after a bad length and drops what it held', () => {
    const r = new FrameReader(100);
    r.append(Buffer.concat([frame(Buffer.from('ok')), Buffer.from([0, 0]), frame(Buffer.from('later'))]));
    expect(r.next()).toEqual(Buffer.from('ok'));
    expect(r.next()).toBeNull();
    expect(r.broken).toBe(true);
    expect(r.buffered).toBe(0);
    r.append(frame(Buffer.from('more')));
    expect(r.next()).toBeNull();
  });
});
