import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { loadBundleAnnotations, loadExecProcess, saveDocument, withAdditionalGids } from './bundle';
import { ShimError } from './errors';
import { readRegularFile } from './files';
import { validateRuntimeState } from './generated/validators.cjs';
import { parseDocument } from './json-document';
import { recordedRemoval, strictByImage } from './policy';
import { queryRuntime } from './runtime-query';
import { assertValid } from './validate';

/**
 * Exec: containerd and CRI-O build the exec process from their own copy of the
 * original spec, so it carries the image groups again. The shim strips what
 * the container's create removed, as recorded in the bundle's config.json and
 * reported by the runtime's state, never anything the container can write.
 */

export interface RuntimeState {
  id: string;
  bundle: string;
  annotations?: Record<string, string>;
}

/** runc's and crun's default roots, as root runs them (runc under another uid would use $XDG_RUNTIME_DIR). */
const DEFAULT_ROOTS: ReadonlyMap<string, string> = new Map([['runc', '/run/runc'], ['crun', '/run/crun']]);
/**
 * Ids read from the state directory directly: letters, digits, "_", "+", "."
 * and "-", one plain path component (narrower than runc's own rule, which
 * also allows ","; any other id is left to `<runtime> state`).
 */
const PLAIN_ID = /^[\w+.-]+$/;
/** The runtime's state files are its own; this bound only stops a runaway. */
const MAX_STATE_BYTES = 64 * 1024 * 1024;

/**
 * The container's state as the runtime keeps it under its root, read
 * without running the runtime: runc's <root>/<id>/state.json (the bundle and
 * the annotations as "key=value" labels, which is what `runc state` prints
 * from), crun's <root>/<id>/status and its copy of config.json. Only root
 * on the host writes there; nothing in the container can. Undefined when
 * the layout is not one of these, for the caller to ask the runtime instead.
 */
export function stateFromRoot(runtime: string, root: string | undefined, id: string): RuntimeState | undefined {
  const dir = root === undefined ? DEFAULT_ROOTS.get(basename(runtime)) : resolve(root);
  if (dir === undefined || !PLAIN_ID.test(id) || id === '.' || id === '..') return undefined;
  const container = join(dir, id);
  const read = (name: string): string | undefined => {
    try {
      return readRegularFile(join(container, name), MAX_STATE_BYTES).content.toString('utf8');
    } catch (error) {
      if (error instanceof ShimError && /: ENOENT$/.test(error.message)) return undefined;
      throw error;
    }
  };
  const runcState = read('state.json');
  if (runcState !== undefined) return runcStateOf(runcState, id, join(container, 'state.json'));
  const crunStatus = read('status');
  if (crunStatus === undefined || !existsSync(join(container, 'config.json'))) return undefined;
  return crunStateOf(crunStatus, id, container);
}

function runcStateOf(text: string, id: string, path: string): RuntimeState {
  const state = parseDocument(text, path) as { config?: { labels?: unknown } };
  const labels = state.config?.labels;
  if (!Array.isArray(labels) || !labels.every((label) => typeof label === 'string')) throw new ShimError(`${path}: config.labels is not a list of strings`);
  const annotations: Record<string, string> = {};
  let bundle: string | undefined;
  for (const label of labels as string[]) {
    const eq = label.indexOf('=');
    if (eq === -1) continue;
    const key = label.slice(0, eq);
    // runc's own reading: "bundle" is the bundle, every other label an annotation.
    if (key === 'bundle') bundle = label.slice(eq + 1);
    else annotations[key] = label.slice(eq + 1);
  }
  if (bundle === undefined || bundle === '') throw new ShimError(`${path}: no bundle label`);
  return { id, bundle, annotations };
}

/** crun's state directory holds the container's config.json, as a bundle does. */
function crunStateOf(statusText: string, id: string, dir: string): RuntimeState {
  const status = parseDocument(statusText, join(dir, 'status')) as { bundle?: unknown };
  if (typeof status.bundle !== 'string' || status.bundle === '') throw new ShimError(`${join(dir, 'status')}: no bundle`);
  return { id, bundle: status.bundle, annotations: loadBundleAnnotations(dir) };
}

/**
 * The container's state: from the runtime's root where its layout is known,
 * else (another layout, a file that does not read as expected, no such
 * container) from `<runtime> state`, the authority on its own files. A
 * container the runtime does not know fails the exec, as the runtime itself
 * would.
 */
export function containerState(runtime: string, globals: { forState: readonly string[]; root?: string | undefined }, id: string): RuntimeState {
  let state: RuntimeState | undefined;
  try {
    state = stateFromRoot(runtime, globals.root, id);
  } catch {
    state = undefined;
  }
  return state ?? queryState(runtime, globals.forState, id);
}

/** `<runtime> [global options] state ID`, parsed and validated. */
export function queryState(runtime: string, globalArgs: readonly string[], id: string): RuntimeState {
  const output = queryRuntime(runtime, [...globalArgs, 'state', id], `cannot look up container ${id} with ${runtime} state`, { timeoutMs: 60_000, maxBytes: 16 * 1024 * 1024 });
  const state = parseDocument(output, `${runtime} state ${id}`);
  assertValid<RuntimeState>(validateRuntimeState, state, `${runtime} state ${id}`);
  return state;
}

/** The removal recorded for a container; undefined when its create chose Merge. */
export function removalFor(state: RuntimeState): number[] | undefined {
  // runc and crun omit empty annotations; a runtime that never reports them
  // sends the shim to the bundle, which the container cannot reach either.
  const annotations = state.annotations ?? loadBundleAnnotations(state.bundle);
  return recordedRemoval(annotations);
}

/** Strips the container's recorded removal from an exec process file. */
export function prepareExec(processFile: string, removal: readonly number[]): number[] {
  const loaded = loadExecProcess(processFile);
  const { user } = loaded.document;
  // The recorded removal stands for what the create judged image-derived or
  // undeclared; the exec process's own primary gid stays, as at create.
  const strip = strictByImage(user.additionalGids ?? [], user.gid, new Set(removal), new Set());
  // The process file lives only until the runtime has read it: no fsync.
  if (strip.removed.length > 0) saveDocument(loaded, withAdditionalGids(loaded.document, strip.additionalGids), { durable: false });
  return strip.removed;
}
