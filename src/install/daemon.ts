import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ShimError, describe } from '../errors';
import { writeStdout } from '../log';
import { FEATURE_FILE, featureFile } from './advertise';
import { Host } from './host';
import { INSTALLED_BINARY, runInstall, type InstallRun } from './install';
import { INSTALLED_RECORD, installedRecord } from './installed-record';
import { RESTART_PENDING, restartIfNeeded, type CriService, type RestartOutcome } from './restart';

/**
 * `strict-groups-runtime strict-groups daemonset install|uninstall`: what the
 * installer and cleanup DaemonSets run (deploy/), inside the host root: the
 * image's entrypoint runs the installed binary, or a copy it staged on the
 * host, chrooted into the host's /, so it runs on the host's C library and
 * talks to the host's systemd.
 *
 * It does its work once, changing only what differs (a second start, or a
 * rollout of the same version, changes no byte and restarts nothing), then
 * stays up until SIGTERM, which rollouts and drains send: the node stays as
 * it is and the process exits at once. A failure exits 1, so that the pod
 * shows it and the kubelet starts it again.
 */

export const DAEMONSET_USAGE = `usage: strict-groups-runtime strict-groups daemonset install|uninstall [options]

  install     install and wire the handler (as install.sh does), restart the
              CRI runtime through the host's systemd if its configuration
              changed, record the version and advertise the node to Node
              Feature Discovery; then stay up until SIGTERM
  uninstall   stop advertising, take the handler out, restart if that changed
              the configuration; then stay up until SIGTERM

options (as for install):
  --host-root DIR      where the host's / is (default /, as the image's
                       entrypoint runs it: chrooted into the host)
  --cri CRI            auto (default), containerd or crio
  --handler NAME       the runtime handler name (default strict-groups)
  --runtime PATH       the real OCI runtime, if config.json is written
  --containerd-defaults FILE
`;

const TERMINATING = ['SIGTERM', 'SIGINT'] as const;

/**
 * Where the image's entrypoint stages this binary when the installed one is
 * not the image's (deploy/entrypoint.sh). Once it is, the entrypoint runs the
 * installed binary and stages nothing, provided no directory on the way to
 * it is a symlink (it looks from the container, where a host's absolute link
 * would mislead it); under the same condition the staged copy is removed here.
 */
const STAGED_BINARY = '/var/lib/strict-groups/daemonset/strict-groups-runtime';
const INSTALLED_DIRS = ['/usr', '/usr/local', '/usr/local/bin'];

interface DaemonSetOptions {
  mode: 'install' | 'uninstall';
  /** For runInstall, --host-root included. */
  installArgs: string[];
}

