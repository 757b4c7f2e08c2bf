import { ShimError } from '../errors';
import { CRI_PLUGIN, effectiveConfigVersion, type ConfigVersion, type LoadedFile } from './containerd-files';
import { mergeTables, runtimesInForce } from './containerd-merge';
import { importRule, ruleText, type ContainerdVersion, type ImportRule } from './containerd-version';
import { appendBlock, blockBodies, stripBlocks } from './managed-block';
import { canonicalToml, isTable, parseToml, stringifyToml, tableAt, withValueAt, type TomlTable } from './toml';

/**
 * Wiring the handler into containerd's configuration, as pure functions over
 * the files' texts. The handler goes in as a marked block, appended to one
 * of the operator's files, that uninstall removes again byte for byte.
 *
 * Which file depends on how the node's containerd combines `imports`
 * (containerd-version.ts):
 * - before 2.0 a file's plugin section replaces the sections before it, so a
 *   drop-in holding only the new handler would reset the CRI plugin (sandbox
 *   image, snapshotter, the runc handler's SystemdCgroup) to defaults: the
 *   block goes into the file whose CRI section containerd actually uses;
 * - from 2.0 on the files merge, and the block goes into the file that holds
 *   the runc handler it copies (or, where that handler is containerd's
 *   built-in one, the last file defining the CRI section).
 * A drop-in file of our own would also do under 2.0+, but not alone: most
 * configurations (Debian's packaged one, kubeadm's) import nothing, so the
 * main file would still need an `imports` line, which must stand before its
 * first table (an edit inside the operator's text, not an append), and the
 * drop-in would have to match the version the others are read in (a
 * `version = 3` drop-in beside a version 2 config turns off containerd's
 * migration of the whole CRI section). One block, beside the settings it
 * copies, works for every version.
 */

export const POD_ANNOTATIONS_GLOB = 'strict-groups.io/*';
const RUNC_V2 = 'io.containerd.runc.v2';

export interface HandlerRequest {
  handler: string;
  /** The shim's path as the host sees it: options.BinaryName. */
  binaryName: string;
  /** `containerd config default` of the node's containerd, when it could be run or was given. */
  defaults: TomlTable | undefined;
  /** The node's containerd version, when it could be run or was given. */
  containerd: ContainerdVersion | undefined;
  /** Why the version is unknown, for the message when it matters. */
  versionUnknown?: string;
}

