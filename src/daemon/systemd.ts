/**
 * sd_notify(3) without a native module: when systemd started us with Type=notify it sets
 * NOTIFY_SOCKET, and `systemd-notify` (shipped with systemd) delivers the datagram. The unit file
 * sets NotifyAccess=all so the helper process may speak for the service.
 */
import { execFile } from 'node:child_process';
import type { Logger } from '../logging/logger';

/** Send `READY=1`, `STOPPING=1`, `STATUS=...` and the like; a no-op outside systemd. */
export function sdNotify(fields: Record<string, string>, logger?: Logger): Promise<void> {
  const socket = process.env.NOTIFY_SOCKET;
  if (!socket) return Promise.resolve();
  const args = Object.entries(fields).map(([k, v]) => `${k}=${v}`);
  return new Promise((resolve) => {
    execFile('systemd-notify', args, { timeout: 5000, env: process.env }, (err) => {
      if (err) logger?.warn({ err: err.message, fields }, 'systemd-notify failed');
      resolve();
    });
  });
}
