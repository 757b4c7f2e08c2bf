import { posix } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULTS, DEFAULT_CONFIG_PATH } from '../config';
import { ShimError, describe, quoted } from '../errors';
import { writeStdout } from '../log';
import { HANDLER_LABEL } from './advertise';
import { planContainerdInstall, planContainerdUninstall, type ContainerdPlan, type FileEdit } from './containerd';
import { loadContainerdConfig } from './containerd-files';
import { ruleWords, versionFromOutput, versionOption, type ContainerdVersion } from './containerd-version';
import { CRIO_CONFIG, CRIO_DROP_IN, CRIO_DROP_IN_DIR, isOurDropIn, planCrioInstall } from './crio';
import { Host, readLocalFile } from './host';
import { lineDiff } from './line-diff';
import { parseToml, type TomlTable } from './toml';

/**
 * `strict-groups-runtime strict-groups install`, what install.sh runs: puts
 * this binary on the node, writes the node configuration when there is none,
 * and wires the runtime handler into containerd or CRI-O. Every step says what
 * it did, or with --dry-run what it would do; a step with nothing to do says
 * so, so a second run changes nothing and says that.
 */

export const INSTALLED_BINARY = '/usr/local/bin/strict-groups-runtime';
const CONTAINERD_CONFIG = '/etc/containerd/config.toml';
/**
 * Originals are kept here, under their own path: never beside them, where
 * containerd's import globs and CRI-O's drop-in directory would read a
 * backup as configuration.
 */
const BACKUP_DIR = '/var/lib/strict-groups/backup';
const MAX_BINARY_BYTES = 512 * 1024 * 1024;

export const INSTALL_USAGE = `usage: install.sh [options]     (strict-groups-runtime strict-groups install [options])

  --host-root DIR      where the host's / is mounted (default /); paths written
                       into configuration are the host's view
  --cri CRI            auto (default), containerd or crio
  --runtime PATH       the real OCI runtime (default: the one the node's runc
                       handler uses); only used when config.json is written
  --handler NAME       the runtime handler name (default strict-groups)
  --containerd-version VERSION
                       the node's containerd version (as "containerd --version"
                       prints it, e.g. 1.7.24), when install.sh cannot run it
                       itself; it decides how imports combine (1.x: replace,
                       2.0+: merge)
  --containerd-defaults FILE
                       the output of the node's "containerd config default",
                       when install.sh cannot run it itself
  --no-restart         do not restart the CRI runtime
  --dry-run            show what would change; change nothing
  --uninstall          take the handler out again
`;

interface Options {
  host: Host;
  cri: 'containerd' | 'crio';
  handler: string;
  runtime: string | undefined;
  containerdDefaults: string | undefined;
  containerdVersion: ContainerdVersion | undefined;
  restart: boolean;
  dryRun: boolean;
}

/** What an install or uninstall did, for what follows it. */
export interface InstallRun {
  host: Host;
  cri: 'containerd' | 'crio';
  handler: string;
  /** Whether the CRI runtime's configuration changed. */
  changed: boolean;
}

/**
 * `finish` replaces the restart step: the installer DaemonSet restarts through
 * its own path, then advertises the node (src/install/daemon.ts).
 */
export function runInstall(args: readonly string[], selfPath: string, finish?: (run: InstallRun) => void): InstallRun | undefined {
  const options = parseOptions(args);
  if (options === 'help') {
    writeStdout(INSTALL_USAGE);
    return undefined;
  }
  const uninstall = options.uninstall;
  const report = new Report(options.dryRun);
  report.heading(`strict-groups ${uninstall ? 'uninstall' : 'install'}: ${options.cri}, handler "${options.handler}", host root ${options.host.root}${options.dryRun ? ' (dry run: nothing is changed)' : ''}`);
  const changed = uninstall ? uninstallHandler(options, report) : installAll(options, selfPath, report);
  const run: InstallRun = { host: options.host, cri: options.cri, handler: options.handler, changed };
  if (finish !== undefined) finish(run);
  else restartCri(options, changed, report);
  if (!uninstall) {
    report.next(`kubectl apply -f runtimeclass.yaml   (RuntimeClass "${options.handler}" with handler "${options.handler}")`);
    report.next(`kubectl label node <this node> ${HANDLER_LABEL}=${options.handler}   (the RuntimeClass sends pods only to nodes with it; the installer DaemonSet sets it through Node Feature Discovery)`);
  } else {
    report.next(`${INSTALLED_BINARY} and ${posix.dirname(DEFAULT_CONFIG_PATH)}/ are kept: containers started through the handler need the binary to stop. Remove them once no such container is left, and delete the RuntimeClass.`);
  }
  return run;
}

