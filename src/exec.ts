import { execFileSync } from 'node:child_process';
import { loadBundleAnnotations, loadExecProcess, saveDocument, withAdditionalGids } from './bundle';
import { ShimError } from './errors';
import { validateRuntimeState } from './generated/validators.cjs';
import { parseDocument } from './json-document';
import { recordedRemoval, strictByImage } from './policy';
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

/** `<runtime> [global options] state ID`, parsed and validated. */
export function queryState(runtime: string, globalArgs: readonly string[], id: string): RuntimeState {
  let output: string;
  try {
    output = execFileSync(runtime, [...globalArgs, 'state', id], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 16 * 1024 * 1024,
      timeout: 60_000,
    });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new ShimError(`cannot look up container ${id} with ${runtime} state: ${runtimeMessage(stderr) || (err as Error).message}`);
  }
  const state = parseDocument(output, `${runtime} state ${id}`);
  assertValid<RuntimeState>(validateRuntimeState, state, `${runtime} state ${id}`);
  return state;
}

/**
 * The message of a runtime's error output: runc without --log prints a
 * logrus line (time="..." level=error msg="..."), crun a plain line.
 */
export function runtimeMessage(stderr: string): string {
  const lastLine = stderr.split('\n').filter((line) => line.trim() !== '').pop() ?? '';
  const logrus = /(?:^|\s)msg="((?:[^"\\]|\\.)*)"/.exec(lastLine);
  if (logrus === null) return lastLine.trim();
  try {
    return JSON.parse(`"${logrus[1]}"`) as string;
  } catch {
    return logrus[1]!;
  }
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
