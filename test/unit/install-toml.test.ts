import t from 'tap';
import { canonicalToml, isTable, parseToml, stringifyToml, tableAt, withValueAt, type TomlTable } from '../../src/install/toml';

t.test('parseToml', async (t) => {
  t.test('integers are BigInt, floats are numbers', async (t) => {
    const table = parseToml('a = 1\nb = 1.0\nc = 9007199254740993\nd = -5\ne = 1e3\n[t]\nf = "x"\n', 'f.toml');
    t.equal(table['a'], 1n);
    t.equal(table['b'], 1);
    t.equal(table['c'], 9007199254740993n);
    t.equal(table['d'], -5n);
    t.equal(table['e'], 1000);
    t.equal(tableAt(table, ['t'])?.['f'], 'x');
  });

  t.test('invalid TOML is a ShimError naming the file, on one line', async (t) => {
    for (const text of ['a = = 1\n', '[a]\nx = 1\n[a]\nx = 2\n', 'a = "unterminated\n', 'a = 1\na = 2\n']) {
      let message = '';
      t.throws(() => {
        try {
          parseToml(text, '/etc/containerd/config.toml');
        } catch (err) {
          message = (err as Error).message;
          throw err;
        }
      }, { name: 'ShimError', message: /^\/etc\/containerd\/config\.toml: not valid TOML: \S/ }, JSON.stringify(text));
      t.notMatch(message, /\n/, JSON.stringify(text));
    }
  });
});

t.test('stringifyToml', async (t) => {
  t.test('every JS number is a float, every BigInt an integer, digit for digit', async (t) => {
    const text = stringifyToml({ a: 1, b: 1n, c: 1.5, big: 9007199254740993n, list: [1n, 2] });
    t.equal(text, 'a = 1.0\nb = 1\nc = 1.5\nbig = 9007199254740993\nlist = [ 1, 2.0 ]\n');
  });

  t.test('parse(stringify(x)) is x for what the installer copies', async (t) => {
    const value: TomlTable = {
      runtime_type: 'io.containerd.runc.v2',
      pod_annotations: ['a/*', 'b'],
      privileged_without_host_devices: false,
      options: { SystemdCgroup: true, IoUid: 9007199254740993n, Ratio: 0.25, Whole: 2, BinaryName: '/usr/bin/runc' },
      empty: {},
    };
    const back = parseToml(stringifyToml(value), 'x');
    t.equal(canonicalToml(back), canonicalToml(value));
    t.equal(tableAt(back, ['options'])?.['Whole'], 2);
    t.equal(tableAt(back, ['options'])?.['IoUid'], 9007199254740993n);
  });
});

t.test('isTable', async (t) => {
  t.equal(isTable({}), true);
  t.equal(isTable(Object.create(null)), true);
  t.equal(isTable(parseToml('[a]\n', 'x')['a']), true);
  t.equal(isTable([]), false);
  t.equal(isTable(null), false);
  t.equal(isTable(undefined), false);
  t.equal(isTable('a'), false);
  t.equal(isTable(1n), false);
  t.equal(isTable(new Date(0)), false);
  // TOML dates parse to Date subclasses: values, not tables.
  t.equal(isTable(parseToml('d = 1979-05-27T07:32:00Z\n', 'x')['d']), false);
});

t.test('tableAt', async (t) => {
  const root = parseToml('s = "x"\n[a.b]\nc = 1\n[a.list]\n', 'x');
  t.equal(canonicalToml(tableAt(root, ['a', 'b'])), canonicalToml({ c: 1n }));
  t.equal(tableAt(root, []), root);
  t.equal(tableAt(root, ['a', 'missing']), undefined);
  t.equal(tableAt(root, ['missing', 'b']), undefined);
  // A step that is not a table.
  t.equal(tableAt(root, ['s']), undefined);
  t.equal(tableAt(root, ['s', 'length']), undefined);
  t.equal(tableAt(root, ['a', 'b', 'c']), undefined);
  // Inherited properties are not keys.
  t.equal(tableAt({}, ['constructor']), undefined);
  t.equal(tableAt({ a: {} }, ['a', '__proto__']), undefined);
  t.equal(tableAt({ a: {} }, ['a', 'toString']), undefined);
});

