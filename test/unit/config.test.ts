/**
 * src/config.ts: the node configuration. A typo must stop the shim with a
 * message naming the key and the file, never silently fall back to a default
 * (a misspelt "defaultPolicy" would quietly change every pod's groups).
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_PATH_ENV, DEFAULTS, DEFAULT_CONFIG_PATH, configPath, loadConfig, resolveConfig, type NodeConfig } from '../../src/config';

interface SchemaProperty {
  default?: unknown;
}
const schema = JSON.parse(readFileSync(join(__dirname, '..', '..', 'schemas', 'config.schema.json'), 'utf8')) as {
  properties: Record<string, SchemaProperty>;
  additionalProperties: boolean;
};

t.test('DEFAULTS equal the schema defaults, key for key', (t) => {
  const documented = Object.entries(schema.properties).filter(([key]) => key !== '$schema');
  t.strictSame(Object.keys(DEFAULTS).sort(), documented.map(([key]) => key).sort(), 'same keys');
  for (const [key, property] of documented) {
    t.ok('default' in property, `${key} has a default in the schema`);
    t.strictSame((DEFAULTS as Record<string, unknown>)[key], property.default, key);
  }
  t.equal(schema.additionalProperties, false, 'the schema refuses unknown keys');
  t.equal(Object.isFrozen(DEFAULTS), true);
  t.end();
});

t.test('configPath: STRICT_GROUPS_CONFIG or the default', (t) => {
  t.equal(CONFIG_PATH_ENV, 'STRICT_GROUPS_CONFIG');
  t.equal(configPath({}), '/etc/strict-groups/config.json');
  t.equal(DEFAULT_CONFIG_PATH, '/etc/strict-groups/config.json');
  t.equal(configPath({ STRICT_GROUPS_CONFIG: '' }), DEFAULT_CONFIG_PATH, 'empty means unset');
  t.equal(configPath({ STRICT_GROUPS_CONFIG: '/srv/sg.json' }), '/srv/sg.json');
  t.end();
});

t.test('a missing file means every default', (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'absent.json');
  const { config, path: used } = loadConfig({ STRICT_GROUPS_CONFIG: path });
  t.equal(used, path);
  t.strictSame(config, {
    runtime: 'runc',
    defaultPolicy: 'Strict',
    allowPolicyOverride: true,
    honorKeepGids: false,
    auditLog: '/var/log/strict-groups/audit.log',
  });
  t.not(config, DEFAULTS, 'a copy, not the frozen defaults');
  t.end();
});

t.test('STRICT_GROUPS_CONFIG selects the file; a partial file fills defaults', (t) => {
  const dir = t.testdir({
    'full.json': JSON.stringify({
      $schema: 'https://strict-groups.io/schemas/config.schema.json',
      runtime: '/usr/bin/crun',
      defaultPolicy: 'Merge',
      allowPolicyOverride: false,
      honorKeepGids: true,
      auditLog: null,
    }),
    'partial.json': '{"runtime":"/usr/sbin/runc"}',
    'empty.json': '{}',
    'null-audit.json': '{"auditLog":null}',
  });
  const load = (name: string): NodeConfig => {
    const { config, path } = loadConfig({ STRICT_GROUPS_CONFIG: join(dir, name), PATH: '/bin' });
    t.equal(path, join(dir, name));
    return config;
  };
  t.strictSame(load('full.json'), { runtime: '/usr/bin/crun', defaultPolicy: 'Merge', allowPolicyOverride: false, honorKeepGids: true, auditLog: null }, '$schema is allowed and not copied');
  t.strictSame(load('partial.json'), { ...DEFAULTS, runtime: '/usr/sbin/runc' });
  t.strictSame(load('empty.json'), { ...DEFAULTS });
  // null is a value ("no audit log"), not "use the default".
  t.strictSame(load('null-audit.json'), { ...DEFAULTS, auditLog: null });
  t.end();
});

t.test('invalid configurations: ShimError naming the file and the key', (t) => {
  const cases: [string, string, string][] = [
    ['unknown key', '{"defaultPolicy":"Strict","defaultPolicyy":"Merge"}', '(top level) unknown key "defaultPolicyy"'],
    ['lower-case policy', '{"defaultPolicy":"strict"}', '/defaultPolicy must be equal to one of the allowed values'],
    ['empty runtime', '{"runtime":""}', '/runtime must NOT have fewer than 1 characters'],
    ['runtime not a string', '{"runtime":["runc"]}', '/runtime must be string'],
    ['relative audit log', '{"auditLog":"relative/path"}', '/auditLog must match pattern "^/"'],
    ['audit log false', '{"auditLog":false}', '/auditLog must be string'],
    ['"yes" for a boolean', '{"allowPolicyOverride":"yes"}', '/allowPolicyOverride must be boolean'],
    ['1 for a boolean', '{"honorKeepGids":1}', '/honorKeepGids must be boolean'],
    ['an array', '[]', '(top level) must be object'],
    ['null', 'null', '(top level) must be object'],
  ];
  for (const [name, text, detail] of cases) {
    const path = join(t.testdir({ 'config.json': text }), 'config.json');
    t.throws(() => loadConfig({ STRICT_GROUPS_CONFIG: path }), { name: 'ShimError', message: `${path}: ${detail}` }, name);
  }
  t.end();
});

t.test('invalid JSON and unreadable files', (t) => {
  const dir = t.testdir({ 'bad.json': '{"runtime":"runc",}', 'empty.json': '', 'adir': {} });
  for (const name of ['bad.json', 'empty.json']) {
    const path = join(dir, name);
    t.throws(() => loadConfig({ STRICT_GROUPS_CONFIG: path }), { name: 'ShimError', message: new RegExp(`^${path}: not valid JSON: `) }, name);
  }
  t.throws(() => loadConfig({ STRICT_GROUPS_CONFIG: join(dir, 'adir') }), { name: 'ShimError', message: `${join(dir, 'adir')} is not a regular file` });
  // A missing file is fine; a missing directory on the way is the same ENOENT.
  t.strictSame(loadConfig({ STRICT_GROUPS_CONFIG: join(dir, 'no', 'such.json') }).config, { ...DEFAULTS });
  t.end();
});

t.test('resolveConfig on parsed documents', (t) => {
  t.strictSame(resolveConfig({ honorKeepGids: true }, '/x.json'), { ...DEFAULTS, honorKeepGids: true });
  t.throws(() => resolveConfig({ foo: 1 }, '/x.json'), { name: 'ShimError', message: '/x.json: (top level) unknown key "foo"' });
  t.throws(() => resolveConfig('Strict', '/x.json'), { name: 'ShimError', message: '/x.json: (top level) must be object' });
  const a = resolveConfig({}, '/x.json');
  a.runtime = 'changed';
  t.equal(resolveConfig({}, '/x.json').runtime, 'runc', 'results do not share state');
  t.equal(DEFAULTS.runtime, 'runc');
  t.end();
});
