import { posix } from 'node:path';
import { ShimError } from '../errors';
import { parseToml, type TomlTable } from './toml';

/**
 * Which files containerd reads, in its order, as containerd 1.6 to 2.1 find
 * them (`LoadConfig`: the main config, then `imports` breadth first, each
 * path once).
 */

/** Where the CRI runtime handlers live, by config version. */
export const CRI_PLUGIN = {
  2: 'io.containerd.grpc.v1.cri', // containerd 1.x, and 2.x before migrating
  3: 'io.containerd.cri.v1.runtime', // containerd 2.x
} as const;

export type ConfigVersion = keyof typeof CRI_PLUGIN;

export interface ConfigFile {
  path: string;
  /** null: the file does not exist (only ever the main config). */
  text: string | null;
}

export interface LoadedFile extends ConfigFile {
  table: TomlTable;
  /**
   * Its own `version` line; undefined where it has none (an import then
   * takes the version of the files before it).
   */
  declaredVersion: ConfigVersion | undefined;
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
  const criNames: readonly string[] = ['cri', ...Object.values(CRI_PLUGIN)];
  if (Array.isArray(disabled) && disabled.some((name) => typeof name === 'string' && criNames.includes(name))) {
    throw new ShimError(`${mainPath}: the CRI plugin is disabled (disabled_plugins), so no kubelet uses this containerd; enable CRI first`);
  }
  // A main config without a version is version 1 to containerd.
  const files: LoadedFile[] = [{ path: mainPath, text: mainText, table: main, declaredVersion: mainText === null ? undefined : declaredVersion(main, mainPath, true) }];
  const seen = new Set([mainPath]);
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!;
    for (const path of resolveImports(file, reader)) {
      if (seen.has(path)) continue;
      seen.add(path);
      const text = reader.read(path);
      if (text === null) throw new ShimError(`${file.path} imports ${path}, which does not exist; containerd would not start`);
      const table = parseToml(text, path);
      files.push({ path, text, table, declaredVersion: declaredVersion(table, path, false) });
    }
  }
  return files;
}

function declaredVersion(table: TomlTable, path: string, isMain: boolean): ConfigVersion | undefined {
  const version = table['version'];
  if (version === 2n || version === 3n) return Number(version) as ConfigVersion;
  if (version === 1n || (version === undefined && isMain)) {
    throw new ShimError(`${path}: config version 1 is not supported; convert it to version 2 (containerd 1.x) first`);
  }
  if (version === undefined) return undefined;
  throw new ShimError(`${path}: unknown config version ${String(version)}`);
}

/**
 * The config version containerd ends up with: it merges the `version` of
 * each file over the ones before (a file without one takes the running
 * value), so the last file that names one decides for ALL files. Seen with
 * 2.1.9: a drop-in saying `version = 3` next to a version 2 main config
 * turns off the migration of the main file's CRI section, whose sandbox
 * image and SystemdCgroup are then lost. undefined only for a missing main
 * config.
 */
export function effectiveConfigVersion(files: readonly LoadedFile[]): ConfigVersion | undefined {
  return files.findLast((file) => file.text !== null && file.declaredVersion !== undefined)?.declaredVersion;
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
