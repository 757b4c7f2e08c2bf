/**
 * Properties of runc's command line (src/argv.ts parseInvocation) and of the
 * built binary's hand-off: whatever runc command line comes in, the real
 * runtime gets it byte for byte. The runtime here is a recording script, so
 * each run of dist/strict-groups-runtime costs one Node start (40 to 120 ms
 * on a loaded 2-core machine): the binary properties run 60 cases each.
 *
 * Argument strings are well-formed UTF-16 without NUL: execve ends an
 * argument at NUL, and Node cannot pass bytes that are not UTF-8 (nor decode
 * them back as they were); invalid UTF-8 in argv is tested separately.
 * test/unit/argv.test.ts holds the worked cases of the grammar.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { DECISION_ANNOTATION, POLICY_ANNOTATION } from '../../src/annotations';
import { COMMAND_FLAGS, SHIM_COMMAND, parseInvocation, type FlagSpec } from '../../src/argv';
import { SHIM, skipOrFail } from '../helpers/oci';
import { assertProperty, isSubsequence, text } from '../helpers/properties';

/** runc's and crun's global options (FACTS.md, "How the runtime binary is called"). */
const VALUE_GLOBALS = ['root', 'log', 'log-format', 'criu', 'rootless', 'cgroup-manager', 'log-level', 'program-name'];
/** Boolean globals; help and version print and exit, so a create line leaves them out. */
const BOOL_GLOBALS = ['debug', 'systemd-cgroup'];
const INFO_GLOBALS = ['help', 'h', '?', 'version', 'v', 'V', 'usage'];
/** Commands the shim acts on, and its own: a passthrough line must not have them where a command could be. */
const ACTING_WORDS = ['create', 'run', 'restore', 'exec', SHIM_COMMAND];
/** Commands the shim passes through unread (runc's and crun's, plus words no runtime has). */
const PASSTHROUGH_COMMANDS = ['state', 'kill', 'delete', 'list', 'ps', 'pause', 'resume', 'events', 'update', 'features', 'start', 'spec', 'help'];
/** Words naming Object.prototype members: a lookup keyed by a command word in a plain object finds them. */
const PROTOTYPE_WORDS = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty'];
/** Go's strconv.ParseBool spellings. */
const GO_BOOLS = ['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False'];

/** An argument as a caller could pass it: any well-formed text but NUL. */
const argWord = text({ nul: false });
/** A word that Go flag and urfave read as a value, never as a flag. */
const plainWord = argWord.filter((word) => !word.startsWith('-'));
/** A --log value: any file the shim appends to lands in the run's working directory. */
const logValue = argWord.filter((word) => !word.includes('/'));

/** A value flag in one of Go flag's four notations. */
function valueFlag(name: string, value: fc.Arbitrary<string>, spaceValue: fc.Arbitrary<string> = value): fc.Arbitrary<string[]> {
  return fc.oneof(
    fc.tuple(fc.constantFrom('-', '--'), value).map(([dashes, v]) => [`${dashes}${name}=${v}`]),
    fc.tuple(fc.constantFrom('-', '--'), spaceValue).map(([dashes, v]) => [`${dashes}${name}`, v]),
  );
}

/** A boolean flag: bare ("-x", "--x") or with a value ("--x=false"). */
function boolFlag(name: string, value: fc.Arbitrary<string> = fc.constantFrom(...GO_BOOLS)): fc.Arbitrary<string[]> {
  return fc.oneof(
    fc.constantFrom('-', '--').map((dashes) => [`${dashes}${name}`]),
    fc.tuple(fc.constantFrom('-', '--'), value).map(([dashes, v]) => [`${dashes}${name}=${v}`]),
  );
}

/** A known global option; `info` lets in --help and --version. */
function globalOption(info: boolean): fc.Arbitrary<string[]> {
  return fc.oneof(
    fc.constantFrom(...VALUE_GLOBALS).chain((name) => valueFlag(name, name === 'log' ? logValue : argWord)),
    fc.constantFrom(...BOOL_GLOBALS, ...(info ? INFO_GLOBALS : [])).chain((name) => boolFlag(name, fc.oneof(fc.constantFrom(...GO_BOOLS), argWord))),
  );
}

