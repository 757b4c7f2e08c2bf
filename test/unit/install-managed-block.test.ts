import t from 'tap';
import { appendBlock, stripBlocks } from '../../src/install/managed-block';

const BEGIN_LINE = '# BEGIN strict-groups: added by strict-groups install.sh, removed by "install.sh --uninstall"; edits inside are replaced\n';
const END_LINE = '# END strict-groups\n';
const BODY = '[plugins."x".containerd.runtimes.strict-groups]\nruntime_type = "io.containerd.runc.v2"\n';
const BLOCK = `${BEGIN_LINE}${BODY}${END_LINE}`;

t.test('appendBlock', async (t) => {
  t.test('after a blank line, between the markers', async (t) => {
    t.equal(appendBlock('a = 1\n', BODY), `a = 1\n\n${BLOCK}`);
    // A text without a final newline gets one, then the blank line.
    t.equal(appendBlock('a = 1', BODY), `a = 1\n\n${BLOCK}`);
    // Already a blank line at the end: one more, the block's own separator.
    t.equal(appendBlock('a = 1\n\n', BODY), `a = 1\n\n\n${BLOCK}`);
  });

  t.test('an empty text becomes the block alone', async (t) => {
    t.equal(appendBlock('', BODY), BLOCK);
  });

  t.test('a body without a final newline gets one before END', async (t) => {
    t.equal(appendBlock('', 'x = 1'), `${BEGIN_LINE}x = 1\n${END_LINE}`);
    t.equal(appendBlock('', 'x = 1\n'), `${BEGIN_LINE}x = 1\n${END_LINE}`);
  });

  t.test('the block always ends with the END line and a newline', async (t) => {
    for (const text of ['', 'a', 'a\n', 'a\n\n']) {
      const result = appendBlock(text, BODY);
      t.ok(result.endsWith(`\n${END_LINE}`), JSON.stringify(text));
      t.equal(result.split('\n').filter((line) => line.startsWith('# BEGIN strict-groups')).length, 1, JSON.stringify(text));
    }
  });
});

t.test('stripBlocks', async (t) => {
  t.test('round trip gives back the original bytes', async (t) => {
    for (const text of ['a = 1\n', 'a = 1\n\n', '', '\n', '\n\n', '# only a comment\n[x]\ny = "z"\n', 'a = 1\r\nb = 2\r\n']) {
      const withBlock = appendBlock(text, BODY);
      t.not(withBlock, text, JSON.stringify(text));
      t.equal(stripBlocks(withBlock, 'f.toml'), text, JSON.stringify(text));
    }
  });

  t.test('known behaviour: a text without a final newline comes back with exactly one added', async (t) => {
    t.equal(stripBlocks(appendBlock('a = 1', BODY), 'f.toml'), 'a = 1\n');
    t.equal(stripBlocks(appendBlock('[x]\ny = 2', BODY), 'f.toml'), '[x]\ny = 2\n');
  });

  t.test('a text without a block is returned as is', async (t) => {
    for (const text of ['', 'a = 1', 'a = 1\n', 'a = 1\n\n\n', '# END strict-groups\n']) {
      t.equal(stripBlocks(text, 'f.toml'), text, JSON.stringify(text));
    }
  });

  t.test('text the operator added after the block survives', async (t) => {
    const withBlock = appendBlock('a = 1\n', BODY);
    t.equal(stripBlocks(`${withBlock}b = 2\n`, 'f.toml'), 'a = 1\nb = 2\n');
    t.equal(stripBlocks(`${withBlock}\n[later]\nc = 3\n`, 'f.toml'), 'a = 1\n\n[later]\nc = 3\n');
    // And when the file had nothing before the block.
    t.equal(stripBlocks(`${appendBlock('', BODY)}b = 2\n`, 'f.toml'), 'b = 2\n');
  });

  t.test('edits inside the block go with it', async (t) => {
    const edited = `a = 1\n\n${BEGIN_LINE}changed = true\n\n# a comment\n${END_LINE}`;
    t.equal(stripBlocks(edited, 'f.toml'), 'a = 1\n');
  });

  t.test('an END line without a final newline is stripped too', async (t) => {
    t.equal(stripBlocks(`a = 1\n\n${BEGIN_LINE}x = 1\n# END strict-groups`, 'f.toml'), 'a = 1\n');
  });

  t.test('several blocks are all stripped', async (t) => {
    const twice = appendBlock(appendBlock('a = 1\n', 'x = 1\n'), 'y = 2\n');
    t.equal(stripBlocks(twice, 'f.toml'), 'a = 1\n');
    const apart = `${appendBlock('a = 1\n', 'x = 1\n')}b = 2\n\n${BLOCK}c = 3\n`;
    t.equal(stripBlocks(apart, 'f.toml'), 'a = 1\nb = 2\nc = 3\n');
    t.equal(stripBlocks(`${BLOCK}${BLOCK}${BLOCK}`, 'f.toml'), '');
  });

  t.test('a BEGIN line without END throws a ShimError naming the file', async (t) => {
    t.throws(() => stripBlocks(`a = 1\n\n${BEGIN_LINE}x = 1\n`, '/etc/containerd/config.toml'), {
      name: 'ShimError',
      message: '/etc/containerd/config.toml: a "# BEGIN strict-groups" line has no "# END strict-groups" line after it; mend the file by hand',
    });
    // An END before the BEGIN does not close it.
    t.throws(() => stripBlocks(`${END_LINE}a = 1\n${BEGIN_LINE}x = 1\n`, '/etc/x.toml'), { name: 'ShimError', message: /^\/etc\/x\.toml: / });
    // Nor does an END that is not at a line start.
    t.throws(() => stripBlocks(`${BEGIN_LINE}x = 1 # END strict-groups\n`, 'f.toml'), { name: 'ShimError', message: /^f\.toml: / });
    // A complete block followed by a broken one.
    t.throws(() => stripBlocks(`${BLOCK}a = 1\n${BEGIN_LINE}`, 'g.toml'), { name: 'ShimError', message: /^g\.toml: / });
  });

  t.test('a marker not at a line start is not a marker', async (t) => {
    for (const text of ['a = 1 # BEGIN strict-groups\n', '  # BEGIN strict-groups\nb = 2\n', 'x = "# BEGIN strict-groups"\n', '## BEGIN strict-groups\n']) {
      t.equal(stripBlocks(text, 'f.toml'), text, JSON.stringify(text));
    }
    // An indented END does not end a block either.
    t.throws(() => stripBlocks(`${BEGIN_LINE}x = 1\n  # END strict-groups\n`, 'f.toml'), { name: 'ShimError' });
  });
});
