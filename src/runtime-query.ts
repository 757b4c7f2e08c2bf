import { ShimError, describe } from './errors';

/**
 * Asking the real runtime something (`state`, `list`) and reading its answer
 * or its error the way an operator would read them. child_process is loaded
 * on the first question only: the calls that never ask do not pay for it.
 */

export interface QueryLimits {
  timeoutMs: number;
  maxBytes: number;
}

/** The runtime's stdout; a failure is a ShimError led by `what`, with the runtime's own message. */
export function queryRuntime(runtime: string, args: readonly string[], what: string, limits: QueryLimits): string {
  const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
  try {
    return execFileSync(runtime, [...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: limits.timeoutMs,
      maxBuffer: limits.maxBytes,
    });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new ShimError(`${what}: ${runtimeMessage(stderr) || describe(error)}`);
  }
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