export interface ContainerdPlan {
  /** The config version containerd reads the files in. */
  version: ConfigVersion;
  /** How containerd combines imports; undefined when unknown and the plan is the same either way. */
  rule: ImportRule | undefined;
  /** How the rule was known, for the report. */
  ruleFrom: string;
  /** The file that gets the handler, and why that one. */
  target: string;
  targetReason: string;
  /** The plugin whose runtimes table gets the handler. */
  plugin: string;
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
 * unless the settings it copies have changed. Where the node's containerd
 * version is unknown, the plan is made for both import rules; it goes ahead
 * only if both give the same edits.
 */
export function planContainerdInstall(loaded: readonly LoadedFile[], request: HandlerRequest): ContainerdPlan {
  const files = loaded.map(withoutBlocks);
  const known = knownRule(files, request);
  if (known !== undefined) return withoutHandler(planForRule(loaded, files, request, known.rule), known.rule, known.from);

  const attempts = (['replace', 'merge'] as const).map((rule): Attempt => {
    try {
      return { rule, plan: planForRule(loaded, files, request, rule) };
    } catch (err) {
      if (!(err instanceof ShimError)) throw err;
      return { rule, error: err };
    }
  });
  const [replace, merge] = attempts as [Attempt, Attempt];
  if (replace.plan !== undefined && merge.plan !== undefined && samePlan(replace.plan, merge.plan)) {
    return withoutHandler(replace.plan, undefined, `containerd's version is unknown (${request.versionUnknown ?? 'not given'}), and the result is the same for every version`);
  }
  if (replace.error !== undefined && merge.error !== undefined && replace.error.message === merge.error.message) throw replace.error;
  throw new ShimError(
    `containerd's version is unknown (${request.versionUnknown ?? 'not given'}), and this configuration depends on it: ${difference(replace, merge)}. ` +
      `Pass --containerd-version with the version "containerd --version" prints on the node (e.g. --containerd-version 1.7.24 or 2.1.9)`,
  );
}

function withoutHandler({ handler: _handler, ...plan }: RulePlan, rule: ImportRule | undefined, ruleFrom: string): ContainerdPlan {
  return { ...plan, rule, ruleFrom };
}

/** The import rule, where the version, the defaults or the files tell it; undefined where nothing does. */
function knownRule(files: readonly LoadedFile[], request: HandlerRequest): { rule: ImportRule; from: string } | undefined {
  const defaultsVersion = request.defaults === undefined ? undefined : configVersionOf(request.defaults);
  const v3File = files.find((file) => file.text !== null && file.declaredVersion === 3);
  if (request.containerd !== undefined) {
    const rule = importRule(request.containerd);
    const line = `containerd ${request.containerd.text}`;
    if (rule === 'replace' && v3File !== undefined) {
      // Seen: 1.7.24 refuses to start; 1.6.20 starts and ignores every version 3 section.
      throw new ShimError(`${v3File.path} is config version 3, which only containerd 2.0+ reads, but the node runs ${line}; check --containerd-version or the file`);
    }
    if (defaultsVersion !== undefined && defaultsVersion !== (rule === 'replace' ? 2 : 3)) {
      throw new ShimError(`containerd's defaults are config version ${defaultsVersion}, which is not what ${line} prints; pass the node's own "containerd config default" as --containerd-defaults`);
    }
    return { rule, from: line };
  }
  // `containerd config default` prints version 2 on 1.x and 3 on 2.x.
  if (defaultsVersion === 2) return { rule: 'replace', from: 'containerd 1.x (its defaults are config version 2)' };
  if (defaultsVersion === 3) return { rule: 'merge', from: 'containerd 2.x (its defaults are config version 3)' };
  if (v3File !== undefined) return { rule: 'merge', from: `containerd 2.x (${v3File.path} is config version 3, which only 2.0+ reads)` };
  return undefined;
}

function planForRule(loaded: readonly LoadedFile[], files: readonly LoadedFile[], request: HandlerRequest, rule: ImportRule): RulePlan {
  const main = files[0]!;
  const defaultsVersion = request.defaults === undefined ? undefined : configVersionOf(request.defaults);
  // No main config: containerd's defaults, or what the block of an earlier
  // run (which created the file) said they were.
  const version = effectiveConfigVersion(files) ?? defaultsVersion ?? main.declaredVersion;
  if (version === undefined) {
    throw new ShimError(`${main.path} does not exist and containerd's defaults are unknown (could not run "containerd config default")`);
  }
  if (rule === 'replace' && version === 3) {
    // Seen: 1.7.24 refuses to start; 1.6.20 starts and ignores every version 3 section.
    throw new ShimError(`${main.path}: config version 3 is for containerd 2.0+ (1.7 does not start with it, 1.6 ignores its CRI section)`);
  }
  const inForce = runtimesInForce(files, rule, version);
  const runtimesPath = ['plugins', inForce.plugin, 'containerd', 'runtimes'];
  for (const file of files) {
    for (const plugin of handlerPlugins(rule, version)) {
      if (tableAt(file.table, ['plugins', plugin, 'containerd', 'runtimes', request.handler]) !== undefined) {
        throw new ShimError(`${file.path} already defines a runtime handler "${request.handler}" outside the block install.sh manages; remove it or choose another --handler`);
      }
    }
  }

  // containerd's own defaults are in its own version: 2 on 1.x, 3 on 2.x.
  const defaultSection = request.defaults === undefined || defaultsVersion === undefined ? undefined : tableAt(request.defaults, ['plugins', CRI_PLUGIN[defaultsVersion], 'containerd']);
  const defaultRuntimes = tableAt(defaultSection ?? {}, ['runtimes']);
  const defaultName = inForce.defaultName ?? stringAt(defaultSection, 'default_runtime_name') ?? 'runc';
  const where = inForce.sectionFiles.at(-1)?.path ?? main.path;
  let runtimes: TomlTable | undefined;
  if (rule === 'replace') {
    // A runtimes table in the file replaces containerd's built-in one, so
    // when the section has none, the built-in runc handler is written out too.
    runtimes = inForce.declared ?? defaultRuntimes ?? writtenOutBefore(loaded, runtimesPath, request.handler);
  } else {
    // containerd 2.x decodes the files' handlers over its built-in ones.
    runtimes = inForce.declared === undefined && defaultRuntimes === undefined ? undefined : mergeTables(defaultRuntimes ?? {}, inForce.declared ?? {});
  }
  if (runtimes === undefined) {
    throw new ShimError(`${where} has no runtime handlers and containerd's defaults are unknown (could not run "containerd config default"); pass --containerd-defaults FILE`);
  }
  const { name: copiedFrom, table: source } = runcHandler(runtimes, defaultName, where, request.defaults !== undefined);
  const writeOut = rule === 'replace' && inForce.declared === undefined;

  const { target, targetReason } = chooseTarget(files, rule, runtimesPath, copiedFrom, inForce.sectionFiles);
  const handler = handlerTable(source, request.binaryName);
  const additions: TomlTable = Object.fromEntries([...(writeOut ? [[copiedFrom, source]] : []), [request.handler, handler]]);

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
    targetReason,
    plugin: inForce.plugin,
    copiedFrom,
    wroteDefaultHandler: writeOut,
    runtimeBinary: typeof options['BinaryName'] === 'string' ? options['BinaryName'] : '',
    edits,
    handler,
  };
}

