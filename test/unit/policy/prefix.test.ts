import { describe, expect, it } from 'vitest';
import { prefixKey } from '../../../src/policy/prefix.js';
import { BlockTable } from '../../../src/policy/block-table.js';

describe('prefixKey', () => {
  it.each([
    ['198.18.1.2', 4, 32, 64, '198.18.1.2'],
    ['198.18.1.2', 4, 24, 64, '198.18.1.0/24'],
    ['198.18.255.2', 4, 16, 64, '198.18.0.0/16'],
    ['fd00:1:2:3:4:5:6:7', 6, 32, 64, 'fd00:1:2:3:0:0:0:0/64'],
    ['fd00:1:2:3::7', 6, 32, 64, 'fd00:1:2:3:0:0:0:0/64'],
    ['fd00::1', 6, 32, 56, 'fd00:0:0:0:0:0:0:0/56'],
    ['fd00:1:2:3ff::', 6, 32, 56, 'fd00:1:2:300:0:0:0:0/56'],
    ['::ffff:198.18.0.1', 6, 32, 128, '::ffff:198.18.0.1'],
    ['::ffff:198.18.0.1', 6, 32, 112, '0:0:0:0:0:ffff:c612:0/112'],
  ] as const)('%s with /%i,/%i', (ip, family, p4, p6, expected) => {
    expect(prefixKey(ip, family, p4, p6)).toBe(expected);
  });
  it('gives every address of one /64 the same key', () => {
    expect(prefixKey('fd00:a3b1:0:1::1', 6, 32, 64)).toBe(prefixKey('fd00:a3b1:0:1:ffff:ffff:ffff:ffff', 6, 32, 64));
  });
});

describe('BlockTable', () => {
  it('blocks until the expiry time, then forgets', () => {
    const t = new BlockTable(10);
    t.add('198.18.0.1', 1000);
    expect(t.isBlocked('198.18.0.1', 999)).toBe(true);
    expect(t.isBlocked('198.18.0.2', 999)).toBe(false);
    expect(t.isBlocked('198.18.0.1', 1000)).toBe(false);
    expect(t.isEmpty).toBe(true);
  });
  it('holds at most max_elements', () => {
    const t = new BlockTable(100);
    for (let i = 0; i < 1000; i++) t.add(`p${i}`, 10_000);
    expect(t.count(0)).toBe(100);
    expect(t.list(20_000)).toEqual([]);
  });
});
