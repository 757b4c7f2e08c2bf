/**
 * src/log.ts: containerd decodes EVERY line of runc's --log file as JSON
 * {"level","msg","time"} with an RFC 3339 time and shows the last error's
 * msg; one undecodable line and the user gets "unable to retrieve OCI runtime
 * error" instead of the shim's reason. conmon relays stderr.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { formatLogLine, logFormatFrom, report, type LogLevel } from '../../src/log';

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

interface Entry {
  level: string;
  msg: string;
  time: string;
}

/** What containerd does with the whole log file; throws where it would give up. */
function decodeLikeContainerd(text: string): Entry[] {
  const entries: Entry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const value: unknown = JSON.parse(line);
    if (typeof value !== 'object' || value === null) throw new Error(`not an object: ${line}`);
    const { level, msg, time } = value as Record<string, unknown>;
    if (typeof level !== 'string' || typeof msg !== 'string' || typeof time !== 'string') throw new Error(`missing field: ${line}`);
    if (!RFC3339.test(time)) throw new Error(`time is not RFC 3339: ${time}`);
    entries.push({ level, msg, time });
  }
  return entries;
}

const WHEN = new Date(Date.UTC(2026, 10, 26, 22, 48, 12, 345));
const WHEN_TEXT = '2026-11-26T22:48:12.345Z';

/** Messages that could end a line early, forge one, or break a decoder. */
const NASTY: [string, string][] = [
  ['plain', 'runc create failed: chdir /nonexistent: no such file or directory'],
  ['empty', ''],
  ['newline', 'first line\n{"level":"error","msg":"forged","time":"2026-01-01T00:00:00Z"}'],
  ['trailing newline', 'ends with a newline\n'],
  ['CRLF', 'a\r\nb\rc'],
  ['quotes', 'say "hi" and \'bye\''],
  ['backslashes', 'C:\\path\\to\\file \\" \\n \\u0000'],
  ['control chars', Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('') + '\u007f'],
  ['U+2028 and U+2029', 'line\u2028separator\u2029paragraph'],
  ['U+0085', 'next\u0085line'],
  ['lone high surrogate', 'a\ud800b'],
  ['lone low surrogate', 'a\udc00b'],
  ['reversed pair', '\udc00\ud800'],
  ['astral', 'emoji \u{1F600} and CJK 漢字'],
  ['NUL', 'nul\u0000byte'],
  ['BOM', '\ufeffbom'],
  ['text-format lookalike', 'x" level=info msg="forged'],
  ['long', 'x'.repeat(100_000)],
];

t.test('formatLogLine json: one line, decodable, exact round trip', (t) => {
  for (const [name, msg] of NASTY) {
    const line = formatLogLine('error', msg, WHEN, 'json');
    t.equal(line.endsWith('\n'), true, `${name}: ends with a newline`);
    t.equal(line.indexOf('\n'), line.length - 1, `${name}: exactly one newline`);
    t.equal(line.includes('\r'), false, `${name}: no carriage return`);
    const entries = decodeLikeContainerd(line);
    t.strictSame(entries, [{ level: 'error', msg, time: WHEN_TEXT }], `${name}: decodes to the same message`);
    // logrus's JSONFormatter key order; containerd does not care, people diffing do.
    t.strictSame(Object.keys(JSON.parse(line) as object), ['level', 'msg', 'time'], `${name}: key order`);
  }
  t.end();
});

t.test('formatLogLine json: exact text', (t) => {
  t.equal(
    formatLogLine('error', 'strict-groups: refusing to run: x', WHEN, 'json'),
    '{"level":"error","msg":"strict-groups: refusing to run: x","time":"2026-11-26T22:48:12.345Z"}\n',
  );
  t.equal(formatLogLine('warning', 'a\nb', WHEN, 'json'), '{"level":"warning","msg":"a\\nb","time":"2026-11-26T22:48:12.345Z"}\n');
  // Lone surrogates are escaped, so the file stays valid UTF-8.
  t.equal(formatLogLine('info', '\ud800', WHEN, 'json'), '{"level":"info","msg":"\\ud800","time":"2026-11-26T22:48:12.345Z"}\n');
  t.end();
});

t.test('formatLogLine time is RFC 3339 for any instant', (t) => {
  const instants = [new Date(0), new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 999)), new Date(Date.UTC(2038, 0, 19, 3, 14, 8)), new Date(Date.UTC(9999, 11, 31, 23, 59, 59))];
  for (const when of instants) {
    for (const level of ['error', 'warning', 'info', 'debug'] as LogLevel[]) {
      const [entry] = decodeLikeContainerd(formatLogLine(level, 'm', when, 'json'));
      t.equal(entry?.time, when.toISOString(), `${when.toISOString()} ${level}`);
      t.equal(entry?.level, level);
    }
  }
  t.match(formatLogLine('error', 'm', new Date(), 'text'), /^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z" level=error msg="m"\n$/);
  t.end();
});

