import { existsSync, statSync, type Stats } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ShimError, describe, errnoCode } from '../errors';
import { readRegularFile, replaceFileAtomically } from '../files';
import { validateAnnotations } from '../generated/validators.cjs';
import { writeStdout } from '../log';
import { queryRuntime } from '../runtime-query';
import { classify, type BundleFacts, type ListedContainer } from './classify';
import { formatJson, formatPrometheus, formatTable, type Report, type RootReport } from './format';

/**
 * `strict-groups report`: every container the runtime knows under its
 * roots, and what strict-groups decided for it, from what the runtime and
 * the shim wrote (the runtime's list, each bundle's config.json). It never
 * enters a container and changes nothing but the --output file.
 */

/** containerd-shim-runc-v2's root for the CRI's namespace; CRI-O's runtime_root defaults. */
const CONTAINERD_ROOT = '/run/containerd/runc/k8s.io';
const CRIO_RUNC_ROOT = '/run/runc';
const CRIO_CRUN_ROOT = '/run/crun';

export const REPORT_USAGE = `usage: strict-groups-runtime strict-groups report [--root DIR]... [--runtime PATH]
                                                [--format table|json|prometheus] [--output FILE]

  --root DIR      a runtime root to list (repeatable); default: containerd's
                  ${CONTAINERD_ROOT} and CRI-O's ${CRIO_RUNC_ROOT} (${CRIO_CRUN_ROOT}
                  when the runtime is crun), those that exist
  --runtime PATH  the runtime to list them with; default: the node configuration's
  --format        table (default), json, or prometheus (node-exporter's textfile
                  collector format)
  --output FILE   write there, atomically, instead of to stdout
`;

const LIST_TIMEOUT_MS = 30_000;
const MAX_LIST_BYTES = 64 * 1024 * 1024;
const MAX_CONFIG_BYTES = 64 * 1024 * 1024;

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

export function defaultRoots(runtime: string): string[] {
  const crio = basename(runtime) === 'crun' ? CRIO_CRUN_ROOT : CRIO_RUNC_ROOT;
  return [CONTAINERD_ROOT, crio].filter((root) => existsSync(root));
}

/** `<runtime> --root ROOT list --format json`: runc prints null for none, crun an empty list. */
export function listContainers(runtime: string, root: string): ListedContainer[] {
  // runc lists a root that does not exist as empty: a mistyped --root would pass for an idle one.
  if (!statOrUndefined(root)?.isDirectory()) throw new ShimError(`${root} is not a directory`);
  const output = queryRuntime(runtime, ['--root', root, 'list', '--format', 'json'], `${runtime} --root ${root} list`, { timeoutMs: LIST_TIMEOUT_MS, maxBytes: MAX_LIST_BYTES });
  let parsed: unknown;
  try {
    parsed = JSON.parse(output);
  } catch {
    throw new ShimError(`${runtime} --root ${root} list: not JSON`);
  }
  if (parsed === null) return [];
  if (!Array.isArray(parsed)) throw new ShimError(`${runtime} --root ${root} list: not a list`);
  return parsed
    .filter((entry): entry is Record<string, unknown> => typeof entry === 'object' && entry !== null && typeof entry.id === 'string' && typeof entry.bundle === 'string')
    .map((entry) => ({ id: entry['id'] as string, bundle: entry['bundle'] as string, status: typeof entry['status'] === 'string' ? entry['status'] : undefined }));
}

/** The annotations and process user of a bundle's config.json; read, never written. */
export function bundleFacts(bundle: string): BundleFacts | { problem: string } {
  if (!isAbsolute(bundle)) return { problem: `bundle ${JSON.stringify(bundle)} is not an absolute path` };
  try {
    const { content } = readRegularFile(join(bundle, 'config.json'), MAX_CONFIG_BYTES);
    const config = JSON.parse(content.toString('utf8')) as { annotations?: unknown; process?: { user?: Record<string, unknown> } };
    const annotations = config.annotations ?? {};
    if (!validateAnnotations(annotations)) return { problem: 'config.json annotations are not strings' };
    const user = config.process?.user;
    const facts: BundleFacts = { annotations: annotations as Record<string, string>, user: undefined };
    if (user !== undefined && Number.isInteger(user['uid']) && Number.isInteger(user['gid'])) {
      const gids = user['additionalGids'];
      facts.user = { uid: user['uid'] as number, gid: user['gid'] as number, additionalGids: Array.isArray(gids) ? (gids as number[]) : undefined };
    }
    return facts;
  } catch (error) {
    return { problem: error instanceof SyntaxError ? 'config.json is not JSON' : (errnoCode(error) ?? describe(error)) };
  }
}

export function collectReport(runtime: string, roots: readonly string[], now: Date = new Date()): Report {
  const reports: RootReport[] = roots.map((root) => {
    try {
      const containers = listContainers(runtime, root).map((listed) => classify(listed, bundleFacts(listed.bundle)));
      containers.sort((a, b) => `${a.namespace}/${a.pod}/${a.container}/${a.id}`.localeCompare(`${b.namespace}/${b.pod}/${b.container}/${b.id}`));
      return { root, runtime, containers };
    } catch (error) {
      return { root, runtime, containers: [], error: describe(error) };
    }
  });
  return { generatedAt: now, roots: reports };
}

const FORMATS = { table: formatTable, json: formatJson, prometheus: formatPrometheus } as const;

export function runReport(args: readonly string[], configuredRuntime: () => string): void {
  let values: { root?: string[]; runtime?: string; format?: string; output?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        root: { type: 'string', multiple: true },
        runtime: { type: 'string' },
        format: { type: 'string' },
        output: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new ShimError(`report: ${describe(error)}`);
  }
  if (values.help === true) {
    writeStdout(REPORT_USAGE);
    return;
  }
  const format = values.format ?? 'table';
  if (!Object.hasOwn(FORMATS, format)) throw new ShimError(`report: --format ${JSON.stringify(format)}: want table, json or prometheus`);
  const runtime = values.runtime ?? configuredRuntime();
  // A root named twice is listed once: its containers would count twice.
  const roots = [...new Set((values.root ?? defaultRoots(runtime)).map((root) => resolve(root)))];
  if (roots.length === 0) throw new ShimError(`report: none of the default runtime roots exists (${CONTAINERD_ROOT}, ${CRIO_RUNC_ROOT}, ${CRIO_CRUN_ROOT}); name one with --root`);
  const text = FORMATS[format as keyof typeof FORMATS](collectReport(runtime, roots));
  if (values.output === undefined) {
    writeStdout(text);
    return;
  }
  const uid = process.geteuid?.() ?? 0;
  const gid = process.getegid?.() ?? 0;
  // A reader (node-exporter) sees the old file or the new one, whole; its
  // temporary name does not end in .prom, so the collector skips it.
  replaceFileAtomically(values.output, text, { mode: 0o644, uid, gid });
}
