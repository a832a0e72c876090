// One ampguard (one worker, userspace blocks) in front of a stand-in backend,
// for a file of hostile cases: started before all, and a case that killed it
// (on a broken build) is replaced before the next case, so each case shows its
// own failure rather than the first one's.
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { startAmpguard, type Ampguard } from './ampguard.js';
import { startStandIn, type StandIn } from './stand-in-backend.js';
import { stopAll } from './process.js';

export interface HostileTarget {
  readonly ag: Ampguard;
  readonly standIn: StandIn;
  /** the process has neither exited nor been killed */
  alive(): boolean;
}

/** Registers the hooks; `config` adds keys (its health_check is merged into the default one). */
export function hostileTarget(config: Record<string, unknown> & { health_check?: Record<string, unknown> } = {}): HostileTarget {
  let standIn: StandIn;
  let ag: Ampguard;
  const target: HostileTarget = {
    get ag() {
      return ag;
    },
    get standIn() {
      return standIn;
    },
    alive: () => ag.proc.child.exitCode === null && ag.proc.child.signalCode === null,
  };
  const start = async (): Promise<void> => {
    ag = await startAmpguard({
      config: {
        backends: [{ address: `127.0.0.1:${standIn.port}` }],
        block: { mode: 'userspace' },
        workers: 1,
        ...config,
        health_check: { qname: 'example.test', qtype: 'SOA', ...config.health_check },
      },
    });
  };

  beforeAll(async () => {
    standIn = await startStandIn();
    await start();
  });

  beforeEach(async () => {
    if (!target.alive()) {
      await ag.stop();
      await start();
    }
  });

  afterAll(async () => {
    await stopAll();
    await standIn?.close();
  });

  return target;
}