t.test('withValueAt', async (t) => {
  t.test('sets, creating tables on the way, without touching the input', async (t) => {
    const root: TomlTable = { keep: 1n, a: { b: { old: 'x' }, sibling: true } };
    const before = canonicalToml(root);
    const result = withValueAt(root, ['a', 'b', 'new'], 'y');
    t.equal(canonicalToml(result), canonicalToml({ keep: 1n, a: { b: { old: 'x', new: 'y' }, sibling: true } }));
    t.equal(canonicalToml(root), before);
    t.equal(canonicalToml(withValueAt({}, ['p', 'q', 'r'], { s: 1n })), canonicalToml({ p: { q: { r: { s: 1n } } } }));
  });

  t.test('replaces a value, and a non-table on the way', async (t) => {
    t.equal(canonicalToml(withValueAt({ a: 1n }, ['a'], 2n)), canonicalToml({ a: 2n }));
    t.equal(canonicalToml(withValueAt({ a: 'str' }, ['a', 'b'], 2n)), canonicalToml({ a: { b: 2n } }));
    t.equal(canonicalToml(withValueAt({ a: { b: { c: 1n } } }, ['a', 'b'], 'flat')), canonicalToml({ a: { b: 'flat' } }));
  });

  t.test('an empty path is an error', async (t) => {
    t.throws(() => withValueAt({}, [], 1n), { message: 'withValueAt: empty path' });
  });
});

t.test('canonicalToml', async (t) => {
  t.test('key order does not matter, at any depth', async (t) => {
    t.equal(canonicalToml({ a: 1n, b: { c: 'x', d: [1n, 2n] } }), canonicalToml({ b: { d: [1n, 2n], c: 'x' }, a: 1n }));
    t.equal(canonicalToml(parseToml('b = 1\na = 2\n[t]\ny = 1\nx = 2\n', 'x')), canonicalToml(parseToml('a = 2\nb = 1\n[t]\nx = 2\ny = 1\n', 'y')));
    t.equal(canonicalToml(parseToml('b = 1\na = 2\n[t]\ny = 1\nx = 2\n', 'x')), canonicalToml({ a: 2n, b: 1n, t: { x: 2n, y: 1n } }));
    t.equal(canonicalToml({ b: 1n, a: 2n }), '{"a":{"integer":"2"},"b":{"integer":"1"}}');
  });

  t.test('types and values matter', async (t) => {
    t.not(canonicalToml({ a: 1n }), canonicalToml({ a: 1 }));
    t.not(canonicalToml({ a: 0 }), canonicalToml({ a: -0 }));
    t.not(canonicalToml({ a: '1' }), canonicalToml({ a: 1n }));
    t.not(canonicalToml({ a: 1n }), canonicalToml({ a: 2n }));
    t.not(canonicalToml({ a: true }), canonicalToml({ a: 'true' }));
    t.not(canonicalToml({ a: {} }), canonicalToml({ a: [] }));
    t.not(canonicalToml({ a: {} }), canonicalToml({}));
    t.not(canonicalToml({ a: [1n, 2n] }), canonicalToml({ a: [2n, 1n] }));
    t.not(canonicalToml({ a: { b: 1n } }), canonicalToml({ a: { b: 1n, c: 1n } }));
    t.not(canonicalToml({ a: 9007199254740993n }), canonicalToml({ a: 9007199254740992n }));
    t.equal(canonicalToml({ a: 1.5, b: -0, c: 9007199254740993n }), '{"a":{"float":"1.5"},"b":{"float":"-0"},"c":{"integer":"9007199254740993"}}');
  });
});