/** A global option no runtime has: its arity is unknown, so the shim passes the call on unread. */
const unknownGlobal: fc.Arbitrary<string[]> = fc
  .tuple(fc.constantFrom('-', '--'), fc.stringMatching(/^x-[a-z]{1,6}$/), fc.option(argWord.map((v) => `=${v}`), { nil: '' }))
  .map(([dashes, name, value]) => [`${dashes}${name}${value}`]);

/** A passthrough command line: globals in every notation, a command the shim does not act on, any arguments. */
const passthroughLine: fc.Arbitrary<string[]> = fc
  .tuple(
    fc.array(fc.oneof({ weight: 4, arbitrary: globalOption(true) }, { weight: 1, arbitrary: unknownGlobal }), { maxLength: 4 }),
    fc.boolean(),
    fc.oneof(
      fc.constantFrom(...PASSTHROUGH_COMMANDS, ...PROTOTYPE_WORDS),
      plainWord.filter((word) => !COMMAND_FLAGS.has(word) && !ACTING_WORDS.includes(word)),
    ),
    fc.array(fc.oneof(argWord, fc.constantFrom('--all', '-a', '--force', '9', 'KILL', '--format', 'json', '--resources', '-', '--')), { maxLength: 6 }),
  )
  .map(([globals, terminator, command, args]) => [...globals.flat(), ...(terminator ? ['--'] : []), command, ...args])
  // After an unknown global option, an acting word anywhere would make the line unclear.
  .filter((argv) => !argv.some((word) => ACTING_WORDS.includes(word)));

interface FlagWords {
  words: string[];
  /** A boolean flag without "=": urfave's reordering takes the word after it as its value. */
  bareBool: boolean;
}

/** The distinct flags of a command's table that a create line may carry, bundle, help and crun's --config aside. */
function createFlags(command: string): FlagSpec[] {
  const specs = new Set(COMMAND_FLAGS.get(command)!.values());
  return [...specs].filter((spec) => spec.unsupported === undefined && !['bundle', 'help'].includes(spec.names[0]!));
}

/**
 * One of a command's flags, under any of its names, in any notation. A
 * spaced value never starts with "-": the two urfave reorderings read such a
 * word differently, and the shim refuses it (test/unit/argv.test.ts).
 */
function commandFlag(spec: FlagSpec): fc.Arbitrary<FlagWords> {
  const name = fc.constantFrom(...spec.names);
  if (!spec.takesValue) return name.chain((n) => boolFlag(n)).map((words) => ({ words, bareBool: words.length === 1 && !words[0]!.includes('=') }));
  // Only "0" keeps the hand-off an execve: a larger count wants descriptors passed in.
  const [value, spacedValue] = spec.names[0] === 'preserve-fds' ? [fc.constant('0'), fc.constant('0')] : [argWord, plainWord];
  return name.chain((n) => valueFlag(n, value, spacedValue)).map((words) => ({ words, bareBool: false }));
}

interface CreateLine {
  argv: string[];
  command: string;
  id: string;
  /** The --bundle value, or undefined for none (the bundle is the working directory). */
  bundle: string | undefined;
}

/**
 * A create, run or restore line with flags before and after the id, every
 * bundle notation, and the given bundle paths. A bare boolean is never the
 * last flag before the id when flags follow it: urfave would take the id as
 * its value and leave two positionals, which runc refuses and so does the
 * shim (test/unit/argv.test.ts); there it gets "=true".
 */
