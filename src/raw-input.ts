import { isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';

/**
 * Node hands a program its arguments and environment as strings decoded from
 * UTF-8, and encodes them back to UTF-8 for execve or spawn: a byte sequence
 * that is not UTF-8 reaches the runtime as U+FFFD, a different argument than
 * the caller passed. The raw bytes stay readable in /proc/self; they are read
 * only when a decoded string holds U+FFFD, the one sign of such a loss, so the
 * ordinary call pays nothing.
 */

const REPLACEMENT = '\ufffd';
const NUL = 0;

function splitNul(raw: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = raw.indexOf(NUL); i !== -1; i = raw.indexOf(NUL, start)) {
    parts.push(raw.subarray(start, i));
    start = i + 1;
  }
  if (start < raw.length) parts.push(raw.subarray(start));
  return parts;
}

/**
 * The 1-based position of the first argument that is not valid UTF-8, or
 * undefined. `args` excludes the program name, as /proc/self/cmdline's first
 * entry is the name the program was called by.
 */
export function nonUtf8Argument(args: readonly string[], cmdline: () => Buffer = () => readFileSync('/proc/self/cmdline')): number | undefined {
  if (!args.some((arg) => arg.includes(REPLACEMENT))) return undefined;
  const raw = splitNul(cmdline()).slice(1);
  const index = raw.findIndex((bytes) => !isUtf8(bytes));
  return index === -1 ? undefined : index + 1;
}

/** The name of the first environment variable that is not valid UTF-8, or undefined. */
export function nonUtf8Variable(env: NodeJS.ProcessEnv, environ: () => Buffer = () => readFileSync('/proc/self/environ')): string | undefined {
  if (!Object.entries(env).some(([name, value]) => name.includes(REPLACEMENT) || (value ?? '').includes(REPLACEMENT))) return undefined;
  const entry = splitNul(environ()).find((bytes) => !isUtf8(bytes));
  if (entry === undefined) return undefined;
  const eq = entry.indexOf('=');
  return JSON.stringify((eq === -1 ? entry : entry.subarray(0, eq)).toString('utf8'));
}
