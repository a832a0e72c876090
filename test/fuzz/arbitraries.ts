// fast-check generators for the fuzz of test/fuzz: DNS queries as clients send
// them (any opcode, QR either way, EDNS or not, ANY among the types), then
// mutated (cut short, bytes flipped, junk appended) or replaced by noise; and
// the settings of a run (seed, number of runs) from the environment.
import fc from 'fast-check';

/** `npm test`: a fixed seed and a fixed number of runs; `npm run fuzz`: FUZZ_RUNS, and a random seed unless FUZZ_SEED. */
export function fuzzParams(defaultRuns: number, share: number): fc.Parameters<unknown> {
  const long = process.env.FUZZ_RUNS !== undefined;
  const runs = long ? Math.max(1, Math.round(Number(process.env.FUZZ_RUNS) * share)) : defaultRuns;
  const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : long ? Date.now() ^ (Math.random() * 0x7fffffff) : 0x5eed8;
  // a long run says its seed up front, so a failure found late can be replayed with FUZZ_SEED
  if (long) console.log(`fuzz: ${runs} runs, FUZZ_SEED=${seed}`);
  return { numRuns: runs, seed };
}

const label = fc.constantFrom('www', 'example', 'test', 'a', 'big', 'x'.repeat(63), 'ANY', '');
const qtype = fc.oneof(fc.constantFrom(1, 2, 6, 15, 16, 28, 33, 41, 255, 252), fc.integer({ min: 0, max: 0xffff }));

export interface QuerySpec {
  id: number;
  flags: number;
  labels: string[];
  qtype: number;
  qclass: number;
  edns: number | null;
  qdcount: number;
}

export const querySpec: fc.Arbitrary<QuerySpec> = fc.record({
  id: fc.integer({ min: 0, max: 0xffff }),
  // mostly a plain RD query; sometimes any opcode, QR, TC or junk bits
  flags: fc.oneof({ weight: 4, arbitrary: fc.constant(0x0100) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: 15 }).map((op) => (op << 11) | 0x0100) }, fc.integer({ min: 0, max: 0xffff })),
  labels: fc.array(label, { maxLength: 5 }),
  qtype,
  qclass: fc.oneof({ weight: 5, arbitrary: fc.constant(1) }, fc.integer({ min: 0, max: 0xffff })),
  edns: fc.option(fc.oneof(fc.constantFrom(512, 1232, 4096, 65535), fc.integer({ min: 0, max: 0xffff }))),
  qdcount: fc.oneof({ weight: 8, arbitrary: fc.constant(1) }, fc.integer({ min: 0, max: 3 })),
});

export function encodeQuery(s: QuerySpec): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(s.id, 0);
  header.writeUInt16BE(s.flags, 2);
  header.writeUInt16BE(s.qdcount, 4);
  header.writeUInt16BE(s.edns === null ? 0 : 1, 10);
  parts.push(header);
  for (const l of s.labels) {
    if (l === '') continue;
    parts.push(Buffer.from([l.length]), Buffer.from(l, 'latin1'));
  }
  const tail = Buffer.alloc(5);
  tail.writeUInt16BE(s.qtype, 1);
  tail.writeUInt16BE(s.qclass, 3);
  parts.push(tail);
  if (s.edns !== null) {
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(s.edns, 3);
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

export type Mutation =
  | { kind: 'none' }
  | { kind: 'cut'; at: number }
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'append'; junk: Uint8Array };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'none' as const }) },
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat({ max: 80 }) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat({ max: 80 }), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('append' as const), junk: fc.uint8Array({ maxLength: 40 }) }),
);

export function mutate(buf: Buffer, m: Mutation): Buffer {
  switch (m.kind) {
    case 'none':
      return buf;
    case 'cut':
      return buf.subarray(0, Math.min(buf.length, m.at));
    case 'flip': {
      if (buf.length === 0) return buf;
      const out = Buffer.from(buf);
      const i = m.at % out.length;
      out[i] = out[i]! ^ m.xor;
      return out;
    }
    case 'append':
      return Buffer.concat([buf, Buffer.from(m.junk)]);
  }
}

/** a client message: a mutated query, or noise */
export const clientMessage: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(querySpec, mutation).map(([s, m]) => mutate(encodeQuery(s), m)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
);

export type ReplyShape =
  | { kind: 'echo'; pad: number; mutation: Mutation; clearQr: boolean; idDelta: number }
  | { kind: 'noise'; bytes: Uint8Array };

/** a backend's answer to the `pick`-th forwarded query (modulo), shaped: mostly right, often wrong */
export const replyShape: fc.Arbitrary<ReplyShape> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('echo' as const),
      pad: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, fc.constantFrom(100, 900, 1300, 3000, 5000)),
      mutation,
      clearQr: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, fc.constant(true)),
      idDelta: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, fc.integer({ min: 1, max: 0xffff })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('noise' as const), bytes: fc.uint8Array({ maxLength: 40 }) }) },
);

/** the reply a backend would send for `forwarded` (a query as we sent it, our ID in it), shaped */
export function shapeReply(forwarded: Buffer | undefined, shape: ReplyShape): Buffer {
  if (shape.kind === 'noise' || forwarded === undefined) return Buffer.from(shape.kind === 'noise' ? shape.bytes : []);
  const r = Buffer.alloc(forwarded.length + shape.pad);
  forwarded.copy(r);
  r[2] = shape.clearQr ? r[2]! & 0x7f : r[2]! | 0x80;
  if (shape.idDelta !== 0) r.writeUInt16BE((r.readUInt16BE(0) + shape.idDelta) & 0xffff, 0);
  return mutate(r, shape.mutation);
}
