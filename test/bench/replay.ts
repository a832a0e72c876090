// `npm run bench` (BENCH=replay): packets per second of `ampguard replay` on a
// capture of small queries and their small replies, from 50,000 clients,
// written here (about 1M packets, Ethernet, pcap) and removed afterwards. One
// core: the replay is a single synchronous loop. Aim: 1M packets/s
// (docs/replay.md). REPLAY_PACKETS and BENCH_REPEATS tune;
// `node dist/test/bench/replay.js` runs it alone.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runReplay } from '../../src/replay/run.js';
import { LINK_ETHERNET } from '../../src/replay/packet.js';
import { ethernet, ipv4, udp } from '../fixtures/capture-writer.js';
import { encodeMessage } from '../../src/dns/codec.js';

const NAMES = ['www.example.test', 'mail.example.test', 'example.test', 'ns1.example.test'];

/** A pcap of `packets` frames: query, reply, query, reply... 1 ms of capture time per 100 frames. */
export function writeCapture(path: string, packets: number): number {
  const chunks: Buffer[] = [];
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(262144, 16);
  head.writeUInt32LE(LINK_ETHERNET, 20);
  writeFileSync(path, head);
  let bytes = 24;
  const t0 = 1_700_000_000;
  for (let i = 0; i < packets / 2; i++) {
    const client = 50_000 + (i % 50_000);
    const src = `10.${client >> 16}.${(client >> 8) & 255}.${client & 255}`;
    const id = i & 0xffff;
    const port = 1024 + (i % 60_000);
    const q = encodeMessage({ type: 'query', id, flags: 0x100, questions: [{ name: NAMES[i % NAMES.length]!, type: 'A', class: 'IN' }] });
    const r = encodeMessage({
      type: 'response', id, flags: 0x8180, questions: [{ name: NAMES[i % NAMES.length]!, type: 'A', class: 'IN' }],
      answers: [{ name: NAMES[i % NAMES.length]!, type: 'A', class: 'IN', ttl: 300, data: '192.0.2.1' }],
    });
    for (const [k, frame] of [[0, ethernet(ipv4(src, '192.0.2.53', 17, udp(port, 53, q)))], [1, ethernet(ipv4('192.0.2.53', src, 17, udp(53, port, r)))]] as const) {
      const usec = Math.floor(((2 * i + k) * 10) % 1e6);
      const sec = t0 + Math.floor(((2 * i + k) * 10) / 1e6);
      const h = Buffer.alloc(16);
      h.writeUInt32LE(sec, 0);
      h.writeUInt32LE(usec, 4);
      h.writeUInt32LE(frame.length, 8);
      h.writeUInt32LE(frame.length, 12);
      chunks.push(h, frame);
      bytes += 16 + frame.length;
    }
    if (chunks.length > 30_000) {
      writeFileSync(path, Buffer.concat(chunks), { flag: 'a' });
      chunks.length = 0;
    }
  }
  writeFileSync(path, Buffer.concat(chunks), { flag: 'a' });
  return bytes;
}

export async function runReplayBench(): Promise<void> {
  const packets = Number(process.env.REPLAY_PACKETS ?? 1_000_000);
  const repeats = Number(process.env.BENCH_REPEATS ?? 5);
  const dir = mkdtempSync(join(tmpdir(), 'ampguard-bench-replay-'));
  try {
    const path = join(dir, 'small.pcap');
    const bytes = writeCapture(path, packets);
    console.log(`\n## replay: ${packets.toLocaleString('en-US')} packets (small queries and replies, 50,000 clients), ${(bytes / 2 ** 20).toFixed(0)} MiB pcap, ${repeats} repeats, one core`);
    console.log('| run | packets/s | CPU-ns/packet | wall s |');
    console.log('| --- | --- | --- | --- |');
    const rates: number[] = [];
    // run 0 warms up: V8 compiles the loop while it runs, and the capture comes into the page cache
    for (let i = 0; i <= repeats; i++) {
      const cpu = process.cpuUsage();
      const t = process.hrtime.bigint();
      const out = runReplay({ block: { mode: 'userspace' } }, [path]);
      const wall = Number(process.hrtime.bigint() - t) / 1e9;
      const used = process.cpuUsage(cpu);
      const n = out.totals.packets;
      if (n !== packets || out.reports[0]!.totals.unpaired_responses !== 0) throw new Error(`replay read ${n} packets, ${out.reports[0]!.totals.unpaired_responses} unpaired`);
      const cpuS = (used.user + used.system) / 1e6;
      if (i > 0) rates.push(n / cpuS);
      console.log(`| ${i === 0 ? 'warm-up' : i} | ${Math.round(n / wall).toLocaleString('en-US')} | ${Math.round((cpuS * 1e9) / n)} | ${wall.toFixed(2)} |`);
    }
    rates.sort((a, b) => a - b);
    const median = rates[Math.floor(rates.length / 2)]!;
    console.log(`\nreplay: median ${Math.round(median).toLocaleString('en-US')} packets per CPU-second (target 1,000,000)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runReplayBench().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