function parseOptions(args: readonly string[]): (Options & { uninstall: boolean }) | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        'host-root': { type: 'string', default: '/' },
        cri: { type: 'string', default: 'auto' },
        runtime: { type: 'string' },
        handler: { type: 'string', default: 'strict-groups' },
        'containerd-defaults': { type: 'string' },
        'containerd-version': { type: 'string' },
        'no-restart': { type: 'boolean', default: false },
        'dry-run': { type: 'boolean', default: false },
        uninstall: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ShimError(`install: ${describe(err)}\n\n${INSTALL_USAGE}`);
  }
  if (values.help) return 'help';
  const hostRoot = values['host-root'];
  if (!hostRoot.startsWith('/')) throw new ShimError(`install: --host-root must be an absolute path, not ${hostRoot}`);
  // A RuntimeClass handler must be a DNS label.
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(values.handler)) {
    throw new ShimError(`install: --handler ${JSON.stringify(values.handler)} is not a DNS label (lowercase letters, digits and "-", at most 63)`);
  }
  if (values.runtime !== undefined && !values.runtime.startsWith('/')) {
    throw new ShimError(`install: --runtime must be an absolute path on the host, not ${values.runtime}`);
  }
  if (!values['dry-run'] && process.geteuid?.() !== 0) throw new ShimError('install: run as root (or with --dry-run)');
  const host = new Host(hostRoot === '/' ? '/' : hostRoot.replace(/\/+$/, ''));
  return {
    host,
    cri: chooseCri(values.cri, host),
    handler: values.handler,
    runtime: values.runtime,
    containerdDefaults: values['containerd-defaults'],
    containerdVersion: values['containerd-version'] === undefined ? undefined : versionOption(values['containerd-version']),
    restart: !values['no-restart'],
    dryRun: values['dry-run'],
    uninstall: values.uninstall,
  };
}

function chooseCri(wanted: string, host: Host): 'containerd' | 'crio' {
  if (wanted === 'containerd' || wanted === 'crio') return wanted;
  if (wanted !== 'auto') throw new ShimError(`install: --cri must be auto, containerd or crio, not ${wanted}`);
  const containerd = host.exists('/etc/containerd') || host.onPath('containerd') !== undefined;
  const crio = host.exists('/etc/crio') || host.onPath('crio') !== undefined;
  if (containerd && crio) throw new ShimError('install: both containerd and CRI-O are on this host; choose one with --cri');
  if (containerd) return 'containerd';
  if (crio) return 'crio';
  throw new ShimError(`install: neither containerd nor CRI-O found under ${host.root} (no /etc/containerd, /etc/crio or binary on PATH); use --cri`);
}

/**
 * One thing the installer does, or found done. Nothing is written until every
 * step is planned and every path it writes is known to be writable, so a
 * refusal leaves the host as it was.
 */
type Step =
  | { kind: 'change'; verb: keyof typeof PLANNED; what: string; writes: string[]; apply: () => void; diff?: string[] }
  | { kind: 'unchanged'; what: string }
  | { kind: 'note'; text: string };

/** Returns whether the CRI runtime's configuration changed. */
function installAll(options: Options, selfPath: string, report: Report): boolean {
  const binary = binarySteps(options, selfPath);
  const wiring = options.cri === 'containerd' ? containerdInstall(options) : crioInstall(options);
  const steps = [
    ...binary,
    ...nodeConfigSteps(options, wiring.runtime),
    ...wiring.notes.map((text): Step => ({ kind: 'note', text })),
    ...editSteps(options, wiring.edits),
  ];
  carryOut(options, steps, report);
  return wiring.edits.length > 0;
}