export function parseDaemonSetArgs(args: readonly string[]): DaemonSetOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        'host-root': { type: 'string', default: '/' },
        cri: { type: 'string' },
        handler: { type: 'string' },
        runtime: { type: 'string' },
        'containerd-defaults': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new ShimError(`daemonset: ${describe(err)}\n\n${DAEMONSET_USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  const [mode, ...extra] = positionals;
  if ((mode !== 'install' && mode !== 'uninstall') || extra.length > 0) {
    throw new ShimError(`daemonset: say install or uninstall${mode === undefined ? '' : `, not ${[mode, ...extra].join(' ')}`}\n\n${DAEMONSET_USAGE}`);
  }
  const installArgs = ['--host-root', values['host-root']];
  for (const name of ['cri', 'handler', 'runtime', 'containerd-defaults'] as const) {
    const value = values[name];
    if (value !== undefined) installArgs.push(`--${name}`, value);
  }
  if (mode === 'uninstall') installArgs.push('--uninstall');
  return { mode, installArgs };
}

export async function runDaemonSet(args: readonly string[], selfPath: string, version: string): Promise<void> {
  const options = parseDaemonSetArgs(args);
  if (options === 'help') {
    writeStdout(DAEMONSET_USAGE);
    return;
  }
  // Listening before the work starts: a SIGTERM that comes meanwhile waits
  // for the work (every write is atomic and sync) and then ends the process.
  const termination = untilTerminated();
  try {
    say(`${options.mode}: strict-groups-runtime ${version}, running as ${selfPath}`);
    if (options.mode === 'install') {
      runInstall(options.installArgs, selfPath, (run) => finishInstall(run, selfPath, version));
      dropStagedCopy(hostOf(options.installArgs), selfPath);
      say('installed; staying up until SIGTERM (a rollout or a drain leaves the node installed)');
    } else {
      removeAdvertisement(options.installArgs);
      runInstall(options.installArgs, selfPath, (run) => reportRestart(restartIfNeeded(run.host, serviceOf(run), run.changed)));
      dropStagedCopy(hostOf(options.installArgs), selfPath);
      say('uninstalled: finished on this node; staying up so that this shows; delete the DaemonSet (kubectl delete -f deploy/cleanup.yaml)');
    }
  } catch (err) {
    termination.cancel();
    throw err;
  }
  const signal = await termination.signal;
  say(`${signal}: exiting${options.mode === 'install' ? '; the node stays installed' : ''}`);
}

function finishInstall(run: InstallRun, selfPath: string, version: string): void {
  // The binary is in place whether or not the runtime restarts.
  writeIfChanged(run.host, INSTALLED_RECORD, installedRecord({ version, binary: INSTALLED_BINARY, sha256: sha256Of(selfPath) }), `(version ${version})`);
  reportRestart(restartIfNeeded(run.host, serviceOf(run), run.changed));
  // Advertised only once the restart went through or cannot happen here
  // (said above): a failed restart has thrown, and the pod tries again.
  writeIfChanged(run.host, FEATURE_FILE, featureFile(run.handler, version), `(node labels for handler "${run.handler}", read by Node Feature Discovery)`);
}

/** Takes the feature file away first, so that no pod is sent to the node while the handler goes. */
function removeAdvertisement(installArgs: readonly string[]): void {
  const host = hostOf(installArgs);
  if (host.readText(FEATURE_FILE) === null) {
    line('unchanged', `${FEATURE_FILE} (not there)`);
    return;
  }
  host.remove(FEATURE_FILE);
  line('removed', `${FEATURE_FILE} (Node Feature Discovery drops the node's labels)`);
}

/** The host runInstall will make of --host-root, for the step that comes before it. */
function hostOf(installArgs: readonly string[]): Host {
  const root = installArgs[installArgs.indexOf('--host-root') + 1]!;
  if (!root.startsWith('/')) throw new ShimError(`daemonset: --host-root must be an absolute path, not ${root}`);
  return new Host(root === '/' ? '/' : root.replace(/\/+$/, ''));
}

/** The entrypoint's staged copy, once the installed binary is the same and the next start will run that. */
function dropStagedCopy(host: Host, selfPath: string): void {
  if (host.root !== '/' || selfPath !== STAGED_BINARY) return;
  if (!host.sameFile(INSTALLED_BINARY, selfPath)) return;
  if (INSTALLED_DIRS.some((dir) => lstatSync(host.local(dir)).isSymbolicLink())) return;
  host.remove(STAGED_BINARY);
  line('removed', `${STAGED_BINARY} (the image's entrypoint staged it; the next start runs ${INSTALLED_BINARY}, the same binary)`);
}

function serviceOf(run: InstallRun): CriService {
  return run.cri === 'containerd' ? 'containerd' : 'crio';
}

function reportRestart(outcome: RestartOutcome): void {
  switch (outcome.kind) {
    case 'not-needed':
      line('unchanged', 'nothing to restart');
      return;
    case 'restarted':
      line('restarted', `${outcome.service} through the host's systemd${outcome.pendingBefore ? ' (a change from an earlier start was pending)' : ''}`);
      return;
    case 'impossible':
      line('not restarted', `${outcome.service}: ${outcome.why}`);
      line('note', `restart ${outcome.service} on the host for the change to take effect; until a restart from here succeeds, ${RESTART_PENDING} keeps it pending`);
      return;
  }
}

function writeIfChanged(host: Host, path: string, content: string, about: string): void {
  if (host.readText(path) === content) {
    line('unchanged', path);
    return;
  }
  const existed = host.readText(path) !== null;
  host.write(path, content, 0o644);
  line(existed ? 'rewrote' : 'wrote', `${path} ${about}`);
}

function sha256Of(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = readSync(fd, buffer)) > 0; ) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Resolves with the first terminating signal; keeps the process alive until then. */
function untilTerminated(): { signal: Promise<NodeJS.Signals>; cancel(): void } {
  // Signal listeners do not keep Node's event loop alive; this timer does.
  const keepAlive = setInterval(() => {}, 2 ** 30);
  let stop: (signal: NodeJS.Signals) => void = () => {};
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    stop = resolve;
  });
  const onSignal = (received: NodeJS.Signals): void => {
    cancel();
    stop(received);
  };
  const cancel = (): void => {
    clearInterval(keepAlive);
    for (const name of TERMINATING) process.removeListener(name, onSignal);
  };
  for (const name of TERMINATING) process.on(name, onSignal);
  return { signal, cancel };
}

function say(text: string): void {
  writeStdout(`strict-groups daemonset ${text}\n`);
}

/** A step, in the installer's report format. */
function line(verb: string, what: string): void {
  writeStdout(`  ${verb.padEnd(13)} ${what}\n`);
}
