// The usual integration set-up: a real recursor on loopback and ampguard in
// front of it, health-checking the local zone; stopped together.
import { startRecursor, type Recursor } from './recursor.js';
import { startAmpguard, type Ampguard, type AmpguardOptions } from './ampguard.js';
import { stopAll } from './process.js';

export interface Pair {
  readonly rec: Recursor;
  readonly ag: Ampguard;
}

export async function startPair(config: Record<string, unknown>, opts: Omit<AmpguardOptions, 'config'> = {}): Promise<Pair> {
  const rec = await startRecursor();
  const ag = await startAmpguard({
    ...opts,
    config: { backends: [{ address: `127.0.0.1:${rec.port}` }], health_check: { qname: 'example.test', qtype: 'SOA' }, ...config },
  });
  return { rec, ag };
}

export async function stopPair(pair: Partial<Pair>): Promise<void> {
  await pair.ag?.stop();
  await pair.rec?.close();
  await stopAll();
}
