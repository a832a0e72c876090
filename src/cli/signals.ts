// Signal handling of `ampguard run`, installed before anything else is loaded:
// Node's default for SIGHUP is to end the process, so a reload sent while
// ampguard is still starting (loading modules, reading the kernel set) would
// kill it. Until the frontend has started, signals are remembered; once it
// has, a remembered stop wins over a remembered reload, which is applied then.
// This file imports nothing, so it is evaluated before the rest of the CLI.

interface SignalHandlers {
  reload(): void;
  stop(signal: 'SIGTERM' | 'SIGINT'): void;
}

let handlers: SignalHandlers | null = null;
let pendingReload = false;
let pendingStop: 'SIGTERM' | 'SIGINT' | null = null;

export function installEarlySignals(): void {
  process.on('SIGHUP', () => {
    if (handlers) handlers.reload();
    else pendingReload = true;
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (handlers) handlers.stop(signal);
      else pendingStop ??= signal;
    });
  }
}

/** Hands the signals to the started frontend and replays what arrived during the start. */
export function attachSignals(h: SignalHandlers): void {
  handlers = h;
  if (pendingStop) h.stop(pendingStop);
  else if (pendingReload) h.reload();
  pendingStop = null;
  pendingReload = false;
}
