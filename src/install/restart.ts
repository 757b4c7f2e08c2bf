import { execFileSync } from 'node:child_process';
import { ShimError, describe } from '../errors';
import type { Host } from './host';

/**
 * Restarting the CRI runtime from the installer DaemonSet: through the host's
 * systemd (its PID 1), with the host's own systemctl, only when the runtime's
 * configuration changed, and never with SIGHUP (containerd exits on it).
 *
 * A change whose restart did not happen (the pod was killed in between, the
 * restart failed, or the host has no systemd) is remembered on the host, so
 * that the next start restarts even though it finds nothing to change: the
 * handler is not live until the runtime has read the new configuration.
 */

export type CriService = 'containerd' | 'crio';

/** Holds the service's name while its configuration has changed and it was not restarted since. */
export const RESTART_PENDING = '/var/lib/strict-groups/restart-pending';

export type RestartOutcome =
  | { kind: 'not-needed' }
  | { kind: 'restarted'; service: CriService; pendingBefore: boolean }
  /** Reported, not fatal: the change stays pending on the host for a later start or for the operator. */
  | { kind: 'impossible'; service: CriService; why: string };

/** Whether to restart: a change now, or one an earlier start could not restart for. */
export function restartNeeded(changed: boolean, pending: boolean): boolean {
  return changed || pending;
}

/**
 * The host's systemctl, told not to second-guess where it runs: in what it
 * takes for a chroot (/ is not PID 1's root, or /proc is missing) systemctl
 * skips start and restart, says "Running in chroot, ignoring command" and
 * exits 0 having done nothing (src/shared/verbs.c). From the DaemonSet it does
 * run in a chroot, of the host's own root, and must act. Each variable turns
 * the check off in the systemd versions that read it: SYSTEMD_OFFLINE=0 (read
 * first), SYSTEMD_IGNORE_CHROOT=1 (older), SYSTEMD_IN_CHROOT=0 (257+).
 */
export function systemctlTryRestart(systemctl: string, service: CriService): { file: string; args: string[]; env: Record<string, string> } {
  return {
    file: systemctl,
    // try-restart: a runtime that is stopped stays stopped and reads the new configuration when started.
    args: ['try-restart', `${service}.service`],
    env: { SYSTEMD_OFFLINE: '0', SYSTEMD_IGNORE_CHROOT: '1', SYSTEMD_IN_CHROOT: '0' },
  };
}

export type CommandRunner = (file: string, args: readonly string[], env: Record<string, string>) => void;

function runCommand(file: string, args: readonly string[], env: Record<string, string>): void {
  try {
    execFileSync(file, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000, env: { ...process.env, ...env } });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString('utf8').trim();
    throw new ShimError(`${file} ${args.join(' ')} failed: ${stderr || describe(err)}`);
  }
}

/**
 * Restarts `service` when `changed` or an earlier change is pending. The
 * pending mark is written before trying and removed only after a restart that
 * succeeded; a failed restart throws (the pod restarts and tries again).
 */
export function restartIfNeeded(host: Host, service: CriService, changed: boolean, run: CommandRunner = runCommand): RestartOutcome {
  const pendingBefore = host.readText(RESTART_PENDING) !== null;
  if (!restartNeeded(changed, pendingBefore)) return { kind: 'not-needed' };
  if (host.readText(RESTART_PENDING) !== `${service}\n`) host.write(RESTART_PENDING, `${service}\n`, 0o644);

  if (host.root !== '/') {
    return { kind: 'impossible', service, why: `the host root is ${host.root}, not /: only a process in the host root talks to the host's systemd (the image's entrypoint runs the daemon there)` };
  }
  // systemd's own test for having booted the system (sd_booted).
  if (!host.exists('/run/systemd/system')) {
    return { kind: 'impossible', service, why: 'no systemd on this host (no /run/systemd/system)' };
  }
  const systemctl = host.onPath('systemctl');
  if (systemctl === undefined) throw new ShimError(`systemd runs on this host but there is no systemctl on its PATH to restart ${service} with`);
  const command = systemctlTryRestart(systemctl, service);
  run(command.file, command.args, command.env);
  host.remove(RESTART_PENDING);
  return { kind: 'restarted', service, pendingBefore };
}
