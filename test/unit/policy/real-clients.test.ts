// The live collateral figure (policy/real-clients.ts) on plain data: who is
// taken for a real client (a TCP query answered; a small answer, not a TC
// stand-in nor an error, while the defence is acting), and which of them are
// blocked or on TC now, by their prefix or their network.
import { describe, expect, it } from 'vitest';
import { runResponseStages, tcpAnswered } from '../../../src/pipeline/stages.js';
import { parseQuery } from '../../../src/dns/query.js';
import { compilePolicy } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';
import { BudgetTable } from '../../../src/policy/budgets.js';
import { BlockTable } from '../../../src/policy/block-table.js';
import { Counters } from '../../../src/metrics/counters.js';
import { RealClients, MAX_REAL_CLIENTS } from '../../../src/policy/real-clients.js';
import type { PolicyEnv } from '../../../src/policy/env.js';
import type { QueryContext } from '../../../src/policy/context.js';
import { query } from '../../helpers/wire.js';

function env(config: object = {}): PolicyEnv<Counters> {
  return { settings: compilePolicy(configSchema.parse(config)), budgets: new BudgetTable(1000), blocks: new BlockTable(1000), counters: new Counters(), realClients: new RealClients() };
}

function ctx(address: string, proto: 'udp' | 'tcp' = 'udp'): QueryContext {
  const q = query('big.example.test', 'TXT', 1, { udpSize: 4096 });
  return { query: q, parsed: parseQuery(q)!, clientAddress: address, family: 4, proto };
}

/** a reply of `size` bytes, with TC and an rcode as asked */
function reply(size: number, tc = false, rcode = 0): Buffer {
  const r = Buffer.alloc(size);
  r[2] = 0x80 | (tc ? 0x02 : 0);
  r[3] = rcode;
  return r;
}

/** puts 198.18.5.0/24 on rung 2: large replies to its addresses past the network's budget */
function floodNetwork(e: PolicyEnv<Counters>): void {
  for (let t = 0, i = 0; t < 2000; t += 5, i++) runResponseStages(ctx(`198.18.5.${i % 200}`), 900, e, t);
  expect(e.budgets.isTruncating('aggregate', '198.18.5.0/24')).toBe(true);
}

describe('RealClients', () => {
  it('notes small answers only while the defence is acting, and never a TC stand-in or an error', () => {
    const e = env();
    const rc = e.realClients!;
    rc.udpReply(ctx('198.18.6.1'), reply(80), e);
    expect(rc.size).toBe(0); // nothing on rung 2 or blocked: no bookkeeping per reply
    floodNetwork(e);
    rc.udpReply(ctx('198.18.6.2'), reply(80, true), e);
    rc.udpReply(ctx('198.18.6.3'), reply(80, false, 2), e);
    rc.udpReply(ctx('198.18.6.4'), reply(900), e);
    expect(rc.size).toBe(0);
    rc.udpReply(ctx('198.18.6.5'), reply(80, false, 3), e); // NXDOMAIN is an answer
    rc.udpReply(ctx('198.18.5.250'), reply(80), e);
    expect(rc.size).toBe(2);
  });

  it('counts the real clients of a network on TC, and of a blocked prefix or network, apart', () => {
    const e = env();
    const rc = e.realClients!;
    floodNetwork(e);
    rc.udpReply(ctx('198.18.5.250'), reply(80), e); // a real client of the flooded /24
    tcpAnswered(ctx('198.18.7.1', 'tcp'), e, 2000); // a TCP client elsewhere
    tcpAnswered(ctx('198.18.8.1', 'tcp'), e, 2000);
    expect(rc.collateral(e, 2000)).toEqual({ blocked: 0, tc: 1 });
    e.blocks.add('198.18.7.1', 100_000, 2000);
    e.blocks.add('198.18.8.0/24', 100_000, 2000);
    expect(rc.collateral(e, 2001)).toEqual({ blocked: 2, tc: 1 });
    expect(rc.collateral(e, 100_001)).toEqual({ blocked: 0, tc: 1 }); // the blocks expired
  });

  it('stays bounded', () => {
    const e = env();
    for (let i = 0; i < MAX_REAL_CLIENTS + 100; i++) tcpAnswered(ctx(`198.19.${i >> 8}.${i & 255}`, 'tcp'), e, 0);
    expect(e.realClients!.size).toBe(MAX_REAL_CLIENTS);
  });
});
