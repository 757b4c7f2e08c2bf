/**
 * Properties of runc-style log lines (src/log.ts formatLogLine) for any
 * message: exactly one line, which containerd's decoder reads back as the
 * same message (json), and which no message can end early or follow with a
 * forged line (json and text). The file holds UTF-8, so each line is judged
 * after a trip through UTF-8 bytes, as containerd reads it. Messages include
 * lone surrogates, which UTF-8 cannot carry unless escaped.
 * test/unit/log.test.ts holds the worked cases.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { formatLogLine, type LogFormat, type LogLevel } from '../../src/log';
import { assertProperty, text } from '../helpers/properties';

const RUNS = { numRuns: 1000 };

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

const message = fc.oneof(text({ loneSurrogates: true, maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 200 }));
const level = fc.constantFrom<LogLevel>('error', 'warning', 'info', 'debug');
/** RFC 3339 has four-digit years. */
const instant = fc.date({ min: new Date('0000-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true });

/** The line as it reads back from the file: written as UTF-8, decoded as UTF-8. */
const throughUtf8 = (line: string): string => Buffer.from(line, 'utf8').toString('utf8');

function assertOneLine(line: string): void {
  assert.equal(line.indexOf('\n'), line.length - 1, 'exactly one "\\n", at the end');
  assert.equal(throughUtf8(line), line, 'well-formed: the file holds exactly this line');
}

type Formatter = (level: LogLevel, msg: string, time: Date, format: LogFormat) => string;

/** containerd's view of a json line: {level, msg, time}, time RFC 3339. */
function jsonLaws(format: Formatter): (lvl: LogLevel, msg: string, time: Date) => void {
  return (lvl, msg, time) => {
    const line = format(lvl, msg, time, 'json');
    assertOneLine(line);
    const decoded: unknown = JSON.parse(throughUtf8(line));
    assert.deepEqual(decoded, { level: lvl, msg, time: time.toISOString() });
    assert.match((decoded as { time: string }).time, RFC3339);
  };
}

/**
 * logrus's text shape with every value quoted: `time="…" level=L msg="…"`.
 * The msg group admits no unescaped quote, so nothing after it can be read
 * as another key or line.
 */
const TEXT_LINE = /^time="([^"\\]*)" level=(\w+) msg=("(?:[^"\\\n]|\\.)*")\n$/s;

function textLaws(format: Formatter): (lvl: LogLevel, msg: string, time: Date) => void {
  return (lvl, msg, time) => {
    const line = format(lvl, msg, time, 'text');
    assertOneLine(line);
    const fields = TEXT_LINE.exec(throughUtf8(line));
    assert.ok(fields, `shape: ${JSON.stringify(line)}`);
    assert.equal(fields[1], time.toISOString());
    assert.match(fields[1]!, RFC3339);
    assert.equal(fields[2], lvl);
    assert.equal(JSON.parse(fields[3]!), msg, 'the quoted msg decodes to the message');
  };
}

t.test('json: one line, decodes to {level, msg, time} with the same msg', async (t) => {
  assertProperty(fc.property(level, message, instant, jsonLaws(formatLogLine)), RUNS);
  t.pass('every message survives the json format');
});

t.test('text: one line, time="…" level=L msg="…", the msg decodes back', async (t) => {
  assertProperty(fc.property(level, message, instant, textLaws(formatLogLine)), RUNS);
  t.pass('every message survives the text format');
});

t.test('the laws catch the formatters they are meant to catch', async (t) => {
  // Interpolating the message unquoted lets "\n" or '"' forge a line or a key;
  // writing lone surrogates raw turns them into U+FFFD in the file.
  const unescapedText: Formatter = (lvl, msg, time) => `time="${time.toISOString()}" level=${lvl} msg="${msg}"\n`;
  const rawSurrogates: Formatter = (lvl, msg, time) => `{"level":"${lvl}","msg":${JSON.stringify(msg).replace(/\\u(d[89a-f][0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))},"time":"${time.toISOString()}"}\n`;
  t.ok(fc.check(fc.property(level, message, instant, textLaws(unescapedText)), RUNS).failed, 'unescaped text fails');
  t.ok(fc.check(fc.property(level, message, instant, jsonLaws(rawSurrogates)), RUNS).failed, 'raw lone surrogates fail');
});
