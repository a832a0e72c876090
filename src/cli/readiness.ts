// systemd's readiness protocol (deploy/systemd/ampguard.service, Type=notify):
// READY=1 once ampguard serves and its signal handlers are attached, so systemd
// holds back a reload (SIGHUP) until the process can take it; STOPPING=1 when
// it stops. Sent by this process through the addon (systemd attributes the
// datagram to the main PID); without the addon, systemd-notify speaks for it
// (the unit's NotifyAccess=all admits that). Without NOTIFY_SOCKET, nothing.
import { spawnSync } from 'node:child_process';
import type { Logger } from 'pino';
import { loadNative } from '../native/index.js';

export function notifySystemd(state: 'READY=1' | 'STOPPING=1', log: Logger): void {
  const socket = process.env.NOTIFY_SOCKET;
  if (!socket) return;
  const message = `${state}\nMAINPID=${process.pid}`;
  const { binding } = loadNative();
  if (binding?.sdNotify) {
    const errno = binding.sdNotify(socket, message);
    if (errno !== 0) log.warn({ errno, state }, 'systemd notification not sent');
    return;
  }
  const r = spawnSync('systemd-notify', [`--pid=${process.pid}`, state], { timeout: 5000, stdio: 'ignore' });
  if (r.status !== 0) log.warn({ state, err: r.error?.message ?? `exit ${r.status}` }, 'systemd notification not sent');
}
