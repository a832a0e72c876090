// Bounded query floods from the client namespace (udp-blast.mjs), and polling.
import { resolve } from 'node:path';
import type { Hosts } from './netns.js';

const BLAST = resolve('test/helpers/udp-blast.mjs');

export interface Blast {
  sent: number;
  received: number;
  truncated: number;
}

/** `count` queries for NAME TXT from `src`, one every 2 ms; replies counted for `wait` ms after. */
export function blast(h: Hosts, server: string, src: string, count: number, name = 'medium.example.test', wait = 500): Blast {
  return JSON.parse(h.run(h.client, 'node', [BLAST, server, '53', src, String(count), name, 'TXT', '1232', '2', String(wait)])) as Blast;
}

/** the one polling helper, under the name the system tests know it by */
export { waitFor as until } from './poll.js';