function binarySteps({ host }: Options, selfPath: string): Step[] {
  if (host.sameFile(INSTALLED_BINARY, selfPath)) return [{ kind: 'unchanged', what: INSTALLED_BINARY }];
  return [{
    kind: 'change',
    verb: 'installed',
    what: INSTALLED_BINARY,
    writes: [INSTALLED_BINARY],
    apply: () => host.write(INSTALLED_BINARY, readLocalFile(selfPath, MAX_BINARY_BYTES), 0o755),
  }];
}

interface Wiring {
  edits: FileEdit[];
  /** The real runtime the node's handler uses, as the host sees it; found only when config.json needs it. */
  runtime: () => string;
  notes: string[];
}

function containerdInstall(options: Options): Wiring {
  const { host } = options;
  const loaded = loadContainerdConfig(hostReader(host), CONTAINERD_CONFIG);
  const version = nodeContainerdVersion(options);
  const plan = planContainerdInstall(loaded, {
    handler: options.handler,
    binaryName: INSTALLED_BINARY,
    defaults: containerdDefaults(options),
    containerd: version.version,
    ...(version.unknown === undefined ? {} : { versionUnknown: version.unknown }),
  });
  const notes = [
    `${versionNote(plan, version.from)}; config version ${plan.version}`,
    `the handler goes into ${plan.target} (${plan.plugin}): ${plan.targetReason}`,
    `settings copied from handler "${plan.copiedFrom}"${plan.wroteDefaultHandler ? `, which was implicit and is now written out so that containerd keeps it` : ''}`,
  ];
  // containerd's shim runs BinaryName, or "runc", through its PATH.
  const binary = plan.runtimeBinary || 'runc';
  return { edits: plan.edits, runtime: () => realRuntime(options, binary.includes('/') ? binary : host.onPath(binary), `the "${plan.copiedFrom}" handler`), notes };
}

/**
 * The node's containerd version: --containerd-version, else what the host's
 * containerd says (run inside the host root, like "config default"), else
 * unknown with the reason, which the plan names if the version matters.
 */
function nodeContainerdVersion({ host, containerdVersion }: Options): { version: ContainerdVersion | undefined; from?: string; unknown?: string } {
  if (containerdVersion !== undefined) return { version: containerdVersion, from: '--containerd-version' };
  const containerd = host.onPath('containerd');
  if (containerd === undefined) return { version: undefined, unknown: `no containerd on the host's PATH${host.root === '/' ? '' : ` under ${host.root}`}` };
  let output: string;
  try {
    output = host.run(containerd, ['--version']);
  } catch (err) {
    return { version: undefined, unknown: `"${containerd} --version" failed${host.root === '/' ? '' : ` inside ${host.root}`}: ${describe(err).split('\n')[0]}` };
  }
  const version = versionFromOutput(output);
  if (version === undefined) return { version: undefined, unknown: `"${containerd} --version" printed ${quoted(output.trim())}` };
  return { version, from: `"${containerd} --version"${host.root === '/' ? '' : ` in ${host.root}`}` };
}

/** Which containerd the plan was made for, how that was known, and what it does with imports. */
function versionNote(plan: ContainerdPlan, from: string | undefined): string {
  if (plan.rule === undefined) return plan.ruleFrom;
  return `${plan.ruleFrom}${from === undefined ? '' : ` (${from})`}: ${ruleWords(plan.rule)}`;
}

function containerdDefaults({ host, containerdDefaults: file }: Options): TomlTable | undefined {
  if (file !== undefined) return parseToml(readLocalFile(file, 4 * 1024 * 1024).toString('utf8'), file);
  const containerd = host.onPath('containerd');
  if (containerd === undefined) return undefined;
  try {
    return parseToml(host.run(containerd, ['config', 'default']), `${containerd} config default`);
  } catch {
    // Only needed when the configuration leaves the runc handler implicit;
    // that case stops with a message saying so.
    return undefined;
  }
}