function createLine(bundlePaths: readonly string[]): fc.Arbitrary<CreateLine> {
  return fc.constantFrom('create', 'run', 'restore').chain((command) =>
    fc
      .record({
        globals: fc.array(globalOption(false), { maxLength: 3 }),
        flags: fc.shuffledSubarray(createFlags(command), { maxLength: 4 }).chain((specs) => fc.tuple(...specs.map(commandFlag))),
        bundle: fc.option(fc.tuple(fc.constantFrom('b', 'bundle'), fc.constantFrom(...bundlePaths)), { nil: undefined }),
        bundleNotation: fc.record({ dashes: fc.constantFrom('-', '--'), spaced: fc.boolean() }),
        id: plainWord,
        split: fc.nat(),
        bundleAt: fc.nat(),
      })
      .map(({ globals, flags, bundle, bundleNotation, id, split, bundleAt }) => {
        const all: FlagWords[] = [...flags];
        if (bundle !== undefined) {
          const [name, path] = bundle;
          const flag = `${bundleNotation.dashes}${name}`;
          const words = bundleNotation.spaced ? [flag, path] : [`${flag}=${path}`];
          all.splice(bundleAt % (all.length + 1), 0, { words, bareBool: false });
        }
        const cut = split % (all.length + 1);
        const before = all.slice(0, cut);
        const after = all.slice(cut);
        const last = before.at(-1);
        if (after.length > 0 && last?.bareBool === true) before[before.length - 1] = { words: [`${last.words[0]}=true`], bareBool: false };
        const argv = [...globals.flat(), command, ...before.flatMap((f) => f.words), id, ...after.flatMap((f) => f.words)];
        return { argv, command, id, bundle: bundle?.[1] };
      }),
  );
}

/** Words that look like runc's: commands, every table's flags in every notation, separators, and anything. */
const runcishWord: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...ACTING_WORDS, ...PASSTHROUGH_COMMANDS, ...PROTOTYPE_WORDS, 'checkpoint', '--', '-', '=', '-=', '--='),
  fc
    .constantFrom(...VALUE_GLOBALS, ...BOOL_GLOBALS, ...INFO_GLOBALS, ...[...COMMAND_FLAGS.values()].flatMap((flags) => [...flags.keys()]))
    .chain((name) => fc.tuple(fc.constantFrom('-', '--'), fc.constantFrom('', '=', '=0', '=1', '=x', '=-')).map(([dashes, value]) => `${dashes}${name}${value}`)),
  text({ loneSurrogates: true, maxLength: 8 }),
);

/** The value a word gives a flag: the whole word (space notation) or what follows its first "=". */
const valuesIn = (argv: readonly string[]): Set<string> => new Set(argv.flatMap((word) => (word.includes('=') ? [word, word.slice(word.indexOf('=') + 1)] : [word])));

t.test('parseInvocation never throws, and what it finds is on the command line', async (t) => {
  assertProperty(
    fc.property(fc.array(runcishWord, { maxLength: 10 }), (argv) => {
      const invocation = parseInvocation(argv);
      const values = valuesIn(argv);
      assert.ok(isSubsequence(invocation.globals.forState, argv), 'globals for state are words of argv, in order');
      for (const found of [invocation.globals.log, invocation.globals.logFormat]) assert.ok(found === undefined || values.has(found));
      if (invocation.kind === 'create') {
        assert.ok(argv.includes(invocation.id), 'the container id is a word');
        assert.ok(invocation.bundle === '' || values.has(invocation.bundle), 'the bundle is a word or a flag value');
      }
      if (invocation.kind === 'exec') {
        assert.ok(argv.includes(invocation.id), 'the container id is a word');
        assert.ok(invocation.processFile === undefined || values.has(invocation.processFile), 'the process file is a word or a flag value');
      }
    }),
    { numRuns: 5000 },
  );
  t.pass('no throw; every finding comes from argv');
});

const skip = skipOrFail('argv round trip through the binary', existsSync(SHIM) ? [] : [`${SHIM} (npm run build)`]);

