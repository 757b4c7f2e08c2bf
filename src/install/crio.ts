import { posix } from 'node:path';
import { ShimError } from '../errors';
import { isTable, parseToml, stringifyToml, tableAt, type TomlTable } from './toml';

/**
 * Wiring the handler into CRI-O: a drop-in of its own. CRI-O decodes its main
 * file and then every drop-in, in name order, into one configuration, key by
 * key, so a drop-in holding one runtime table adds that runtime and resets
 * nothing. The handler copies CRI-O's default runtime (its monitor settings
 * above all) with the shim as runtime_path. CRI-O copies every pod annotation
 * into config.json on its own: nothing to allow.
 */

export const CRIO_CONFIG = '/etc/crio/crio.conf';
export const CRIO_DROP_IN_DIR = '/etc/crio/crio.conf.d';
export const CRIO_DROP_IN = posix.join(CRIO_DROP_IN_DIR, '99-strict-groups.conf');
const MARKER = '# Written by strict-groups install.sh and removed by "install.sh --uninstall".';

export interface CrioFile {
  path: string;
  text: string;
}

export interface CrioRequest {
  handler: string;
  /** The shim's path as the host sees it. */
  runtimePath: string;
  /** Whether a runtime is on the host's PATH, for CRI-O's own lookup. */
  onPath: (name: string) => string | undefined;
}

export interface CrioPlan {
  copiedFrom: string;
  /** Whether a file names the default runtime (else it was inferred). */
  defaultNamed: boolean;
  /** The real runtime as the host sees it; undefined when CRI-O itself could not find it. */
  runtimeBinary: string | undefined;
  /** The drop-in's new text. */
  dropIn: string;
}

/** Whether `text` is a drop-in install.sh wrote. */
export function isOurDropIn(text: string): boolean {
  return text.startsWith(`${MARKER}\n`);
}

/**
 * The drop-in for `files`: CRI-O's main config and its drop-ins in the order
 * CRI-O reads them, without ours.
 */
export function planCrioInstall(files: readonly CrioFile[], request: CrioRequest): CrioPlan {
  const runtime: TomlTable = {};
  const runtimes: Record<string, TomlTable> = {};
  for (const file of files) {
    const section = tableAt(parseToml(file.text, file.path), ['crio', 'runtime']);
    if (section === undefined) continue;
    for (const [key, value] of Object.entries(section)) if (key !== 'runtimes') runtime[key] = value;
    for (const [name, table] of Object.entries(tableAt(section, ['runtimes']) ?? {})) {
      if (!isTable(table)) continue;
      if (name === request.handler) {
        throw new ShimError(`${file.path} already defines a runtime handler "${request.handler}"; remove it or choose another --handler`);
      }
      runtimes[name] = { ...runtimes[name], ...table };
    }
  }

  // CRI-O's own default is runc before 1.31 and crun since; which one this
  // node has is what its PATH says when no file names one.
  const named = typeof runtime['default_runtime'] === 'string' ? runtime['default_runtime'] : undefined;
  const copiedFrom = named ?? (runtimes['runc'] !== undefined || request.onPath('runc') !== undefined ? 'runc' : 'crun');
  const source = runtimes[copiedFrom] ?? {};
  const configuredPath = typeof source['runtime_path'] === 'string' && source['runtime_path'] !== '' ? source['runtime_path'] : undefined;
  const runtimeBinary = configuredPath ?? request.onPath(copiedFrom);
  // CRI-O runs a runtime with an empty or absent type as "oci".
  if (source['runtime_type'] !== undefined && source['runtime_type'] !== '' && source['runtime_type'] !== 'oci') {
    throw new ShimError(`CRI-O's default runtime "${copiedFrom}" is runtime_type "${String(source['runtime_type'])}", not "oci"; strict-groups wraps an OCI runtime`);
  }

  const { runtime_path: _path, runtime_type: _type, runtime_root: root, ...rest } = source;
  const handler: TomlTable = {
    runtime_path: request.runtimePath,
    runtime_type: 'oci',
    // The real runtime's state directory, as CRI-O would give it.
    runtime_root: typeof root === 'string' && root !== '' ? root : `/run/${copiedFrom}`,
    ...rest,
  };
  const body = stringifyToml({ crio: { runtime: { runtimes: { [request.handler]: handler } } } });
  return { copiedFrom, defaultNamed: named !== undefined, runtimeBinary, dropIn: `${MARKER}\n# Handler "${request.handler}": CRI-O's "${copiedFrom}" runtime with strict-groups-runtime in front.\n\n${body}` };
}
