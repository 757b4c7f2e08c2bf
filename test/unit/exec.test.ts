/**
 * src/exec.ts: what an operator reads when exec cannot find its container.
 */
import t from 'tap';
import { runtimeMessage } from '../../src/exec';

t.test('runtimeMessage takes the message out of the runtime\'s error output', async (t) => {
  t.equal(runtimeMessage('time="2026-11-26T22:48:12Z" level=error msg="container does not exist"'), 'container does not exist', 'runc without --log: logrus text');
  t.equal(runtimeMessage('time="x" level=error msg="a \\"quoted\\" word"\n'), 'a "quoted" word', 'logrus escapes');
  t.equal(runtimeMessage('container does not exist'), 'container does not exist', 'runc with --log: the bare message');
  t.equal(runtimeMessage('error opening file `/run/crun/x/status`: No such file or directory\n\n'), 'error opening file `/run/crun/x/status`: No such file or directory', 'crun');
  t.equal(runtimeMessage('WARN something\ntime="t" level=error msg="last one"'), 'last one', 'the last line');
  t.equal(runtimeMessage(''), '');
});
