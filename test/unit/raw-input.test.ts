import t from 'tap';
import { nonUtf8Argument, nonUtf8Variable } from '../../src/raw-input';

/** What /proc/self/cmdline or /proc/self/environ hold: NUL-terminated entries. */
function entries(...parts: (string | Buffer)[]): Buffer {
  return Buffer.concat(parts.flatMap((part) => [Buffer.isBuffer(part) ? part : Buffer.from(part), Buffer.of(0)]));
}

const unreadable = (): Buffer => {
  throw new Error('read without need');
};

t.test('arguments', async (t) => {
  t.equal(nonUtf8Argument(['state', 'café', '漢字'], unreadable), undefined, 'valid UTF-8 is never looked up');
  t.equal(nonUtf8Argument([], unreadable), undefined);

  const cmdline = entries('/usr/local/bin/strict-groups-runtime', 'state', Buffer.from('ab\xffcd', 'latin1'));
  t.equal(nonUtf8Argument(['state', 'ab\ufffdcd'], () => cmdline), 2, 'a 0xff byte, decoded as U+FFFD, is argument 2');

  const overlong = entries('runc', Buffer.of(0xc0, 0xaf), 'x');
  t.equal(nonUtf8Argument(['\ufffd\ufffd', 'x'], () => overlong), 1, 'an overlong encoding counts');

  const genuine = entries('runc', 'kill', 'a\ufffdb');
  t.equal(nonUtf8Argument(['kill', 'a\ufffdb'], () => genuine), undefined, 'a real U+FFFD character passes');

  const withEmpty = entries('runc', '', Buffer.of(0x78, 0xfe));
  t.equal(nonUtf8Argument(['', 'x\ufffd'], () => withEmpty), 2, 'an empty argument keeps its place');
});

t.test('environment', async (t) => {
  t.equal(nonUtf8Variable({ PATH: '/usr/bin', LANG: 'C.UTF-8', X: 'é' }, unreadable), undefined, 'valid UTF-8 is never looked up');

  const environ = entries('PATH=/usr/bin', Buffer.from('NOTIFY_SOCKET=/run/\xfe', 'latin1'));
  t.equal(nonUtf8Variable({ PATH: '/usr/bin', NOTIFY_SOCKET: '/run/\ufffd' }, () => environ), '"NOTIFY_SOCKET"');

  const badName = entries(Buffer.from('A\xffB=1', 'latin1'));
  t.equal(nonUtf8Variable({ 'A\ufffdB': '1' }, () => badName), '"A\ufffdB"', 'a name that is not UTF-8 is named as decoded');

  const genuine = entries('X=\ufffd');
  t.equal(nonUtf8Variable({ X: '\ufffd' }, () => genuine), undefined, 'a real U+FFFD character passes');
});
