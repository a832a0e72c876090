import { describe, expect, it } from 'vitest';
import { unmapIpv4 } from '../../../src/listener/mapped.js';

describe('unmapIpv4', () => {
  it.each([
    ['::ffff:198.18.0.1', '198.18.0.1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::1', null],
    ['fd00::ffff:1', null],
    ['::ffff:c612:1', null],
    ['198.18.0.1', null],
  ])('%s -> %s', (input, expected) => {
    expect(unmapIpv4(input)).toBe(expected);
  });
});