function crioInstall(options: Options): Wiring {
  const { host } = options;
  const ours = host.readText(CRIO_DROP_IN);
  if (ours !== null && !isOurDropIn(ours)) throw new ShimError(`${CRIO_DROP_IN} exists and was not written by install.sh; move it away first`);
  const files = [CRIO_CONFIG, ...host.list(CRIO_DROP_IN_DIR).sort().map((name) => `${CRIO_DROP_IN_DIR}/${name}`)]
    .filter((path) => path !== CRIO_DROP_IN)
    .flatMap((path) => {
      const text = host.readText(path);
      return text === null ? [] : [{ path, text }];
    });
  const plan = planCrioInstall(files, { handler: options.handler, runtimePath: INSTALLED_BINARY, onPath: (name) => host.onPath(name) });
  const edits = ours === plan.dropIn ? [] : [{ path: CRIO_DROP_IN, before: ours, after: plan.dropIn }];
  return {
    edits,
    runtime: () => realRuntime(options, plan.runtimeBinary, `CRI-O's "${plan.copiedFrom}" runtime`),
    notes: [
      `settings copied from CRI-O's runtime "${plan.copiedFrom}"${plan.defaultNamed ? '' : ' (no default_runtime is set: CRI-O before 1.31 defaults to runc, 1.31+ to crun; set it to be sure)'}`,
    ],
  };
}

function realRuntime({ host, runtime }: Options, found: string | undefined, what: string): string {
  const chosen = runtime ?? found;
  if (chosen === undefined) throw new ShimError(`cannot find the real runtime of ${what} on the host's PATH; pass --runtime PATH`);
  if (chosen === INSTALLED_BINARY) throw new ShimError(`${what} already runs ${INSTALLED_BINARY}; pass the real runtime with --runtime PATH`);
  if (!host.isExecutable(chosen)) throw new ShimError(`the real runtime ${chosen} (${runtime === undefined ? what : '--runtime'}) is not an executable file on the host`);
  return chosen;
}

function nodeConfigSteps({ host, runtime: asked }: Options, findRuntime: () => string): Step[] {
  if (host.readText(DEFAULT_CONFIG_PATH) !== null) {
    const steps: Step[] = [{ kind: 'unchanged', what: `${DEFAULT_CONFIG_PATH} (it exists; its settings stay the operator's)` }];
    if (asked !== undefined) steps.push({ kind: 'note', text: `--runtime ${asked} was not written: ${DEFAULT_CONFIG_PATH} already exists` });
    return steps;
  }
  const config = { ...DEFAULTS, runtime: findRuntime() };
  return [{
    kind: 'change',
    verb: 'wrote',
    what: `${DEFAULT_CONFIG_PATH} (runtime ${config.runtime}, defaultPolicy ${config.defaultPolicy})`,
    writes: [DEFAULT_CONFIG_PATH],
    apply: () => host.write(DEFAULT_CONFIG_PATH, JSON.stringify(config, null, 2) + '\n', 0o644),
  }];
}

function uninstallHandler(options: Options, report: Report): boolean {
  const { host } = options;
  let edits: FileEdit[];
  if (options.cri === 'containerd') {
    edits = planContainerdUninstall(loadContainerdConfig(hostReader(host), CONTAINERD_CONFIG));
  } else {
    const ours = host.readText(CRIO_DROP_IN);
    if (ours !== null && !isOurDropIn(ours)) throw new ShimError(`${CRIO_DROP_IN} was not written by install.sh; leaving it`);
    edits = ours === null ? [] : [{ path: CRIO_DROP_IN, before: ours, after: null }];
  }
  const nothing: Step = { kind: 'unchanged', what: `no handler installed by install.sh in the ${options.cri} configuration` };
  carryOut(options, edits.length === 0 ? [nothing] : editSteps(options, edits), report);
  return edits.length > 0;
}

