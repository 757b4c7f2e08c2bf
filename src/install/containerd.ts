import { posix } from 'node:path';
import { ShimError } from '../errors';
import { appendBlock, blockBodies, stripBlocks } from './managed-block';
import { canonicalToml, isTable, parseToml, stringifyToml, tableAt, withValueAt, type TomlTable } from './toml';

/**
 * Wiring the handler into containerd's configuration, as pure functions over
 * the files' texts. containerd before 2.1 merges `imports` by replacing each
 * plugin's whole section with the imported file's, so a drop-in holding only
 * the new runtime would reset the CRI plugin (sandbox image, snapshotter, the
 * runc handler's SystemdCgroup) to defaults. The handler therefore goes into
 * the file whose CRI section containerd actually uses, as a marked block that
 * uninstall removes again byte for byte.
 */

export const POD_ANNOTATIONS_GLOB = 'strict-groups.io/*';
const RUNC_V2 = 'io.containerd.runc.v2';

/** Where the CRI runtime handlers live, by config version. */
const CRI_PLUGIN: Readonly<Record<number, string>> = {
  2: 'io.containerd.grpc.v1.cri', // containerd 1.x
  3: 'io.containerd.cri.v1.runtime', // containerd 2.x
};

export interface ConfigFile {
  path: string;
  /** null: the file does not exist (only ever the main config). */
  text: string | null;
}

export interface LoadedFile extends ConfigFile {
  table: TomlTable;
  /** Its own `version`, else the main file's. */
  version: number;
}

/** What the loader needs from the (host's) file system. */
export interface ConfigReader {
  /** The file's text, or null when it does not exist. */
  read(path: string): string | null;
  /** The names in a directory, or [] when it does not exist. */
  list(dir: string): string[];
}

/**
 * The files containerd loads, in its order: the main config, then imports
 * breadth first, each path once. Relative imports are relative to the
 * importing file; a `*` makes it a glob (Go's filepath.Glob, whose matches
 * are sorted). A named import that is missing stops containerd, so it stops
 * the installer too.
 */
export function loadContainerdConfig(reader: ConfigReader, mainPath: string): LoadedFile[] {
  const mainText = reader.read(mainPath);
  const main = mainText === null ? {} : parseToml(mainText, mainPath);
  const disabled = main['disabled_plugins'];
  if (Array.isArray(disabled) && disabled.some((name) => name === 'cri' || (typeof name === 'string' && Object.values(CRI_PLUGIN).includes(name)))) {
    throw new ShimError(`${mainPath}: the CRI plugin is disabled (disabled_plugins), so no kubelet uses this containerd; enable CRI first`);
  }
  const mainVersion = configVersion(main, mainPath, mainText === null);
  const files: LoadedFile[] = [{ path: mainPath, text: mainText, table: main, version: mainVersion }];
  const seen = new Set([mainPath]);
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!;
    for (const path of resolveImports(file, reader)) {
      if (seen.has(path)) continue;
      seen.add(path);
      const text = reader.read(path);
      if (text === null) throw new ShimError(`${file.path} imports ${path}, which does not exist; containerd would not start`);
      const table = parseToml(text, path);
      files.push({ path, text, table, version: table['version'] === undefined ? mainVersion : configVersion(table, path, false) });
    }
  }
  return files;
}

function configVersion(table: TomlTable, path: string, absent: boolean): number {
  // An absent main config is containerd's defaults: version 2 on 1.x, 3 on
  // 2.x. The caller learns which from `containerd config default`.
  if (absent) return 0;
  const version = table['version'];
  if (version === 2n || version === 3n) return Number(version);
  if (version === undefined || version === 1n) {
    throw new ShimError(`${path}: config version 1 is not supported; convert it to version 2 (containerd 1.x) first`);
  }
  throw new ShimError(`${path}: unknown config version ${String(version)}`);
}

function resolveImports(file: LoadedFile, reader: ConfigReader): string[] {
  const imports = file.table['imports'];
  if (imports === undefined) return [];
  if (!Array.isArray(imports) || !imports.every((entry) => typeof entry === 'string')) {
    throw new ShimError(`${file.path}: imports must be a list of paths`);
  }
  return imports.flatMap((entry) => {
    const path = posix.resolve(posix.dirname(file.path), entry);
    return path.includes('*') ? glob(path, reader, file.path) : [path];
  });
}

/** filepath.Glob for the shape containerd drop-ins take: wildcards in the last name only. */
function glob(pattern: string, reader: ConfigReader, importer: string): string[] {
  const dir = posix.dirname(pattern);
  if (/[*?[]/.test(dir)) throw new ShimError(`${importer}: import ${pattern}: wildcards in directory names are not supported`);
  const match = nameMatcher(posix.basename(pattern));
  return reader
    .list(dir)
    .filter(match)
    .sort()
    .map((name) => posix.join(dir, name));
}

/** Go's path.Match for one name: `*`, `?`, `[...]` (with `^` and ranges) and `\` escapes. */
export function nameMatcher(pattern: string): (name: string) => boolean {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) source += escapeRegExp(pattern[++i]!);
    else if (c === '[') {
      const { regExp, end } = characterClass(pattern, i);
      source += regExp;
      i = end;
    } else source += escapeRegExp(c);
  }
  const re = new RegExp(`^${source}$`, 'u');
  return (name) => re.test(name);
}