/** The plugins whose runtimes a handler of ours could clash with: those containerd reads at this version. */
function handlerPlugins(rule: ImportRule, version: ConfigVersion): string[] {
  if (rule === 'replace') return [CRI_PLUGIN[2]];
  return version === 3 ? [CRI_PLUGIN[3]] : [CRI_PLUGIN[2], CRI_PLUGIN[3]];
}

function chooseTarget(
  files: readonly LoadedFile[],
  rule: ImportRule,
  runtimesPath: readonly string[],
  copiedFrom: string,
  sectionFiles: readonly LoadedFile[],
): { target: LoadedFile; targetReason: string } {
  const main = files[0]!;
  if (rule === 'replace') {
    const last = sectionFiles.at(-1);
    return last === undefined
      ? { target: main, targetReason: 'no file defines the CRI section yet' }
      : { target: last, targetReason: 'the file whose CRI section containerd uses (before 2.0 it replaces the others)' };
  }
  const holder = files.findLast((file) => tableAt(file.table, [...runtimesPath, copiedFrom]) !== undefined);
  if (holder !== undefined) return { target: holder, targetReason: `the file that holds the "${copiedFrom}" handler (containerd 2.0+ merges the files)` };
  const last = sectionFiles.at(-1);
  if (last !== undefined) return { target: last, targetReason: 'the last file that defines the CRI section (containerd 2.0+ merges the files)' };
  return { target: main, targetReason: 'no file defines the CRI section yet' };
}

/** A plan for one import rule, with the new handler's table, for comparing the rules. */
type RulePlan = Omit<ContainerdPlan, 'rule' | 'ruleFrom'> & { handler: TomlTable };

function samePlan(a: RulePlan, b: RulePlan): boolean {
  return JSON.stringify(a.edits) === JSON.stringify(b.edits);
}

/** What differs between the two rules' plans, for the refusal. */
function difference(replace: Attempt, merge: Attempt): string {
  const [before, after] = [replace.plan, merge.plan];
  if (before === undefined || after === undefined) {
    const failed = before === undefined ? replace : merge;
    const served = before === undefined ? merge : replace;
    return `${ruleText(failed.rule)} cannot be served (${failed.error!.message}), ${ruleText(served.rule)} can`;
  }
  if (before.target !== after.target) {
    return `${ruleText('replace')} needs the handler in ${before.target}, ${ruleText('merge')} in ${after.target}`;
  }
  const keys = differingKeys(before.handler, after.handler);
  if (keys.length === 0) return `${ruleText('replace')} and ${ruleText('merge')} need different edits`;
  return `${ruleText('replace')} and ${ruleText('merge')} read the "${after.copiedFrom}" handler differently (${keys.join(', ')})`;
}

type Attempt = { rule: ImportRule; plan?: RulePlan; error?: ShimError };

/** The dotted keys whose values differ between two tables. */
function differingKeys(a: TomlTable, b: TomlTable, prefix = ''): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.flatMap((key) => {
    const [x, y] = [Object.hasOwn(a, key) ? a[key] : undefined, Object.hasOwn(b, key) ? b[key] : undefined];
    if (isTable(x) && isTable(y)) return differingKeys(x, y, `${prefix}${key}.`);
    return canonicalToml(x ?? null) === canonicalToml(y ?? null) ? [] : [`${prefix}${key}`];
  });
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
  // it did not exist (only the main config can be missing), keeping the
  // version that run wrote.
  if (text === '') return { ...file, text: null, table: {} };
  return { ...file, text, table: parseToml(text, `${file.path} without the strict-groups block`) };
}

function configVersionOf(defaults: TomlTable): ConfigVersion {
  const version = defaults['version'];
  if (version === 2n || version === 3n) return Number(version) as ConfigVersion;
  throw new ShimError(`containerd's defaults have config version ${String(version)}; install.sh knows versions 2 and 3`);
}

function stringAt(table: TomlTable | undefined, key: string): string | undefined {
  const value = table?.[key];
  return typeof value === 'string' ? value : undefined;
}

/** The runc handler to copy: the default handler if it is runc, else the one named runc. */
function runcHandler(runtimes: TomlTable, defaultName: string, where: string, haveDefaults: boolean): { name: string; table: TomlTable } {
  for (const name of [defaultName, 'runc']) {
    const table = Object.hasOwn(runtimes, name) ? runtimes[name] : undefined;
    if (isTable(table) && table['runtime_type'] === RUNC_V2) return { name, table };
  }
  const hint = haveDefaults ? '' : `; if it takes its runtime_type from containerd's defaults, pass them with --containerd-defaults FILE`;
  throw new ShimError(
    `${where}: no runc handler to copy settings from (neither the default handler "${defaultName}" nor "runc" has runtime_type "${RUNC_V2}")${hint}`,
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