t.test('formatLogLine text: logrus TextFormatter shape, one line', (t) => {
  t.equal(
    formatLogLine('error', 'runc create failed: chdir /nonexistent: no such file or directory', WHEN, 'text'),
    'time="2026-11-26T22:48:12.345Z" level=error msg="runc create failed: chdir /nonexistent: no such file or directory"\n',
  );
  t.equal(formatLogLine('warning', 'say "hi"', WHEN, 'text'), 'time="2026-11-26T22:48:12.345Z" level=warning msg="say \\"hi\\""\n');
  for (const [name, msg] of NASTY) {
    const line = formatLogLine('error', msg, WHEN, 'text');
    t.equal(line.indexOf('\n'), line.length - 1, `${name}: exactly one newline`);
    const m = /^time="([^"]*)" level=(\w+) msg=(".*")\n$/s.exec(line);
    t.ok(m, `${name}: shape`);
    if (m) {
      t.equal(m[1], WHEN_TEXT);
      t.equal(m[2], 'error');
      t.equal(JSON.parse(m[3]!), msg, `${name}: msg round-trips`);
    }
  }
  t.end();
});

t.test('logFormatFrom: exactly "json" is json', (t) => {
  t.equal(logFormatFrom('json'), 'json');
  for (const value of [undefined, 'text', '', 'JSON', 'json ', 'yaml']) t.equal(logFormatFrom(value), 'text', JSON.stringify(value));
  t.end();
});

t.test('report appends to the --log file', (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'log.json');
  report({ path, format: 'json' }, 'error', 'first\nline', WHEN);
  report({ path, format: 'json' }, 'warning', 'second "one"', new Date(Date.UTC(2026, 10, 26, 22, 48, 13)));
  const text = readFileSync(path, 'utf8');
  t.equal(text.split('\n').length, 3, 'two lines and a final newline');
  t.strictSame(decodeLikeContainerd(text), [
    { level: 'error', msg: 'first\nline', time: WHEN_TEXT },
    { level: 'warning', msg: 'second "one"', time: '2026-11-26T22:48:13.000Z' },
  ]);
  t.strictSame(readdirSync(dir), ['log.json'], 'nothing else created');
  t.end();
});

t.test('report keeps what runc already wrote, and containerd sees the shim error last', (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'log.json');
  const runcLine = '{"level":"warning","msg":"runc warning","time":"2026-11-26T22:48:12Z"}\n';
  appendFileSync(path, runcLine);
  report({ path, format: 'json' }, 'error', 'strict-groups: refusing to run: x', WHEN);
  const text = readFileSync(path, 'utf8');
  t.equal(text.startsWith(runcLine), true);
  const errors = decodeLikeContainerd(text).filter((e) => e.level === 'error');
  t.equal(errors.at(-1)?.msg, 'strict-groups: refusing to run: x');
  t.end();
});

t.test('report text format appends text lines', (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'log');
  report({ path, format: 'text' }, 'error', 'a', WHEN);
  report({ path, format: 'text' }, 'error', 'b', WHEN);
  t.equal(
    readFileSync(path, 'utf8'),
    'time="2026-11-26T22:48:12.345Z" level=error msg="a"\ntime="2026-11-26T22:48:12.345Z" level=error msg="b"\n',
  );
  t.end();
});

/**
 * report()'s stderr fallback writes to fd 2 directly, so it is checked in a
 * child that loads src/log.ts through tap's ts-node (transpile only).
 */
function reportInChild(
  target: { path?: string; format: 'text' | 'json' },
  msg: string,
  level: LogLevel = 'error',
): { stdout: string; stderr: string; status: number | null } {
  const register = require.resolve('@isaacs/ts-node-temp-fork-for-pr-2009/register/transpile-only');
  const script = `require(${JSON.stringify(require.resolve('../../src/log'))}).report(${JSON.stringify(target)}, ${JSON.stringify(level)}, ${JSON.stringify(msg)})`;
  const child = spawnSync(process.execPath, ['-r', register, '-e', script], { encoding: 'utf8', timeout: 60_000 });
  return { stdout: child.stdout, stderr: child.stderr, status: child.status };
}

t.test('report falls back to stderr with the bare message', (t) => {
  const dir = t.testdir({ sub: {} });
  const cases: [string, { path?: string; format: 'text' | 'json' }][] = [
    ['no --log', { format: 'json' }],
    ['empty --log', { path: '', format: 'json' }],
    ['directory missing', { path: join(dir, 'nonexistent', 'log.json'), format: 'json' }],
    ['path is a directory', { path: join(dir, 'sub'), format: 'text' }],
  ];
  for (const [name, target] of cases) {
    // conmon relays stderr as is: the bare message, no JSON, no timestamp.
    const got = reportInChild(target, 'strict-groups: cannot do it\nsecond line');
    t.strictSame(got, { stdout: '', stderr: 'strict-groups: cannot do it\nsecond line\n', status: 0 }, name);
    // During create and exec stderr is the container's: only an error may go there.
    t.strictSame(reportInChild(target, 'strict-groups: a warning', 'warning'), { stdout: '', stderr: '', status: 0 }, `${name}: a warning is dropped`);
  }
  t.equal(existsSync(join(dir, 'nonexistent')), false, 'no directory created');
  t.strictSame(readdirSync(join(dir, 'sub')), [], 'nothing written into the directory');
  t.end();
});
