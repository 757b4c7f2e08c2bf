import { CRI_PLUGIN, type ConfigVersion, type LoadedFile } from './containerd-files';
import type { ImportRule } from './containerd-version';
import { isTable, tableAt, type TomlTable } from './toml';

/**
 * How containerd combines its files into the CRI runtime handlers it uses,
 * for the two import rules (see containerd-version.ts), as pure functions.
 */

/**
 * containerd 2.x's merge of a later table over an earlier one (mergo with
 * override, as `mergeConfig` calls it on the plugins map): where both hold a
 * table they merge, at every depth; any other value of the later one
 * replaces the earlier (arrays are not appended, and an empty string, an
 * empty array or false replaces too; seen with 2.1.9's `config dump`). The
 * same rule is how containerd 2.x decodes a plugin's merged table over its
 * defaults, so the built-in runc handler survives a file's `runtimes` table.
 */
export function mergeTables(base: TomlTable, over: TomlTable): TomlTable {
  // Built with Object.fromEntries, never by assignment: a TOML key may be
  // "__proto__".
  const keys = new Set([...Object.keys(base), ...Object.keys(over)]);
  return Object.fromEntries(
    [...keys].map((key) => {
      const before = Object.hasOwn(base, key) ? base[key] : undefined;
      if (!Object.hasOwn(over, key)) return [key, before];
      const value = over[key];
      return [key, isTable(value) && isTable(before) ? mergeTables(before, value) : value];
    }),
  ) as TomlTable;
}

/** The runtime handlers in force, as the files declare them (before containerd's own defaults). */
export interface RuntimesInForce {
  /** The plugin whose `containerd.runtimes` holds them: where the new handler must go. */
  plugin: string;
  /** The handler tables the files give, combined by the import rule; undefined where no file has any. */
  declared: TomlTable | undefined;
  /** The files' `default_runtime_name`, if any sets it. */
  defaultName: string | undefined;
  /**
   * The files whose CRI section is in force, in load order: under "replace"
   * only the last file that defines the section; under "merge" every file
   * that defines part of it.
   */
  sectionFiles: LoadedFile[];
}

/**
 * The CRI runtime handlers containerd takes from `files` (in load order),
 * all read as config `version`.
 *
 * - replace (containerd 1.x, version 2): the last file that defines the CRI
 *   plugin's section is the whole section.
 * - merge, version 3: every file's `io.containerd.cri.v1.runtime`, merged.
 * - merge, version 2 (containerd 2.x migrates it when it loads): the merged
 *   version 2 section's `containerd` keys are copied into the version 3
 *   section where that has no such key yet (`runtimes` whole), so version 3
 *   runtimes in any file hide the version 2 ones. A handler's `sandbox_mode`
 *   becomes `sandboxer` (`plugins/cri/runtime/plugin.go`, `migrateConfig`).
 */
export function runtimesInForce(files: readonly LoadedFile[], rule: ImportRule, version: ConfigVersion): RuntimesInForce {
  if (rule === 'replace') {
    const plugin = CRI_PLUGIN[2];
    const last = files.findLast((file) => tableAt(file.table, ['plugins', plugin]) !== undefined);
    const section = last === undefined ? undefined : tableAt(last.table, ['plugins', plugin, 'containerd']);
    return { plugin, declared: tableAt(section ?? {}, ['runtimes']), defaultName: stringAt(section, 'default_runtime_name'), sectionFiles: last === undefined ? [] : [last] };
  }
  const merged = (plugin: string): { containerd: TomlTable | undefined; files: LoadedFile[] } => {
    const defining = files.filter((file) => tableAt(file.table, ['plugins', plugin]) !== undefined);
    const section = defining.reduce<TomlTable>((acc, file) => mergeTables(acc, tableAt(file.table, ['plugins', plugin])!), {});
    return { containerd: tableAt(section, ['containerd']), files: defining };
  };
  const v3 = merged(CRI_PLUGIN[3]);
  if (version === 3 || tableAt(v3.containerd ?? {}, ['runtimes']) !== undefined) {
    const v2Name = version === 2 ? stringAt(merged(CRI_PLUGIN[2]).containerd, 'default_runtime_name') : undefined;
    return {
      plugin: CRI_PLUGIN[3],
      declared: tableAt(v3.containerd ?? {}, ['runtimes']),
      defaultName: stringAt(v3.containerd, 'default_runtime_name') ?? v2Name,
      sectionFiles: v3.files,
    };
  }
  const v2 = merged(CRI_PLUGIN[2]);
  const declared = tableAt(v2.containerd ?? {}, ['runtimes']);
  return {
    plugin: CRI_PLUGIN[2],
    declared: declared === undefined ? undefined : migratedHandlers(declared),
    defaultName: stringAt(v3.containerd, 'default_runtime_name') ?? stringAt(v2.containerd, 'default_runtime_name'),
    sectionFiles: v2.files,
  };
}

/** Version 2 handler tables as containerd 2.x migrates them: `sandbox_mode` is now `sandboxer`. */
function migratedHandlers(runtimes: TomlTable): TomlTable {
  return Object.fromEntries(
    Object.entries(runtimes).map(([name, table]) => {
      if (!isTable(table) || !Object.hasOwn(table, 'sandbox_mode') || Object.hasOwn(table, 'sandboxer')) return [name, table];
      const { sandbox_mode: mode, ...rest } = table;
      return [name, { ...rest, sandboxer: mode }];
    }),
  );
}

function stringAt(table: TomlTable | undefined, key: string): string | undefined {
  const value = table?.[key];
  return typeof value === 'string' ? value : undefined;
}
