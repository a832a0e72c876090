// Memory scenario: one million distinct source prefixes charged through the
// response stages (a large reply each), in a child process of its own so its
// RSS is the table's and nothing else's. Reported: RSS, table size, and the
// cost per reply in the first and the last 100k (it must not grow).
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

const CHILD = resolve('dist/test/bench/memory-child.js');

interface ChildResult {
  family: number;
  tracked: number;
  rssMB: number;
  heapMB: number;
  nsPerReply: number[];
}

export async function runMemory(): Promise<void> {
  console.log('\n## memory: 1,000,000 distinct prefixes through the budget stage, default max_tracked (100000)');
  console.log('\n| family | tracked | RSS MB | heap MB | ns/reply, table filling (first 100k) | ns/reply, table full (median of 9 x 100k) | ns/reply, last 100k |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const family of ['4', '6']) {
    const r = JSON.parse(execFileSync('node', ['--expose-gc', CHILD, family], { encoding: 'utf8', timeout: 300_000 })) as ChildResult;
    const full = r.nsPerReply.slice(1).sort((a, b) => a - b);
    const median = full[Math.floor(full.length / 2)];
    console.log(`| IPv${r.family} | ${r.tracked} | ${r.rssMB.toFixed(0)} | ${r.heapMB.toFixed(0)} | ${r.nsPerReply[0]?.toFixed(0)} | ${median?.toFixed(0)} | ${r.nsPerReply.at(-1)?.toFixed(0)} |`);
  }
  console.log('\ntarget: RSS <= 256 MB; the cost per reply does not grow with the table');
}