/** Each edit as steps; a file's original is kept once, as a backup, until the file is the original again. */
function editSteps({ host }: Options, edits: readonly FileEdit[]): Step[] {
  if (edits.length === 0) return [{ kind: 'unchanged', what: 'CRI runtime configuration' }];
  return edits.flatMap((edit): Step[] => {
    const backup = posix.join(BACKUP_DIR, edit.path);
    const backupText = host.readText(backup);
    const diff = lineDiff(edit.before ?? '', edit.after ?? '');
    const steps: Step[] = [];
    if (edit.after === null) {
      steps.push({ kind: 'change', verb: 'removed', what: edit.path, writes: [edit.path], apply: () => host.remove(edit.path), diff });
    } else {
      const { after } = edit;
      // The CRI-O drop-in is wholly ours: there is no original to keep.
      const keepBackup = edit.before !== null && backupText === null && edit.path !== CRIO_DROP_IN ? edit.before : undefined;
      steps.push({
        kind: 'change',
        verb: edit.before === null ? 'created' : 'edited',
        what: edit.path + (keepBackup !== undefined ? ` (original kept as ${backup})` : ''),
        writes: keepBackup !== undefined ? [backup, edit.path] : [edit.path],
        apply: () => {
          if (keepBackup !== undefined) host.write(backup, keepBackup, 0o600);
          host.write(edit.path, after, 0o644);
        },
        diff,
      });
    }
    if (backupText !== null && (edit.after ?? '') === backupText) {
      steps.push({ kind: 'change', verb: 'removed', what: `${backup} (the file is the original again)`, writes: [backup], apply: () => host.remove(backup) });
    }
    return steps;
  });
}

/** Checks every write, then carries the steps out (or, in a dry run, only shows them). */
function carryOut({ host, dryRun }: Options, steps: readonly Step[], report: Report): void {
  for (const step of steps) if (step.kind === 'change') for (const path of step.writes) host.assertWritable(path);
  for (const step of steps) {
    if (step.kind === 'unchanged') report.unchanged(step.what);
    else if (step.kind === 'note') report.note(step.text);
    else {
      if (!dryRun) step.apply();
      report.did(step.verb, step.what);
      if (step.diff !== undefined) report.diff(step.diff);
    }
  }
}

function restartCri({ host, cri, restart, dryRun }: Options, changed: boolean, report: Report): void {
  const service = cri === 'containerd' ? 'containerd' : 'crio';
  if (!changed) return;
  if (!restart || dryRun) {
    report.next(`restart ${service} to apply: systemctl restart ${service}`);
    return;
  }
  if (host.restart(service) === 'restarted') {
    report.did('restarted', `${service} (if it was running)`);
  } else {
    report.next(`restart ${service} on the host to apply (no systemd here${host.root === '/' ? '' : ` or the host root is not /`})`);
  }
}

function hostReader(host: Host): { read(path: string): string | null; list(dir: string): string[] } {
  return { read: (path) => host.readText(path), list: (dir) => host.list(dir) };
}

const PLANNED = {
  installed: 'would install',
  wrote: 'would write',
  created: 'would create',
  edited: 'would edit',
  removed: 'would remove',
  restarted: 'would restart',
} as const;

/** What the installer tells the operator, on stdout, line by line. */
class Report {
  private readonly dryRun: boolean;
  private nextShown = false;

  constructor(dryRun: boolean) {
    this.dryRun = dryRun;
  }

  heading(text: string): void {
    writeStdout(`${text}\n`);
  }
  did(verb: keyof typeof PLANNED, what: string): void {
    writeStdout(`  ${(this.dryRun ? PLANNED[verb] : verb).padEnd(13)} ${what}\n`);
  }
  unchanged(what: string): void {
    writeStdout(`  ${'unchanged'.padEnd(13)} ${what}\n`);
  }
  note(text: string): void {
    writeStdout(`  ${'note'.padEnd(13)} ${text}\n`);
  }
  diff(lines: readonly string[]): void {
    for (const line of lines) writeStdout(`      ${line}\n`);
  }
  next(text: string): void {
    if (!this.nextShown) writeStdout('next:\n');
    this.nextShown = true;
    writeStdout(`  ${text}\n`);
  }
}
