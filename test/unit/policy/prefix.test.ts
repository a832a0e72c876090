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

describe('prefixKey for IPv6, against an independent reference', () => {
  // the plain split-and-fill expansion, written apart from the character parser under test
  const expand = (ip: string): number[] => {
    let text = ip.split('%')[0] as string;
    const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
    if (dotted) {
      const p = dotted.slice(1).map(Number);
      text = text.slice(0, -dotted[0].length) + ((p[0]! << 8) | p[1]!).toString(16) + ':' + ((p[2]! << 8) | p[3]!).toString(16);
    }
    const [head, tail] = text.split('::') as [string, string | undefined];
    const h = head === '' ? [] : head.split(':');
    const t = tail === undefined || tail === '' ? [] : tail.split(':');
    const fill = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
    return [...h, ...fill, ...t].map((g) => parseInt(g, 16));
  };
  const reference = (ip: string, bits: number): string => {
    const groups = expand(ip);
    return `${groups.map((g, i) => {
      const keep = Math.max(0, Math.min(16, bits - i * 16));
      return (g & (keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff)).toString(16);
    }).join(':')}/${bits}`;
  };
  const addresses = [
    '1:2:3:4:5:6:7:8', '1::', '::', '::1', 'fe80::1%eth0', 'FD00:A3B1::1', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8',
    '::1.2.3.4', '::ffff:198.18.0.1', '1:2:3:4:5:6:1.2.3.4', '64:ff9b::192.0.2.33', 'fd00:a3b1:0:1:ffff:ffff:ffff:ffff',
    '2001:db8:85a3::8a2e:370:7334',
  ];
  for (const ip of addresses) {
    it.each([0, 16, 48, 56, 63, 64, 100, 112, 127])(`${ip} /%i`, (bits) => {
      expect(prefixKey(ip, 6, 32, bits)).toBe(reference(ip, bits));
    });
  }
});
