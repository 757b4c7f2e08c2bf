/**
 * A test node's containerd configuration before install.sh runs: what an
 * operator writes (`containerd config default > /etc/containerd/config.toml`,
 * as the kubeadm guides say, then a few values changed in place), taken from
 * the build under test itself. Config version 2 (containerd 1.6, 1.7) keeps
 * the CRI plugin in one section, `plugins."io.containerd.grpc.v1.cri"`;
 * version 3 (containerd 2.x) splits it into
 * `plugins."io.containerd.cri.v1.runtime"` (runtimes, CNI,
 * restrict_oom_score_adj) and `plugins."io.containerd.cri.v1.images"`
 * (snapshotter, pinned sandbox image).
 */
import { execFileSync } from 'node:child_process';
import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import type { ContainerdBuild } from './runtimes';

type Table = Record<string, unknown>;
type Value = string | boolean | string[];

export interface NodeConfigPaths {
  /** The node's "host root": containerd's root, state, sockets and opt live under it. */
  tree: string;
  cniBin: string;
  cniConf: string;
  /** The pause image, already imported: no registry is reachable. */
  sandboxImage: string;
}

interface Edit {
  /** The table's key path; [] is the top level. */
  table: string[];
  key: string;
  value: Value;
  /** Set only when the build's defaults have the table (NRI: 1.7+). */
  ifPresent?: boolean;
}

/**
 * This node's changes to the defaults:
 *
 * - root, state, both sockets, the opt plugin's directory and NRI's socket
 *   under the tree, so several nodes (other suites', other engineers') run
 *   side by side;
 * - the native snapshotter, which works on whatever file system the tree is
 *   on, and the locally built pause image as the sandbox image;
 * - restrict_oom_score_adj: these machines lack CAP_SYS_RESOURCE;
 * - CNI directories of the tree's own, empty: pods use the host network.
 *
 * Everything else, the runc handler included, stays as the build has it.
 */
function edits(build: ContainerdBuild, paths: NodeConfigPaths): Edit[] {
  const { tree } = paths;
  const common: Edit[] = [
    { table: [], key: 'root', value: join(tree, 'var/lib/containerd') },
    { table: [], key: 'state', value: join(tree, 'run/containerd') },
    { table: ['grpc'], key: 'address', value: join(tree, 'run/containerd/containerd.sock') },
    { table: ['ttrpc'], key: 'address', value: join(tree, 'run/containerd/containerd.sock.ttrpc') },
    { table: ['plugins', 'io.containerd.internal.v1.opt'], key: 'path', value: join(tree, 'opt/containerd') },
    // NRI is on by default from 2.0; its socket is a fixed host path otherwise.
    { table: ['plugins', 'io.containerd.nri.v1.nri'], key: 'socket_path', value: join(tree, 'var/run/nri/nri.sock'), ifPresent: true },
  ];
  if (build.configVersion === 2) {
    const cri = ['plugins', 'io.containerd.grpc.v1.cri'];
    return [
      ...common,
      { table: cri, key: 'sandbox_image', value: paths.sandboxImage },
      { table: cri, key: 'restrict_oom_score_adj', value: true },
      { table: [...cri, 'containerd'], key: 'snapshotter', value: 'native' },
      { table: [...cri, 'cni'], key: 'bin_dir', value: paths.cniBin },
      { table: [...cri, 'cni'], key: 'conf_dir', value: paths.cniConf },
    ];
  }
  const images = ['plugins', 'io.containerd.cri.v1.images'];
  const runtime = ['plugins', 'io.containerd.cri.v1.runtime'];
  return [
    ...common,
    { table: images, key: 'snapshotter', value: 'native' },
    { table: [...images, 'pinned_images'], key: 'sandbox', value: paths.sandboxImage },
    { table: runtime, key: 'restrict_oom_score_adj', value: true },
    // 2.x reads bin_dirs (a list); bin_dir is its deprecated single form.
    { table: [...runtime, 'cni'], key: 'bin_dirs', value: [paths.cniBin] },
    { table: [...runtime, 'cni'], key: 'conf_dir', value: paths.cniConf },
  ];
}

/** The build's default configuration with this node's changes, as text an operator would have. */
export function nodeConfig(build: ContainerdBuild, paths: NodeConfigPaths): string {
  const defaults = execFileSync(join(build.binDir, 'containerd'), ['config', 'default'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  const changes = edits(build, paths);
  const text = `# containerd ${build.version} (${build.source}): "containerd config default", edited for a test node\n${editInPlace(defaults, changes)}`;
  // The text edit must mean exactly the intended data change.
  const expected = parse(defaults) as Table;
  for (const edit of changes) {
    const table = tableAt(expected, edit.table);
    if (table !== undefined) table[edit.key] = edit.value;
  }
  if (!isDeepStrictEqual(parse(text), expected)) throw new Error(`editing containerd ${build.version}'s default configuration changed more than intended`);
  return text;
}

function tableAt(root: Table, path: readonly string[]): Table | undefined {
  let node: unknown = root;
  for (const key of path) node = node !== null && typeof node === 'object' && !Array.isArray(node) ? (node as Table)[key] : undefined;
  return node !== null && typeof node === 'object' && !Array.isArray(node) ? (node as Table) : undefined;
}

/** A `[a."b.c".'d']` header's key path; undefined for an array of tables (`[[...]]`). */
function headerPath(line: string): string[] | undefined {
  const match = /^\s*\[([^[\]]+)\]\s*$/.exec(line);
  if (match === null) return undefined;
  return [...match[1]!.matchAll(/\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(?:\.|$)/g)].map((part) => part[1] ?? part[2] ?? part[3]!);
}

function tomlValue(value: Value): string {
  // JSON's string escapes are TOML basic strings' escapes.
  return Array.isArray(value) ? `[${value.map((item) => JSON.stringify(item)).join(', ')}]` : JSON.stringify(value);
}

/** Each edit's `key = ...` line replaced where it stands, keeping the file's layout; every edit must find its line. */
function editInPlace(text: string, changes: readonly Edit[]): string {
  const pending = new Set(changes);
  let table: string[] | undefined = [];
  const lines = text.split('\n').map((line) => {
    if (/^\s*\[/.test(line)) {
      table = headerPath(line);
      return line;
    }
    const assignment = /^(\s*)([A-Za-z0-9_-]+)\s*=/.exec(line);
    if (assignment === null || table === undefined) return line;
    const current = table;
    const edit = [...pending].find((candidate) => candidate.key === assignment[2] && isDeepStrictEqual(candidate.table, current));
    if (edit === undefined) return line;
    pending.delete(edit);
    return `${assignment[1]}${edit.key} = ${tomlValue(edit.value)}`;
  });
  const missed = [...pending].filter((edit) => !edit.ifPresent || tableAt(parse(text) as Table, edit.table) !== undefined);
  if (missed.length > 0) throw new Error(`containerd config default has no ${missed.map((edit) => [...edit.table, edit.key].join('.')).join(', ')}`);
  return lines.join('\n');
}
