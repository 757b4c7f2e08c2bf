import { parse, stringify, type TomlTable } from 'smol-toml';
import { ShimError } from '../errors';

/**
 * TOML as the installer reads and writes it. Integers stay BigInt and
 * everything else a JS number is written as a float, so a value copied from
 * one file to another keeps its TOML type and every digit.
 */

export type { TomlTable };

export function parseToml(text: string, where: string): TomlTable {
  try {
    return parse(text, { integersAsBigInt: true });
  } catch (err) {
    throw new ShimError(`${where}: not valid TOML: ${(err as Error).message.split('\n')[0]}`);
  }
}

export function stringifyToml(table: TomlTable): string {
  return stringify(table, { numbersAsFloat: true });
}

export function isTable(value: unknown): value is TomlTable {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** The table at `path` under `root`, or undefined where any step is missing or not a table. */
export function tableAt(root: TomlTable, path: readonly string[]): TomlTable | undefined {
  let node: unknown = root;
  for (const key of path) {
    if (!isTable(node)) return undefined;
    node = Object.hasOwn(node, key) ? node[key] : undefined;
  }
  return isTable(node) ? node : undefined;
}

/** A copy of `root` with `value` set at `path`, creating tables on the way. */
export function withValueAt(root: TomlTable, path: readonly string[], value: TomlTable[string]): TomlTable {
  const [key, ...rest] = path;
  if (key === undefined) throw new Error('withValueAt: empty path');
  const child = Object.hasOwn(root, key) ? root[key] : undefined;
  return { ...root, [key]: rest.length === 0 ? value : withValueAt(isTable(child) ? child : {}, rest, value) };
}

/**
 * A text that is equal for equal TOML data whatever the key order, for
 * checking an edit against its intent.
 */
export function canonicalToml(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item === 'bigint') return { integer: item.toString() };
    if (typeof item === 'number') return { float: Object.is(item, -0) ? '-0' : String(item) };
    if (isTable(item)) return Object.fromEntries(Object.keys(item).sort().map((k) => [k, item[k]]));
    return item;
  });
}