/** The `[...]` starting at `start`, as a RegExp class, and the index of its `]`. */
function characterClass(pattern: string, start: number): { regExp: string; end: number } {
  let i = start + 1;
  const negated = pattern[i] === '^';
  if (negated) i++;
  let body = '';
  for (; i < pattern.length && pattern[i] !== ']'; i++) {
    let c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) c = pattern[++i]!;
    else if (c === '-' && body !== '' && pattern[i + 1] !== ']') {
      body += '-'; // a range
      continue;
    }
    body += /[\]\\^-]/.test(c) ? `\\${c}` : c;
  }
  // Go: an unclosed or empty class is ErrBadPattern, which stops containerd.
  if (i >= pattern.length || body === '') throw new ShimError(`bad import pattern ${pattern}`);
  return { regExp: `[${negated ? '^' : ''}${body}]`, end: i };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export interface HandlerRequest {
  handler: string;
  /** The shim's path as the host sees it: options.BinaryName. */
  binaryName: string;
  /** `containerd config default` of the node's containerd, when it could be run. */
  defaults: TomlTable | undefined;
}

export interface ContainerdPlan {
  version: number;
  /** The file that holds the CRI section containerd uses, and gets the handler. */
  target: string;
  /** The handler whose settings were copied. */
  copiedFrom: string;
  /** Whether containerd's implicit runc handler had to be written out too. */
  wroteDefaultHandler: boolean;
  /** The shim's real runtime: the copied handler's BinaryName, or "" for runc on PATH. */
  runtimeBinary: string;
  /** New texts of the files that change (possibly none). */
  edits: FileEdit[];
}

export interface FileEdit {
  path: string;
  before: string | null;
  /** null: remove the file. */
  after: string | null;
}

/**
 * The edits that give `handler` to containerd, from scratch: blocks left by
 * an earlier run are taken out first, so running again changes nothing
 * unless the settings it copies have changed.
 */
export function planContainerdInstall(loaded: readonly LoadedFile[], request: HandlerRequest): ContainerdPlan {
  const files = loaded.map(withoutBlocks);
  const main = files[0]!;
  const defaultsVersion = request.defaults === undefined ? undefined : Number(request.defaults['version']);
  // No main config: containerd's defaults, or what the block of an earlier
  // run (which created the file) said they were.
  const mainVersion = main.text === null ? (defaultsVersion ?? (main.version || undefined)) : main.version;
  if (mainVersion === undefined) {
    throw new ShimError(`${main.path} does not exist and containerd's defaults are unknown (could not run "containerd config default")`);
  }
  const criKey = (version: number): string => {
    const key = CRI_PLUGIN[version];
    if (key === undefined) throw new ShimError(`unsupported containerd config version ${version}`);
    return key;
  };
  const criPath = (file: LoadedFile): string[] => ['plugins', criKey(file.version || mainVersion)];
  const defining = files.filter((file) => tableAt(file.table, criPath(file)) !== undefined);
  // The last file to define the CRI plugin's section is the one in force.
  const target = defining.at(-1) ?? main;
  const version = target.version || mainVersion;
  if (version === 3 && defining.length > 1) {
    // containerd 2.0 lets the last file replace the section, 2.1+ merges
    // them key by key; which one this node runs cannot be told from here.
    throw new ShimError(
      `the CRI runtime section is defined in several files (${defining.map((file) => file.path).join(', ')}): containerd 2.0 uses the last, 2.1+ merges them; add the handler by hand`,
    );
  }
  const runtimesPath = ['plugins', criKey(version), 'containerd', 'runtimes'];
  const section = tableAt(target.table, ['plugins', criKey(version), 'containerd']);

  for (const file of files) {
    if (tableAt(file.table, [...criPath(file), 'containerd', 'runtimes', request.handler]) !== undefined) {
      throw new ShimError(`${file.path} already defines a runtime handler "${request.handler}" outside the block install.sh manages; remove it or choose another --handler`);
    }
  }

  // A runtimes table in the file replaces containerd's built-in one, so when
  // the section has none, the built-in runc handler must be written out too.
  const explicitRuntimes = tableAt(target.table, runtimesPath);
  const defaultSection = request.defaults === undefined ? undefined : tableAt(request.defaults, ['plugins', criKey(Number(request.defaults['version'])), 'containerd']);
  const runtimes = explicitRuntimes ?? tableAt(defaultSection ?? {}, ['runtimes']) ?? writtenOutBefore(loaded, runtimesPath, request.handler);
  if (runtimes === undefined) {
    throw new ShimError(`${target.path} has no runtime handlers and containerd's defaults are unknown (could not run "containerd config default"); pass --containerd-defaults FILE`);
  }
  const defaultName = stringAt(section, 'default_runtime_name') ?? stringAt(defaultSection, 'default_runtime_name') ?? 'runc';
  const { name: copiedFrom, table: source } = runcHandler(runtimes, defaultName, target.path);

  const additions: TomlTable = {};
  if (explicitRuntimes === undefined) additions[copiedFrom] = source;
  additions[request.handler] = handlerTable(source, request.binaryName);

  const newFileVersion = target.text === null ? version : undefined;
  const after = appendBlock(target.text ?? '', blockFor(additions, runtimesPath, newFileVersion));
  checkEdit(target, after, runtimesPath, additions, newFileVersion);

  const edits: FileEdit[] = [];
  for (const [index, file] of files.entries()) {
    const before = loaded[index]!.text;
    const next = file === target ? after : file.text;
    if (next !== before) edits.push({ path: file.path, before, after: next });
  }
  const options = isTable(source['options']) ? source['options'] : {};
  return {
    version,
    target: target.path,
    copiedFrom,
    wroteDefaultHandler: explicitRuntimes === undefined,
    runtimeBinary: typeof options['BinaryName'] === 'string' ? options['BinaryName'] : '',
    edits,
  };
}

