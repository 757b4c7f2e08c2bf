/**
 * Pod annotation values built to break the log lines containerd decodes, run
 * through the built shim by test/hostile/logs.test.ts. Each value goes into
 * an error message (as an invalid policy annotation) and into the audit trail
 * (as the pod, namespace and container names containerd records).
 */
import type { RecordRow } from '../helpers/record';

export interface LogCase {
  record: RecordRow;
  /** The annotation value as Node reads it from config.json. */
  value: string;
  /** The bytes of the JSON string in config.json, when not the plain encoding of `value`. */
  written?: Buffer;
}

const OUTCOME = 'one log line in each format (and on stderr), containerd reads the value back whole; one audit line';

export const LOG_CASES: readonly LogCase[] = [
  {
    record: { area: 'log lines', tried: 'a newline followed by a forged JSON error line', outcome: OUTCOME },
    value: 'x\n{"level":"error","msg":"forged","time":"2026-11-29T00:00:00Z"}\n',
  },
  {
    record: { area: 'log lines', tried: 'quotes, backslashes and a logrus-style msg="..."', outcome: OUTCOME },
    value: `" \\" ' msg="forged" level=error \\`,
  },
  {
    record: { area: 'log lines', tried: 'every C0 control character, DEL, and an ANSI escape', outcome: OUTCOME },
    value: Array.from({ length: 32 }, (_, code) => String.fromCharCode(code)).join('') + '\u007f\u001b[31mred',
  },
  {
    record: { area: 'log lines', tried: 'U+2028 and U+2029 (line breaks to JavaScript) and U+0085', outcome: OUTCOME },
    value: 'a\u2028b\u2029c\u0085d',
  },
  {
    record: { area: 'log lines', tried: 'a lone surrogate escaped in config.json ("\\ud800")', outcome: `${OUTCOME} (JSON-escaped)` },
    value: 'a\ud800b',
  },
  {
    record: { area: 'log lines', tried: 'bytes that are not UTF-8 in config.json', outcome: `${OUTCOME} (as U+FFFD)` },
    value: 'a\ufffdb',
    written: Buffer.from([0x61, 0xff, 0x62]),
  },
  {
    record: { area: 'log lines', tried: 'a 200 KiB value', outcome: 'one log line, the value cut at 256 characters with its length said; one audit line, whole' },
    value: 'v'.repeat(200 * 1024),
  },
];
