import { ShimError } from '../errors';

/**
 * Which containerd a node runs, and what follows from it for the files in
 * `imports`. The rule, read from containerd's source and checked against the
 * real `containerd config dump` of 1.6.20, 1.7.24 and 2.1.9:
 *
 * - before 2.0 (`services/server/config`, plugins kept as TOML trees), each
 *   plugin's section in a later file REPLACES the whole section of the files
 *   before it;
 * - from 2.0.0 on (containerd commit a21e379b6, "Allow sections of Plugins
 *   to be merged", first in v2.0.0-rc.6), the files are MERGED key by key
 *   with mergo: tables merge at every depth, and any other value (string,
 *   number, boolean, array, even an empty one) of a later file replaces the
 *   earlier one. (The 2.0 pre-releases before rc.6 still replaced; they are
 *   not told apart.)
 */

export interface ContainerdVersion {
  major: number;
  minor: number;
  /** As given or printed, for messages ("1.7.24~ds1", "2.1.9+unknown"). */
  text: string;
}

export type ImportRule = 'replace' | 'merge';

/** The first containerd version that merges imported plugin sections. */
const FIRST_MERGING = { major: 2, minor: 0 };

export function importRule(version: ContainerdVersion): ImportRule {
  const older = version.major < FIRST_MERGING.major || (version.major === FIRST_MERGING.major && version.minor < FIRST_MERGING.minor);
  return older ? 'replace' : 'merge';
}

/**
 * A version as people write it: "1.7.24", "v2.1.9", "2.0", or a packager's
 * "1.6.20~ds1" or "2.1.9+unknown". undefined for anything else.
 */
export function parseContainerdVersion(text: string): ContainerdVersion | undefined {
  const match = /^v?(\d{1,4})\.(\d{1,4})(?:\.\d{1,6})?(?:[-+~.][0-9A-Za-z.~+-]*)?$/.exec(text.trim());
  if (match === null) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]), text: text.trim() };
}

/**
 * The version in what `containerd --version` prints: "containerd <module>
 * <version> [<revision>]", e.g. "containerd github.com/containerd/containerd/v2
 * 2.1.9+unknown" (Debian) or "containerd containerd.io 1.7.27 05044ec..."
 * (Docker's package).
 */
export function versionFromOutput(output: string): ContainerdVersion | undefined {
  const words = output.trim().split(/\s+/);
  if (words[0] !== 'containerd' || words[2] === undefined) return undefined;
  return parseContainerdVersion(words[2]);
}

/** The value of --containerd-version, or a refusal that says what it takes. */
export function versionOption(text: string): ContainerdVersion {
  const version = parseContainerdVersion(text);
  if (version === undefined) {
    throw new ShimError(`install: --containerd-version ${JSON.stringify(text)} is not a version; give what "containerd --version" prints on the node as its third word, e.g. 1.7.24 or 2.1.9`);
  }
  return version;
}

/** What a rule does, for the report. */
export function ruleWords(rule: ImportRule): string {
  return rule === 'replace' ? "imports replace a plugin's whole section" : 'imports merge key by key';
}

/** The containerd versions a rule belongs to, and what it does, for messages. */
export function ruleText(rule: ImportRule): string {
  return `containerd ${rule === 'replace' ? 'before 2.0' : '2.0+'} (${ruleWords(rule)})`;
}
