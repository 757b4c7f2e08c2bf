import t from 'tap';
import { lineDiff } from '../../src/install/line-diff';

t.test('lineDiff', async (t) => {
  t.test('equal texts have no difference', async (t) => {
    t.same(lineDiff('', ''), []);
    t.same(lineDiff('a\nb\n', 'a\nb\n'), []);
    // A missing final newline is not a line of its own.
    t.same(lineDiff('a\nb', 'a\nb\n'), []);
  });

  t.test('an appended block is all "+" lines', async (t) => {
    t.strictSame(lineDiff('a = 1\n', 'a = 1\n\n# BEGIN\nx = 1\n# END\n'), ['+ ', '+ # BEGIN', '+ x = 1', '+ # END']);
    t.strictSame(lineDiff('', 'x\ny\n'), ['+ x', '+ y']);
  });

  t.test('a removed block is all "-" lines', async (t) => {
    t.strictSame(lineDiff('a = 1\n\n# BEGIN\nx = 1\n# END\nb = 2\n', 'a = 1\nb = 2\n'), ['- ', '- # BEGIN', '- x = 1', '- # END']);
    t.strictSame(lineDiff('x\ny\n', ''), ['- x', '- y']);
  });

  t.test('a changed stretch: old lines first, then new, shared lines around left out', async (t) => {
    t.strictSame(lineDiff('a\nb\nc\nd\n', 'a\nX\nY\nd\n'), ['- b', '- c', '+ X', '+ Y']);
    t.strictSame(lineDiff('a\n', 'b\n'), ['- a', '+ b']);
  });

  t.test('repeated lines: prefix and suffix never overlap', async (t) => {
    t.strictSame(lineDiff('a\na\n', 'a\na\na\n'), ['+ a']);
    t.strictSame(lineDiff('a\na\na\n', 'a\n'), ['- a', '- a']);
    t.strictSame(lineDiff('x\n\n\ny\n', 'x\n\ny\n'), ['- ']);
  });

  t.test('blank lines inside keep their place', async (t) => {
    t.strictSame(lineDiff('a\n\nb\n', 'a\n\nnew\n\nb\n'), ['+ new', '+ ']);
  });
});