t.test('the real runtime gets the command line byte for byte', { skip: skip ?? false }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-argv-properties-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const record = join(dir, 'argv');
  // NUL-separated, the count first: [] and [""] differ, and so do ["a b"] and ["a", "b"].
  const recorder = join(dir, 'recording-runtime');
  writeFileSync(recorder, `#!/bin/sh\nprintf '%s\\0' "$#" "$@" > '${record}'\n`, { mode: 0o755 });
  const nodeConfig = join(dir, 'strict-groups.json');
  writeFileSync(nodeConfig, JSON.stringify({ runtime: recorder, auditLog: null }));
  const bundle = join(dir, 'bundle');
  mkdirSync(join(bundle, 'rootfs'), { recursive: true });
  // Merge: the shim reads config.json, decides, changes no gid, records its
  // decision, hands off.
  const configText = JSON.stringify({
    ociVersion: '1.0.2',
    process: { user: { uid: 1000, gid: 1000, additionalGids: [1000, 50000, 60000] }, args: ['id'], cwd: '/' },
    root: { path: 'rootfs' },
    annotations: { [POLICY_ANNOTATION]: 'Merge' },
  });
  writeFileSync(join(bundle, 'config.json'), configText);

  const expectedRecord = (argv: readonly string[]): Buffer => Buffer.from([String(argv.length), ...argv].map((word) => `${word}\0`).join(''), 'utf8');

  /** Runs `program` (the shim unless given) with argv in `cwd`; returns what the runtime recorded. */
  function recorded(argv: readonly string[], cwd: string, program = SHIM): Buffer {
    rmSync(record, { force: true });
    const run = spawnSync(program, argv, { cwd, env: { PATH: process.env['PATH'], STRICT_GROUPS_CONFIG: nodeConfig }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    assert.equal(run.status, 0, `exit status; stderr: ${String(run.stderr)}`);
    assert.equal(String(run.stderr), '', 'nothing on stderr');
    assert.equal(String(run.stdout), '', 'nothing on stdout');
    return readFileSync(record);
  }

  t.test('the recorder tells apart what the property must', async (t) => {
    const pairs: [string[], string[]][] = [[[], ['']], [['a b'], ['a', 'b']], [['a', ''], ['a']]];
    for (const [one, other] of pairs) {
      t.notSame(recorded(one, dir, recorder), recorded(other, dir, recorder), `${JSON.stringify(one)} vs ${JSON.stringify(other)}`);
      t.same(recorded(one, dir, recorder), expectedRecord(one));
    }
  });

  t.test('passthrough commands, globals in every notation', async (t) => {
    assertProperty(
      fc.property(passthroughLine, (argv) => {
        assert.deepEqual(recorded(argv, dir), expectedRecord(argv));
        assert.equal(parseInvocation(argv).kind, 'passthrough', 'the line is one the shim passes through unread');
      }),
      { numRuns: 60 },
    );
    t.pass('every passthrough line reaches the runtime unchanged');
  });

  t.test('create, run and restore under Merge: the same bundle found, the line unchanged, config.json only gets the decision record', async (t) => {
    assertProperty(
      fc.property(createLine([bundle, 'bundle', './bundle/']), ({ argv, command, id, bundle: bundleValue }) => {
        const invocation = parseInvocation(argv);
        const found = invocation.kind === 'create' ? { command: invocation.command, id: invocation.id, bundle: invocation.bundle } : invocation;
        assert.deepEqual(found, { command, id, bundle: bundleValue ?? '' }, 'parsed as meant');
        // Without --bundle the bundle is the working directory.
        assert.deepEqual(recorded(argv, bundleValue === undefined ? bundle : dir), expectedRecord(argv));
        const after = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { annotations: Record<string, string> };
        assert.equal(JSON.parse(after.annotations[DECISION_ANNOTATION] ?? '{}').policy, 'Merge', 'the Merge decision recorded');
        delete after.annotations[DECISION_ANNOTATION];
        assert.deepEqual(after, JSON.parse(configText), 'Merge changes nothing else');
        writeFileSync(join(bundle, 'config.json'), configText);
      }),
      { numRuns: 60 },
    );
    t.pass('every create line reaches the runtime unchanged');
  });
});
