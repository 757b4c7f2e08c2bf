import { closeSync, openSync, writeSync } from 'node:fs';
import { appendWhole } from './files';

/**
 * Error reporting the way runc does it, for the callers that read it:
 * containerd decodes every line of the --log file as JSON and shows the last
 * "error" msg; conmon relays stderr. During create/exec the shim's stdio is the
 * container's, so nothing is printed on success, and fd 2 is written with
 * writeSync: Node's stdio stream objects would leave a pipe non-blocking for runc.
 */

export type LogFormat = 'text' | 'json';

export interface LogTarget {
  /** The runtime's --log file, when the caller gave one. */
  path?: string | undefined;
  format: LogFormat;
}

export type LogLevel = 'error' | 'warning' | 'info' | 'debug';

/** One runc-style log line, newline included. `time` is RFC 3339. */
export function formatLogLine(level: LogLevel, msg: string, time: Date, format: LogFormat): string {
  const stamp = time.toISOString();
  if (format === 'json') {
    // JSON.stringify escapes newlines, quotes and control characters, so a
    // message can never end the line early or forge another one.
    return JSON.stringify({ level, msg, time: stamp }) + '\n';
  }
  return `time=${JSON.stringify(stamp)} level=${level} msg=${JSON.stringify(msg)}\n`;
}

/** Parses runc's --log-format value; runc accepts exactly "text" and "json". */
export function logFormatFrom(value: string | undefined): LogFormat {
  return value === 'json' ? 'json' : 'text';
}

/**
 * Appends a line to the --log file. An error that cannot be appended whole
 * (no --log, or a full disk: a part of a line would hide every line from
 * containerd) goes to stderr instead, as it must go somewhere; a warning is
 * then dropped, since during create and exec stderr is the container's.
 */
export function report(target: LogTarget, level: LogLevel, msg: string, now: Date = new Date()): void {
  if (target.path !== undefined && target.path !== '') {
    try {
      const fd = openSync(target.path, 'a', 0o644);
      try {
        appendWhole(fd, Buffer.from(formatLogLine(level, msg, now, target.format), 'utf8'));
      } finally {
        closeSync(fd);
      }
      return;
    } catch {
      // fall through
    }
  }
  if (level === 'error') writeStderr(msg + '\n');
}

/** Writes to fd 2 without Node's stream object for it. */
function writeStderr(text: string): void {
  try {
    writeSync(2, text);
  } catch {
    // Nowhere left to report to.
  }
}

/** Writes to fd 1 without Node's stream object for it. */
export function writeStdout(text: string): void {
  writeSync(1, text);
}
