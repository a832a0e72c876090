// Child of the memory scenario (see memory.ts): node --expose-gc memory-child.js 4|6
import { runResponseStages } from '../../src/pipeline/stages.js';
import { parseQuery } from '../../src/dns/query.js';
import { encodeMessage } from '../../src/dns/codec.js';
import { compilePolicy } from '../../src/config/compile.js';
import { configSchema } from '../../src/config/schema.js';
import { BudgetTable } from '../../src/policy/budgets.js';
import { BlockTable } from '../../src/policy/block-table.js';
import { Counters } from '../../src/metrics/counters.js';
import type { PolicyEnv } from '../../src/policy/env.js';
import type { QueryContext } from '../../src/policy/context.js';

const family = Number(process.argv[2]) === 6 ? 6 : 4;
const config = configSchema.parse({});
const env: PolicyEnv<Counters> = {
  settings: compilePolicy(config),
  budgets: new BudgetTable(config.policy.large_response.max_tracked),
  blocks: new BlockTable(config.block.max_elements),
  counters: new Counters(),
};
const query = encodeMessage({ type: 'query', id: 1, flags: 0x100, questions: [{ name: 'medium.example.test', type: 'TXT', class: 'IN' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as never] });
const parsed = parseQuery(query)!;
const reply = Buffer.alloc(900);
const address = (i: number): string =>
  family === 4 ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` : `fd00:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`;

// The address strings are made in the loop, as the packet path gets a fresh one
// per datagram from the socket; what making them costs is measured apart and
// taken off.
const timeBlock = (from: number, work: boolean): number => {
  const t0 = process.hrtime.bigint();
  for (let i = from; i < from + 100_000; i++) {
    const clientAddress = address(i);
    if (work) runResponseStages({ query, parsed, clientAddress, family, proto: 'udp' } as QueryContext, reply.length, env, (now += 0.01));
  }
  return Number(process.hrtime.bigint() - t0) / 100_000;
};
let now = 0;
const addressCost = timeBlock(10_000_000, false);
const nsPerReply: number[] = [];
for (let block = 0; block < 10; block++) nsPerReply.push(timeBlock(block * 100_000, true) - addressCost);
(globalThis as { gc?: () => void }).gc?.();
const mem = process.memoryUsage();
process.stdout.write(JSON.stringify({ family, tracked: env.budgets.size, rssMB: mem.rss / 2 ** 20, heapMB: mem.heapUsed / 2 ** 20, nsPerReply }) + '\n');