/** The edits that take every block install.sh added back out. */
export function planContainerdUninstall(loaded: readonly LoadedFile[]): FileEdit[] {
  const edits: FileEdit[] = [];
  for (const file of loaded) {
    if (file.text === null) continue;
    const stripped = stripBlocks(file.text, file.path);
    if (stripped === file.text) continue;
    // A file that was nothing but the block was created by install.sh.
    edits.push({ path: file.path, before: file.text, after: stripped === '' ? null : stripped });
  }
  return edits;
}

/**
 * The handlers an earlier run wrote out from containerd's defaults, so that a
 * run without the defaults at hand still writes the same block.
 */
function writtenOutBefore(loaded: readonly LoadedFile[], runtimesPath: readonly string[], handler: string): TomlTable | undefined {
  for (const file of loaded.toReversed()) {
    for (const body of file.text === null ? [] : blockBodies(file.text, file.path).reverse()) {
      const { [handler]: _ours, ...others } = tableAt(parseToml(body, file.path), runtimesPath) ?? {};
      if (Object.keys(others).length > 0) return others;
    }
  }
  return undefined;
}

function withoutBlocks(file: LoadedFile): LoadedFile {
  if (file.text === null) return file;
  const text = stripBlocks(file.text, file.path);
  if (text === file.text) return file;
  // A file that is nothing but the block was created by install.sh: as if
  // it did not exist (only the main config can be missing).
  if (text === '') return { ...file, text: null, table: {} };
  return { ...file, text, table: parseToml(text, `${file.path} without the strict-groups block`) };
}

function stringAt(table: TomlTable | undefined, key: string): string | undefined {
  const value = table?.[key];
  return typeof value === 'string' ? value : undefined;
}

/** The runc handler to copy: the default handler if it is runc, else the one named runc. */
function runcHandler(runtimes: TomlTable, defaultName: string, where: string): { name: string; table: TomlTable } {
  for (const name of [defaultName, 'runc']) {
    const table = runtimes[name];
    if (isTable(table) && table['runtime_type'] === RUNC_V2) return { name, table };
  }
  throw new ShimError(
    `${where}: no runc handler to copy settings from (neither the default handler "${defaultName}" nor "runc" has runtime_type "${RUNC_V2}")`,
  );
}

/** The new handler: the runc handler's settings, with the shim as its runtime binary. */
export function handlerTable(source: TomlTable, binaryName: string): TomlTable {
  const annotations = Array.isArray(source['pod_annotations']) ? source['pod_annotations'] : [];
  const options = isTable(source['options']) ? source['options'] : {};
  return {
    ...source,
    runtime_type: RUNC_V2,
    pod_annotations: annotations.includes(POD_ANNOTATIONS_GLOB) ? annotations : [...annotations, POD_ANNOTATIONS_GLOB],
    options: { ...options, BinaryName: binaryName },
  };
}

function blockFor(additions: TomlTable, runtimesPath: readonly string[], newFileVersion: number | undefined): string {
  const header = newFileVersion === undefined ? '' : `version = ${newFileVersion}\n\n`;
  return header + stringifyToml(withValueAt({}, runtimesPath, additions));
}

/**
 * The edited file must parse, and to exactly the old data plus the handlers:
 * an append can go wrong in TOML (an inline `runtimes = {...}` table cannot
 * take a new key), and a mistake here would break every pod on the node.
 */
function checkEdit(target: LoadedFile, after: string, runtimesPath: readonly string[], additions: TomlTable, newFileVersion: number | undefined): void {
  const parsed = parseToml(after, `${target.path} with the handler added (edit it by hand; install.sh cannot)`);
  let expected = newFileVersion === undefined ? target.table : { version: BigInt(newFileVersion) };
  for (const [name, table] of Object.entries(additions)) expected = withValueAt(expected, [...runtimesPath, name], table as TomlTable);
  if (canonicalToml(parsed) !== canonicalToml(expected)) {
    throw new ShimError(`${target.path}: adding the handler would change other settings; add it by hand`);
  }
}
